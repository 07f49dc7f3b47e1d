"""Inter-institution reconciliation (T+0): keyed digests of bilateral records, per pair and day.

Two organizations A and B that book the same records (interbank transfers, ABS cash flows)
each post, per record, a *tag* of the record's reference and a *digest* of its fields, both
keyed hashes under a pair key ``K`` only the two of them hold. The chain joins the two
sides by tag (both land in one ``sy/`` row), so anyone can see how many records of a day
match; only A and B can tell which record is which and which field differs.

The pair (``sp/<pair>``, ``PairRecord``). Its id comes from the two organization ids only
(``codes.pair_id``): one pair per two organizations, for good; its key changes by
*generation* (u16, from 0). The record keeps both organizations (ascending ids: side 0 is
the lower id, "A", side 1 the higher, "B"), and of the current generation: its number,
the key ``K`` sealed to one active key of each organization (``suite.seal``) with both
recipient keys, a public *key check* (``key_check``), when and by which side it was drawn
(the *proposer*) and whether the other side accepted it.

* ``OP_PAIR_OPEN``: a member of A (or B) draws ``K`` (``suite.aead_key_bytes`` random
  bytes) for generation 0. Payload: ``other org 16, key check 16, own recipient key, K
  sealed to it, other's recipient key, K sealed to it`` (a size the suite fixes:
  ``open_payload_bytes``). Refusals: the payload's size (``BAD_PAYLOAD``); a pair with
  itself or with an inactive organization is ``BAD_GRANTEE`` (the sharing app's "bad
  counterparty"), an unknown one ``UNKNOWN_ORG``; both recipient keys must be active keys
  of their organizations (``BAD_RECIPIENT_KEY``); one pair per two organizations
  (``PAIR_EXISTS``: a pair that exists is re-keyed, not opened again).
* ``OP_PAIR_ACCEPT``: the counterparty (the side that is not the current generation's
  proposer) confirms the generation, after checking the ``K`` it unseals against the key
  check (``recon_client.Reconciler.accept``): two parties that pass hold the same ``K``
  (the proposer could otherwise seal different keys to the two sides; the chain cannot
  tell); the check is a keyed hash of a fixed label under ``K``: it says nothing about
  ``K``. Payload: ``pair 16, u16 generation``. Refusals: ``NO_SUCH_PAIR``,
  ``NOT_A_PARTY``, a generation other than the current one (``STALE_GENERATION``), an
  accepted generation (``ALREADY_ACCEPTED``), and the proposer accepting its own
  (``BAD_GRANTEE``, as for a pair with itself: the accepting side must be the other one).
* ``OP_PAIR_REKEY``: either party draws a new ``K`` for generation g + 1, sealed to both
  (to any active key of each: a re-key also moves the key off a revoked recipient key).
  Payload: the open payload, then ``u16 g``, the generation it replaces
  (``rekey_payload_bytes``). Refusals: those of an open but ``PAIR_EXISTS``;
  ``NO_SUCH_PAIR``; ``STALE_GENERATION`` if g is not the current generation;
  ``BAD_PAYLOAD`` past generation 65535. The new generation needs the other side's accept
  (whether or not g was accepted: a party that cannot unseal a good ``K`` re-keys the pair
  rather than accepting it); the replaced generation's record is kept at
  ``generation_key(pair, g)``, so that the parties can still unseal its ``K`` and explain
  its rows, which stay.

Keys derived from ``K`` (``derive``; ``suite.keyed_hash(K, label)``, one label each):

* tag key (``LABEL_TAG``): ``tag = keyed_hash(tag_key, ref)[:16]``;
* digest key (``LABEL_DIGEST``): ``digest = keyed_hash(digest_key, tag || canonical)[:16]``,
  ``canonical`` the fields sorted by name, each ``u8 len(name) || name || u32 len(value)
  || value`` (``recon_report.canonical``); the tag is in it so that two records with the
  same fields do not show outsiders the same digest;
* field key (``LABEL_FIELD``): per field ``keyed_hash(field_key, tag || u8 len(name) ||
  name || u32 len(value) || value)[:8]``, in sorted-name order: the *field vector*;
* vector key (``LABEL_VECTOR``, the first ``aead_key_bytes``): the field vector sealed
  with the suite's authenticated cipher under a random nonce, associated data ``label ||
  pair || u16 generation || u32 day || tag || u8 side`` (``recon_report.vector_aad``),
  stored as ``nonce || ciphertext``: only A and B learn which field of a mismatched record
  differs, and a side's vector cannot be passed off as the other side's, another
  record's, another day's or another generation's;
* key check (``LABEL_CHECK``): ``keyed_hash(K, label)[:16]``, public (see above).

The postings (``OP_RECON_POST``, ``sy/<pair><generation u16><day u32><tag>``:
``codes.posting_key``). A member of A or B posts up to ``recon_posts_per_tx_max`` records
of one UTC day (``ms // day_ms``; a day after the block's day + 1 is ``BAD_DAY``; earlier
days are open, for late postings and corrections) under the current generation's key:
a posting names its generation (another is ``STALE_GENERATION``) and is refused until
the generation is accepted (``PAIR_NOT_ACCEPTED``). Each record writes its side of the
record's row. Posting a tag this side already posted is ``ALREADY_POSTED`` unless the
amend flag is set: then the side is replaced (a correction) or written if absent, and a
*withdrawal* (a zero digest and no vector, ``withdrawal``) takes the side off (a record
posted in error; a row with no side left is deleted). The event (``sh.recon.post``: pair,
generation, day, records, side, amended) counts the sides replaced or withdrawn. The row
keeps both sides (``Row``): whether each side posted, its digest, the height and time of
its last posting, and its sealed field vector. Payload (``parse_post``): ``pair 16, u16
generation, u32 day, u8 amend, u8 n`` then per record ``tag 16, digest 16, u8 len, nonce
|| sealed field vector``.

Generations. Rows are per generation: a re-key starts every day afresh (tags and digests
under the new ``K`` have nothing in common with the old ones), and the old generation's
rows stay as they were, reported per generation (``recon_report.report``; the client's
report takes the current generation unless given one). A record of a day posted under an
old generation is corrected or withdrawn only by posting it again under the current one
(where the other side must post it too).

Who sees what: anyone sees a pair's two organizations, its generations (who drew each
key, when, and whether it was accepted), how many records each side posted per
generation and day, their tags and which rows' digests agree (matched / mismatched /
missing on one side), the number of fields of each record (the vector's length) and when
each side posted. Only holders of ``K`` (A and B) map tags to references (by tagging
their own records), and see which fields of a mismatched record differ.

Limits. Each party holds the digest and field keys, so it can test guesses of the fields
of a record only the other side posted (records both should have, by nature). A match is
each side's signed assertion, not a proof that it holds the record: digests are public,
so a side could post a copy of the other's digest. A tag does not depend on the day, so a
record posted on two days of one generation is linkable. A re-key protects what is
posted under the new key only: old generations' keys stay sealed to their recipient keys
on chain (``generation_key``), so a revoked recipient key still unseals them.
"""

