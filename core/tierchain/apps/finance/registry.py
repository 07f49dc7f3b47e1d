"""Duplicate-financing registry: "does this fit?" without revealing who financed what.

An asset (an order, an invoice, a warehouse receipt) is identified by a
*blinded fingerprint*: the chain's suite's keyed hash of its identity under a key
derived from the consortium secret (``blind``; the suite's ``keyed_hash``: BLAKE3 keyed mode, or
HMAC-SM3 on an sm2-sm3 chain). Members know the secret and can compute it;
there is no default secret: blinding without one (or with one shorter than 16
bytes) raises ``ConsortiumSecretError``. The ledger stores only the result, so
the registry alone does not say which asset an entry is. Per asset,
``fr/<blinded>`` holds exactly two integers: the asset's value and the total
financed against it, across all banks. No bank id and no per-bank amount is
stored under the fingerprint.

* ``reg_asset(blinded, value)`` — the attester of the asset (a core enterprise
  for receivables, a warehouse for receipts) registers its value once.
  A voucher confirmation registers its own asset (the first invoice, value =
  face amount), and financing voucher pieces counts against it.
* ``reg_finance(blinded, amount, ref)`` — a bank adds ``amount``; if the total
  would exceed the value the tx fails with ``EXCEEDS_ASSET_VALUE`` and nothing
  changes. The receipt says only "fits" (no totals are echoed). The bank's own
  record ``fl/<H(blinded, bank, ref)>`` holds its amount under a key nobody can
  link to the entry without knowing the bank and its private ref; it is what
  lets that bank — and only it — release the amount later (``reg_release``,
  allowed whatever its roles are now: releasing only gives room back).
* ``fits(state_get, blinded, amount)`` — the read-only query: True or False.

What this does NOT hide (v1, see docs/finance.md): the value and total under each
fingerprint are plain integers in state, and every tx body (bank key, amount,
fingerprint) is in the blocks every replica stores; a node operator with raw
database access sees them. Repeated "fits?" queries can bisect the headroom.
Cryptographic privacy of amounts is a later issue.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from tierchain.apps.finance import codes as c
from tierchain.apps.finance.codes import FinanceReject
from tierchain.apps.finance.orgs import make_tx, member, member_reads, role_bits
from tierchain.crypto import ED25519_BLAKE3, CryptoSuite
from tierchain.engine import apps
from tierchain.engine.execute import OpFailed, TxContext
from tierchain.errors import InvariantViolation, Reject, TierChainError
from tierchain.wire import tx

OPS = apps.OpTable()  # this module's ops (tierchain.apps.finance.app)

StateGet = Callable[[bytes], "bytes | None"]
ATTESTER_ROLES = role_bits("core_enterprise", "warehouse")
BANK_ROLES = role_bits("bank")
_ASSET = struct.Struct("<32sQ")
_FINANCE = struct.Struct("<32sQ32s")
_RELEASE = struct.Struct("<32s32s")
consortium_secret_bytes_min = 16  # below this a secret can be guessed, and then so can every fingerprint


class ConsortiumSecretError(TierChainError):
    """Blinding was asked for without a consortium secret (or with one too short to be secret).

    There is no default: a fingerprint blinded under an empty or guessable secret can be
    computed by anyone, and matches no other member's fingerprint of the same asset."""


def registry_key_from_secret(
    consortium_secret: bytes | None, *, suite: CryptoSuite = ED25519_BLAKE3
) -> bytes:
    """The blinding key, derived from the consortium secret (never stored on chain)."""
    if consortium_secret is None or len(consortium_secret) < consortium_secret_bytes_min:
        raise ConsortiumSecretError(
            f"no consortium secret configured: blinding needs the consortium's shared secret "
            f"(at least {consortium_secret_bytes_min} bytes)"
        )
    return suite.hash(c.FIN_REGISTRY_KEY, consortium_secret)


