"""Receivable confirmation and the voucher lifecycle (DOMAIN.md, docs/finance.md).

A core enterprise confirms a payable to a supplier, anchored to documents,
and so issues a voucher (``fv/<id>``): obligor, face amount and maturity, fixed
for good. The voucher's value lives in *pieces* (``fx/<id>``); the root piece
has the voucher's id and its full face amount.

Piece states and the ops that move between them::

    ACTIVE --split--> SPLIT (closed; children ACTIVE, amounts sum exactly)
    ACTIVE --offer--> OFFERED --accept--> ACTIVE (new holder)        transfer
                              |           FINANCED (bank is holder)  discount
                              |           PLEDGED (lender recorded)  pledge
                              '--return--> ACTIVE (unchanged holder)
    PLEDGED --pledge_release--> ACTIVE;  PLEDGED --pledge_default--> FINANCED (lender holds)
    any live piece --settle (obligor, at maturity)--> SETTLED, a clearing-list row

Only the holder splits or offers; PLEDGED and FINANCED pieces are locked
(``PIECE_LOCKED``) and OFFERED ones pending (``PIECE_PENDING``) until accepted or
returned — so a piece can never be spent twice, in one block or across blocks.
Pieces stop moving at maturity.

Roles are checked at every step that relies on them, not only where a flow starts:
an offer checks the counterparty's role and the accept checks it again (the
committee may have removed it in between). Steps that only unwind or pay what
was agreed need no role: a lender releases its pledge, the obligor settles.

Lineage is indexed in the records themselves:
each piece names its voucher, parent, root, depth and children count (child ids
are ``child_id(parent, i)``), and keeps its own history.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Iterable

from tierchain.apps.finance import camount as ca
from tierchain.apps.finance import claims, cregistry, registry
from tierchain.apps.finance import codes as c
from tierchain.apps.finance.codes import FinanceReject
from tierchain.apps.finance.evidence import (
    DOC_BYTES,
    pack_docs,
    parse_docs,
    party_checked,
)
from tierchain.apps.finance.orgs import active_org_with, make_tx, member, member_reads, params, role_bits
from tierchain.crypto import ED25519_BLAKE3, CryptoSuite
from tierchain.engine import apps
from tierchain.engine.execute import OpFailed, TxContext
from tierchain.errors import InvariantViolation, Reject
from tierchain.wire import tx

OPS = apps.OpTable()  # this module's ops (tierchain.apps.finance.app)

P = c.PieceState
CORE = role_bits("core_enterprise")
SUPPLIER = role_bits("supplier")
BANK = role_bits("bank")
# The role the offeree needs, by offer kind: checked when the offer is made (of the
# counterparty) and again when it is accepted, because the committee may have removed the
# role in between (a former bank must not buy or lend against a piece).
OFFEREE_ROLES = {c.OfferKind.TRANSFER: SUPPLIER, c.OfferKind.DISCOUNT: BANK, c.OfferKind.PLEDGE: BANK}
_CONFIRM = struct.Struct("<16sQQ32sB")
_OFFER = struct.Struct("<16s16sBQQ")
_ID = struct.Struct("<16s")


# --- helpers -----------------------------------------------------------------------


def load_voucher(ctx: TxContext, vid: bytes) -> c.Voucher:
    raw = ctx.get(c.voucher_key(vid))
    if raw is None:
        raise OpFailed(FinanceReject.NO_SUCH_VOUCHER)
    return c.Voucher.decode(raw)


def load_piece(ctx: TxContext, pid: bytes) -> c.Piece:
    raw = ctx.get(c.piece_key(pid))
    if raw is None:
        raise OpFailed(FinanceReject.NO_SUCH_PIECE)
    return c.Piece.decode(raw)


def _movable(piece: c.Piece) -> None:
    if piece.state in (P.PLEDGED, P.FINANCED):
        raise OpFailed(FinanceReject.PIECE_LOCKED)
    if piece.state == P.OFFERED:
        raise OpFailed(FinanceReject.PIECE_PENDING)
    if piece.state != P.ACTIVE:
        raise OpFailed(FinanceReject.PIECE_CLOSED)


def _not_matured(ctx: TxContext, v: c.Voucher) -> None:
    if v.status != c.VoucherStatus.ACTIVE or ctx.timestamp_ms >= v.maturity_ms:
        raise OpFailed(FinanceReject.MATURED)


# Only the holder's optional actions start something; everything else completes what
# they started and must never be refused, or a full history would lock a pledged or
# offered piece for good (no release, no default, no settlement).
_STARTS = frozenset((c.Event.OFFERED, c.Event.SPLIT))
# After an offer at most: accepted, pledged (or discounted), released/defaulted, settled.
_COMPLETIONS_MAX = 4


_PIECE_FIELDS = frozenset(f.name for f in dataclasses.fields(c.Piece))


def log_event(ctx: TxContext, piece: c.Piece, kind: int, org: bytes, amount: int, **changes) -> c.Piece:
    if kind in _STARTS and len(piece.history) + 1 + _COMPLETIONS_MAX > c.piece_history_max:
        raise OpFailed(FinanceReject.HISTORY_FULL)
    entry = c.HistoryEntry(kind, ctx.height, org, amount)
    # dataclasses.replace(piece, history=..., **changes), without its inspection of every
    # field on each call (a piece has plain fields only: the same instance, for less).
    if not changes.keys() <= _PIECE_FIELDS or "history" in changes:
        raise TypeError(f"Piece fields: {sorted(changes)}")
    new = object.__new__(c.Piece)
    d = new.__dict__
    d.update(piece.__dict__)
    d.update(changes, history=(*piece.history, entry))
    return new


def put_piece(ctx: TxContext, pid: bytes, piece: c.Piece) -> None:
    ctx.put(c.piece_key(pid), piece.encode())


def held(ctx: TxContext, pid: bytes, *, confidential: bool = False) -> tuple[bytes, c.Piece, c.Voucher]:
    """The sender's org, the piece it holds, and its voucher; or a named refusal. A
    confidential piece (amount 0 in its record, its commitments in ``fy/``) moves only by
    the confidential ops, a plaintext one only by the others."""
    oid, _ = member(ctx)
    piece = load_piece(ctx, pid)
    if piece.holder != oid:
        raise OpFailed(FinanceReject.NOT_HOLDER)
    if (piece.amount == 0) != confidential:
        raise OpFailed(FinanceReject.NOT_CONFIDENTIAL if confidential else FinanceReject.CONFIDENTIAL_PIECE)
    _movable(piece)
    v = load_voucher(ctx, piece.voucher)
    _not_matured(ctx, v)
    return oid, piece, v


# --- confirm: the core enterprise issues a voucher ----------------------------------------


def add_doc_keys(
    docs: list[tuple[int, bytes]],
    reads: set[bytes],
    writes: set[bytes],
    claimed: Iterable[tuple[int, bytes]] = (),
    tag: bytes = b"",
) -> None:
    """A confirmation's document keys: an invoice is written (it records its voucher), the
    others are read; a document in ``claimed`` by its claim carried to lineage ``tag``
    (``fe/``, apps/finance/claims.py), the others by their anchor (``fd/``)."""
    claimed = set(claimed)
    for t, fp in docs:
        key = c.claim_key(tag, t, fp) if (t, fp) in claimed else c.doc_key(t, fp)
        (writes if t == c.DocType.INVOICE else reads).add(key)


def confirm_checks(
    ctx: TxContext,
    beneficiary: bytes,
    face: int | None,
    maturity_ms: int,
    blinded: bytes,
    docs: list[tuple[int, bytes]],
) -> tuple[bytes, bytes]:
    """A confirmation's checks, in order, and the invoice's claim: (obligor, voucher id).
    ``face`` None: a confidential voucher's (hidden; its range proof bounds it)."""
    obligor, _ = member(ctx, CORE)
    if beneficiary == obligor:
        raise OpFailed(FinanceReject.BAD_COUNTERPARTY)
    active_org_with(ctx, beneficiary, SUPPLIER)
    if (face is not None and not 0 < face <= c.amount_max) or maturity_ms <= ctx.timestamp_ms:
        raise OpFailed(Reject.BAD_PAYLOAD, "face or maturity")
    vid = c.voucher_id(blinded, ctx.sender, ctx.nonce, suite=ctx.suite)
    if ctx.get(c.voucher_key(vid)) is not None:
        raise OpFailed(FinanceReject.VOUCHER_EXISTS)
    if not any(t == c.DocType.INVOICE for t, _ in docs):
        raise OpFailed(FinanceReject.NO_INVOICE)
    for doc_type, fp in docs:
        claim = c.claim_key(vid[: c.lineage_tag_bytes], doc_type, fp)
        if ctx.declares(claim):  # anchored on another shard, claimed for this lineage
            claims.use(ctx, claim, doc_type, obligor, beneficiary, blinded, vid)
            continue
        raw = ctx.get(c.doc_key(doc_type, fp))
        if raw is None:
            raise OpFailed(FinanceReject.NO_SUCH_DOC)
        rec = c.DocRecord.decode(raw)
        party_checked(doc_type, rec, obligor, beneficiary)
        if doc_type == c.DocType.INVOICE:
            if rec.voucher != c.ZERO_ID:
                raise OpFailed(FinanceReject.INVOICE_ALREADY_USED)
            ctx.put(c.doc_key(doc_type, fp), dataclasses.replace(rec, voucher=vid).encode())
    # Either registry may hold the asset; a plaintext confirmation declares (and reads) only
    # its own, and the invoice's claim above already stops it after a confidential one.
    if ctx.get(c.registry_key(blinded)) is not None or (
        face is None and ctx.get(c.cregistry_key(blinded)) is not None
    ):
        raise OpFailed(FinanceReject.ASSET_EXISTS)
    return obligor, vid


