"""The confidential duplicate-financing registry: cross-verification on hidden values
(docs/privacy.md, "Cross-verification").

Per asset (a blinded fingerprint, as in ``registry``), ``fs/<blinded>`` holds commitments
only: the asset's value (as limbs) and the total financed against it. Financing an asset
proves in zero knowledge that *already financed + new ≤ value*: a 64-bit range proof on
the commitment ``value − financed − new``, which the verifier derives from the entry and
the new amount's commitment. A bank therefore learns accept or refuse and nothing else —
not the value, not the total, not who financed what.

Who can prove: the asset's owner (the borrower). It holds the value's opening (sealed to it
at registration) and the openings of every financing of its asset (it made them), so it
can open ``value − financed − new``; if the new amount does not fit, no proof exists and
the financing cannot happen. The bank submits the borrower's package; its proofs are
bound to (chain, bank key, asset, the bank's ref), so nobody can reuse them.

==================  =======================================================================
``fin.creg_asset``  the attester (core enterprise, warehouse) registers an asset of a hidden
                    value; the value's opening is sealed to the owner's key
``fin.creg_finance``  a bank records a hidden financing, with the borrower's proofs: the
                    new amount's limbs in range with the regulator's envelope, and the
                    remainder in range; the entry's state it was proved against must still
                    be the entry's (``STALE_REGISTRY`` otherwise)
``fin.creg_release``  the bank that recorded a financing takes it back out (any role)
==================  =======================================================================

A confidential voucher's asset is registered here by ``fin.cconfirm`` (its face). It is
financed only through the voucher's pieces (discount, pledge: ``add_financed``, no proof
needed, since the pieces partition the face and each is financed once at a time), never
directly: a direct financing's proof would not see the pieces' hidden financings, and the
two together could exceed the value (``VOUCHER_ASSET``).
"""

from __future__ import annotations

import dataclasses
import struct
from typing import NamedTuple

from tierchain.apps.finance import camount as ca
from tierchain.apps.finance import codes as c
from tierchain.apps.finance import registry
from tierchain.apps.finance.codes import FinanceReject
from tierchain.apps.finance.orgs import make_tx, member, member_reads, role_bits
from tierchain.crypto import ED25519_BLAKE3, CryptoSuite
from tierchain.engine import apps
from tierchain.engine.execute import OpFailed, TxContext
from tierchain.errors import InvariantViolation, Reject
from tierchain.wire import tx

OPS = apps.OpTable()
ATTESTER_ROLES = role_bits("core_enterprise", "warehouse")
BANK_ROLES = role_bits("bank")
_ASSET = struct.Struct("<32s32s32s")  # blinded, regulator, owner key; CAmount, proof, sealed
_FINANCE = struct.Struct("<32s32s32s32s32s32s")  # blinded, ref, regulator, value lo/hi, financed
_RELEASE = struct.Struct("<32s32s")  # blinded, ref


@dataclasses.dataclass(frozen=True)
class CRegistryEntry:
    """``fs/<blinded>``: an asset's value as limb commitments, the commitment of the total
    financed against it (the identity: nothing yet), and for an asset registered by
    ``creg_asset`` the value's opening sealed to its owner."""

    value_lo: bytes
    value_hi: bytes
    financed: bytes = ca.IDENTITY
    closed: bool = False
    sealed: bytes = b""
    # A confidential voucher's asset (``fin.cconfirm``): financed only through its pieces,
    # which partition its face, never directly (``fin.creg_finance``: VOUCHER_ASSET).
    voucher: bool = False

    def encode(self) -> bytes:
        flags = self.closed | self.voucher << 1
        return self.value_lo + self.value_hi + self.financed + bytes((flags,)) + self.sealed

    @classmethod
    def decode(cls, raw: bytes) -> CRegistryEntry:
        # Either suite's entry: a sealed opening's size is the length less 97 (ca.SEALED_SIZES).
        if len(raw) - 97 not in (0, *ca.SEALED_SIZES) or raw[96] > 3:
            raise c.RecordError("confidential registry entry")
        return cls(raw[:32], raw[32:64], raw[64:96], bool(raw[96] & 1), raw[97:], bool(raw[96] & 2))

    def remainder(self, new: ca.CAmount) -> bytes | None:
        """The commitment of ``value − financed − new``."""
        points = [self.value_lo, self.value_hi, self.financed, new.lo, new.hi]
        return ca.conf.commitment_lincomb(points, [1, ca.LIMB, -1, -1, -ca.LIMB])


