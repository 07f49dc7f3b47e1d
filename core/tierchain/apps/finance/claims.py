"""Documents across shards: a lineage on one shard cites documents anchored on another.

On a cluster an anchor ``fd/<type><fp>`` lives on the shard of its (type, fingerprint),
a voucher's lineage on the shard of its asset's lineage tag (``codes.voucher_id``), a
bill on the shard of its id's tag: a confirmation (or a bill's issue) whose documents
are elsewhere cannot read them. It runs in three steps instead (docs/sharding.md,
"Documents across shards"):

1. ``fin.claim`` on the documents' shard (one transaction a shard holding some): the
   claimant names the lineage ``tag``, the ``beneficiary`` (the other party), and for a
   voucher the asset's registry fingerprint ``blinded`` (its first 8 bytes are the tag).
   Each document is checked as the confirmation checks it: anchored, a party document
   anchored by the claimant or the beneficiary, and an invoice claimed with ``blinded``
   not used yet — it is bound at once (its anchor's ``voucher`` field becomes
   ``blinded[:16]``), so no other claim or confirmation anywhere can use it. A claim
   without ``blinded`` (zero) only cites its documents (a bill's). The pending claim is
   written next to its document: ``fg/<type><fp><tag>``.
2. The claim courier (``tierchain.apps.finance.courier``, the ``coordinator`` role)
   carries each pending claim to the lineage's shard with ``fin.carry``: ``fe/<tag><type>
   <fp>``, then deletes the pending record. A carried claim is overwritten only by one that
   binds an asset replacing a mere citation (``overrides``: nobody's citation can strand an
   invoice); otherwise the first for a (lineage, document) stays (``fin.claim.dropped``).
3. The confirmation on the lineage's shard declares the ``fe/`` key of a claimed document
   instead of its ``fd/`` key (``voucher.confirm(..., claimed=...)``), and ``use`` checks
   the claim: the confirming organization's, for this beneficiary and, for an invoice,
   bound to this asset and not used by a voucher yet; it then records the voucher in the
   carried claim.

The shards trust the coordinator role for carried claims as they do for cross-shard
commits and replicated records. An invoice bound by a claim that is never confirmed stays
bound (as after a confirmation). Binding is a core enterprise's, naming as beneficiary the
organization that anchored the invoice (or itself having anchored it) — the same parties a
confirmation may name; unlike a confirmation it creates no payable, so a core enterprise
could bind a supplier's invoice it never means to pay: the claim is on chain, signed, and
names it. An asset whose first 16 bytes are zero cannot bind (``BAD_PAYLOAD``): the
anchor's voucher field would still read unused.
"""

from __future__ import annotations

import dataclasses
import struct

from tierchain.apps.accounts import account_key, roles_of
from tierchain.apps.finance import codes as c
from tierchain.apps.finance.codes import FinanceReject
from tierchain.apps.finance.evidence import pack_docs, parse_docs, party_checked
from tierchain.apps.finance.orgs import make_tx, member, member_reads, role_bits
from tierchain.apps.xshard import COORDINATOR
from tierchain.engine import apps
from tierchain.engine.execute import OpFailed, TxContext
from tierchain.errors import Reject
from tierchain.wire import tx

OPS = apps.OpTable()  # this module's ops (tierchain.apps.finance.app)

CORE = role_bits("core_enterprise")  # who may bind an invoice to an asset (as fin.confirm)
_CLAIM = struct.Struct("<8s16s32sB")
_CARRY = struct.Struct("<BB")
_PUT_KEY = struct.Struct(f"<{c.lineage_tag_bytes}sB32s")  # fe/ key body: tag, type, fp
_DEL_KEY = struct.Struct(f"<B32s{c.lineage_tag_bytes}s")  # fg/ key body: type, fp, tag
CLAIM_BYTES = len(c.Claim(bytes(16), bytes(16), c.ZERO_BLINDED, 0, bytes(32), c.DocRecord(
    bytes(16), bytes(32), 0, 0, bytes(32))).encode())  # fmt: skip
carry_entries_max = 14  # puts + deletes a fin.carry: 14 x (41 + CLAIM_BYTES) bytes fit a payload


def _tag(raw: bytes) -> bytes:
    return raw[: c.lineage_tag_bytes]


# --- step 1: the claim, where the documents are ---------------------------------------------------