def issue(
    ctx: TxContext,
    vid: bytes,
    obligor: bytes,
    beneficiary: bytes,
    face: int,
    maturity_ms: int,
    blinded: bytes,
    docs: list[tuple[int, bytes]],
) -> None:
    """The voucher record and its root piece (``face`` 0: a confidential voucher's)."""
    v = c.Voucher(
        obligor,
        beneficiary,
        face,
        maturity_ms,
        ctx.height,
        ctx.timestamp_ms,
        c.VoucherStatus.ACTIVE,
        0,
        0,
        blinded,
        tuple(docs),
    )
    ctx.put(c.voucher_key(vid), v.encode())
    root = c.Piece(
        vid, c.ZERO_ID, vid, 0, 0, face, beneficiary, P.ACTIVE, 0, c.ZERO_ID, 0, 0, 0, ctx.height, ()
    )
    put_piece(ctx, vid, log_event(ctx, root, c.Event.ISSUED, obligor, face))


@OPS.op(c.OP_CONFIRM, "fin.confirm", native="fin.confirm")
def _confirm(ctx: TxContext) -> None:
    if len(ctx.payload) < _CONFIRM.size:
        raise OpFailed(Reject.BAD_PAYLOAD)
    beneficiary, face, maturity_ms, blinded, n = _CONFIRM.unpack_from(ctx.payload)
    if len(ctx.payload) != _CONFIRM.size + n * DOC_BYTES:
        raise OpFailed(Reject.BAD_PAYLOAD, "documents")
    docs = parse_docs(ctx.payload, _CONFIRM.size, n)
    obligor, vid = confirm_checks(ctx, beneficiary, face, maturity_ms, blinded, docs)
    ctx.put(c.registry_key(blinded), c.RegistryEntry(face, 0).encode())
    issue(ctx, vid, obligor, beneficiary, face, maturity_ms, blinded, docs)
    ctx.emit(b"fin.voucher.issued", vid + beneficiary + face.to_bytes(8, "little"))


