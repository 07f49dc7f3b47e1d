"""Inter-institution reconciliation (T+0): keyed digests of bilateral records, per pair and day.

Two organizations A and B that book the same records (interbank transfers, ABS cash flows)
each post, per record, a *tag* of the record's reference and a *digest* of its fields, both
keyed hashes under a pair key ``K`` only the two of them hold. The chain joins the two
sides by tag (both land in one ``sy/`` row), so anyone can see how many records of a day
match; only A and B can tell which record is which and which field differs.

The pair (``OP_PAIR_OPEN``, ``sp/<pair>``). A member of A (or B) draws ``K``
(``suite.aead_key_bytes`` random bytes) and seals it to one active key of each
organization (``suite.seal``); the record keeps both organizations (ascending ids: side
0 is the lower id, "A", side 1 the higher, "B"), both recipient keys and sealed keys, a
public *key check* (``key_check``) and when it was opened (``PairRecord``). Payload:
``other org 16, key check 16, own recipient key, K sealed to it, other's recipient key, K
sealed to it`` (a size the suite fixes: ``open_payload_bytes``). Each party checks the
``K`` it unseals against the key check, so two parties that pass hold the same ``K`` (the
opener could otherwise seal different keys to the two sides); the check is a keyed hash
of a fixed label under ``K``: it says nothing about ``K``. Refusals: the payload's size is fixed by the suite
(``BAD_PAYLOAD``); a pair with itself or with an inactive organization is ``BAD_GRANTEE``
(the sharing app's "bad counterparty"), an unknown one ``UNKNOWN_ORG``; both recipient
keys must be active keys of their organizations (``BAD_RECIPIENT_KEY``); one pair per two
organizations (``PAIR_EXISTS``).

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
  pair || u32 day || tag || u8 side`` (``recon_report.vector_aad``), stored as ``nonce ||
  ciphertext``: only A and B learn which field of a mismatched record differs, and a
  side's vector cannot be passed off as the other side's, another record's or another
  day's;
* key check (``LABEL_CHECK``): ``keyed_hash(K, label)[:16]``, public (see above).

The postings (``OP_RECON_POST``, ``sy/<pair><day u32><tag>``). A member of A or B posts up
to ``recon_posts_per_tx_max`` records of one UTC day (``ms // day_ms``; a day after the
block's day + 1 is ``BAD_DAY``; earlier days are open, for late postings and
corrections); each writes its side of the record's row. Posting a tag this side already
posted is ``ALREADY_POSTED`` unless the amend flag is set: then the side is replaced (a
correction) or written if absent, and a *withdrawal* (a zero digest and no vector,
``withdrawal``) takes the side off (a record posted in error; a row with no side left is
deleted). The event (``sh.recon.post``: pair, day, records, side, amended) counts the
sides replaced or withdrawn. The row keeps both sides (``Row``): whether each side posted,
its digest, the height and time of its last posting, and its sealed field vector. Payload
(``parse_post``): ``pair 16, u32 day, u8 amend, u8 n`` then per record ``tag 16, digest
16, u8 len, nonce || sealed field vector``.

Who sees what: anyone sees a pair's two organizations, how many records each side posted
per day, their tags and which rows' digests agree (matched / mismatched / missing on one
side), the number of fields of each record (the vector's length) and when each side
posted. Only holders of ``K`` (A and B) map tags to references (by tagging their own
records), and see which fields of a mismatched record differ.

Limits. Each party holds the digest and field keys, so it can test guesses of the fields
of a record only the other side posted (records both should have, by nature). A match is
each side's signed assertion, not a proof that it holds the record: digests are public,
so a side could post a copy of the other's digest. A tag does not depend on the day, so a
record posted on two days is linkable. There is no re-keying of a pair: a recipient key
revoked after the opening still unseals ``K``, and a new ``K`` needs a new pair (issue 18,
step 4, leaves rotation out).
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
SIDES = (0, 1)  # 0: the pair's lower organization id ("A"), 1: the higher ("B")

_PAIR_HEAD = struct.Struct("<16s16sQQ16s")  # org a, org b, opened height, opened ms, key check
_POST_HEAD = struct.Struct("<16sIBB")  # pair, day, amend, n
_ROW_HEAD = struct.Struct("<BB16s16sQQQQBB")  # present a/b, digest a/b, height a/b, ms a/b, len a/b
_EVENT = struct.Struct("<16sIBBB")  # pair, day, n, side, amended
_NO_DIGEST = bytes(16)
ROW_HEAD_BYTES = _ROW_HEAD.size
assert ROW_HEAD_BYTES == 68


def sealed_key_bytes(suite: CryptoSuite) -> int:
    """A pair key sealed to one recipient key."""
    return suite.aead_key_bytes + suite.seal_overhead


def open_payload_bytes(suite: CryptoSuite) -> int:
    """``OP_PAIR_OPEN``'s payload: other org, key check, and per org a key and its sealed K."""
    return c.id_bytes + check_bytes + 2 * (suite.public_key_bytes + sealed_key_bytes(suite))


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