@OPS.op(c.OP_CLAIM, "fin.claim")
def _claim(ctx: TxContext) -> None:
    if len(ctx.payload) < _CLAIM.size:
        raise OpFailed(Reject.BAD_PAYLOAD)
    tag, beneficiary, blinded, n = _CLAIM.unpack_from(ctx.payload)
    if len(ctx.payload) != _CLAIM.size + n * 33:
        raise OpFailed(Reject.BAD_PAYLOAD, "documents")
    docs = parse_docs(ctx.payload, _CLAIM.size, n)
    binding = blinded != c.ZERO_BLINDED
    claimant, _ = member(ctx, CORE if binding else 0)
    if beneficiary == claimant:
        raise OpFailed(FinanceReject.BAD_COUNTERPARTY)
    if binding and _tag(blinded) != tag:
        raise OpFailed(Reject.BAD_PAYLOAD, "an invoice's lineage is its asset's tag")
    if binding and blinded[: c.id_bytes] == c.ZERO_ID:  # it would leave the anchor unbound
        raise OpFailed(Reject.BAD_PAYLOAD, "an asset binds its invoices by its first 16 bytes")
    for doc_type, fp in docs:
        raw = ctx.get(c.doc_key(doc_type, fp))
        if raw is None:
            raise OpFailed(FinanceReject.NO_SUCH_DOC)
        rec = c.DocRecord.decode(raw)
        party_checked(doc_type, rec, claimant, beneficiary)
        if binding and doc_type == c.DocType.INVOICE:
            if rec.voucher != c.ZERO_ID:
                raise OpFailed(FinanceReject.INVOICE_ALREADY_USED)
            rec = dataclasses.replace(rec, voucher=blinded[: c.id_bytes])
            ctx.put(c.doc_key(doc_type, fp), rec.encode())
        pending = c.pending_claim_key(doc_type, fp, tag)
        if ctx.get(pending) is not None:
            raise OpFailed(FinanceReject.DOC_EXISTS, "a claim for this lineage is pending")
        claim = c.Claim(claimant, beneficiary, blinded, ctx.height, ctx.tx_id, rec)
        ctx.put(pending, claim.encode())
    ctx.emit(b"fin.doc.claimed", tag + bytes((n,)))


def claim(
    chain_id: int,
    sender: bytes,
    org: bytes,
    nonce: int,
    tag: bytes,
    beneficiary: bytes,
    docs: list[tuple[int, bytes]],
    blinded: bytes = c.ZERO_BLINDED,
) -> tx.Tx:
    """Claim ``docs`` (all anchored on the shard this tx is for) for lineage ``tag``; with
    ``blinded`` (a voucher's asset; ``tag`` its first 8 bytes) its invoices are bound."""
    if len(tag) != c.lineage_tag_bytes or len(blinded) != 32:
        raise ValueError("a lineage tag is 8 bytes, a blinded fingerprint 32")
    binding = blinded != c.ZERO_BLINDED
    reads, writes = member_reads(sender, org), set()
    for t, fp in docs:
        (writes if binding and t == c.DocType.INVOICE else reads).add(c.doc_key(t, fp))
        writes.add(c.pending_claim_key(t, fp, tag))
    payload = _CLAIM.pack(tag, beneficiary, blinded, len(docs)) + pack_docs(docs)
    return make_tx(chain_id, c.OP_CLAIM, sender, nonce, reads, writes, payload)


# --- step 2: the courier carries it to the lineage's shard -----------------------------------------


@OPS.op(c.OP_CARRY, "fin.carry")
def _carry(ctx: TxContext) -> None:
    if not (roles_of(ctx, ctx.sender) or 0) & (1 << COORDINATOR.bit):
        raise OpFailed(Reject.UNAUTHORIZED, "needs the coordinator role")
    if len(ctx.payload) < _CARRY.size:
        raise OpFailed(Reject.BAD_PAYLOAD)
    n_put, n_del = _CARRY.unpack_from(ctx.payload)
    put_size = _PUT_KEY.size + CLAIM_BYTES
    if not 0 < n_put + n_del <= carry_entries_max or len(ctx.payload) != (
        _CARRY.size + n_put * put_size + n_del * _DEL_KEY.size
    ):
        raise OpFailed(Reject.BAD_PAYLOAD, "entries")
    pos, dropped = _CARRY.size, 0
    for _ in range(n_put):
        key = b"fe/" + ctx.payload[pos : pos + _PUT_KEY.size]
        value = ctx.payload[pos + _PUT_KEY.size : pos + put_size]
        pos += put_size
        try:
            c.Claim.decode(value)
        except c.RecordError:
            raise OpFailed(Reject.BAD_PAYLOAD, "a claim record") from None
        held = ctx.get(key)
        if held is None or overrides(held, value):
            ctx.put(key, value)
        elif held != value:
            dropped += 1  # the first claim carried for a (lineage, document) stays
    for _ in range(n_del):
        key = b"fg/" + ctx.payload[pos : pos + _DEL_KEY.size]
        pos += _DEL_KEY.size
        if ctx.get(key) is not None:
            ctx.delete(key)
    ctx.emit(b"fin.claim.carried", struct.pack("<BB", n_put, n_del))
    if dropped:
        ctx.emit(b"fin.claim.dropped", bytes((dropped,)))


