"""A replicated node's native CheckTx bookkeeping (``tierchain_native.NonceSequencer`` and
``SeenSet``) against models in Python: the loops they replaced in ``replication/app.py``
(a dict of ``[committed, next]`` per sender; dicts kept oldest first), verdict for verdict."""

from __future__ import annotations

import numpy as np
import pytest
import tierchain_native
from hypothesis import given, settings
from hypothesis import strategies as st

from tierchain.wire.batch import split_rows

ACCEPTED, TOO_LOW, TOO_HIGH, LIMIT = 0, 2, 3, 5


def key(i: int) -> bytes:
    return i.to_bytes(2, "big") * 16


class SequenceModel:
    """The Python CheckTx sequencing the native one replaced."""

    def __init__(self, pending_max: int) -> None:
        self.known: dict[bytes, list[int]] = {}
        self.pending_max = pending_max

    def check(self, rows: list[tuple[bytes, int, bool]], state: dict[bytes, int]) -> list[int]:
        for sender, _, _ in rows:
            self.known.setdefault(sender, [state[sender], state[sender]])
        out = []
        for sender, nonce, free in rows:
            entry = self.known[sender]
            committed, expected = entry
            if nonce == expected and nonce != 2**64 - 1 and (free or expected - committed < self.pending_max):
                entry[1] = expected + 1
                out.append(ACCEPTED)
            elif free:
                out.append(ACCEPTED)
            elif nonce != expected or nonce == 2**64 - 1:
                out.append(TOO_LOW if nonce < expected else TOO_HIGH)
            else:
                out.append(LIMIT)
        return out

    def give_back(self, rows: list[tuple[bytes, int]]) -> None:
        for sender, nonce in rows:
            entry = self.known.get(sender)
            if entry is not None and entry[0] <= nonce < entry[1]:
                entry[1] = nonce


@settings(max_examples=80, deadline=None)
@given(
    st.integers(1, 4),
    st.lists(
        st.tuples(
            st.lists(st.tuples(st.integers(0, 5), st.integers(0, 8), st.booleans()), max_size=20),
            st.sampled_from(["check", "give back", "commit"]),
        ),
        min_size=1,
        max_size=10,
    ),
    st.randoms(use_true_random=False),
)
def test_sequencer_matches_the_python_loop(pending_max, steps, rnd) -> None:
    seq, model = tierchain_native.NonceSequencer(pending_max), SequenceModel(pending_max)
    state = {key(s): rnd.randrange(3) for s in range(6)}  # committed nonces
    for rows, how in steps:
        rows = [(key(s), n, free) for s, n, free in rows]
        senders = b"".join(s for s, _, _ in rows)
        nonces = np.array([n for _, n, _ in rows], np.uint64)
        if how == "give back":
            seq.give_back(senders, nonces)
            model.give_back([(s, n) for s, n, _ in rows])
        elif how == "commit":  # a block moved some senders on; the view starts over
            seq.clear()
            model.known.clear()
            for s in state:
                state[s] += rnd.randrange(2)
        else:
            fresh = seq.unknown(senders)
            fresh_list = split_rows(fresh, 32)
            assert fresh_list == list(dict.fromkeys(s for s, _, _ in rows if s not in model.known))
            committed = np.array([state[s] for s in fresh_list], np.uint64)
            lenient = np.array([f for _, _, f in rows], bool).tobytes()
            got = list(seq.check(senders, nonces, fresh, committed, lenient))
            assert got == model.check(rows, state)
        assert len(seq) == len(model.known)
        for s, (committed, nxt) in model.known.items():
            assert seq.get(s) == (committed, nxt)


def test_sequencer_edges_and_arguments() -> None:
    seq = tierchain_native.NonceSequencer(10)
    top = np.array([2**64 - 1], np.uint64)
    sender = key(1)
    # 2^64 - 1 has no successor a block could store: ahead, even as the next nonce.
    assert seq.check(sender, top, sender, top) == bytes([TOO_HIGH])
    assert seq.get(sender) == (2**64 - 1, 2**64 - 1)
    # Without its committed nonce, an unknown sender is ahead; a lenient row passes.
    zero, none = np.zeros(1, np.uint64), np.zeros(0, np.uint64)
    assert seq.check(key(2), zero, b"", none) == bytes([TOO_HIGH])
    assert seq.check(key(2), zero, b"", none, b"\x01") == bytes([ACCEPTED])
    with pytest.raises(ValueError, match="32-byte rows"):
        seq.unknown(b"x" * 33)
    with pytest.raises(ValueError, match="2 senders, 1 nonces"):
        seq.check(key(1) + key(2), np.zeros(1, np.uint64), b"", np.zeros(0, np.uint64))
    with pytest.raises(ValueError, match="lenient: 2 values for 1 rows"):
        seq.check(key(1), np.zeros(1, np.uint64), b"", np.zeros(0, np.uint64), b"\x01\x01")
    with pytest.raises(TypeError, match="uint64"):
        seq.check(key(1), [0], b"", np.zeros(0, np.uint64))
    with pytest.raises(ValueError, match="1 senders, 0 nonces"):
        seq.give_back(key(1), np.zeros(0, np.uint64))
    with pytest.raises(ValueError, match="one 32-byte key"):
        seq.get(key(1) + key(2))


@settings(max_examples=80, deadline=None)
@given(
    st.integers(0, 6),
    st.lists(
        st.tuples(st.sampled_from(["add", "take"]), st.lists(st.integers(0, 12), max_size=10)),
        max_size=20,
    ),
    st.randoms(use_true_random=False),
)
def test_seen_set_matches_a_dict_kept_oldest_first(max_keys, steps, rnd) -> None:
    seen, model = tierchain_native.SeenSet(3, max_keys), {}
    for how, ids in steps:
        keys = [i.to_bytes(3, "big") for i in ids]
        packed = b"".join(keys)
        assert seen.contains(packed) == bytes(k in model for k in keys)
        if how == "add":
            mask = [rnd.random() < 0.7 for _ in keys]
            seen.add(packed, np.array(mask, bool).tobytes())
            for k, m in zip(keys, mask, strict=True):
                if m:
                    model.setdefault(k, None)  # a key added again keeps its place
            while len(model) > max_keys:
                del model[next(iter(model))]
        else:
            assert seen.take(packed) == bytes(model.pop(k, 0) is None for k in keys)
        assert len(seen) == len(model)


def test_seen_set_arguments() -> None:
    seen = tierchain_native.SeenSet(4, 8)
    seen.add(b"abcdefgh")  # no mask: every key
    assert seen.contains(b"abcdefghijkl") == b"\x01\x01\x00"
    with pytest.raises(ValueError, match="whole number of 4-byte keys"):
        seen.contains(b"abcde")
    with pytest.raises(ValueError, match="mask: 1 values for 2 rows"):
        seen.add(b"abcdefgh", b"\x01")
    with pytest.raises(ValueError, match="width"):
        tierchain_native.SeenSet(0, 8)
