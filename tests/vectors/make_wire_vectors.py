"""Generate tests/vectors/wire_valid.json and wire_invalid.json (deterministic).

    PYTHONPATH=core python tests/vectors/make_wire_vectors.py

Keys come from fixed Ed25519 seeds (PyNaCl), signatures are Ed25519 over the
tx id, and no randomness is used, so the output is byte-identical on every
run; tests/wire/test_wire.py checks that ``build()`` still equals the committed
files, so an accidental change of the format (or of this script) fails.

Invalid vectors are built with ``raw_body`` (no checks) and carry the code a
decoder must return; ``build()`` asserts ``tierchain.wire.tx.decode`` agrees,
so the expectations here are stated independently of the decoder.
"""

from __future__ import annotations

import dataclasses
import json
import struct
import sys
from pathlib import Path

import nacl.signing

from tierchain import limits
from tierchain.errors import Reject, WireError
from tierchain.wire import tx as txcodec

HERE = Path(__file__).resolve().parent
FILES = ("wire_valid.json", "wire_invalid.json")
SIG = limits.signature_bytes


def signer(i: int) -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey(bytes([i]) * 32)


def raw_body(
    *,
    version: int = limits.wire_version,
    chain_id: int = 7,
    shard_id: int = 1,
    op: int = 1,
    sender: bytes = b"\x11" * 32,
    nonce: int = 1,
    expires_at: int = 0,
    reads: tuple[bytes, ...] = (),
    writes: tuple[bytes, ...] = (),
    payload: bytes = b"",
    n_read: int | None = None,
    n_write: int | None = None,
    payload_len: int | None = None,
) -> bytes:
    """A body with every field as given, checked against nothing."""
    out = [
        struct.pack(
            "<BIHH32sQQBB",
            version,
            chain_id,
            shard_id,
            op,
            sender,
            nonce,
            expires_at,
            len(reads) if n_read is None else n_read,
            len(writes) if n_write is None else n_write,
        )
    ]
    for key in reads + writes:
        out.append(bytes((len(key),)) + key)
    out.append(struct.pack("<I", len(payload) if payload_len is None else payload_len))
    out.append(payload)
    return b"".join(out)


def sign(body: bytes, who: int = 1) -> bytes:
    return body + signer(who).sign(txcodec.tx_id(body)).signature


def keys(prefix: bytes, n: int, length: int = 8) -> tuple[bytes, ...]:
    return tuple(prefix + b"%0*d" % (length - len(prefix), i) for i in range(n))


