"""Reconciliation reports and the digests behind them: pure functions (no ledger, no I/O).

A side's posting of one record (``entry``) is computed from the pair key's derived keys
(``recon.derive``): the record's *tag* (its reference, keyed), its *digest* (its fields,
keyed, bound to the tag) and its *field vector* (one 8-byte keyed digest per field, in
sorted-name order) sealed with the suite's authenticated cipher (``recon`` docstring).

A day's rows under one generation of the pair key (``sy/<pair><generation><day><tag>``:
both sides of each record, ``recon.Row``) give the *public report* (``report``): which tags
match (both sides posted, equal digests), which mismatch (both posted, digests differ) and
which are missing on side A or side B, with the mismatched rows' sealed field vectors.
Anyone who can read the state can compute it; it names no reference and no field. A party
holding the pair key then explains each mismatch (``explain``: opens both sides' vectors
and compares them field by field, giving the differing field names) and maps tags back to
its own references (``tags``: the tags of its own records): the ``Report`` a party reads
(``party_report``). A report is of one generation: after a re-key (``recon`` docstring) a
day has a report per generation, each explained with that generation's key.

Canonical fields: a record is a mapping of field names (str, 1..64 UTF-8 bytes) to values:
``bytes`` as they are, ``str`` as UTF-8, ``int`` as its decimal digits (so ``100`` and
``"100"`` are the same value; no bools, floats or other types: format amounts yourself),
at most ``recon.field_value_bytes_max`` bytes each, 1..``codes.recon_fields_max`` fields.
Each field is ``u8 len(name) || name || u32 len(value) || value``, fields in ascending
name order. Both parties must agree on the names (a schema) and on the formatting of each
value; any difference is a mismatch, which is the point.

Speed (bench/recon.py, 1,000,000 record pairs, CPython 3.11): ``report`` classifies a row
by slicing the fixed head of its bytes, no decoding: about 0.5 s; a party's view of it
(``explain`` + ``party_report``, one dict lookup per tag) about 1 s more; ``join``, the
same classification over two tag -> digest mappings (one lookup per tag of A, then B's
tags A lacks), about 0.5 s. A numpy path (the rows' heads as one array) was measured
slower: turning the selected rows back into byte strings costs more than it saves.
Computing a side's entries is the costly part (about 18 us a record of 5 fields: seven
keyed hashes and one authenticated encryption), which each side does as it books.
"""

from __future__ import annotations

import dataclasses
import secrets
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from tierchain.apps.sharing import codes as c
from tierchain.apps.sharing import recon
from tierchain.crypto import CryptoSuite

FieldValue = bytes | str | int
Ref = bytes | str
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_AAD_TAG = b"tierchain 2026 recon field vector"
_FD = recon.field_digest_bytes


class ReconError(ValueError):
    """A record, reference or field that cannot be reconciled (size, type, count)."""


# --- digests of one record ---------------------------------------------------------------
def ref_bytes(ref: Ref) -> bytes:
    """A reference as bytes (str: UTF-8), 1..``recon.ref_bytes_max`` bytes."""
    raw = ref.encode() if isinstance(ref, str) else ref
    if not isinstance(raw, bytes) or not 1 <= len(raw) <= recon.ref_bytes_max:
        raise ReconError(f"a reference is 1..{recon.ref_bytes_max} bytes (or a str): {ref!r:.80}")
    return raw


def value_bytes(value: FieldValue) -> bytes:
    """A field value's canonical bytes (module docstring)."""
    kind = type(value)
    if kind is bytes:
        raw = value
    elif kind is str:
        raw = value.encode()
    elif isinstance(value, bytes | str):  # subclasses
        raw = bytes(value) if isinstance(value, bytes) else str(value).encode()
    elif isinstance(value, int) and not isinstance(value, bool):
        raw = str(int(value)).encode()
    else:
        raise ReconError(f"a field value is bytes, str or int, not {type(value).__name__}")
    if len(raw) > recon.field_value_bytes_max:
        raise ReconError(f"a field value is at most {recon.field_value_bytes_max} bytes")
    return raw