from __future__ import annotations

import dataclasses
import struct

from tierchain.apps.finance import codes as fc
from tierchain.apps.sharing import codes as c
from tierchain.apps.sharing import members
from tierchain.apps.sharing.codes import SharingReject
from tierchain.crypto import ED25519_BLAKE3, SUITES, CryptoSuite
from tierchain.engine import apps
from tierchain.engine.execute import OpFailed, TxContext
from tierchain.errors import Reject
from tierchain.limits import payload_bytes_max
from tierchain.wire import tx

OPS = apps.OpTable()  # this module's ops (tierchain.apps.sharing.app)

# --- labels of the keys derived from a pair key (protocol: never change one) ----------------
LABEL_TAG = b"tierchain 2026 recon tag key"
LABEL_DIGEST = b"tierchain 2026 recon digest key"
LABEL_FIELD = b"tierchain 2026 recon field key"
LABEL_VECTOR = b"tierchain 2026 recon field vector key"
LABEL_CHECK = b"tierchain 2026 recon pair key check"
LABELS = (LABEL_TAG, LABEL_DIGEST, LABEL_FIELD, LABEL_VECTOR, LABEL_CHECK)
assert len(set(LABELS)) == len(LABELS)

# --- sizes and bounds ------------------------------------------------------------------------
digest_bytes = 16  # a record's digest
check_bytes = 16  # a pair key's public check value
field_digest_bytes = 8  # one field's digest in the field vector
ref_bytes_max = 256  # a record's external reference
field_name_bytes_max = 64
field_value_bytes_max = 1024
generation_max = 0xFFFF  # a pair's generations: 0..generation_max (u16)
SIDES = (0, 1)  # 0: the pair's lower organization id ("A"), 1: the higher ("B")