def blind(
    consortium_secret: bytes | None, asset_kind: str, asset_id: bytes, *, suite: CryptoSuite = ED25519_BLAKE3
) -> bytes:
    """Blinded fingerprint of an asset: the suite's keyed hash of (kind, id) under the
    consortium key."""
    kind = asset_kind.encode()
    data = len(kind).to_bytes(2, "little") + kind + asset_id
    return suite.keyed_hash(registry_key_from_secret(consortium_secret, suite=suite), data)


def blind_invoice(
    consortium_secret: bytes | None, invoice_fingerprint: bytes, *, suite: CryptoSuite = ED25519_BLAKE3
) -> bytes:
    """The asset a voucher stands for: its (first) invoice."""
    return blind(consortium_secret, "invoice", invoice_fingerprint, suite=suite)


def load_entry(ctx: TxContext, blinded: bytes) -> c.RegistryEntry | None:
    raw = ctx.get(c.registry_key(blinded))
    return None if raw is None else c.RegistryEntry.decode(raw)


def add_financed(ctx: TxContext, blinded: bytes, amount: int) -> None:
    """Count ``amount`` against the asset, or fail with EXCEEDS_ASSET_VALUE."""
    entry = load_entry(ctx, blinded)
    if entry is None:
        raise OpFailed(FinanceReject.NO_SUCH_ASSET)
    if entry.closed or amount > entry.value - entry.financed:
        raise OpFailed(FinanceReject.EXCEEDS_ASSET_VALUE)
    ctx.put(c.registry_key(blinded), c.RegistryEntry(entry.value, entry.financed + amount).encode())


def sub_financed(ctx: TxContext, blinded: bytes, amount: int) -> None:
    entry = load_entry(ctx, blinded)
    if entry is None or entry.financed < amount:
        raise InvariantViolation("registry total below a financing it counted")
    if entry.closed:  # settled: the bank's record goes, the asset stays fully counted
        return
    ctx.put(c.registry_key(blinded), c.RegistryEntry(entry.value, entry.financed - amount).encode())


@OPS.op(c.OP_REG_ASSET, "fin.reg_asset")
def _reg_asset(ctx: TxContext) -> None:
    if len(ctx.payload) != _ASSET.size:
        raise OpFailed(Reject.BAD_PAYLOAD)
    blinded, value = _ASSET.unpack(ctx.payload)
    member(ctx, ATTESTER_ROLES)
    if not 0 < value <= c.amount_max:
        raise OpFailed(Reject.BAD_PAYLOAD, "value out of range")
    if ctx.get(c.registry_key(blinded)) is not None:
        raise OpFailed(FinanceReject.ASSET_EXISTS)
    ctx.put(c.registry_key(blinded), c.RegistryEntry(value, 0).encode())
    ctx.emit(b"fin.reg.asset", blinded)


def own_key(ctx: TxContext, blinded: bytes, bank: bytes, ref: bytes) -> bytes:
    """The key of a bank's own financing record, where the tx put it: ``fl/<digest>``, or on a
    cluster ``fm/<shard><digest>`` (placed on its registry entry's shard; the scheduler
    refuses any other shard). Two placed keys for one record are BAD_PAYLOAD."""
    digest = c.financing_ref_digest(blinded, bank, ref, suite=ctx.suite)
    placed = [
        k
        for k in ctx.declared_writes
        if k.startswith(c.PLACED_FINANCING_PREFIX) and k[len(c.PLACED_FINANCING_PREFIX) + 2 :] == digest
    ]
    if len(placed) > 1:
        raise OpFailed(Reject.BAD_PAYLOAD, "a financing record declared on two shards")
    if not placed:
        return c.financing_key(digest)
    shard = int.from_bytes(
        placed[0][len(c.PLACED_FINANCING_PREFIX) : len(c.PLACED_FINANCING_PREFIX) + 2], "little"
    )
    if ctx.shard_count == 1 or shard != ctx.shard_index:  # one key a record: fm/<this shard> on a cluster
        raise OpFailed(Reject.BAD_PAYLOAD, "a financing record is placed on its own shard of a cluster")
    return placed[0]