# --- split ----------------------------------------------------------------------------------


@OPS.op(c.OP_SPLIT, "fin.split", native="fin.split")
def _split(ctx: TxContext) -> None:
    if len(ctx.payload) < 17:
        raise OpFailed(Reject.BAD_PAYLOAD)
    pid, n = ctx.payload[:16], ctx.payload[16]
    if not 2 <= n <= c.split_ways_max or len(ctx.payload) != 17 + 8 * n:
        raise OpFailed(Reject.BAD_PAYLOAD, "2..split_ways_max amounts")
    amounts = struct.unpack_from(f"<{n}Q", ctx.payload, 17)
    oid, piece, _ = held(ctx, pid)
    p = params(ctx)
    if sum(amounts) != piece.amount:
        raise OpFailed(FinanceReject.SPLIT_SUM_MISMATCH)
    if min(amounts) < p.min_piece:
        raise OpFailed(FinanceReject.PIECE_TOO_SMALL)
    if piece.depth + 1 > p.max_depth:
        raise OpFailed(FinanceReject.SPLIT_TOO_DEEP)
    kids = [c.child_id(pid, i, suite=ctx.suite) for i in range(n)]
    if any(ctx.get(c.piece_key(k)) is not None for k in kids):  # 64-bit ids within a lineage
        raise OpFailed(FinanceReject.VOUCHER_EXISTS, "a child id is taken")
    for i, amount in enumerate(amounts):
        child = c.Piece(
            piece.voucher, pid, piece.root, piece.depth + 1, i, amount, oid, P.ACTIVE,
            0, c.ZERO_ID, 0, 0, 0, ctx.height, (),
        )  # fmt: skip
        put_piece(ctx, kids[i], log_event(ctx, child, c.Event.CREATED_BY_SPLIT, oid, amount))
    put_piece(ctx, pid, log_event(ctx, piece, c.Event.SPLIT, oid, n, state=P.SPLIT, children=n))
    ctx.emit(b"fin.piece.split", pid + bytes((n,)))


# --- the confidential branches of the ops below (docs/privacy.md) ---------------------------------


def _c_accepted(ctx: TxContext, pid: bytes, piece: c.Piece, v: c.Voucher, oid: bytes) -> None:
    """``fin.accept`` of a confidential piece: the offeree's sealed opening becomes the
    holder's (transfer, discount); a financing counts the piece against the asset."""
    offer = ca.Offer.decode(ctx.get(c.coffer_key(pid)))
    stored = ca.Stored.decode(ctx.get(c.camount_key(pid)) or b"")
    if piece.offer_kind != c.OfferKind.TRANSFER:
        cregistry.add_financed(ctx, v.blinded, (stored.lo, stored.hi))
    if piece.offer_kind != c.OfferKind.PLEDGE:  # the new holder's opening; a pledge keeps its terms
        ctx.put(c.camount_key(pid), dataclasses.replace(stored, sealed=offer.sealed_piece).encode())
        ctx.delete(c.coffer_key(pid))