def finance_context(chain_id: int, bank: bytes, blinded: bytes, ref: bytes) -> bytes:
    """What a financing's proofs are bound to: the borrower makes them for one bank and ref."""
    return b"tcr1" + chain_id.to_bytes(4, "little") + bank + blinded + ref


class AssetPayload(NamedTuple):
    blinded: bytes
    regulator: bytes
    owner: bytes
    value: ca.CAmount
    proof: bytes
    sealed: bytes


class FinancePayload(NamedTuple):
    blinded: bytes
    ref: bytes
    regulator: bytes
    claimed: CRegistryEntry  # the entry the remainder was proved against
    new: ca.CAmount
    limb_proof: bytes
    remainder_proof: bytes


def parse_asset(payload: bytes, sealed_bytes: int = ca.SEALED_BYTES) -> AssetPayload:
    """A ``fin.creg_asset`` payload (a sealed opening of ``sealed_bytes``, the chain's:
    ``ca.sealed_bytes(suite)``); ValueError if malformed."""
    blinded, regulator, owner = _ASSET.unpack_from(payload)
    pos = _ASSET.size
    value = ca.CAmount.decode(payload[pos : pos + ca.CAmount.SIZE])
    proof, pos = ca.take_proof(payload, pos + ca.CAmount.SIZE)
    if len(payload) != pos + sealed_bytes:
        raise ValueError("sealed opening")
    return AssetPayload(blinded, regulator, owner, value, proof, payload[pos:])


def parse_finance(payload: bytes) -> FinancePayload:
    """A ``fin.creg_finance`` payload (the owner's package); ValueError if malformed."""
    blinded, ref, regulator, lo, hi, financed = _FINANCE.unpack_from(payload)
    pos = _FINANCE.size
    new = ca.CAmount.decode(payload[pos : pos + ca.CAmount.SIZE])
    limb_proof, pos = ca.take_proof(payload, pos + ca.CAmount.SIZE)
    remainder_proof, pos = ca.take_proof(payload, pos)
    if pos != len(payload):
        raise ValueError("trailing bytes")
    return FinancePayload(
        blinded, ref, regulator, CRegistryEntry(lo, hi, financed), new, limb_proof, remainder_proof
    )


def proof_row(
    op: int, payload: bytes, chain_id: int, sender: bytes, nonce: int, sealed_bytes: int = ca.SEALED_BYTES
) -> ca.ProofRow | None:
    """The proofs of a registry op's payload, for the finance app's admission check
    (``confidential.proof_row``; sealed openings of ``sealed_bytes``): ValueError if it
    does not parse, None if a claimed commitment is not a point."""
    if op == c.OP_CREG_ASSET:
        blinded, regulator, _, value, proof, _ = parse_asset(payload, sealed_bytes)
        return ca.ProofRow(ca.context(chain_id, sender, nonce, op), regulator, (value,), (proof,))
    blinded, ref, regulator, claimed, new, limb_proof, remainder_proof = parse_finance(payload)
    remainder = claimed.remainder(new)
    if remainder is None:
        return None
    ctx = finance_context(chain_id, sender, blinded, ref)
    return ca.ProofRow(ctx, regulator, (new,), (limb_proof,), ((remainder_proof, (remainder,)),))


def _entry(ctx: TxContext, blinded: bytes) -> CRegistryEntry:
    raw = ctx.get(c.cregistry_key(blinded))
    if raw is None:
        raise OpFailed(FinanceReject.NO_SUCH_ASSET)
    return CRegistryEntry.decode(raw)


def add_financed(ctx: TxContext, blinded: bytes, limbs: tuple[bytes, bytes], sign: int = 1) -> None:
    """Count a confidential voucher piece (its limb commitments) against the asset, or take
    it back out (``sign`` -1). No proof: a voucher's pieces partition its face, and a piece
    is financed at most once at a time (its state machine), so they always fit; an asset
    that is closed takes no more (``EXCEEDS_ASSET_VALUE``)."""
    entry = _entry(ctx, blinded)
    if entry.closed:
        if sign > 0:
            raise OpFailed(FinanceReject.EXCEEDS_ASSET_VALUE)
        return
    financed = ca.conf.commitment_lincomb([entry.financed, *limbs], [1, sign, sign * ca.LIMB])
    if financed is None:
        raise InvariantViolation("a registry commitment is not a point")
    ctx.put(c.cregistry_key(blinded), dataclasses.replace(entry, financed=financed).encode())