# org a, org b, height, ms (of the generation), key check, generation, proposer side, accepted
_PAIR_HEAD = struct.Struct("<16s16sQQ16sHBB")
_U16 = struct.Struct("<H")
_ACCEPT = struct.Struct("<16sH")  # pair, generation
_PAIR_EVENT = struct.Struct("<16sHB")  # pair, generation, side (sh.pair.accept, sh.pair.rekey)
_POST_HEAD = struct.Struct("<16sHIBB")  # pair, generation, day, amend, n
_ROW_HEAD = struct.Struct("<BB16s16sQQQQBB")  # present a/b, digest a/b, height a/b, ms a/b, len a/b
_EVENT = struct.Struct("<16sHIBBB")  # pair, generation, day, n, side, amended
_NO_DIGEST = bytes(16)
ROW_HEAD_BYTES = _ROW_HEAD.size
assert ROW_HEAD_BYTES == 68


def sealed_key_bytes(suite: CryptoSuite) -> int:
    """A pair key sealed to one recipient key."""
    return suite.aead_key_bytes + suite.seal_overhead


def open_payload_bytes(suite: CryptoSuite) -> int:
    """``OP_PAIR_OPEN``'s payload: other org, key check, and per org a key and its sealed K."""
    return c.id_bytes + check_bytes + 2 * (suite.public_key_bytes + sealed_key_bytes(suite))


def rekey_payload_bytes(suite: CryptoSuite) -> int:
    """``OP_PAIR_REKEY``'s payload: an open payload and the u16 generation it replaces."""
    return open_payload_bytes(suite) + _U16.size


def vector_bytes_bounds(suite: CryptoSuite) -> tuple[int, int]:
    """The sizes a sealed field vector may have (1..``recon_fields_max`` fields), nonce included."""
    base = suite.aead_nonce_bytes + suite.aead_tag_bytes
    return base + field_digest_bytes, base + field_digest_bytes * c.recon_fields_max


def vector_fields(suite: CryptoSuite, size: int) -> int | None:
    """How many fields a sealed field vector of ``size`` bytes holds (None: not a vector's size)."""
    body = size - suite.aead_nonce_bytes - suite.aead_tag_bytes
    if body <= 0 or body % field_digest_bytes or body // field_digest_bytes > c.recon_fields_max:
        return None
    return body // field_digest_bytes


assert all(vector_bytes_bounds(s)[1] <= 255 for s in SUITES.values())  # the u8 length


def generation_key(pair: bytes, generation: int) -> bytes:
    """``sp/<pair><generation u16>``: a replaced generation's ``PairRecord``, as it was when
    ``OP_PAIR_REKEY`` replaced it (the current one is at ``codes.pair_key(pair)``)."""
    return c.pair_key(pair) + _U16.pack(generation)


