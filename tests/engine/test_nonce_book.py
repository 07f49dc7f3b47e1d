"""The mempool's native bookkeeping (``tierchain_native.NonceBook``) against the Python loop
it replaced (``bench/admission.py``'s ``PythonRules``, also the bench's baseline): random
batches of admissions and commits, verdict for verdict."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import tierchain_native
from hypothesis import given, settings
from hypothesis import strategies as st

from tierchain.wire.batch import split_rows

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from admission import ACCEPTED, TOO_HIGH, PythonRules


def key(i: int) -> bytes:
    return i.to_bytes(2, "big") * 16


def packed(items: list[bytes]) -> bytes:
    return b"".join(items)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 12),
    st.integers(1, 4),
    st.lists(
        st.lists(st.tuples(st.integers(0, 5), st.integers(0, 40), st.integers(0, 6)), max_size=24),
        min_size=1,
        max_size=8,
    ),
    st.randoms(use_true_random=False),
)
def test_book_matches_the_python_rules(txs_max, sender_max, batches, rnd) -> None:
    book = tierchain_native.NonceBook(32, 32, txs_max, sender_max)
    model = PythonRules(txs_max, sender_max)
    state_nonce = {key(s): rnd.randrange(3) for s in range(6)}  # committed nonces "in state"
    queued: list[tuple[bytes, bytes]] = []  # accepted, in order, not yet committed
    for batch in batches:
        rows = [(key(s), key(1000 + t), n) for s, t, n in batch]
        sender_list, id_list, nonces = ([r[k] for r in rows] for k in range(3))
        senders, ids = packed(sender_list), packed(id_list)
        fresh = book.unknown(senders)
        fresh_list = split_rows(fresh, 32)
        assert fresh_list == model.unknown(sender_list)  # first-seen order, each once
        committed = np.array([state_nonce[s] for s in fresh_list], np.uint64)
        got = list(book.admit(senders, ids, np.array(nonces, np.uint64), fresh, committed))
        assert got == model.admit(sender_list, id_list, nonces, state_nonce)
        queued += [(s, i) for (s, i, _), v in zip(rows, got, strict=True) if v == ACCEPTED]
        assert len(book) == len(model.ids) and book.senders == len(model.pending)
        # Commit a prefix of what is queued (blocks take the oldest first).
        n = rnd.randrange(len(queued) + 1)
        block, queued = queued[:n], queued[n:]
        book.done(packed([s for s, _ in block]), packed([i for _, i in block]))
        model.done([s for s, _ in block], [i for _, i in block])
        for s, _ in block:
            state_nonce[s] += 1
        for s in map(key, range(6)):
            assert book.pending(s) == (tuple(model.pending[s]) if s in model.pending else None)
    assert all(book.contains(i) for _, i in queued) and len(book) == len(queued)


def test_done_refuses_what_is_not_pending_and_changes_nothing() -> None:
    book = tierchain_native.NonceBook(32, 32, 10, 10)
    nonces, committed = np.array([4, 5], np.uint64), np.array([4], np.uint64)
    verdicts = book.admit(key(1) * 2, key(7) + key(8), nonces, key(1), committed)
    assert list(verdicts) == [ACCEPTED, ACCEPTED]
    with pytest.raises(ValueError, match="fewer transactions pending"):
        book.done(key(1) * 3, key(7) + key(8) + key(9))
    with pytest.raises(ValueError, match="is not pending"):
        book.done(key(1), key(9))
    with pytest.raises(ValueError, match="is not pending"):
        book.done(key(1) * 2, key(7) * 2)  # one id twice
    assert len(book) == 2 and book.pending(key(1)) == (4, 2)
    book.done(key(1) * 2, key(7) + key(8))
    assert len(book) == 0 and book.pending(key(1)) is None


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="32-byte"):
        tierchain_native.NonceBook(33, 32, 10, 10)
    book = tierchain_native.NonceBook(32, 32, 10, 10)
    with pytest.raises(ValueError, match="whole number of 32-byte rows"):
        book.unknown(b"x" * 33)
    with pytest.raises(ValueError, match="2 senders, 1 ids"):
        book.admit(key(1) * 2, key(2), np.zeros(2, np.uint64), b"", np.zeros(0, np.uint64))
    with pytest.raises(ValueError, match="1 fresh senders, 0 committed"):
        book.admit(key(1), key(2), np.zeros(1, np.uint64), key(1), np.zeros(0, np.uint64))
    with pytest.raises(TypeError, match="uint64"):
        book.admit(key(1), key(2), np.zeros(1, np.int32), key(1), np.zeros(1, np.uint64))
    # A fresh sender whose committed nonce was not given has nothing to sequence against.
    assert list(book.admit(key(1), key(2), np.zeros(1, np.uint64), b"", np.zeros(0, np.uint64))) == [TOO_HIGH]
    assert len(book) == 0