@OPS.op(c.OP_CREG_ASSET, "fin.creg_asset")
def _creg_asset(ctx: TxContext) -> None:
    try:
        blinded, regulator, owner, value, _, sealed = parse_asset(ctx.payload, ca.sealed_bytes(ctx.suite))
    except (ValueError, struct.error):
        raise OpFailed(Reject.BAD_PAYLOAD) from None
    member(ctx, ATTESTER_ROLES)
    ca.check_regulator(ctx, regulator)
    raw = ctx.get(c.key_key(owner))
    if raw is None or c.KeyRecord.decode(raw).status != c.KeyStatus.ACTIVE:
        raise OpFailed(FinanceReject.BAD_RECIPIENT)
    if ctx.get(c.registry_key(blinded)) is not None or ctx.get(c.cregistry_key(blinded)) is not None:
        raise OpFailed(FinanceReject.ASSET_EXISTS)
    ctx.put(c.cregistry_key(blinded), CRegistryEntry(value.lo, value.hi, sealed=sealed).encode())
    ctx.emit(b"fin.creg.asset", blinded)


@OPS.op(c.OP_CREG_FINANCE, "fin.creg_finance")
def _creg_finance(ctx: TxContext) -> None:
    try:
        blinded, ref, regulator, claimed, new, _, _ = parse_finance(ctx.payload)
    except (ValueError, struct.error):
        raise OpFailed(Reject.BAD_PAYLOAD) from None
    bank, _ = member(ctx, BANK_ROLES)
    ca.check_regulator(ctx, regulator)
    own = registry.own_key(ctx, blinded, bank, ref)
    if ctx.get(own) is not None:
        raise OpFailed(Reject.BAD_PAYLOAD, "financing ref already used")
    entry = _entry(ctx, blinded)
    if entry.voucher:
        raise OpFailed(FinanceReject.VOUCHER_ASSET)
    if entry.closed:
        raise OpFailed(FinanceReject.EXCEEDS_ASSET_VALUE)
    if (claimed.value_lo, claimed.value_hi, claimed.financed) != (
        entry.value_lo,
        entry.value_hi,
        entry.financed,
    ):
        raise OpFailed(FinanceReject.STALE_REGISTRY)
    financed = ca.conf.commitment_lincomb([entry.financed, new.lo, new.hi], [1, 1, ca.LIMB])
    if financed is None:
        raise InvariantViolation("a registry commitment is not a point")
    ctx.put(c.cregistry_key(blinded), dataclasses.replace(entry, financed=financed).encode())
    ctx.put(own, new.stored())
    ctx.emit(b"fin.reg.fits")  # nothing else: no totals, no amounts


@OPS.op(c.OP_CREG_RELEASE, "fin.creg_release")
def _creg_release(ctx: TxContext) -> None:
    if len(ctx.payload) != _RELEASE.size:
        raise OpFailed(Reject.BAD_PAYLOAD)
    blinded, ref = _RELEASE.unpack(ctx.payload)
    bank, _ = member(ctx)  # any role: a release only gives room back (as registry.reg_release)
    own = registry.own_key(ctx, blinded, bank, ref)
    raw = ctx.get(own)
    if raw is None:
        raise OpFailed(FinanceReject.NO_SUCH_FINANCING)
    entry = _entry(ctx, blinded)
    if not entry.closed:
        financed = ca.conf.commitment_lincomb([entry.financed, raw[:32], raw[32:64]], [1, -1, -ca.LIMB])
        if financed is None:
            raise InvariantViolation("a registry commitment is not a point")
        ctx.put(c.cregistry_key(blinded), dataclasses.replace(entry, financed=financed).encode())
    ctx.delete(own)
    ctx.emit(b"fin.reg.released")


# --- the owner's side and the builders ---------------------------------------------------------


@dataclasses.dataclass
class OwnerBook:
    """What an asset's owner keeps to prove financings: the value's opening and the openings
    of the financings it made (``financed`` sums them)."""

    value: ca.Opening
    financings: dict[bytes, ca.Opening] = dataclasses.field(default_factory=dict)  # ref -> opening

    def financed(self) -> tuple[int, bytes]:
        """The total financed and the opening of the entry's ``financed`` commitment."""
        ops = list(self.financings.values())
        if not ops:
            return 0, bytes(32)
        return sum(o.amount for o in ops), ca.conf.opening_lincomb([o.opening for o in ops], [1] * len(ops))


