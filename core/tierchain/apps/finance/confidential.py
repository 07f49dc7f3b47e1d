"""Confidential vouchers: face and piece amounts as commitments (docs/privacy.md).

A confidential voucher is a voucher whose amounts nobody but its parties and the regulator
can read: its record and its pieces' records say amount 0, and each piece's amount is a
``camount.CAmount`` kept in ``fy/<piece id>`` (limb commitments, the regulator's decrypt
handles, the holder's sealed opening). Its asset is registered in the confidential
registry (``fs/<blinded>``: the value's commitments and the financed total's commitment).

==================  ==================================================================
``fin.cconfirm``    the core enterprise confirms a payable of a hidden amount to a supplier:
                    the amount's ``CAmount`` (range proof, regulator envelope) and its
                    opening sealed to a key of the beneficiary
``fin.csplit``      the holder splits a confidential piece into 2..``csplit_ways_max``
                    pieces: their commitments must sum to the parent's, each amount in range
``fin.coffer``      the holder offers a confidential piece (transfer, discount, pledge): its
                    opening sealed to the offeree; for a financing a hidden price, in range
                    and at most the amount
==================  ==================================================================

``fin.accept``, ``fin.return``, ``fin.pledge_release``, ``fin.pledge_default`` and
``fin.settle`` take a confidential branch for a confidential piece or voucher
(``voucher.py``); the confidential registry is ``cregistry.py``.

The proofs are checked at admission, one native call per batch (``CHECK``, an
``App.checks`` entry: a transaction whose proofs fail is refused ``BAD_PROOF`` and never
reaches a block); what depends on state (the regulator's key, the parent's commitments)
is checked by the handlers, with the finance app's codes. A plaintext op on a confidential
piece is refused (``CONFIDENTIAL_PIECE``), and the reverse (``NOT_CONFIDENTIAL``).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

from tierchain.apps.finance import camount as ca
from tierchain.apps.finance import codes as c
from tierchain.apps.finance import cregistry, orgs
from tierchain.apps.finance import evidence as ev
from tierchain.apps.finance import lineage as lin
from tierchain.apps.finance import voucher as vc
from tierchain.apps.finance.codes import FinanceReject
from tierchain.apps.finance.orgs import make_tx, member_reads, params
from tierchain.crypto import ED25519_BLAKE3, CryptoSuite
from tierchain.engine import apps
from tierchain.engine.execute import OpFailed, TxContext
from tierchain.errors import Reject
from tierchain.wire import tx

OPS = apps.OpTable()
P = c.PieceState
_CCONFIRM = struct.Struct("<16sQ32s32s32sB")  # beneficiary, maturity, blinded, regulator, recipient, docs
_CSPLIT = struct.Struct("<16s32sB")  # piece, regulator, pieces
_COFFER = struct.Struct("<16s16sBQ32s32s")  # piece, to, kind, due, regulator, recipient


# --- payloads: one parser for the admission check and the handler --------------------------


class CConfirm(NamedTuple):
    beneficiary: bytes
    maturity_ms: int
    blinded: bytes
    regulator: bytes
    recipient: bytes
    docs: list
    amount: ca.CAmount
    proof: bytes
    sealed: bytes


class CSplit(NamedTuple):
    piece: bytes
    regulator: bytes
    amounts: list
    proof: bytes
    sealed: list


class COffer(NamedTuple):
    piece: bytes
    to: bytes
    kind: int
    due_ms: int
    regulator: bytes
    recipient: bytes
    sealed_piece: bytes
    limbs: tuple[bytes, bytes] | None  # a discount or pledge: the piece's limbs, the price...
    price: ca.CAmount | None
    limb_proof: bytes | None
    fits_proof: bytes | None  # "price <= amount"
    sealed_price: bytes | None


def parse_cconfirm(payload: bytes, sealed_bytes: int = ca.SEALED_BYTES) -> CConfirm:
    """A ``fin.cconfirm`` payload whose sealed opening is ``sealed_bytes`` long (the chain's:
    ``ca.sealed_bytes(suite)``); ValueError if malformed."""
    beneficiary, maturity, blinded, regulator, recipient, n = _CCONFIRM.unpack_from(payload)
    pos = _CCONFIRM.size
    docs = ev.unpack_docs(payload, pos, n)
    pos += n * ev.DOC_BYTES
    amount = ca.CAmount.decode(payload[pos : pos + ca.CAmount.SIZE])
    proof, pos = ca.take_proof(payload, pos + ca.CAmount.SIZE)
    sealed = payload[pos:]
    if len(sealed) != sealed_bytes:
        raise ValueError("sealed opening")
    return CConfirm(beneficiary, maturity, blinded, regulator, recipient, docs, amount, proof, sealed)


def parse_csplit(payload: bytes, sealed_bytes: int = ca.SEALED_BYTES) -> CSplit:
    """A ``fin.csplit`` payload (sealed openings of ``sealed_bytes``); ValueError if malformed."""
    pid, regulator, n = _CSPLIT.unpack_from(payload)
    if not 2 <= n <= c.csplit_ways_max:
        raise ValueError(f"2..{c.csplit_ways_max} pieces")
    pos = _CSPLIT.size
    amounts = [
        ca.CAmount.decode(payload[pos + i * ca.CAmount.SIZE : pos + (i + 1) * ca.CAmount.SIZE])
        for i in range(n)
    ]
    proof, pos = ca.take_proof(payload, pos + n * ca.CAmount.SIZE)
    if len(payload) != pos + n * sealed_bytes:
        raise ValueError("sealed openings")
    sealed = [payload[pos + i * sealed_bytes : pos + (i + 1) * sealed_bytes] for i in range(n)]
    return CSplit(pid, regulator, amounts, proof, sealed)


def parse_coffer(payload: bytes, sealed_bytes: int = ca.SEALED_BYTES) -> COffer:
    """A ``fin.coffer`` payload (a transfer's has no price: its price fields are None; sealed
    openings of ``sealed_bytes``); ValueError if malformed."""
    pid, to, kind, due_ms, regulator, recipient = _COFFER.unpack_from(payload)
    pos = _COFFER.size
    sealed_piece = payload[pos : pos + sealed_bytes]
    pos += sealed_bytes
    if kind == c.OfferKind.TRANSFER:
        if len(payload) != pos:
            raise ValueError("a transfer offer carries no price")
        return COffer(pid, to, kind, 0, regulator, recipient, sealed_piece, None, None, None, None, None)
    if kind not in (c.OfferKind.DISCOUNT, c.OfferKind.PLEDGE):
        raise ValueError("offer kind")
    limbs = (payload[pos : pos + 32], payload[pos + 32 : pos + 64])
    price = ca.CAmount.decode(payload[pos + 64 : pos + 64 + ca.CAmount.SIZE])
    limb_proof, pos = ca.take_proof(payload, pos + 64 + ca.CAmount.SIZE)
    fits_proof, pos = ca.take_proof(payload, pos)
    if len(payload) != pos + sealed_bytes or len(sealed_piece) != sealed_bytes:
        raise ValueError("sealed openings")
    sealed_price = payload[pos:]
    return COffer(
        pid,
        to,
        kind,
        due_ms,
        regulator,
        recipient,
        sealed_piece,
        limbs,
        price,
        limb_proof,
        fits_proof,
        sealed_price,
    )


def _price_room(limbs: tuple[bytes, bytes], price: ca.CAmount) -> bytes | None:
    """The commitment of ``amount − price`` (a piece's limbs, a price's)."""
    return ca.conf.commitment_lincomb([limbs[0], limbs[1], price.lo, price.hi], [1, ca.LIMB, -1, -ca.LIMB])


def _proof_row(
    op: int, payload: bytes, chain_id: int, sender: bytes, nonce: int, sealed_bytes: int
) -> ca.ProofRow | None:
    """The proofs of ``payload`` read with sealed openings of ``sealed_bytes``; None if a
    commitment a proof is about is not a point."""
    if op in (c.OP_CREG_ASSET, c.OP_CREG_FINANCE):
        return cregistry.proof_row(op, payload, chain_id, sender, nonce, sealed_bytes)
    ctx = ca.context(chain_id, sender, nonce, op)
    if op == c.OP_CCONFIRM:
        *_, regulator, _, _, amount, proof, _ = parse_cconfirm(payload, sealed_bytes)
        return ca.ProofRow(ctx, regulator, (amount,), (proof,))
    if op == c.OP_COFFER:
        _, _, _, _, regulator, _, _, limbs, price, limb_proof, fits_proof, _ = parse_coffer(
            payload, sealed_bytes
        )
        if price is None:
            return ca.ProofRow(ctx, regulator, (), ())
        room = _price_room(limbs, price)
        if room is None:
            return None
        return ca.ProofRow(ctx, regulator, (price,), (limb_proof,), ((fits_proof, (room,)),))
    _, regulator, amounts, proof, _ = parse_csplit(payload, sealed_bytes)
    return ca.ProofRow(ctx, regulator, tuple(amounts), (proof,))


# The parsers the handlers use: a payload has a reading with a sealed size if its handler
# would parse it with that size.
_PARSERS = {
    c.OP_CCONFIRM: parse_cconfirm,
    c.OP_CSPLIT: parse_csplit,
    c.OP_COFFER: parse_coffer,
    c.OP_CREG_ASSET: cregistry.parse_asset,
    c.OP_CREG_FINANCE: lambda payload, _sealed_bytes: cregistry.parse_finance(payload),
}


def proof_row(
    op: int, payload: bytes, chain_id: int, sender: bytes, nonce: int, sealed_bytes: int
) -> ca.ProofRow | None:
    """The proofs a confidential op's payload carries, read with sealed openings of
    ``sealed_bytes`` (the chain's suite's: ``ca.sealed_bytes(suite)``, which fixes where the
    proofs lie, e.g. a ``fin.coffer``'s price follows the sealed piece); None if the payload
    does not parse so, or states no checkable proof (the row is refused)."""
    try:
        _PARSERS[op](payload, sealed_bytes)
        return _proof_row(op, payload, chain_id, sender, nonce, sealed_bytes)
    except (ValueError, struct.error):
        return None


def _check(batch, rows: np.ndarray, suite) -> list[int]:
    """The admission check of the confidential ops on a chain of ``suite``: every proof of
    every row (``proof_row``), in one batch; a row passes if it parses and all its proofs hold."""
    sealed_bytes = ca.sealed_bytes(suite)
    found = [
        proof_row(
            int(batch.op[i]),
            batch.payload(i),
            int(batch.chain_id[i]),
            batch.sender[i].tobytes(),
            int(batch.nonce[i]),
            sealed_bytes,
        )
        for i in rows.tolist()
    ]
    verdicts = iter(ca.verify_rows([row for row in found if row is not None]))
    return [0 if row is not None and next(verdicts) else Reject.BAD_PROOF for row in found]


CHECK = apps.BatchCheck(
    frozenset({c.OP_CCONFIRM, c.OP_CSPLIT, c.OP_COFFER, c.OP_CREG_ASSET, c.OP_CREG_FINANCE}),
    _check,
    "finance.confidential-proofs",
)


# --- handlers ----------------------------------------------------------------------------------


@OPS.op(c.OP_CCONFIRM, "fin.cconfirm")
def _cconfirm(ctx: TxContext) -> None:
    try:
        beneficiary, maturity_ms, blinded, regulator, recipient, docs, amount, _, sealed = parse_cconfirm(
            ctx.payload, ca.sealed_bytes(ctx.suite)
        )
    except (ValueError, struct.error):
        raise OpFailed(Reject.BAD_PAYLOAD) from None
    docs = ev.check_docs([tuple(d) for d in docs])
    obligor, vid = vc.confirm_checks(ctx, beneficiary, None, maturity_ms, blinded, docs)
    ca.check_regulator(ctx, regulator)
    if not orgs.is_active_key_of(ctx, beneficiary, recipient):
        raise OpFailed(FinanceReject.BAD_RECIPIENT)
    ctx.put(c.cregistry_key(blinded), cregistry.CRegistryEntry(amount.lo, amount.hi, voucher=True).encode())
    vc.issue(ctx, vid, obligor, beneficiary, 0, maturity_ms, blinded, docs)
    ctx.put(c.camount_key(vid), ca.Stored.of(amount, sealed).encode())
    ctx.emit(b"fin.cvoucher.issued", vid + beneficiary)


@OPS.op(c.OP_CSPLIT, "fin.csplit")
def _csplit(ctx: TxContext) -> None:
    try:
        pid, regulator, amounts, _, sealed = parse_csplit(ctx.payload, ca.sealed_bytes(ctx.suite))
    except (ValueError, struct.error):
        raise OpFailed(Reject.BAD_PAYLOAD) from None
    oid, piece, _ = vc.held(ctx, pid, confidential=True)
    ca.check_regulator(ctx, regulator)
    if piece.depth + 1 > params(ctx).max_depth:
        raise OpFailed(FinanceReject.SPLIT_TOO_DEEP)
    parent = ca.Stored.decode(ctx.get(c.camount_key(pid)) or b"")
    if not ca.balances((parent.lo, parent.hi), [(a.lo, a.hi) for a in amounts]):
        raise OpFailed(FinanceReject.SPLIT_SUM_MISMATCH)
    kids = [c.child_id(pid, i, suite=ctx.suite) for i in range(len(amounts))]
    if any(ctx.get(c.piece_key(k)) is not None for k in kids):
        raise OpFailed(FinanceReject.VOUCHER_EXISTS, "a child id is taken")
    for i, (kid, a) in enumerate(zip(kids, amounts, strict=True)):
        child = c.Piece(
            piece.voucher, pid, piece.root, piece.depth + 1, i, 0, oid, P.ACTIVE,
            0, c.ZERO_ID, 0, 0, 0, ctx.height, (),
        )  # fmt: skip
        vc.put_piece(ctx, kid, vc.log_event(ctx, child, c.Event.CREATED_BY_SPLIT, oid, 0))
        ctx.put(c.camount_key(kid), ca.Stored.of(a, sealed[i]).encode())
    n = len(amounts)
    vc.put_piece(ctx, pid, vc.log_event(ctx, piece, c.Event.SPLIT, oid, n, state=P.SPLIT, children=n))
    ctx.emit(b"fin.piece.split", pid + bytes((n,)))


@OPS.op(c.OP_COFFER, "fin.coffer")
def _coffer(ctx: TxContext) -> None:
    try:
        pid, to, kind, due_ms, regulator, recipient, sealed, limbs, price, _, _, sealed_price = parse_coffer(
            ctx.payload, ca.sealed_bytes(ctx.suite)
        )
    except (ValueError, struct.error):
        raise OpFailed(Reject.BAD_PAYLOAD) from None
    oid, piece, _ = vc.held(ctx, pid, confidential=True)
    if to == oid:
        raise OpFailed(FinanceReject.BAD_COUNTERPARTY)
    vc.active_org_with(ctx, to, vc.OFFEREE_ROLES[c.OfferKind(kind)])
    ca.check_regulator(ctx, regulator)
    if not orgs.is_active_key_of(ctx, to, recipient):
        raise OpFailed(FinanceReject.BAD_RECIPIENT)
    offer = ca.Offer(sealed)
    if price is not None:
        stored = ca.Stored.decode(ctx.get(c.camount_key(pid)) or b"")
        if limbs != (stored.lo, stored.hi):  # its "price <= amount" proof is about another amount
            raise OpFailed(Reject.BAD_PAYLOAD, "not this piece's amount")
        if kind == c.OfferKind.PLEDGE and due_ms <= ctx.timestamp_ms:
            raise OpFailed(Reject.BAD_PAYLOAD, "loan due time")
        offer = ca.Offer(sealed, price.stored(), sealed_price)
    ctx.put(c.coffer_key(pid), offer.encode())
    piece = vc.log_event(
        ctx, piece, c.Event.OFFERED, to, 0,
        state=P.OFFERED, offer_kind=kind, counterparty=to, price=0, due_ms=due_ms,
    )  # fmt: skip
    vc.put_piece(ctx, pid, piece)
    ctx.emit(b"fin.piece.offered", pid + to + bytes((kind,)))


# --- client-side builders -----------------------------------------------------------------------


def cconfirm(
    chain_id: int,
    sender: bytes,
    org: bytes,
    nonce: int,
    beneficiary: bytes,
    face: int,
    maturity_ms: int,
    docs: list[tuple[int, bytes]],
    blinded: bytes,
    regulator: bytes,
    recipient: bytes,
    *,
    suite: CryptoSuite = ED25519_BLAKE3,
    claimed: Iterable[tuple[int, bytes]] = (),
) -> tuple[tx.Tx, bytes, ca.Opening]:
    """The confidential confirmation tx, the voucher id, and the face's opening (the
    beneficiary gets it sealed to ``recipient``, one of its organization's keys);
    ``claimed`` as ``voucher.confirm``'s."""
    if not 0 < face <= c.amount_max:
        raise ValueError("face amount out of range")
    vid = c.voucher_id(blinded, sender, nonce, suite=suite)
    ctx = ca.context(chain_id, sender, nonce, c.OP_CCONFIRM)
    opening = ca.fresh_opening(face)
    amount = ca.make(opening, regulator, ctx)
    (proof,) = ca.prove_ranges([opening], ctx)
    payload = _CCONFIRM.pack(beneficiary, maturity_ms, blinded, regulator, recipient, len(docs))
    payload += ev.pack_docs(docs) + amount.encode() + ca.put_proof(proof) + ca.seal(opening, recipient, suite)
    reads = member_reads(sender, org) | {
        c.org_key(beneficiary),
        c.REGULATOR_KEY,
        c.key_key(recipient),
        c.registry_key(blinded),
    }
    writes = {c.voucher_key(vid), c.piece_key(vid), c.cregistry_key(blinded), c.camount_key(vid)}
    vc.add_doc_keys(docs, reads, writes, claimed, vid[: c.lineage_tag_bytes])
    return make_tx(chain_id, c.OP_CCONFIRM, sender, nonce, reads, writes, payload), vid, opening


def csplit(
    chain_id: int,
    sender: bytes,
    org: bytes,
    nonce: int,
    voucher: bytes,
    piece: bytes,
    parent: ca.Opening,
    amounts: list[int],
    regulator: bytes,
    *,
    suite: CryptoSuite = ED25519_BLAKE3,
) -> tuple[tx.Tx, list[bytes], list[ca.Opening]]:
    """The confidential split tx, the children's ids and their openings (also sealed, in
    the tx, to the sender's own key: recoverable from the chain by its holder)."""
    if not 2 <= len(amounts) <= c.csplit_ways_max:
        raise ValueError(f"2..{c.csplit_ways_max} pieces")
    ctx = ca.context(chain_id, sender, nonce, c.OP_CSPLIT)
    openings = ca.balancing_openings(parent, amounts)
    cams = [ca.make(o, regulator, ctx) for o in openings]
    (proof,) = ca.prove_ranges(openings, ctx)
    kids = [c.child_id(piece, i, suite=suite) for i in range(len(amounts))]
    payload = _CSPLIT.pack(piece, regulator, len(amounts)) + b"".join(a.encode() for a in cams)
    payload += ca.put_proof(proof) + b"".join(ca.seal(o, sender, suite) for o in openings)
    reads = member_reads(sender, org) | {c.PARAMS_KEY, c.voucher_key(voucher), c.REGULATOR_KEY}
    reads.add(c.camount_key(piece))
    writes = {c.piece_key(piece), *map(c.piece_key, kids), *map(c.camount_key, kids)}
    return make_tx(chain_id, c.OP_CSPLIT, sender, nonce, reads, writes, payload), kids, openings


# --- the regulator's view --------------------------------------------------------------------


def regulator_lineage(
    get: lin.StateGet, piece_id: bytes, regulator_secret: bytes, *, suite: CryptoSuite = ED25519_BLAKE3
) -> dict:
    """``lineage.lineage`` of ``piece_id`` with every confidential amount filled in, read
    with the regulator's ElGamal secret from each piece's handles (the face from the root
    piece's). With any other key the amounts stay None: only the regulator sees through.
    ``suite``: the chain's (child ids are its hashes)."""
    out = lin.lineage(get, piece_id, suite=suite)

    def read(pid: bytes) -> int | None:
        raw = get(c.camount_key(pid))
        return None if raw is None else ca.regulator_read(ca.Stored.decode(raw).amount, regulator_secret)

    for d in (*out["ancestors"], out["piece"], *out["descendants"]):
        if d["confidential"]:
            d["amount"] = read(bytes.fromhex(d["piece"]))
            for e in d["history"]:
                e["amount"] = d["amount"]
    if out["voucher"]["face"] is None:
        vid = bytes.fromhex(out["voucher"]["id"])
        out["voucher"]["face"] = read(vid)
        for batch in {row["batch"] for row in out["clearing"]}:
            _, _, rows = ca.decode_cclearing(get(c.clearing_key(vid, batch)) or b"")
            paid = {pid.hex(): ca.regulator_read(amount, regulator_secret) for pid, _, amount in rows}
            for row in out["clearing"]:
                if row["batch"] == batch:
                    row["amount"] = paid.get(row["piece"])
    return out


def coffer(
    chain_id: int,
    sender: bytes,
    org: bytes,
    nonce: int,
    voucher: bytes,
    piece: bytes,
    opening: ca.Opening,
    to: bytes,
    recipient: bytes,
    regulator: bytes,
    kind: int = c.OfferKind.TRANSFER,
    price: int = 0,
    due_ms: int = 0,
    *,
    suite: CryptoSuite = ED25519_BLAKE3,
) -> tuple[tx.Tx, ca.Opening | None]:
    """A confidential piece offered to organization ``to``: its ``opening`` sealed to the
    ``to`` key ``recipient``; for a discount or pledge a hidden ``price`` (the discount price
    or the loan, at most the amount) with its opening sealed to the same key (returned).
    ``suite``: the chain's (how openings are sealed: ``ca.seal``)."""
    ctx = ca.context(chain_id, sender, nonce, c.OP_COFFER)
    payload = _COFFER.pack(piece, to, kind, due_ms if kind == c.OfferKind.PLEDGE else 0, regulator, recipient)
    payload += ca.seal(opening, recipient, suite)
    price_opening = None
    if kind != c.OfferKind.TRANSFER:
        if not 0 < price <= opening.amount:
            raise ValueError("the price is above the piece's amount (or not positive)")
        price_opening = ca.fresh_opening(price)
        cam = ca.make(price_opening, regulator, ctx)
        (limb_proof,) = ca.prove_ranges([price_opening], ctx)
        room = ca.conf.opening_lincomb([opening.opening, price_opening.opening], [1, -1])
        fits = ca.conf.prove_range([opening.amount - price], [room], ctx, 64).proof
        lo, hi = opening.limbs
        payload += ca.conf.commit(lo, opening.r_lo) + ca.conf.commit(hi, opening.r_hi) + cam.encode()
        payload += ca.put_proof(limb_proof) + ca.put_proof(fits)
        payload += ca.seal(price_opening, recipient, suite)
    reads = member_reads(sender, org) | {
        c.org_key(to),
        c.voucher_key(voucher),
        c.REGULATOR_KEY,
        c.key_key(recipient),
        c.camount_key(piece),
    }
    writes = {c.piece_key(piece), c.coffer_key(piece)}
    return make_tx(chain_id, c.OP_COFFER, sender, nonce, reads, writes, payload), price_opening
