"""A local shard takes the tx ids its scheduler computed (``submit_ids``); nobody else can send them.

The scheduler decodes (parses and hashes) a batch to route it. Over the pipe to its own
shard process it sends each sub-batch's frames with their tx ids, and the shard admits
them without hashing a body again (``decode_batch(tx_ids=)``, ``Chain.submit(tx_ids=)``),
still verifying every signature. A ``ShardServer`` — reachable by any peer — refuses
``submit_ids``: a forged id would make a signature made for one body admit another.
"""

from __future__ import annotations

import dataclasses
import queue
import threading

import grpc
import numpy as np
import pytest

from cluster_world import BASE, BY_SHARD, NODE, N, transfer
from tierchain.crypto.suite import ED25519_BLAKE3
from tierchain.engine.chain import Chain
from tierchain.errors import Reject, RejectedError
from tierchain.sharding import codec as sc
from tierchain.sharding.cluster import shard_configs, submit_message
from tierchain.sharding.server import LINK_METHOD, ShardServer, ShardSession
from tierchain.wire.batch import decode_batch, gather
from tierchain.wire.tx import frame

SHARD = 0
CHAIN_ID = BASE.chain_id + SHARD
A, B = BY_SHARD[SHARD][0], BY_SHARD[SHARD][1]


def _tampered(raw: bytes) -> bytes:
    """The same transaction with its signature's last byte changed (still decodes)."""
    return raw[:-1] + bytes([raw[-1] ^ 1])


def _mixed() -> tuple[list[bytes], list[int]]:
    """A batch whose rows all decode, and the code each must get on a fresh shard."""
    first = transfer(CHAIN_ID, A, 0, B, 1)
    txs = [
        first,
        transfer(CHAIN_ID, A, 1, B, 2),
        _tampered(transfer(CHAIN_ID, B, 0, A, 3)),  # not signed by B
        transfer(CHAIN_ID, A, 5, B, 1),
        first,
        transfer(CHAIN_ID + 1, A, 2, B, 1),  # signed for the other shard's chain
    ]
    codes = [0, 0, Reject.BAD_SIGNATURE, Reject.NONCE_TOO_HIGH, Reject.DUPLICATE, Reject.WRONG_CHAIN]
    return txs, codes


class _Sink:
    """A session's replies, decoded."""

    def __init__(self) -> None:
        self.q: queue.SimpleQueue = queue.SimpleQueue()

    def __call__(self, data: bytes) -> None:
        self.q.put(sc.decode(data, sc.FROM_SHARD))

    def next(self, kind: str, timeout: float = 30) -> tuple:
        while True:
            msg = self.q.get(timeout=timeout)
            if msg[0] == kind:
                return msg


def _scheduler_part(txs: list[bytes]):
    """What the scheduler sends for a batch routed whole to one shard: ``gather`` of its rows."""
    batch = decode_batch(frame(txs))
    assert batch.ok.all()
    return gather([(batch, np.arange(len(batch)))])


@pytest.fixture
def chain(tmp_path):
    with Chain(tmp_path / "shard", shard_configs(BASE, N)[SHARD], NODE) as c:
        yield c


# --- the decoder -------------------------------------------------------------------------------------


class _NoHashing:
    """The suite's sizes, and a ``tx_ids`` that must not be called."""

    public_key_bytes = ED25519_BLAKE3.public_key_bytes
    signature_bytes = ED25519_BLAKE3.signature_bytes
    digest_bytes = ED25519_BLAKE3.digest_bytes

    def tx_ids(self, *args):
        raise AssertionError("a body was hashed although its tx id was given")


def test_decode_batch_takes_given_tx_ids_instead_of_hashing():
    txs, _ = _mixed()
    buf = frame(txs)
    want = decode_batch(buf)
    got = decode_batch(buf, suite=_NoHashing(), tx_ids=want.digest.tobytes())
    assert got.buf == want.buf
    for field in dataclasses.fields(want):
        if field.name != "buf":
            a, b = getattr(got, field.name), getattr(want, field.name)
            assert a.dtype == b.dtype and np.array_equal(a, b), field.name
    assert got.digest.flags.writeable  # like a decoded batch's column, not a view of the message
    with pytest.raises(ValueError, match="tx ids"):
        decode_batch(buf, suite=_NoHashing(), tx_ids=want.digest.tobytes()[:-32])  # one id short
    with pytest.raises(ValueError, match="1 not decoded"):
        decode_batch(buf + frame([b"junk"]), tx_ids=want.digest.tobytes() + bytes(32))


def test_the_scheduler_sends_ids_only_on_a_trusted_link():
    part = _scheduler_part(_mixed()[0])
    assert submit_message(7, part, True) == ("submit_ids", 7, part.buf, part.digest.tobytes())
    assert submit_message(7, part, False) == ("submit", 7, part.buf)
    msg = submit_message(7, part, True)
    assert sc.decode(sc.encode(msg), sc.TO_LOCAL_SHARD) == msg
    with pytest.raises(sc.MessageError, match="submit_ids"):
        sc.decode(sc.encode(msg), sc.TO_SHARD)  # what a shard server decodes with


# --- a trusted session (a local shard process's) --------------------------------------------------------