# --- the pair ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class PairRecord:
    """``sp/<pair>``: the two organizations (ascending), when opened, the key check, and
    per organization (same order) the recipient key and the pair key sealed to it."""

    orgs: tuple[bytes, bytes]
    height: int
    timestamp_ms: int
    check: bytes
    recipients: tuple[bytes, bytes]
    sealed: tuple[bytes, bytes]

    def encode(self) -> bytes:
        head = _PAIR_HEAD.pack(self.orgs[0], self.orgs[1], self.height, self.timestamp_ms, self.check)
        return head + self.recipients[0] + self.sealed[0] + self.recipients[1] + self.sealed[1]

    @classmethod
    def decode(cls, raw: bytes, public_key_bytes: int = 32) -> PairRecord:
        raw = bytes(raw)
        rest = len(raw) - _PAIR_HEAD.size
        if rest <= 0 or rest % 2 or rest // 2 <= public_key_bytes:
            raise ValueError("not a pair record")
        a, b, height, ms, check = _PAIR_HEAD.unpack_from(raw)
        half = rest // 2
        pos, k = _PAIR_HEAD.size, public_key_bytes
        one, two = raw[pos : pos + half], raw[pos + half :]
        return cls((a, b), height, ms, check, (one[:k], two[:k]), (one[k:], two[k:]))

    def side_of(self, org: bytes) -> int | None:
        """0 or 1 for one of the pair's organizations, None for any other."""
        return self.orgs.index(org) if org in self.orgs else None