def _c_returned(ctx: TxContext, pid: bytes) -> None:
    """``fin.return``: the pending offer goes."""
    ctx.delete(c.coffer_key(pid))


def _c_released(ctx: TxContext, pid: bytes, v: c.Voucher) -> None:
    """``fin.pledge_release``: the piece no longer counts against the asset; the loan goes."""
    stored = ca.Stored.decode(ctx.get(c.camount_key(pid)) or b"")
    cregistry.add_financed(ctx, v.blinded, (stored.lo, stored.hi), sign=-1)
    ctx.delete(c.coffer_key(pid))


def _c_defaulted(ctx: TxContext, pid: bytes) -> None:
    """``fin.pledge_default``: the lender becomes the holder: its sealed opening is the holder's."""
    offer = ca.Offer.decode(ctx.get(c.coffer_key(pid)))
    stored = ca.Stored.decode(ctx.get(c.camount_key(pid)) or b"")
    ctx.put(c.camount_key(pid), dataclasses.replace(stored, sealed=offer.sealed_piece).encode())
    ctx.delete(c.coffer_key(pid))


def _live_piece_of(ctx: TxContext, vid: bytes, pid: bytes) -> c.Piece:
    """A live piece of voucher ``vid`` (settlement's check of each listed piece)."""
    piece = load_piece(ctx, pid)
    if piece.voucher != vid:
        raise OpFailed(FinanceReject.NO_SUCH_PIECE, "piece of another voucher")
    if not piece.live():
        raise OpFailed(FinanceReject.PIECE_CLOSED)
    return piece


def _c_settle(ctx: TxContext, vid: bytes, v: c.Voucher, pids: list[bytes]) -> None:
    """``fin.settle`` of a confidential voucher: each piece's holder is paid its hidden amount
    (the row keeps the piece's commitments and regulator handles); the voucher is settled
    when what was settled adds up to its face — commitments, openings included, since every
    split balanced exactly. A pledged piece is released or defaulted first (``PIECE_LOCKED``:
    the lender's share is hidden), an offered one returned or accepted (``PIECE_PENDING``)."""
    if len(pids) > c.csettle_pieces_per_tx_max:
        raise OpFailed(Reject.BAD_PAYLOAD, "1..csettle_pieces_per_tx_max pieces")
    rows, points = [], []
    for pid in pids:
        piece = _live_piece_of(ctx, vid, pid)
        if piece.state == P.PLEDGED:
            raise OpFailed(FinanceReject.PIECE_LOCKED, "release or default the pledge first")
        if piece.state == P.OFFERED:
            raise OpFailed(FinanceReject.PIECE_PENDING)
        stored = ca.Stored.decode(ctx.get(c.camount_key(pid)) or b"")
        rows.append((pid, piece.holder, stored.amount))
        points += [stored.lo, stored.hi]
        settled_piece = log_event(ctx, piece, c.Event.SETTLED, piece.holder, 0, state=P.SETTLED)
        put_piece(ctx, pid, settled_piece)
    before = ca.IDENTITY
    if v.settle_batches:
        before = ca.decode_cclearing(ctx.get(c.clearing_key(vid, v.settle_batches - 1)) or b"")[1]
    settled = ca.conf.commitment_lincomb([before, *points], [1, *[1, ca.LIMB] * len(pids)])
    face = ca.Stored.decode(ctx.get(c.camount_key(vid)) or b"")
    if settled is None:
        raise InvariantViolation("a settled commitment is not a point")
    done = settled == ca.conf.commitment_lincomb([face.lo, face.hi], [1, ca.LIMB])
    ctx.put(c.clearing_key(vid, v.settle_batches), ca.encode_cclearing(ctx.height, settled, rows))
    status = c.VoucherStatus.SETTLED if done else v.status
    ctx.put(
        c.voucher_key(vid),
        dataclasses.replace(v, settle_batches=v.settle_batches + 1, status=status).encode(),
    )
    if done:  # the asset is extinguished: nothing more can be financed against it
        raw = ctx.get(c.cregistry_key(v.blinded))
        if raw is not None:
            entry = cregistry.CRegistryEntry.decode(raw)
            ctx.put(c.cregistry_key(v.blinded), dataclasses.replace(entry, closed=True).encode())
    ctx.emit(b"fin.voucher.settled", vid + v.settle_batches.to_bytes(2, "little") + bytes((done,)))