# --- the pair ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class PairRecord:
    """``sp/<pair>``: the two organizations (ascending) and the current generation: when it
    was drawn, its key check, its number, its proposer's side, whether the other side
    accepted it, and per organization (same order) the recipient key and the pair key
    sealed to it. Bytes: ``org a 16, org b 16, u64 height, u64 ms, check 16, u16
    generation, u8 proposer, u8 accepted`` then per organization ``key || sealed key``."""

    orgs: tuple[bytes, bytes]
    height: int
    timestamp_ms: int
    check: bytes
    recipients: tuple[bytes, bytes]
    sealed: tuple[bytes, bytes]
    generation: int = 0
    proposer: int = 0  # the side that opened or re-keyed this generation
    accepted: bool = False  # the other side confirmed the key check (OP_PAIR_ACCEPT)

    def encode(self) -> bytes:
        head = _PAIR_HEAD.pack(
            self.orgs[0], self.orgs[1], self.height, self.timestamp_ms, self.check,
            self.generation, self.proposer, self.accepted,
        )  # fmt: skip
        return head + self.recipients[0] + self.sealed[0] + self.recipients[1] + self.sealed[1]

    @classmethod
    def decode(cls, raw: bytes, public_key_bytes: int = 32) -> PairRecord:
        raw = bytes(raw)
        rest = len(raw) - _PAIR_HEAD.size
        if rest <= 0 or rest % 2 or rest // 2 <= public_key_bytes:
            raise ValueError("not a pair record")
        a, b, height, ms, check, generation, proposer, accepted = _PAIR_HEAD.unpack_from(raw)
        if proposer > 1 or accepted > 1:
            raise ValueError("not a pair record")
        half = rest // 2
        pos, k = _PAIR_HEAD.size, public_key_bytes
        one, two = raw[pos : pos + half], raw[pos + half :]
        return cls(
            (a, b), height, ms, check, (one[:k], two[:k]), (one[k:], two[k:]),
            generation, proposer, bool(accepted),
        )  # fmt: skip

    def side_of(self, org: bytes) -> int | None:
        """0 or 1 for one of the pair's organizations, None for any other."""
        return self.orgs.index(org) if org in self.orgs else None


def _parse_open(ctx: TxContext, p: bytes) -> tuple[bytes, bytes, bytes, list[tuple[bytes, bytes, bytes]]]:
    """The sender's organization, the other one, the key check and the two (org, recipient
    key, sealed key) in ascending org order, of an open payload (its size checked), with
    the checks an open and a re-key share (counterparty, recipient keys)."""
    suite = ctx.suite
    k, s = suite.public_key_bytes, sealed_key_bytes(suite)
    other, check = p[:16], p[16:32]
    own_key, own_sealed = p[32 : 32 + k], p[32 + k : 32 + k + s]
    pos = 32 + k + s
    other_key, other_sealed = p[pos : pos + k], p[pos + k : pos + k + s]
    own, _ = members.member(ctx)
    if other == own:
        raise OpFailed(SharingReject.BAD_GRANTEE, "a pair with itself")
    members.active_org(ctx, other)
    return own, other, check, sorted([(own, own_key, own_sealed), (other, other_key, other_sealed)])


def _check_recipients(ctx: TxContext, sides: list[tuple[bytes, bytes, bytes]]) -> None:
    for org, key, _ in sides:
        members.recipient(ctx, org, key)


def _generation(ctx: TxContext, sides: list, check: bytes, generation: int, proposer: int) -> PairRecord:
    return PairRecord(
        (sides[0][0], sides[1][0]), ctx.height, ctx.timestamp_ms, check,
        (sides[0][1], sides[1][1]), (sides[0][2], sides[1][2]), generation, proposer, False,
    )  # fmt: skip


@OPS.op(c.OP_PAIR_OPEN, "sh.pair_open")
def _pair_open(ctx: TxContext) -> None:
    p = bytes(ctx.payload)
    if len(p) != open_payload_bytes(ctx.suite):
        raise OpFailed(Reject.BAD_PAYLOAD, "pair open payload size")
    own, other, check, sides = _parse_open(ctx, p)
    pid = c.pair_id(own, other, suite=ctx.suite)
    key = c.pair_key(pid)
    if ctx.get(key) is not None:
        raise OpFailed(SharingReject.PAIR_EXISTS)
    _check_recipients(ctx, sides)
    record = _generation(ctx, sides, check, 0, int(own > other))
    ctx.put(key, record.encode())
    ctx.emit(b"sh.pair.open", pid + record.orgs[0] + record.orgs[1])