def record_key(
    blinded: bytes, bank: bytes, ref: bytes, shard: int | None, *, suite: CryptoSuite = ED25519_BLAKE3
) -> bytes:
    """``own_key`` for a builder: ``shard`` None on a single chain, else the registry
    entry's shard of the cluster."""
    digest = c.financing_ref_digest(blinded, bank, ref, suite=suite)
    return c.financing_key(digest) if shard is None else c.placed_financing_key(shard, digest)


@OPS.op(c.OP_REG_FINANCE, "fin.reg_finance")
def _reg_finance(ctx: TxContext) -> None:
    if len(ctx.payload) != _FINANCE.size:
        raise OpFailed(Reject.BAD_PAYLOAD)
    blinded, amount, ref = _FINANCE.unpack(ctx.payload)
    bank, _ = member(ctx, BANK_ROLES)
    if not 0 < amount <= c.amount_max:
        raise OpFailed(Reject.BAD_PAYLOAD, "amount out of range")
    own = own_key(ctx, blinded, bank, ref)
    if ctx.get(own) is not None:
        raise OpFailed(Reject.BAD_PAYLOAD, "financing ref already used")
    add_financed(ctx, blinded, amount)
    ctx.put(own, amount.to_bytes(8, "little"))
    ctx.emit(b"fin.reg.fits")  # nothing else: no totals, no amounts


@OPS.op(c.OP_REG_RELEASE, "fin.reg_release")
def _reg_release(ctx: TxContext) -> None:
    if len(ctx.payload) != _RELEASE.size:
        raise OpFailed(Reject.BAD_PAYLOAD)
    blinded, ref = _RELEASE.unpack(ctx.payload)
    # Any role: a release only removes the sender's own counted financing. A bank whose role
    # the committee removed must still be able to, or its amount would stay counted forever.
    bank, _ = member(ctx)
    own = own_key(ctx, blinded, bank, ref)
    raw = ctx.get(own)
    if raw is None:
        raise OpFailed(FinanceReject.NO_SUCH_FINANCING)
    sub_financed(ctx, blinded, int.from_bytes(raw, "little"))
    ctx.delete(own)
    ctx.emit(b"fin.reg.released")


# --- queries and builders ---------------------------------------------------------------


def fits(state_get: StateGet, blinded: bytes, amount: int) -> bool:
    """Would financing ``amount`` more against this asset fit? Yes or no, nothing else."""
    raw = state_get(c.registry_key(blinded))
    if raw is None:
        return False
    entry = c.RegistryEntry.decode(raw)
    return 0 < amount <= entry.value - entry.financed


def reg_asset(chain_id: int, sender: bytes, org: bytes, nonce: int, blinded: bytes, value: int) -> tx.Tx:
    return make_tx(
        chain_id,
        c.OP_REG_ASSET,
        sender,
        nonce,
        member_reads(sender, org),
        {c.registry_key(blinded)},
        _ASSET.pack(blinded, value),
    )


def reg_finance(
    chain_id: int,
    sender: bytes,
    org: bytes,
    nonce: int,
    blinded: bytes,
    amount: int,
    ref: bytes,
    *,
    suite: CryptoSuite = ED25519_BLAKE3,
    shard: int | None = None,
) -> tx.Tx:
    ref = ref.ljust(32, b"\0")[:32]
    own = record_key(blinded, org, ref, shard, suite=suite)
    return make_tx(
        chain_id,
        c.OP_REG_FINANCE,
        sender,
        nonce,
        member_reads(sender, org),
        {c.registry_key(blinded), own},
        _FINANCE.pack(blinded, amount, ref),
    )


def reg_release(
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
    own = record_key(blinded, org, ref, shard, suite=suite)
    return make_tx(
        chain_id,
        c.OP_REG_RELEASE,
        sender,
        nonce,
        member_reads(sender, org),
        {c.registry_key(blinded), own},
        _RELEASE.pack(blinded, ref),
    )