def _c_offer_keys(pid: bytes, kind: int, blinded: bytes) -> set[bytes]:
    """The keys the confidential branch of accept/return/release/default writes besides the
    piece (the client declares them when the piece is confidential)."""
    keys = {c.camount_key(pid), c.coffer_key(pid)}
    if kind != c.OfferKind.TRANSFER:
        keys.add(c.cregistry_key(blinded))
    return keys


# --- offer / accept / return ----------------------------------------------------------------


@OPS.op(c.OP_OFFER, "fin.offer", native="fin.offer")
def _offer(ctx: TxContext) -> None:
    if len(ctx.payload) != _OFFER.size:
        raise OpFailed(Reject.BAD_PAYLOAD)
    pid, to, kind, price, due_ms = _OFFER.unpack(ctx.payload)
    if kind not in (c.OfferKind.TRANSFER, c.OfferKind.DISCOUNT, c.OfferKind.PLEDGE):
        raise OpFailed(Reject.BAD_PAYLOAD, "offer kind")
    oid, piece, _ = held(ctx, pid)
    if to == oid:
        raise OpFailed(FinanceReject.BAD_COUNTERPARTY)
    active_org_with(ctx, to, OFFEREE_ROLES[c.OfferKind(kind)])
    if kind == c.OfferKind.TRANSFER:
        price = due_ms = 0
    elif not 0 < price <= piece.amount or (kind == c.OfferKind.PLEDGE and due_ms <= ctx.timestamp_ms):
        raise OpFailed(Reject.BAD_PAYLOAD, "price or loan due time")
    piece = log_event(
        ctx, piece, c.Event.OFFERED, to, price,
        state=P.OFFERED, offer_kind=kind, counterparty=to, price=price, due_ms=due_ms,
    )  # fmt: skip
    put_piece(ctx, pid, piece)
    ctx.emit(b"fin.piece.offered", pid + to + bytes((kind,)))


def _offered_piece(ctx: TxContext) -> tuple[bytes, bytes, c.OrgRecord, c.Piece]:
    """(piece id, sender's org id and record, piece) for an op on an OFFERED piece named by the payload."""
    if len(ctx.payload) != _ID.size:
        raise OpFailed(Reject.BAD_PAYLOAD)
    pid = ctx.payload
    oid, org = member(ctx)
    piece = load_piece(ctx, pid)
    if piece.state != P.OFFERED:
        raise OpFailed(FinanceReject.NOT_OFFERED)
    return pid, oid, org, piece


@OPS.op(c.OP_ACCEPT, "fin.accept", native="fin.accept")
def _accept(ctx: TxContext) -> None:
    pid, oid, org, piece = _offered_piece(ctx)
    if piece.counterparty != oid:
        raise OpFailed(FinanceReject.NOT_OFFEREE)
    if not org.roles & OFFEREE_ROLES[c.OfferKind(piece.offer_kind)]:
        raise OpFailed(FinanceReject.ROLE_MISSING)
    v = load_voucher(ctx, piece.voucher)
    _not_matured(ctx, v)
    if piece.amount == 0:  # confidential: the opening and the registry's count move (above)
        _c_accepted(ctx, pid, piece, v, oid)
    if piece.offer_kind == c.OfferKind.TRANSFER:
        piece = log_event(
            ctx, piece, c.Event.ACCEPTED, oid, piece.amount,
            state=P.ACTIVE, holder=oid, offer_kind=0, counterparty=c.ZERO_ID,
        )  # fmt: skip
    elif piece.offer_kind == c.OfferKind.DISCOUNT:
        if piece.amount:
            registry.add_financed(ctx, v.blinded, piece.amount)
        piece = log_event(
            ctx, piece, c.Event.DISCOUNTED, oid, piece.price,
            state=P.FINANCED, holder=oid, offer_kind=0, counterparty=c.ZERO_ID,
        )  # fmt: skip
    else:
        if piece.amount:
            registry.add_financed(ctx, v.blinded, piece.amount)
        piece = log_event(ctx, piece, c.Event.PLEDGED, oid, piece.price, state=P.PLEDGED)
    put_piece(ctx, pid, piece)
    ctx.emit(b"fin.piece.accepted", pid + oid)


@OPS.op(c.OP_RETURN, "fin.return")
def _return(ctx: TxContext) -> None:
    pid, oid, _, piece = _offered_piece(ctx)
    if oid not in (piece.counterparty, piece.holder):
        raise OpFailed(FinanceReject.NOT_OFFEREE)
    if piece.amount == 0:
        _c_returned(ctx, pid)
    piece = log_event(
        ctx, piece, c.Event.RETURNED, oid, 0,
        state=P.ACTIVE, offer_kind=0, counterparty=c.ZERO_ID, price=0, due_ms=0,
    )  # fmt: skip
    put_piece(ctx, pid, piece)
    ctx.emit(b"fin.piece.returned", pid)


# --- pledge release / default transfer ----------------------------------------------------------