@OPS.op(c.OP_PAIR_REKEY, "sh.pair_rekey")
def _pair_rekey(ctx: TxContext) -> None:
    p = bytes(ctx.payload)
    if len(p) != rekey_payload_bytes(ctx.suite):
        raise OpFailed(Reject.BAD_PAYLOAD, "pair re-key payload size")
    (replaced,) = _U16.unpack_from(p, len(p) - _U16.size)
    own, other, check, sides = _parse_open(ctx, p[: -_U16.size])
    pid = c.pair_id(own, other, suite=ctx.suite)
    key = c.pair_key(pid)
    raw = ctx.get(key)
    if raw is None:
        raise OpFailed(SharingReject.NO_SUCH_PAIR)
    current = PairRecord.decode(raw, ctx.suite.public_key_bytes)
    if replaced != current.generation:
        raise OpFailed(SharingReject.STALE_GENERATION, f"the current generation is {current.generation}")
    if replaced >= generation_max:
        raise OpFailed(Reject.BAD_PAYLOAD, "the pair's last generation")
    _check_recipients(ctx, sides)
    side = int(own > other)
    ctx.put(generation_key(pid, replaced), raw)
    ctx.put(key, _generation(ctx, sides, check, replaced + 1, side).encode())
    ctx.emit(b"sh.pair.rekey", _PAIR_EVENT.pack(pid, replaced + 1, side))


@OPS.op(c.OP_PAIR_ACCEPT, "sh.pair_accept")
def _pair_accept(ctx: TxContext) -> None:
    p = bytes(ctx.payload)
    if len(p) != _ACCEPT.size:
        raise OpFailed(Reject.BAD_PAYLOAD, "pair accept payload size")
    pid, generation = _ACCEPT.unpack(p)
    org, _ = members.member(ctx)
    key = c.pair_key(pid)
    raw = ctx.get(key)
    if raw is None:
        raise OpFailed(SharingReject.NO_SUCH_PAIR)
    record = PairRecord.decode(raw, ctx.suite.public_key_bytes)
    side = record.side_of(org)
    if side is None:
        raise OpFailed(SharingReject.NOT_A_PARTY)
    if generation != record.generation:
        raise OpFailed(SharingReject.STALE_GENERATION, f"the current generation is {record.generation}")
    if record.accepted:
        raise OpFailed(SharingReject.ALREADY_ACCEPTED)
    if side == record.proposer:
        raise OpFailed(SharingReject.BAD_GRANTEE, "the proposer cannot accept its own generation")
    ctx.put(key, dataclasses.replace(record, accepted=True).encode())
    ctx.emit(b"sh.pair.accept", _PAIR_EVENT.pack(pid, generation, side))


def decode_pair_event(data: bytes) -> tuple[bytes, int, int]:
    """(pair, generation, side) of a ``sh.pair.accept`` or ``sh.pair.rekey`` event (side:
    the accepting side, or the re-keying side, the new generation's proposer)."""
    return _PAIR_EVENT.unpack(data)


def _open_fields(
    suite: CryptoSuite,
    other: bytes,
    check: bytes,
    own_key: bytes,
    own_sealed: bytes,
    other_key: bytes,
    other_sealed: bytes,
) -> bytes:
    k, s = suite.public_key_bytes, sealed_key_bytes(suite)
    sizes = [
        (other, 16),
        (check, check_bytes),
        (own_key, k),
        (own_sealed, s),
        (other_key, k),
        (other_sealed, s),
    ]
    if any(len(v) != n for v, n in sizes):
        raise ValueError("pair open or re-key: a field of the wrong size for this suite")
    return other + check + own_key + own_sealed + other_key + other_sealed


def pair_open(
    chain_id: int,
    sender: bytes,
    org: bytes,
    nonce: int,
    other: bytes,
    check: bytes,
    own_key: bytes,
    own_sealed: bytes,
    other_key: bytes,
    other_sealed: bytes,
    *,
    suite: CryptoSuite = ED25519_BLAKE3,
) -> tx.Tx:
    """Open the pair of ``org`` (the sender's organization) and ``other``: the pair key
    sealed to ``own_key`` (a key of ``org``) and to ``other_key`` (a key of ``other``),
    with its ``check`` (``key_check``). ``ValueError`` for sizes that are not the suite's."""
    payload = _open_fields(suite, other, check, own_key, own_sealed, other_key, other_sealed)
    pid = c.pair_id(org, other, suite=suite)
    reads = members.member_reads(sender, org) | {
        fc.org_key(other),
        fc.key_key(own_key),
        fc.key_key(other_key),
    }
    return tx.unsigned(chain_id, c.OP_PAIR_OPEN, sender, nonce, reads, {c.pair_key(pid)}, payload)