def valid_txs() -> list[tuple[str, txcodec.Tx]]:
    def tx(who: int, **kw) -> txcodec.Tx:
        pk = bytes(signer(who).verify_key)
        base = dict(chain_id=7, shard_id=1, op=1, sender=pk, nonce=1)
        base.update(kw)
        t = txcodec.Tx(**base)
        return dataclasses.replace(t, signature=signer(who).sign(t.tx_id()).signature)

    kmax = limits.key_bytes_max
    half = limits.tx_keys_max // 2
    return [
        ("minimal_zero_keys_zero_payload", tx(1)),
        (
            "one_read_one_write",
            tx(2, nonce=2, reads=(b"acct/alice",), writes=(b"acct/bob",), payload=b"pay 10"),
        ),
        ("reads_only", tx(3, reads=(b"a", b"ab", b"b"))),
        ("writes_only", tx(3, nonce=9, writes=(b"x", b"xy", b"y"))),
        ("prefix_orders_first", tx(4, reads=(b"k", b"k\x00", b"k\x00\x00"), writes=(b"j", b"l"))),
        ("high_bytes_in_keys", tx(4, nonce=2, reads=(b"\x7f", b"\x80", b"\xff"), writes=(b"\x00",))),
        (
            "max_integers",
            tx(
                5, chain_id=2**32 - 1, shard_id=2**16 - 1, op=2**16 - 1, nonce=2**64 - 1, expires_at=2**64 - 1
            ),
        ),
        ("key_of_key_bytes_max", tx(6, reads=(b"r" * kmax,), writes=(b"w" * kmax,))),
        ("key_of_one_byte", tx(6, nonce=2, writes=(b"\x00",))),
        ("tx_keys_max_keys", tx(7, reads=keys(b"r", half), writes=keys(b"w", limits.tx_keys_max - half))),
        ("tx_keys_max_all_reads", tx(7, nonce=2, reads=keys(b"r", limits.tx_keys_max))),
        ("payload_bytes_max", tx(8, payload=bytes(range(256)) * (limits.payload_bytes_max // 256))),
        (
            "largest_possible_tx",
            tx(
                9,
                reads=keys(b"r", half, kmax),
                writes=keys(b"w", limits.tx_keys_max - half, kmax),
                payload=b"\xab" * limits.payload_bytes_max,
            ),
        ),
    ]


def invalid_txs() -> list[tuple[str, bytes, Reject]]:
    R = Reject
    good_body = raw_body(reads=(b"acct/a",), writes=(b"acct/b",), payload=b"hello")
    good = sign(good_body)
    big_keys = raw_body(reads=(b"A" * 64, b"B" * 64), writes=(b"C" * 64,), payload=b"p" * 100)
    big = sign(big_keys)
    largest = next(t for n, t in valid_txs() if n == "largest_possible_tx").encode()
    out: list[tuple[str, bytes, Reject]] = [
        ("empty", b"", R.TOO_SHORT),
        ("one_byte", b"\x01", R.TOO_SHORT),
        ("tx_bytes_min_minus_one", good[: limits.tx_bytes_min - 1], R.TOO_SHORT),
        ("tx_bytes_max_plus_one", largest + b"\x00" * (limits.tx_bytes_max + 1 - len(largest)), R.TOO_LARGE),
        # The largest valid tx is below tx_bytes_max, so a frame of exactly
        # tx_bytes_max bytes passes the size check and fails on what follows.
        ("exactly_tx_bytes_max", largest + b"\x00" * (limits.tx_bytes_max - len(largest)), R.TRAILING_BYTES),
        ("version_0", sign(raw_body(version=0)), R.BAD_VERSION),
        ("version_2", sign(raw_body(version=2)), R.BAD_VERSION),
        ("version_255", sign(raw_body(version=255)), R.BAD_VERSION),
        ("op_0", sign(raw_body(op=0)), R.BAD_OP),
        ("too_many_keys", sign(raw_body(reads=keys(b"r", 17), writes=keys(b"w", 16))), R.TOO_MANY_KEYS),
        ("too_many_keys_counts_only", sign(raw_body(n_read=200, n_write=200)), R.TOO_MANY_KEYS),
        ("key_length_0", sign(raw_body(reads=(b"",))), R.BAD_KEY_LENGTH),
        ("key_length_65", sign(raw_body(writes=(b"k" * (limits.key_bytes_max + 1),))), R.BAD_KEY_LENGTH),
        ("reads_unsorted", sign(raw_body(reads=(b"b", b"a"))), R.KEYS_NOT_CANONICAL),
        ("writes_unsorted", sign(raw_body(writes=(b"b", b"a"))), R.KEYS_NOT_CANONICAL),
        ("reads_duplicate", sign(raw_body(reads=(b"a", b"a"))), R.KEYS_NOT_CANONICAL),
        ("writes_duplicate", sign(raw_body(writes=(b"a", b"b", b"b"))), R.KEYS_NOT_CANONICAL),
        ("longer_before_its_prefix", sign(raw_body(reads=(b"ab", b"a"))), R.KEYS_NOT_CANONICAL),
        ("key_in_both_sets", sign(raw_body(reads=(b"a", b"k"), writes=(b"k", b"z"))), R.KEY_IN_BOTH_SETS),
        (
            "key_in_both_sets_last",
            sign(raw_body(reads=(b"a", b"z"), writes=(b"b", b"z"))),
            R.KEY_IN_BOTH_SETS,
        ),
        (
            "payload_too_large_declared",
            sign(raw_body(payload_len=limits.payload_bytes_max + 1)),
            R.PAYLOAD_TOO_LARGE,
        ),
        ("payload_len_u32_max", sign(raw_body(payload_len=2**32 - 1)), R.PAYLOAD_TOO_LARGE),
        ("payload_longer_than_declared", sign(raw_body(payload=b"abc", payload_len=2)), R.TRAILING_BYTES),
        ("trailing_byte", good + b"\x00", R.TRAILING_BYTES),
        ("missing_last_signature_byte", good[:-1], R.TRUNCATED),
        ("payload_shorter_than_declared", sign(raw_body(payload=b"abc", payload_len=80)), R.TRUNCATED),
        # The missing keys' length bytes are read from what follows: payload_len 0.
        ("key_count_more_than_keys", sign(raw_body(reads=(b"a",), n_read=3)), R.BAD_KEY_LENGTH),
        # --- precedence: several faults, the first check in the order wins ---
        ("precedence_too_large_over_bad_version", b"\x00" * (limits.tx_bytes_max + 1), R.TOO_LARGE),
        ("precedence_version_over_op", sign(raw_body(version=9, op=0)), R.BAD_VERSION),
        ("precedence_op_over_too_many_keys", sign(raw_body(op=0, n_read=40)), R.BAD_OP),
        ("precedence_too_many_keys_over_key_length", sign(raw_body(reads=(b"",) * 33)), R.TOO_MANY_KEYS),
        ("precedence_key_length_over_order", sign(raw_body(reads=(b"b", b"a", b""))), R.BAD_KEY_LENGTH),
        (
            "precedence_write_order_over_both_sets",
            sign(raw_body(reads=(b"a",), writes=(b"b", b"a"))),
            R.KEYS_NOT_CANONICAL,
        ),
        (
            "precedence_both_sets_over_payload_too_large",
            sign(raw_body(reads=(b"a",), writes=(b"a",), payload_len=10**6)),
            R.KEY_IN_BOTH_SETS,
        ),
        (
            "precedence_payload_too_large_over_truncated",
            raw_body(payload_len=limits.payload_bytes_max + 1) + b"\x00" * SIG,
            R.PAYLOAD_TOO_LARGE,
        ),
    ]
    # Truncated at every field boundary and inside every field: a prefix
    # shorter than tx_bytes_min is TOO_SHORT, a longer one TRUNCATED.
    # Layout of `big`: header 0..59, keys 59..254 (65 bytes each), payload
    # length 254..258, payload 258..358, signature 358..422.
    cuts = sorted(
        {
            0,
            1,
            5,
            7,
            9,
            41,
            49,
            57,
            58,
            59,
            60,
            100,
            124,
            125,
            126,
            127,
            128,
            160,
            189,
            190,
            200,
            253,
            254,
            256,
            258,
            300,
            357,
            358,
            400,
            len(big) - 1,
        }
    )
    assert len(big) == 422
    for cut in cuts:
        want = R.TOO_SHORT if cut < limits.tx_bytes_min else R.TRUNCATED
        out.append((f"truncated_at_{cut}", big[:cut], want))
    return out


def build() -> dict[str, str]:
    """File name -> JSON text of both vector files."""
    valid = []
    for name, t in valid_txs():
        enc = t.encode()
        assert txcodec.decode(enc) == t, name
        valid.append(
            {
                "name": name,
                "hex": enc.hex(),
                "tx_id": t.tx_id().hex(),
                "fields": {
                    "version": t.version,
                    "chain_id": t.chain_id,
                    "shard_id": t.shard_id,
                    "op": t.op,
                    "sender": t.sender.hex(),
                    "nonce": t.nonce,
                    "expires_at": t.expires_at,
                    "reads": [k.hex() for k in t.reads],
                    "writes": [k.hex() for k in t.writes],
                    "payload": t.payload.hex(),
                    "signature": t.signature.hex(),
                },
            }
        )
    invalid = []
    seen = set()
    for name, data, want in invalid_txs():
        assert name not in seen, name
        seen.add(name)
        try:
            txcodec.decode(data)
        except WireError as e:
            assert e.code == want, (name, e.code, want)
        else:
            raise AssertionError(f"{name} decoded")
        invalid.append({"name": name, "hex": data.hex(), "reject": want.name})
    codes = {Reject[v["reject"]] for v in invalid}
    missing = {c for c in Reject if 1 <= c <= 11} - codes
    assert not missing, missing
    dump = lambda obj: json.dumps(obj, indent=1, sort_keys=True) + "\n"  # noqa: E731
    return {"wire_valid.json": dump(valid), "wire_invalid.json": dump(invalid)}


def main() -> int:
    for name, text in build().items():
        (HERE / name).write_text(text)
        print(f"wrote {HERE / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