def _pledged_to_sender(ctx: TxContext, roles: int) -> tuple[bytes, bytes, c.Piece, c.Voucher]:
    """The pledged piece named by the payload, whose lender is the sender's org (with ``roles``)."""
    if len(ctx.payload) != _ID.size:
        raise OpFailed(Reject.BAD_PAYLOAD)
    pid = ctx.payload
    oid, _ = member(ctx, roles)
    piece = load_piece(ctx, pid)
    if piece.state != P.PLEDGED:
        raise OpFailed(FinanceReject.NOT_PLEDGED)
    if piece.counterparty != oid:
        raise OpFailed(FinanceReject.NOT_LENDER)
    return pid, oid, piece, load_voucher(ctx, piece.voucher)


@OPS.op(c.OP_PLEDGE_RELEASE, "fin.pledge_release")
def _pledge_release(ctx: TxContext) -> None:
    # Any role: releasing only gives up the lender's claim, and a lender whose bank role was
    # removed must still be able to free the pledgor's piece.
    pid, oid, piece, v = _pledged_to_sender(ctx, 0)
    if piece.amount:
        registry.sub_financed(ctx, v.blinded, piece.amount)
    else:
        _c_released(ctx, pid, v)
    piece = log_event(
        ctx, piece, c.Event.RELEASED, oid, piece.price,
        state=P.ACTIVE, offer_kind=0, counterparty=c.ZERO_ID, price=0, due_ms=0,
    )  # fmt: skip
    put_piece(ctx, pid, piece)
    ctx.emit(b"fin.piece.released", pid)


@OPS.op(c.OP_PLEDGE_DEFAULT, "fin.pledge_default")
def _pledge_default(ctx: TxContext) -> None:
    # A bank at this step: the lender becomes the holder of a financed piece. A former bank
    # keeps its claim (settlement pays the lender of a pledged piece first).
    pid, oid, piece, _ = _pledged_to_sender(ctx, BANK)
    if ctx.timestamp_ms < piece.due_ms:
        raise OpFailed(FinanceReject.LOAN_NOT_DUE)
    if piece.amount == 0:
        _c_defaulted(ctx, pid)
    piece = log_event(
        ctx, piece, c.Event.DEFAULT_TRANSFERRED, oid, piece.price,
        state=P.FINANCED, holder=oid, offer_kind=0, counterparty=c.ZERO_ID,
    )  # fmt: skip
    put_piece(ctx, pid, piece)
    ctx.emit(b"fin.piece.default_transferred", pid + oid)


# --- settlement, overdue, default ----------------------------------------------------------------


def clearing_rows(pid: bytes, piece: c.Piece) -> list[tuple[bytes, bytes, int]]:
    """Who is paid for a live piece at settlement: its holder; for a pledged
    piece the lender first (up to the loan), then the holder the rest."""
    if piece.state == P.PLEDGED:
        to_lender = min(piece.price, piece.amount)
        rows = [(pid, piece.counterparty, to_lender)]
        if piece.amount > to_lender:
            rows.append((pid, piece.holder, piece.amount - to_lender))
        return rows
    return [(pid, piece.holder, piece.amount)]


@OPS.op(c.OP_SETTLE, "fin.settle")
def _settle(ctx: TxContext) -> None:
    if len(ctx.payload) < 17:
        raise OpFailed(Reject.BAD_PAYLOAD)
    vid, n = ctx.payload[:16], ctx.payload[16]
    if not 1 <= n <= c.settle_pieces_per_tx_max or len(ctx.payload) != 17 + 16 * n:
        raise OpFailed(Reject.BAD_PAYLOAD, "1..settle_pieces_per_tx_max pieces")
    pids = [ctx.payload[17 + 16 * i : 33 + 16 * i] for i in range(n)]
    if len(set(pids)) != n:
        raise OpFailed(Reject.BAD_PAYLOAD, "a piece listed twice")
    # No role: paying is the recorded obligor's duty whatever its roles are now; a removed
    # core_enterprise role must not leave a voucher unsettleable.
    oid, _ = member(ctx)
    v = load_voucher(ctx, vid)
    if v.obligor != oid:
        raise OpFailed(FinanceReject.NOT_OBLIGOR)
    if v.status == c.VoucherStatus.SETTLED:
        raise OpFailed(FinanceReject.VOUCHER_SETTLED)
    if ctx.timestamp_ms < v.maturity_ms:
        raise OpFailed(FinanceReject.NOT_MATURED)
    if v.face == 0:  # a confidential voucher: its clearing list is in commitments
        _c_settle(ctx, vid, v, pids)
        return
    rows: list[tuple[bytes, bytes, int]] = []
    total = 0
    for pid in pids:
        piece = _live_piece_of(ctx, vid, pid)
        rows.extend(clearing_rows(pid, piece))
        total += piece.amount
        settled_piece = log_event(ctx, piece, c.Event.SETTLED, piece.holder, piece.amount, state=P.SETTLED)
        put_piece(ctx, pid, settled_piece)
    settled = v.settled + total
    if settled > v.face:
        raise InvariantViolation("live pieces of a voucher exceed its face amount")
    done = settled == v.face
    ctx.put(c.clearing_key(vid, v.settle_batches), c.encode_clearing(ctx.height, rows))
    status = c.VoucherStatus.SETTLED if done else v.status
    v2 = dataclasses.replace(v, settled=settled, settle_batches=v.settle_batches + 1, status=status)
    ctx.put(c.voucher_key(vid), v2.encode())
    if done:  # the asset is extinguished: nothing more can be financed against it
        entry = registry.load_entry(ctx, v.blinded)
        if entry is not None:
            ctx.put(
                c.registry_key(v.blinded), c.RegistryEntry(entry.value, entry.value, closed=True).encode()
            )
    ctx.emit(b"fin.voucher.settled", vid + v.settle_batches.to_bytes(2, "little") + bytes((done,)))