_names: dict[str, bytes] = {}  # field name -> u8 len || name (a schema has few names)
_names_max = 4096


def _name_prefix(name: str) -> bytes:
    prefix = _names.get(name)
    if prefix is None:
        if not isinstance(name, str):
            raise ReconError(f"a field name is a str, not {type(name).__name__}")
        raw = name.encode()
        if not 1 <= len(raw) <= recon.field_name_bytes_max:
            raise ReconError(f"a field name is 1..{recon.field_name_bytes_max} bytes: {name!r:.80}")
        if len(_names) >= _names_max:
            _names.clear()
        prefix = _names[name] = bytes((len(raw),)) + raw
    return prefix


def encoded_fields(fields: Mapping[str, FieldValue]) -> list[tuple[str, bytes]]:
    """(name, canonical bytes of the field) in ascending name order."""
    if not 1 <= len(fields) <= c.recon_fields_max:
        raise ReconError(f"a record has 1..{c.recon_fields_max} fields, got {len(fields)}")
    out = []
    pack = _U32.pack
    for name in sorted(fields):
        value = value_bytes(fields[name])
        out.append((name, _name_prefix(name) + pack(len(value)) + value))
    return out


def canonical(fields: Mapping[str, FieldValue]) -> bytes:
    """A record's canonical bytes: its fields in ascending name order."""
    return b"".join(f for _, f in encoded_fields(fields))


def tag_of(keys: recon.PairKeys, suite: CryptoSuite, ref: Ref) -> bytes:
    """The tag of reference ``ref`` under a pair's keys."""
    return suite.keyed_hash(keys.tag, ref_bytes(ref))[: c.tag_bytes]


def vector_aad(pair: bytes, generation: int, day: int, tag: bytes, side: int) -> bytes:
    """What a sealed field vector is bound to: pair, generation, day, tag and side."""
    return _AAD_TAG + pair + _U16.pack(generation) + _U32.pack(day) + tag + bytes((side,))


def field_vector(
    keys: recon.PairKeys, suite: CryptoSuite, tag: bytes, encoded: list[tuple[str, bytes]]
) -> bytes:
    """The field vector (plaintext): 8 bytes per field, in ascending name order."""
    h, k = suite.keyed_hash, keys.field
    return b"".join(h(k, tag + f)[:_FD] for _, f in encoded)


def entry(
    keys: recon.PairKeys,
    suite: CryptoSuite,
    pair: bytes,
    generation: int,
    day: int,
    side: int,
    ref: Ref,
    fields: Mapping[str, FieldValue],
) -> recon.Entry:
    """What ``side`` posts for its record ``ref`` with ``fields`` on ``day`` under the key
    (``keys``) of ``generation``."""
    tag = tag_of(keys, suite, ref)
    encoded = encoded_fields(fields)
    digest = suite.keyed_hash(keys.digest, tag + b"".join(f for _, f in encoded))[: recon.digest_bytes]
    nonce = secrets.token_bytes(suite.aead_nonce_bytes)
    sealed = suite.aead_seal(
        keys.vector,
        nonce,
        field_vector(keys, suite, tag, encoded),
        vector_aad(pair, generation, day, tag, side),
    )
    return recon.Entry(tag, digest, nonce + sealed)


def entries(
    keys: recon.PairKeys,
    suite: CryptoSuite,
    pair: bytes,
    generation: int,
    day: int,
    side: int,
    records: Mapping[Ref, Mapping[str, FieldValue]],
) -> list[tuple[Ref, recon.Entry]]:
    """``entry`` of each record, in the mapping's order; ``ReconError`` if two references
    have one tag (they are the same reference: ``"x"`` and ``b"x"``)."""
    out = [
        (ref, entry(keys, suite, pair, generation, day, side, ref, fields)) for ref, fields in records.items()
    ]
    if len({e.tag for _, e in out}) != len(out):
        raise ReconError("two references with one tag (the same reference as str and bytes?)")
    return out