def pair_rekey(
    chain_id: int,
    sender: bytes,
    org: bytes,
    nonce: int,
    generation: int,
    other: bytes,
    check: bytes,
    own_key: bytes,
    own_sealed: bytes,
    other_key: bytes,
    other_sealed: bytes,
    *,
    suite: CryptoSuite = ED25519_BLAKE3,
) -> tx.Tx:
    """Replace ``generation`` (the current one) of the pair of ``org`` and ``other`` by a
    new pair key, sealed as for ``pair_open``. ``ValueError`` for sizes that are not the
    suite's or a generation that is not a u16."""
    if not 0 <= generation <= generation_max:
        raise ValueError("a generation is a u16")
    payload = _open_fields(suite, other, check, own_key, own_sealed, other_key, other_sealed)
    pid = c.pair_id(org, other, suite=suite)
    reads = members.member_reads(sender, org) | {
        fc.org_key(other),
        fc.key_key(own_key),
        fc.key_key(other_key),
    }
    writes = {c.pair_key(pid), generation_key(pid, generation)}
    return tx.unsigned(
        chain_id, c.OP_PAIR_REKEY, sender, nonce, reads, writes, payload + _U16.pack(generation)
    )


def pair_accept(chain_id: int, sender: bytes, org: bytes, nonce: int, pair: bytes, generation: int) -> tx.Tx:
    """Accept ``generation`` of ``pair`` (check the pair key first: ``recon_client``)."""
    if len(pair) != c.id_bytes or not 0 <= generation <= generation_max:
        raise ValueError("a pair id is 16 bytes, a generation a u16")
    return tx.unsigned(
        chain_id, c.OP_PAIR_ACCEPT, sender, nonce, members.member_reads(sender, org),
        {c.pair_key(pair)}, _ACCEPT.pack(pair, generation),
    )  # fmt: skip


# --- keys derived from a pair key ----------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class PairKeys:
    """What a party derives from the pair key (module docstring)."""

    tag: bytes
    digest: bytes
    field: bytes
    vector: bytes
    check: bytes


def derive(pair_key: bytes, suite: CryptoSuite) -> PairKeys:
    """The keys derived from ``pair_key`` (``suite.aead_key_bytes`` bytes) in ``suite``."""
    if len(pair_key) != suite.aead_key_bytes:
        raise ValueError(f"a {suite.name} pair key is {suite.aead_key_bytes} bytes")
    h = suite.keyed_hash
    return PairKeys(
        h(pair_key, LABEL_TAG),
        h(pair_key, LABEL_DIGEST),
        h(pair_key, LABEL_FIELD),
        h(pair_key, LABEL_VECTOR)[: suite.aead_key_bytes],
        h(pair_key, LABEL_CHECK)[:check_bytes],
    )


def key_check(pair_key: bytes, suite: CryptoSuite) -> bytes:
    return derive(pair_key, suite).check


# --- postings ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Entry:
    """One record as a side posts it: its tag, digest and sealed field vector."""

    tag: bytes
    digest: bytes
    vector: bytes

    @property
    def is_withdrawal(self) -> bool:
        """No vector and a zero digest: with the amend flag, take this side's posting off."""
        return not self.vector and self.digest == _NO_DIGEST

    def encode(self) -> bytes:
        return self.tag + self.digest + bytes((len(self.vector),)) + self.vector


def withdrawal(tag: bytes) -> Entry:
    """The entry that takes a side's posting of ``tag`` off (post it with amend)."""
    return Entry(tag, _NO_DIGEST, b"")


def entry_bytes(entry: Entry) -> int:
    return c.tag_bytes + digest_bytes + 1 + len(entry.vector)