def _voucher_in(ctx: TxContext, status: c.VoucherStatus) -> c.Voucher:
    """The voucher named by the payload, which must be in ``status`` (any member may ask)."""
    if len(ctx.payload) != _ID.size:
        raise OpFailed(Reject.BAD_PAYLOAD)
    member(ctx)
    v = load_voucher(ctx, ctx.payload)
    if v.status != status:
        raise OpFailed(FinanceReject.BAD_VOUCHER_STATE)
    return v


@OPS.op(c.OP_MARK_OVERDUE, "fin.mark_overdue")
def _mark_overdue(ctx: TxContext) -> None:
    v = _voucher_in(ctx, c.VoucherStatus.ACTIVE)
    if ctx.timestamp_ms < v.maturity_ms:
        raise OpFailed(FinanceReject.NOT_MATURED)
    ctx.put(c.voucher_key(ctx.payload), dataclasses.replace(v, status=c.VoucherStatus.OVERDUE).encode())
    ctx.emit(b"fin.voucher.overdue", ctx.payload)


@OPS.op(c.OP_MARK_DEFAULT, "fin.mark_default")
def _mark_default(ctx: TxContext) -> None:
    v = _voucher_in(ctx, c.VoucherStatus.OVERDUE)
    if ctx.timestamp_ms < v.maturity_ms + params(ctx).default_grace_ms:
        raise OpFailed(FinanceReject.NOT_MATURED, "grace period not over")
    ctx.put(c.voucher_key(ctx.payload), dataclasses.replace(v, status=c.VoucherStatus.DEFAULTED).encode())
    ctx.emit(b"fin.voucher.defaulted", ctx.payload)


# --- client-side builders (every key-determining fact is an argument) -------------------------


def confirm(
    chain_id: int,
    sender: bytes,
    org: bytes,
    nonce: int,
    beneficiary: bytes,
    face: int,
    maturity_ms: int,
    docs: list[tuple[int, bytes]],
    blinded: bytes,
    *,
    suite: CryptoSuite = ED25519_BLAKE3,
    claimed: Iterable[tuple[int, bytes]] = (),
) -> tuple[tx.Tx, bytes]:
    """The confirmation tx and the id of the voucher (and root piece) it creates (an id of
    ``suite``, the chain's). ``claimed``: the documents anchored on another shard of a
    cluster and claimed for this voucher's lineage (apps/finance/claims.py)."""
    vid = c.voucher_id(blinded, sender, nonce, suite=suite)
    reads = member_reads(sender, org) | {c.org_key(beneficiary)}
    writes = {c.voucher_key(vid), c.piece_key(vid), c.registry_key(blinded)}
    add_doc_keys(docs, reads, writes, claimed, vid[: c.lineage_tag_bytes])
    payload = _CONFIRM.pack(beneficiary, face, maturity_ms, blinded, len(docs)) + pack_docs(docs)
    return make_tx(chain_id, c.OP_CONFIRM, sender, nonce, reads, writes, payload), vid


def split(
    chain_id: int,
    sender: bytes,
    org: bytes,
    nonce: int,
    voucher: bytes,
    piece: bytes,
    amounts: list[int],
    *,
    suite: CryptoSuite = ED25519_BLAKE3,
) -> tuple[tx.Tx, list[bytes]]:
    """The split tx and the ids of the children it creates (ids of ``suite``, the chain's)."""
    kids = [c.child_id(piece, i, suite=suite) for i in range(len(amounts))]
    reads = member_reads(sender, org) | {c.PARAMS_KEY, c.voucher_key(voucher)}
    writes = {c.piece_key(piece), *map(c.piece_key, kids)}
    payload = piece + bytes((len(amounts),)) + struct.pack(f"<{len(amounts)}Q", *amounts)
    return make_tx(chain_id, c.OP_SPLIT, sender, nonce, reads, writes, payload), kids