def creg_asset(
    chain_id: int,
    sender: bytes,
    org: bytes,
    nonce: int,
    blinded: bytes,
    value: int,
    regulator: bytes,
    owner: bytes,
    *,
    suite: CryptoSuite = ED25519_BLAKE3,
) -> tuple[tx.Tx, ca.Opening]:
    """The attester's registration of an asset worth ``value``; its opening sealed to the
    ``owner`` key (and returned). ``suite``: the chain's (``ca.seal``)."""
    if not 0 < value <= c.amount_max:
        raise ValueError("value out of range")
    ctx = ca.context(chain_id, sender, nonce, c.OP_CREG_ASSET)
    opening = ca.fresh_opening(value)
    amount = ca.make(opening, regulator, ctx)
    (proof,) = ca.prove_ranges([opening], ctx)
    payload = _ASSET.pack(blinded, regulator, owner) + amount.encode()
    payload += ca.put_proof(proof) + ca.seal(opening, owner, suite)
    reads = member_reads(sender, org) | {c.REGULATOR_KEY, c.key_key(owner), c.registry_key(blinded)}
    writes = {c.cregistry_key(blinded)}
    return make_tx(chain_id, c.OP_CREG_ASSET, sender, nonce, reads, writes, payload), opening


def finance_package(
    chain_id: int,
    bank: bytes,
    blinded: bytes,
    ref: bytes,
    amount: int,
    book: OwnerBook,
    entry: CRegistryEntry,
    regulator: bytes,
) -> tuple[bytes, ca.Opening]:
    """The borrower's side: the payload a bank submits to record financing ``amount``
    against the asset (ref ``ref``, 32 bytes), and the new financing's opening (for the
    owner's book and the bank). ValueError if it does not fit: no proof exists then."""
    ref = ref.ljust(32, b"\0")[:32]
    total, r_financed = book.financed()
    remaining = book.value.amount - total - amount
    if not 0 < amount or remaining < 0:
        raise ValueError("does not fit: the asset's remaining value is below the amount")
    ctx = finance_context(chain_id, bank, blinded, ref)
    new = ca.fresh_opening(amount)
    cam = ca.make(new, regulator, ctx)
    (limb_proof,) = ca.prove_ranges([new], ctx)
    r_rem = ca.conf.opening_lincomb([book.value.opening, r_financed, new.opening], [1, -1, -1])
    remainder = ca.conf.prove_range([remaining], [r_rem], ctx, 64)
    if remainder.commitments[0] != entry.remainder(cam):
        raise ValueError("the book does not match the registry entry (another financing came first?)")
    payload = _FINANCE.pack(blinded, ref, regulator, entry.value_lo, entry.value_hi, entry.financed)
    payload += cam.encode() + ca.put_proof(limb_proof)
    payload += ca.put_proof(remainder.proof)
    return payload, new


def creg_finance(
    chain_id: int,
    sender: bytes,
    org: bytes,
    nonce: int,
    payload: bytes,
    *,
    suite: CryptoSuite = ED25519_BLAKE3,
    shard: int | None = None,
) -> tx.Tx:
    """The bank's tx carrying the borrower's ``finance_package`` (``shard``: as
    ``registry.reg_finance``'s)."""
    blinded, ref = payload[:32], payload[32:64]
    own = registry.record_key(blinded, org, ref, shard, suite=suite)
    reads = member_reads(sender, org) | {c.REGULATOR_KEY}
    return make_tx(
        chain_id, c.OP_CREG_FINANCE, sender, nonce, reads, {c.cregistry_key(blinded), own}, payload
    )


def creg_release(
    chain_id: int,
    sender: bytes,
    org: bytes,
    nonce: int,
    blinded: bytes,
    ref: bytes,
    *,
    suite: CryptoSuite = ED25519_BLAKE3,
    shard: int | None = None,
) -> tx.Tx:
    ref = ref.ljust(32, b"\0")[:32]
    own = registry.record_key(blinded, org, ref, shard, suite=suite)
    payload = _RELEASE.pack(blinded, ref)
    reads = member_reads(sender, org)
    return make_tx(
        chain_id, c.OP_CREG_RELEASE, sender, nonce, reads, {c.cregistry_key(blinded), own}, payload
    )