@dataclasses.dataclass(frozen=True)
class Side:
    digest: bytes
    height: int
    timestamp_ms: int
    vector: bytes


@dataclasses.dataclass(frozen=True)
class Row:
    """``sy/<pair><generation><day><tag>``: each side's last posting of the record (None:
    not posted).

    Bytes: ``u8 present a, u8 present b, digest a 16, digest b 16, u64 height a, u64 height
    b, u64 ms a, u64 ms b, u8 len a, u8 len b`` (an absent side: zeros), then vector a and
    vector b (little-endian). The fixed head comes first so that a report classifies a row
    by slicing its first 34 bytes (``recon_report``)."""

    a: Side | None
    b: Side | None

    def side(self, i: int) -> Side | None:
        return self.b if i else self.a

    def encode(self) -> bytes:
        z = Side(bytes(digest_bytes), 0, 0, b"")
        a, b = self.a or z, self.b or z
        head = _ROW_HEAD.pack(
            self.a is not None, self.b is not None, a.digest, b.digest, a.height, b.height,
            a.timestamp_ms, b.timestamp_ms, len(a.vector), len(b.vector),
        )  # fmt: skip
        return head + a.vector + b.vector

    @classmethod
    def decode(cls, raw: bytes) -> Row:
        raw = bytes(raw)
        if len(raw) < ROW_HEAD_BYTES:
            raise ValueError("not a posting row")
        pa, pb, da, db, ha, hb, ma, mb, la, lb = _ROW_HEAD.unpack_from(raw)
        if len(raw) != ROW_HEAD_BYTES + la + lb or pa > 1 or pb > 1:
            raise ValueError("not a posting row")
        va, vb = raw[ROW_HEAD_BYTES : ROW_HEAD_BYTES + la], raw[ROW_HEAD_BYTES + la :]
        return cls(Side(da, ha, ma, va) if pa else None, Side(db, hb, mb, vb) if pb else None)


def merge(
    raw: bytes | None, side: int, entry: Entry, height: int, timestamp_ms: int
) -> tuple[bytes | None, bool]:
    """The row ``raw`` (None: none yet) with ``side``'s posting of ``entry`` (a withdrawal,
    ``Entry.is_withdrawal``, takes the side off; None: no side left, delete the row), and
    whether that side had posted before (what the handler refuses unless amending)."""
    row = Row(None, None) if raw is None else Row.decode(raw)
    new = None if entry.is_withdrawal else Side(entry.digest, height, timestamp_ms, entry.vector)
    had = row.side(side) is not None
    row = Row(row.a, new) if side else Row(new, row.b)
    return (None if row.a is None and row.b is None else row.encode()), had


@dataclasses.dataclass(frozen=True)
class Post:
    """An ``OP_RECON_POST`` payload, parsed."""

    pair: bytes
    generation: int
    day: int
    amend: bool
    entries: list[Entry]


def parse_post(payload: bytes, suite: CryptoSuite) -> Post:
    """An ``OP_RECON_POST`` payload; ``ValueError`` for anything but a canonical one (amend
    0 or 1, 1..``recon_posts_per_tx_max`` records, vectors of a vector's size, no tag
    twice, nothing after the last record)."""
    p = bytes(payload)
    if len(p) < _POST_HEAD.size or len(p) > payload_bytes_max:
        raise ValueError("post payload size")
    pid, generation, day, amend, n = _POST_HEAD.unpack_from(p)
    if amend > 1 or not 1 <= n <= c.recon_posts_per_tx_max:
        raise ValueError("amend flag or record count")
    pos, entries, tags = _POST_HEAD.size, [], set()
    fixed = c.tag_bytes + digest_bytes
    for _ in range(n):
        if pos + fixed + 1 > len(p):
            raise ValueError("truncated record")
        tag, digest, size = p[pos : pos + 16], p[pos + 16 : pos + 32], p[pos + 32]
        pos += fixed + 1
        withdrawal = amend and size == 0 and digest == _NO_DIGEST
        if not withdrawal and vector_fields(suite, size) is None:
            raise ValueError("bad field vector size")
        if pos + size > len(p) or tag in tags:
            raise ValueError("truncated record or repeated tag")
        entries.append(Entry(tag, digest, p[pos : pos + size]))
        tags.add(tag)
        pos += size
    if pos != len(p):
        raise ValueError("bytes after the last record")
    return Post(pid, generation, day, bool(amend), entries)