def offer(
    chain_id: int,
    sender: bytes,
    org: bytes,
    nonce: int,
    voucher: bytes,
    piece: bytes,
    to: bytes,
    kind: int = c.OfferKind.TRANSFER,
    price: int = 0,
    due_ms: int = 0,
) -> tx.Tx:
    reads = member_reads(sender, org) | {c.org_key(to), c.voucher_key(voucher)}
    payload = _OFFER.pack(piece, to, kind, price, due_ms)
    return make_tx(chain_id, c.OP_OFFER, sender, nonce, reads, {c.piece_key(piece)}, payload)


def accept(
    chain_id: int,
    sender: bytes,
    org: bytes,
    nonce: int,
    voucher: bytes,
    piece: bytes,
    kind: int,
    blinded: bytes,
    confidential: bool = False,
) -> tx.Tx:
    """``kind`` and ``blinded`` (the voucher's registry fingerprint) decide the keys: a
    financing accept counts against the registry (the confidential one for a
    ``confidential`` piece, whose opening and offer records move too)."""
    reads = member_reads(sender, org) | {c.voucher_key(voucher)}
    writes = {c.piece_key(piece)}
    if confidential:
        writes |= _c_offer_keys(piece, kind, blinded)
    elif kind != c.OfferKind.TRANSFER:
        writes.add(c.registry_key(blinded))
    return make_tx(chain_id, c.OP_ACCEPT, sender, nonce, reads, writes, piece)


def return_offer(
    chain_id: int, sender: bytes, org: bytes, nonce: int, piece: bytes, confidential: bool = False
) -> tx.Tx:
    writes = {c.piece_key(piece), *([c.coffer_key(piece)] if confidential else [])}
    return make_tx(chain_id, c.OP_RETURN, sender, nonce, member_reads(sender, org), writes, piece)


def pledge_release(
    chain_id: int,
    sender: bytes,
    org: bytes,
    nonce: int,
    voucher: bytes,
    piece: bytes,
    blinded: bytes,
    confidential: bool = False,
) -> tx.Tx:
    reads = member_reads(sender, org) | {c.voucher_key(voucher)}
    writes = {c.piece_key(piece), c.registry_key(blinded)}
    if confidential:
        writes = {c.piece_key(piece), *_c_offer_keys(piece, c.OfferKind.PLEDGE, blinded)}
    return make_tx(chain_id, c.OP_PLEDGE_RELEASE, sender, nonce, reads, writes, piece)


def pledge_default(
    chain_id: int,
    sender: bytes,
    org: bytes,
    nonce: int,
    voucher: bytes,
    piece: bytes,
    confidential: bool = False,
) -> tx.Tx:
    reads = member_reads(sender, org) | {c.voucher_key(voucher)}
    writes = {c.piece_key(piece), *([c.camount_key(piece), c.coffer_key(piece)] if confidential else [])}
    return make_tx(chain_id, c.OP_PLEDGE_DEFAULT, sender, nonce, reads, writes, piece)


def settle(
    chain_id: int,
    sender: bytes,
    org: bytes,
    nonce: int,
    voucher: bytes,
    pieces: list[bytes],
    batch: int,
    blinded: bytes,
    confidential: bool = False,
) -> tx.Tx:
    """Settle ``pieces`` (live pieces of ``voucher``) as clearing batch number ``batch``; a
    ``confidential`` voucher's reads its pieces' amounts, its face and the last clearing
    list, and closes its asset in the confidential registry."""
    writes = {c.voucher_key(voucher), c.clearing_key(voucher, batch), c.registry_key(blinded)}
    writes.update(map(c.piece_key, pieces))
    reads = member_reads(sender, org)
    if confidential:
        writes.remove(c.registry_key(blinded))
        writes.add(c.cregistry_key(blinded))
        reads |= {c.camount_key(voucher), *map(c.camount_key, pieces)}
        if batch:
            reads.add(c.clearing_key(voucher, batch - 1))
    payload = voucher + bytes((len(pieces),)) + b"".join(pieces)
    return make_tx(chain_id, c.OP_SETTLE, sender, nonce, reads, writes, payload)


def mark_overdue(chain_id: int, sender: bytes, org: bytes, nonce: int, voucher: bytes) -> tx.Tx:
    writes = {c.voucher_key(voucher)}
    return make_tx(chain_id, c.OP_MARK_OVERDUE, sender, nonce, member_reads(sender, org), writes, voucher)


def mark_default(chain_id: int, sender: bytes, org: bytes, nonce: int, voucher: bytes) -> tx.Tx:
    reads = member_reads(sender, org) | {c.PARAMS_KEY}
    return make_tx(chain_id, c.OP_MARK_DEFAULT, sender, nonce, reads, {c.voucher_key(voucher)}, voucher)