def test_a_local_shard_admits_with_the_schedulers_ids_as_it_admits_frames(tmp_path, chain, monkeypatch):
    """Same codes and receipts as the frames path (signatures still verified), no body hashed."""
    txs, want = _mixed()
    part = _scheduler_part(txs)
    hashed: list[str] = []
    real_tx_ids = ED25519_BLAKE3.tx_ids

    def counting(*args):
        hashed.append(threading.current_thread().name)
        return real_tx_ids(*args)

    monkeypatch.setattr(ED25519_BLAKE3, "tx_ids", counting)
    sink = _Sink()
    session = ShardSession(chain, sink, trusted=True)
    assert session.handle(submit_message(1, part, True))
    codes = sink.next("codes")
    assert codes[1] == 1 and np.frombuffer(codes[2], np.uint8).tolist() == want
    done = sink.next("done")
    assert hashed == []  # admission and block production hashed no body

    with Chain(tmp_path / "frames", shard_configs(BASE, N)[SHARD], NODE) as twin:
        twin_sink = _Sink()
        assert ShardSession(twin, twin_sink, trusted=True).handle(submit_message(1, part, False))
        twin_codes = twin_sink.next("codes")
        twin_done = twin_sink.next("done")
    assert hashed  # the frames path hashes
    assert twin_codes == codes
    assert twin_done[3:] == done[3:]  # receipt codes and events per row
    tx_ids = [d if c == 0 else b"" for d, c in zip(part.tx_ids(), want, strict=True)]
    receipts = sc.receipts_from_columns(tx_ids, done[3], done[4])
    for row in (0, 1):
        hit = chain.tx(tx_ids[row])
        assert hit is not None and hit[2] == txs[row] and receipts[row].code == 0
    assert chain.nonce(A.public_key) == 2 and chain.nonce(B.public_key) == 0


def test_ids_that_do_not_fit_the_frames_admit_nothing(chain):
    part = _scheduler_part([transfer(CHAIN_ID, A, 0, B, 1), transfer(CHAIN_ID, A, 1, B, 1)])
    ids = part.digest.tobytes()
    sink = _Sink()
    session = ShardSession(chain, sink, trusted=True)
    bad = [
        ("submit_ids", 1, part.buf, ids[:32]),  # one id for two rows
        ("submit_ids", 2, part.buf, ids + bytes(32)),
        ("submit_ids", 3, part.buf + frame([b"junk"]), ids + bytes(32)),  # a frame that does not decode
    ]
    for msg in bad:
        assert session.handle(msg)
        assert sink.next("codes") == ("codes", msg[1], None, Reject.SHUTTING_DOWN)
    assert len(chain.mempool) == 0 and chain.nonce(A.public_key) == 0
    assert session.handle(("submit_ids", 4, part.buf, ids))  # the session still works
    assert sink.next("codes") == ("codes", 4, b"\x00\x00", 0)
    sink.next("done")
    assert chain.nonce(A.public_key) == 2


def test_submit_with_ids_refuses_like_submit_once_the_chain_closes(tmp_path):
    part = _scheduler_part([transfer(CHAIN_ID, A, 0, B, 1)])
    chain = Chain(tmp_path / "shard", shard_configs(BASE, N)[SHARD], NODE)
    chain.close()
    for ids in (None, part.digest.tobytes()):
        with pytest.raises(RejectedError) as exc:
            chain.submit(part.buf, tx_ids=ids)
        assert exc.value.code == Reject.SHUTTING_DOWN


# --- any other peer --------------------------------------------------------------------------------


def test_a_session_that_is_not_trusted_refuses_submit_ids(chain):
    part = _scheduler_part([transfer(CHAIN_ID, A, 0, B, 1)])
    sink = _Sink()
    session = ShardSession(chain, sink)
    assert session.accepts == sc.TO_SHARD
    assert session.handle(submit_message(1, part, True))  # refused, the session goes on
    reply = sink.next("error")
    assert reply[1] == 0 and "MessageError" in reply[2]
    assert len(chain.mempool) == 0 and chain.nonce(A.public_key) == 0


def test_a_shard_server_refuses_ids_from_a_peer(chain):
    """A peer pairs A's signature over one body with another body and hands over the id A signed:
    the server refuses the message whole (it never takes ids), nothing reaches the chain."""
    signed = _scheduler_part([transfer(CHAIN_ID, A, 0, B, 1)])
    other = transfer(CHAIN_ID, A, 0, B, 10**6)[:-64] + transfer(CHAIN_ID, A, 0, B, 1)[-64:]
    forged = ("submit_ids", 1, frame([other]), signed.digest.tobytes())
    server = ShardServer(chain, "127.0.0.1:0").start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
            replies = list(ch.stream_stream(LINK_METHOD)(iter([sc.encode(forged)]), timeout=30))
    finally:
        server.stop()
    kinds = [sc.decode(r)[0] for r in replies]
    assert kinds == ["ready", "error"], kinds
    assert "MessageError" in sc.decode(replies[1])[2] and "submit_ids" in sc.decode(replies[1])[2]
    assert len(chain.mempool) == 0 and chain.nonce(A.public_key) == 0
    assert chain.submit([other]).codes.tolist() == [Reject.BAD_SIGNATURE]  # what the bytes path says