def carry(
    chain_id: int,
    coordinator: bytes,
    nonce: int,
    puts: list[tuple[bytes, bytes]],
    deletes: list[bytes],
) -> tx.Tx:
    """Write carried claims (``fe/`` key, ``Claim`` value) and delete pending ones (``fg/``
    keys) on the shard this tx is for (at most ``carry_entries_max`` in all)."""
    if not 0 < len(puts) + len(deletes) <= carry_entries_max:
        raise ValueError(f"1..{carry_entries_max} entries a carry")
    payload = _CARRY.pack(len(puts), len(deletes))
    for key, value in puts:
        if not key.startswith(b"fe/") or len(key) != 3 + _PUT_KEY.size or len(value) != CLAIM_BYTES:
            raise ValueError("a carried claim is an fe/ key and a claim record")
        payload += key[3:] + value
    for key in deletes:
        if not key.startswith(b"fg/") or len(key) != 3 + _DEL_KEY.size:
            raise ValueError("a pending claim is an fg/ key")
        payload += key[3:]
    writes = {k for k, _ in puts} | set(deletes)
    return make_tx(chain_id, c.OP_CARRY, coordinator, nonce, {account_key(coordinator)}, writes, payload)


def overrides(held: bytes, value: bytes) -> bool:
    """Whether carried claim ``value`` replaces ``held`` at its ``fe/`` key: a claim binding an
    asset replaces a mere citation (anyone's, for any beneficiary: it must not strand the
    document); otherwise the first carried stays. An invoice is bound once cluster-wide, so
    at most one binding claim for it can ever arrive."""
    return c.Claim.decode(held).blinded == c.ZERO_BLINDED and c.Claim.decode(value).blinded != c.ZERO_BLINDED


def carried_key(pending_key: bytes) -> bytes:
    """The ``fe/`` key a pending claim (``fg/`` key) is carried to."""
    doc_type, fp, tag = _DEL_KEY.unpack(pending_key[3:])
    return c.claim_key(tag, doc_type, fp)


# --- step 3: the lineage's op uses it -------------------------------------------------------------


def use(
    ctx: TxContext,
    key: bytes,
    doc_type: int,
    claimant: bytes,
    beneficiary: bytes,
    blinded: bytes | None,
    voucher: bytes = c.ZERO_ID,
) -> c.Claim:
    """The carried claim at ``key`` (declared by the op's sender) for a document the op would
    have read at its anchor: NO_SUCH_DOC until it is carried; CLAIM_MISMATCH when another
    organization claimed it, for another beneficiary or (an invoice, ``blinded`` given)
    for another asset; an invoice already backing a voucher is INVOICE_ALREADY_USED, and
    one that now does (``voucher``) records it."""
    raw = ctx.get(key)
    if raw is None:
        raise OpFailed(FinanceReject.NO_SUCH_DOC, "not claimed for this lineage, or not carried yet")
    claim = c.Claim.decode(raw)
    if claim.claimant != claimant or claim.beneficiary != beneficiary:
        raise OpFailed(FinanceReject.CLAIM_MISMATCH)
    if blinded is not None and doc_type == c.DocType.INVOICE:
        if claim.blinded != blinded or blinded[: c.id_bytes] == c.ZERO_ID:
            raise OpFailed(FinanceReject.CLAIM_MISMATCH, "the invoice is not bound to this asset")
        if claim.doc.voucher != blinded[: c.id_bytes]:
            raise OpFailed(FinanceReject.INVOICE_ALREADY_USED)
        claim = dataclasses.replace(claim, doc=dataclasses.replace(claim.doc, voucher=voucher))
        ctx.put(key, claim.encode())
    return claim