@OPS.op(c.OP_PAIR_OPEN, "sh.pair_open")
def _pair_open(ctx: TxContext) -> None:
    suite, p = ctx.suite, bytes(ctx.payload)
    if len(p) != open_payload_bytes(suite):
        raise OpFailed(Reject.BAD_PAYLOAD, "pair open payload size")
    k, s = suite.public_key_bytes, sealed_key_bytes(suite)
    other, check = p[:16], p[16:32]
    own_key, own_sealed = p[32 : 32 + k], p[32 + k : 32 + k + s]
    pos = 32 + k + s
    other_key, other_sealed = p[pos : pos + k], p[pos + k : pos + k + s]
    own, _ = members.member(ctx)
    if other == own:
        raise OpFailed(SharingReject.BAD_GRANTEE, "a pair with itself")
    members.active_org(ctx, other)
    pid = c.pair_id(own, other, suite=suite)
    key = c.pair_key(pid)
    if ctx.get(key) is not None:
        raise OpFailed(SharingReject.PAIR_EXISTS)
    members.recipient(ctx, own, own_key)
    members.recipient(ctx, other, other_key)
    sides = sorted([(own, own_key, own_sealed), (other, other_key, other_sealed)])
    record = PairRecord(
        (sides[0][0], sides[1][0]),
        ctx.height,
        ctx.timestamp_ms,
        check,
        (sides[0][1], sides[1][1]),
        (sides[0][2], sides[1][2]),
    )
    ctx.put(key, record.encode())
    ctx.emit(b"sh.pair.open", pid + record.orgs[0] + record.orgs[1])


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
        raise ValueError("pair open: a field of the wrong size for this suite")
    payload = other + check + own_key + own_sealed + other_key + other_sealed
    pid = c.pair_id(org, other, suite=suite)
    reads = members.member_reads(sender, org) | {
        fc.org_key(other),
        fc.key_key(own_key),
        fc.key_key(other_key),
    }
    return tx.unsigned(chain_id, c.OP_PAIR_OPEN, sender, nonce, reads, {c.pair_key(pid)}, payload)


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
    """``sy/<pair><day><tag>``: each side's last posting of the record (None: not posted).

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


def parse_post(payload: bytes, suite: CryptoSuite) -> tuple[bytes, int, int, list[Entry]]:
    """(pair, day, amend, entries) of an ``OP_RECON_POST`` payload; ``ValueError`` for
    anything but a canonical one (amend 0 or 1, 1..``recon_posts_per_tx_max`` records,
    vectors of a vector's size, no tag twice, nothing after the last record)."""
    p = bytes(payload)
    if len(p) < _POST_HEAD.size or len(p) > payload_bytes_max:
        raise ValueError("post payload size")
    pid, day, amend, n = _POST_HEAD.unpack_from(p)
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
    return pid, day, amend, entries


@OPS.op(c.OP_RECON_POST, "sh.recon_post")
def _recon_post(ctx: TxContext) -> None:
    try:
        pid, day, amend, entries = parse_post(ctx.payload, ctx.suite)
    except ValueError as exc:
        raise OpFailed(Reject.BAD_PAYLOAD, str(exc)) from None
    org, _ = members.member(ctx)
    raw = ctx.get(c.pair_key(pid))
    if raw is None:
        raise OpFailed(SharingReject.NO_SUCH_PAIR)
    side = PairRecord.decode(raw, ctx.suite.public_key_bytes).side_of(org)
    if side is None:
        raise OpFailed(SharingReject.NOT_A_PARTY)
    if day > ctx.timestamp_ms // c.day_ms + 1:
        raise OpFailed(SharingReject.BAD_DAY)
    amended = 0
    for entry in entries:
        key = c.posting_key(pid, day, entry.tag)
        old = ctx.get(key)
        row, had = merge(old, side, entry, ctx.height, ctx.timestamp_ms)
        if had and not amend:
            raise OpFailed(SharingReject.ALREADY_POSTED, entry.tag.hex())
        amended += had
        if row is not None:
            ctx.put(key, row)
        elif old is not None:
            ctx.delete(key)
    ctx.emit(b"sh.recon.post", _EVENT.pack(pid, day, len(entries), side, amended))


def decode_post_event(data: bytes) -> tuple[bytes, int, int, int, int]:
    """(pair, day, records, side, amended) of a ``sh.recon.post`` event."""
    return _EVENT.unpack(data)


def post_payload(pair: bytes, day: int, entries: list[Entry], amend: bool = False) -> bytes:
    if len(pair) != c.id_bytes or not 0 <= day < 1 << 32:
        raise ValueError("a pair id is 16 bytes, a day a u32")
    if not 1 <= len(entries) <= c.recon_posts_per_tx_max:
        raise ValueError(f"1..{c.recon_posts_per_tx_max} records per posting")
    return _POST_HEAD.pack(pair, day, int(amend), len(entries)) + b"".join(e.encode() for e in entries)


def post_bytes(entries: list[Entry]) -> int:
    """The payload size of a posting of ``entries``."""
    return _POST_HEAD.size + sum(entry_bytes(e) for e in entries)


def recon_post(
    chain_id: int,
    sender: bytes,
    org: bytes,
    nonce: int,
    pair: bytes,
    day: int,
    entries: list[Entry],
    amend: bool = False,
) -> tx.Tx:
    """Post ``entries`` (one side's records of ``day``) to ``pair``; ``ValueError`` if they
    do not fit one posting (``recon_posts_per_tx_max`` records, ``payload_bytes_max``)."""
    payload = post_payload(pair, day, entries, amend)
    if len(payload) > payload_bytes_max:
        raise ValueError(f"a posting of {len(payload)} bytes; at most {payload_bytes_max}")
    writes = {c.posting_key(pair, day, e.tag) for e in entries}
    if len(writes) != len(entries):
        raise ValueError("a tag twice in one posting")
    reads = members.member_reads(sender, org) | {c.pair_key(pair)}
    return tx.unsigned(chain_id, c.OP_RECON_POST, sender, nonce, reads, writes, payload)