@OPS.op(c.OP_RECON_POST, "sh.recon_post")
def _recon_post(ctx: TxContext) -> None:
    try:
        post = parse_post(ctx.payload, ctx.suite)
    except ValueError as exc:
        raise OpFailed(Reject.BAD_PAYLOAD, str(exc)) from None
    pid, generation, day = post.pair, post.generation, post.day
    org, _ = members.member(ctx)
    raw = ctx.get(c.pair_key(pid))
    if raw is None:
        raise OpFailed(SharingReject.NO_SUCH_PAIR)
    record = PairRecord.decode(raw, ctx.suite.public_key_bytes)
    side = record.side_of(org)
    if side is None:
        raise OpFailed(SharingReject.NOT_A_PARTY)
    if generation != record.generation:
        raise OpFailed(SharingReject.STALE_GENERATION, f"the current generation is {record.generation}")
    if not record.accepted:
        raise OpFailed(SharingReject.PAIR_NOT_ACCEPTED)
    if day > ctx.timestamp_ms // c.day_ms + 1:
        raise OpFailed(SharingReject.BAD_DAY)
    amended = 0
    for entry in post.entries:
        key = c.posting_key(pid, generation, day, entry.tag)
        old = ctx.get(key)
        row, had = merge(old, side, entry, ctx.height, ctx.timestamp_ms)
        if had and not post.amend:
            raise OpFailed(SharingReject.ALREADY_POSTED, entry.tag.hex())
        amended += had
        if row is not None:
            ctx.put(key, row)
        elif old is not None:
            ctx.delete(key)
    ctx.emit(b"sh.recon.post", _EVENT.pack(pid, generation, day, len(post.entries), side, amended))


def decode_post_event(data: bytes) -> tuple[bytes, int, int, int, int, int]:
    """(pair, generation, day, records, side, amended) of a ``sh.recon.post`` event."""
    return _EVENT.unpack(data)


def post_payload(pair: bytes, generation: int, day: int, entries: list[Entry], amend: bool = False) -> bytes:
    if len(pair) != c.id_bytes or not 0 <= day < 1 << 32 or not 0 <= generation <= generation_max:
        raise ValueError("a pair id is 16 bytes, a generation a u16, a day a u32")
    if not 1 <= len(entries) <= c.recon_posts_per_tx_max:
        raise ValueError(f"1..{c.recon_posts_per_tx_max} records per posting")
    head = _POST_HEAD.pack(pair, generation, day, int(amend), len(entries))
    return head + b"".join(e.encode() for e in entries)


def post_bytes(entries: list[Entry]) -> int:
    """The payload size of a posting of ``entries``."""
    return _POST_HEAD.size + sum(entry_bytes(e) for e in entries)


def recon_post(
    chain_id: int,
    sender: bytes,
    org: bytes,
    nonce: int,
    pair: bytes,
    generation: int,
    day: int,
    entries: list[Entry],
    amend: bool = False,
) -> tx.Tx:
    """Post ``entries`` (one side's records of ``day``, under ``generation``'s key: the
    pair's current one) to ``pair``; ``ValueError`` if they do not fit one posting
    (``recon_posts_per_tx_max`` records, ``payload_bytes_max``)."""
    payload = post_payload(pair, generation, day, entries, amend)
    if len(payload) > payload_bytes_max:
        raise ValueError(f"a posting of {len(payload)} bytes; at most {payload_bytes_max}")
    writes = {c.posting_key(pair, generation, day, e.tag) for e in entries}
    if len(writes) != len(entries):
        raise ValueError("a tag twice in one posting")
    reads = members.member_reads(sender, org) | {c.pair_key(pair)}
    return tx.unsigned(chain_id, c.OP_RECON_POST, sender, nonce, reads, writes, payload)