def open_vector(
    keys: recon.PairKeys,
    suite: CryptoSuite,
    pair: bytes,
    generation: int,
    day: int,
    tag: bytes,
    side: int,
    sealed: bytes,
) -> bytes | None:
    """A side's field vector (plaintext), None if it does not open under these keys (or
    was sealed for another pair, generation, day, tag or side)."""
    n = suite.aead_nonce_bytes
    if len(sealed) <= n:
        return None
    return suite.aead_open(keys.vector, sealed[:n], sealed[n:], vector_aad(pair, generation, day, tag, side))


# --- the public report ----------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Mismatched:
    """A row whose sides disagree: the tag and each side's sealed field vector."""

    tag: bytes
    vector_a: bytes
    vector_b: bytes


@dataclasses.dataclass
class PublicReport:
    """One pair's rows of one day under one generation of its key, classified: tags only
    (module docstring). Side A is the pair's lower organization id, side B the higher."""

    pair: bytes
    generation: int
    day: int
    matched: list[bytes]
    mismatched: list[Mismatched]
    missing_on_a: list[bytes]  # posted by B only
    missing_on_b: list[bytes]  # posted by A only

    @property
    def counts(self) -> dict[str, int]:
        m, x, ma, mb = len(self.matched), len(self.mismatched), len(self.missing_on_a), len(self.missing_on_b)
        return {
            "rows": m + x + ma + mb,
            "matched": m,
            "mismatched": x,
            "missing_on_a": ma,
            "missing_on_b": mb,
            "posted_a": m + x + mb,
            "posted_b": m + x + ma,
        }

    def extend(self, other: PublicReport) -> None:
        """Add ``other``'s rows (the next page of the same pair, generation and day)."""
        if (other.pair, other.generation, other.day) != (self.pair, self.generation, self.day):
            raise ReconError("pages of different pairs, generations or days")
        self.matched += other.matched
        self.mismatched += other.mismatched
        self.missing_on_a += other.missing_on_a
        self.missing_on_b += other.missing_on_b

    def to_json(self) -> dict[str, Any]:
        return {
            "pair": self.pair.hex(),
            "generation": self.generation,
            "day": self.day,
            "counts": self.counts,
            "matched": [t.hex() for t in self.matched],
            "mismatched": [
                {"tag": m.tag.hex(), "a": m.vector_a.hex(), "b": m.vector_b.hex()} for m in self.mismatched
            ],
            "missing_on_a": [t.hex() for t in self.missing_on_a],
            "missing_on_b": [t.hex() for t in self.missing_on_b],
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> PublicReport:
        """The report ``to_json`` (or the node's endpoint) gave; ``ReconError`` if malformed."""
        try:
            tags = {
                k: [_hex(t, c.tag_bytes) for t in doc[k]] for k in ("matched", "missing_on_a", "missing_on_b")
            }
            mismatched = [
                Mismatched(_hex(m["tag"], c.tag_bytes), bytes.fromhex(m["a"]), bytes.fromhex(m["b"]))
                for m in doc["mismatched"]
            ]
            generation, day = _int(doc["generation"], recon.generation_max), _int(doc["day"], (1 << 32) - 1)
            return cls(_hex(doc["pair"], c.id_bytes), generation, day, tags["matched"], mismatched,
                       tags["missing_on_a"], tags["missing_on_b"])  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise ReconError(f"not a reconciliation report: {exc}") from None


def _int(value: Any, most: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= most:
        raise ValueError(f"an integer in 0..{most}")
    return value


def _hex(text: str, size: int) -> bytes:
    raw = bytes.fromhex(text)
    if len(raw) != size:
        raise ValueError(f"{size} bytes expected")
    return raw


def report(pair: bytes, generation: int, day: int, postings: Iterable[tuple[bytes, bytes]]) -> PublicReport:
    """The public report of ``postings``: (state key ``sy/<pair><generation><day><tag>`` or
    bare tag, row bytes) pairs of one pair, generation and day, as a scan gives them. A row
    is classified by its fixed head (``recon.Row``): present flags at 0 and 1, digests at
    2..18 and 18..34."""
    matched: list[bytes] = []
    missing_on_a: list[bytes] = []
    missing_on_b: list[bytes] = []
    mismatched_rows: list[tuple[bytes, bytes]] = []
    add_match, add_ma, add_mb, add_x = (
        matched.append,
        missing_on_a.append,
        missing_on_b.append,
        mismatched_rows.append,
    )
    for key, raw in postings:
        tag = key[-16:]
        if raw[0]:
            if raw[1]:
                if raw[2:18] == raw[18:34]:
                    add_match(tag)
                else:
                    add_x((tag, raw))
            else:
                add_mb(tag)
        else:
            add_ma(tag)
    mismatched = []
    for tag, raw in mismatched_rows:
        row = recon.Row.decode(raw)
        assert row.a is not None and row.b is not None
        mismatched.append(Mismatched(tag, row.a.vector, row.b.vector))
    return PublicReport(pair, generation, day, matched, mismatched, missing_on_a, missing_on_b)


def join(side_a: Mapping[bytes, bytes], side_b: Mapping[bytes, bytes]) -> dict[str, list[bytes]]:
    """The same classification over two tag -> digest mappings (one per side, as each side
    computes them, before anything is posted): tags matched, mismatched, missing on A
    (B's only) and missing on B (A's only); A's order, then B's for missing on A."""
    get = side_b.get
    matched: list[bytes] = []
    mismatched: list[bytes] = []
    missing_on_b: list[bytes] = []
    add_match, add_x, add_mb = matched.append, mismatched.append, missing_on_b.append
    for tag, digest in side_a.items():
        other = get(tag)
        if other is None:
            add_mb(tag)
        elif other == digest:
            add_match(tag)
        else:
            add_x(tag)
    both = len(matched) + len(mismatched)
    missing_on_a = [t for t in side_b if t not in side_a] if len(side_b) > both else []
    return {
        "matched": matched,
        "mismatched": mismatched,
        "missing_on_a": missing_on_a,
        "missing_on_b": missing_on_b,
    }


# --- what a party holding the pair key sees --------------------------------------------------
FieldNames = Sequence[str] | Mapping[bytes, Sequence[str]] | Callable[[bytes], Sequence[str] | None]


def differing(vector_a: bytes, vector_b: bytes) -> list[int] | None:
    """The indices of the fields two field vectors disagree on (None: different lengths)."""
    if len(vector_a) != len(vector_b) or len(vector_a) % _FD:
        return None
    return [i // _FD for i in range(0, len(vector_a), _FD) if vector_a[i : i + _FD] != vector_b[i : i + _FD]]


def explain(
    mismatched: Iterable[Mismatched],
    pair_key: bytes,
    suite: CryptoSuite,
    field_names: FieldNames,
    *,
    pair: bytes,
    generation: int,
    day: int,
) -> dict[bytes, tuple[str, ...] | None]:
    """Per mismatched tag, the names of the fields that differ, for a holder of the pair key
    of ``generation``.

    ``field_names``: the agreed schema (names in any order; sorted here), or per tag the
    names of that record (a mapping or a function; a party knows its own records' fields).
    None for a row that cannot be explained: a vector that does not open under this key
    (not posted by a holder of it, or for another pair, generation, day, tag or side), vectors of
    different lengths (the sides disagree on the field set), or a length that is not the
    schema's."""
    keys = recon.derive(pair_key, suite)
    out: dict[bytes, tuple[str, ...] | None] = {}
    for m in mismatched:
        if callable(field_names):
            names = field_names(m.tag)
        elif isinstance(field_names, Mapping):
            names = field_names.get(m.tag)
        else:
            names = field_names
        va = open_vector(keys, suite, pair, generation, day, m.tag, 0, m.vector_a)
        vb = open_vector(keys, suite, pair, generation, day, m.tag, 1, m.vector_b)
        diff = None if va is None or vb is None else differing(va, vb)
        if names is None or diff is None or len(va or b"") != _FD * len(names):
            out[m.tag] = None
            continue
        ordered = sorted(names)
        out[m.tag] = tuple(ordered[i] for i in diff)
    return out


# One record of a party's report: (its reference, None for a tag the party cannot map, i.e.
# not one of its records; its tag). Plain tuples: a report of a million records builds a
# million of them, three times faster than named ones.
Item = tuple[Ref | None, bytes]


def item_json(item: Item) -> dict[str, Any]:
    return {"ref": _ref_json(item[0]), "tag": item[1].hex()}


@dataclasses.dataclass(frozen=True)
class Mismatch:
    """A mismatched record: its reference, tag and the names of the differing fields
    (``fields`` empty and ``explained`` False: the vectors do not tell, see ``explain``)."""

    ref: Ref | None
    tag: bytes
    fields: tuple[str, ...]
    explained: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"ref": _ref_json(self.ref), "tag": self.tag.hex(), "fields": list(self.fields),
                "explained": self.explained}  # fmt: skip


def _ref_json(ref: Ref | None) -> str | dict[str, str] | None:
    if ref is None or isinstance(ref, str):
        return ref
    return {"hex": ref.hex()}


@dataclasses.dataclass
class Report:
    """A party's reconciliation of one day (under one generation of the pair key) with its
    counterparty (``side``: its own side)."""

    pair: bytes
    generation: int
    day: int
    side: int
    matched: list[Item]
    mismatched: list[Mismatch]
    missing_on_us: list[Item]  # the counterparty posted it, we did not
    missing_on_them: list[Item]  # we posted it, the counterparty did not

    @property
    def counts(self) -> dict[str, int]:
        return {
            "matched": len(self.matched),
            "mismatched": len(self.mismatched),
            "missing_on_us": len(self.missing_on_us),
            "missing_on_them": len(self.missing_on_them),
        }

    @property
    def clean(self) -> bool:
        """Every record matched."""
        return not (self.mismatched or self.missing_on_us or self.missing_on_them)

    def to_json(self) -> dict[str, Any]:
        return {
            "pair": self.pair.hex(),
            "generation": self.generation,
            "day": self.day,
            "side": "AB"[self.side],
            "counts": self.counts,
            "matched": [item_json(i) for i in self.matched],
            "mismatched": [m.to_json() for m in self.mismatched],
            "missing_on_us": [item_json(i) for i in self.missing_on_us],
            "missing_on_them": [item_json(i) for i in self.missing_on_them],
        }


def tags(keys: recon.PairKeys, suite: CryptoSuite, refs: Iterable[Ref]) -> dict[bytes, Ref]:
    """Tag -> reference of a party's own references (what maps a report back to them)."""
    return {tag_of(keys, suite, ref): ref for ref in refs}


def party_report(
    public: PublicReport,
    side: int,
    refs: Mapping[bytes, Ref],
    explained: Mapping[bytes, tuple[str, ...] | None],
) -> Report:
    """``public`` as ``side`` sees it: tags mapped to its references (``refs``: ``tags``),
    mismatches with the fields ``explain`` found."""
    if side not in recon.SIDES:
        raise ReconError("a side is 0 (A) or 1 (B)")
    get = refs.get

    def items(tag_list: list[bytes]) -> list[Item]:
        return list(zip(map(get, tag_list), tag_list, strict=True))

    mismatches = []
    for m in public.mismatched:
        fields = explained.get(m.tag)
        mismatches.append(Mismatch(get(m.tag), m.tag, fields or (), fields is not None))
    ours, theirs = (
        (public.missing_on_a, public.missing_on_b)
        if side == 0
        else (public.missing_on_b, public.missing_on_a)
    )
    return Report(
        public.pair,
        public.generation,
        public.day,
        side,
        items(public.matched),
        mismatches,
        items(ours),
        items(theirs),
    )
