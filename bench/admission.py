"""Admission's bookkeeping alone (not a test; figures are reported): the mempool's native
``NonceBook`` against the per-transaction Python loop it replaced (``PythonRules``, kept
here as the baseline and as the test oracle of tests/engine/test_nonce_book.py).

Each round admits one batch of ``--rows`` transactions from random senders of a pool of
``--senders`` (a sender's next nonce, so nearly all are accepted) into a book that
already holds ``--pending`` transactions, then commits the batch (``done``): what
``Mempool.admit`` and ``Mempool.done`` do under the mempool's lock per submitted batch,
after the signature checks. The two sides alternate round by round; reported: median
(min..max) microseconds per batch and per transaction, and the ratio of the medians.

Usage: python bench/admission.py [--rows 512] [--senders 10000] [--pending 20000]
       [--rounds 200] [--tiny] [--out FILE.json]
"""

from __future__ import annotations

import collections
import json
import time
from pathlib import Path

import click
import numpy as np
import tierchain_native

from figures import fmt, spread  # bench/figures.py (scripts run from bench/)
from tierchain.wire.batch import split_rows

ACCEPTED, DUPLICATE, TOO_LOW, TOO_HIGH, FULL, SENDER_LIMIT = range(6)
WIDTH = 32


class PythonRules:
    """The rules of ``NonceBook`` as the Python loop ``Mempool.admit`` / ``done`` ran
    before the book was native: per sender with pending txs ``[committed, pending]``,
    and the pending tx ids."""

    def __init__(self, txs_max: int, sender_pending_max: int) -> None:
        self.txs_max, self.sender_pending_max = txs_max, sender_pending_max
        self.pending: dict[bytes, list[int]] = {}
        self.ids: set[bytes] = set()

    def unknown(self, senders: list[bytes]) -> list[bytes]:
        return list(dict.fromkeys(s for s in senders if s not in self.pending))

    def admit(self, senders: list[bytes], ids: list[bytes], nonces: list[int], committed: dict) -> list[int]:
        out = []
        for sender, tx_id, nonce in zip(senders, ids, nonces, strict=True):
            if tx_id in self.ids:
                out.append(DUPLICATE)
                continue
            entry = self.pending.get(sender)
            if entry is None:
                if sender not in committed:
                    out.append(TOO_HIGH)
                    continue
                entry = [committed[sender], 0]
            expected = entry[0] + entry[1]
            if nonce == 2**64 - 1 or nonce > expected:
                out.append(TOO_HIGH)
            elif nonce < expected:
                out.append(TOO_LOW)
            elif len(self.ids) >= self.txs_max:
                out.append(FULL)
            elif entry[1] >= self.sender_pending_max:
                out.append(SENDER_LIMIT)
            else:
                entry[1] += 1
                self.pending[sender] = entry
                self.ids.add(tx_id)
                out.append(ACCEPTED)
        return out

    def done(self, senders: list[bytes], ids: list[bytes]) -> None:
        for sender, count in collections.Counter(senders).items():
            entry = self.pending[sender]
            entry[0] += count
            entry[1] -= count
            if not entry[1]:
                del self.pending[sender]
        self.ids.difference_update(ids)


def _python_round(book: PythonRules, senders: bytes, ids: bytes, nonces: np.ndarray, state: dict) -> int:
    """What the old ``Mempool.admit`` + ``done`` did with a batch's packed columns."""
    s, i = split_rows(senders, WIDTH), split_rows(ids, WIDTH)
    committed = {x: state.get(x, 0) for x in book.unknown(s)}
    verdicts = book.admit(s, i, nonces.tolist(), committed)
    accepted = [k for k, v in enumerate(verdicts) if v == ACCEPTED]
    book.done([s[k] for k in accepted], [i[k] for k in accepted])
    return len(accepted)


def _native_round(book, senders: bytes, ids: bytes, nonces: np.ndarray, state: dict) -> int:
    """What ``Mempool.admit`` + ``done`` do now with the same columns."""
    fresh = book.unknown(senders)
    committed = np.array([state.get(x, 0) for x in split_rows(fresh, WIDTH)], np.uint64)
    verdict = np.frombuffer(book.admit(senders, ids, nonces, fresh, committed), np.uint8)
    accepted = np.flatnonzero(verdict == 0)
    rows = np.frombuffer(senders, np.uint8).reshape(-1, WIDTH)[accepted]
    book.done(rows.tobytes(), np.frombuffer(ids, np.uint8).reshape(-1, WIDTH)[accepted].tobytes())
    return len(accepted)


def measure(rows: int, senders: int, pending: int, rounds: int, seed: int = 7) -> dict:
    rng = np.random.default_rng(seed)
    pool = rng.integers(0, 256, (senders, WIDTH), dtype=np.uint8)
    sides = {
        "python": (PythonRules(10**7, 64), _python_round),
        "native": (tierchain_native.NonceBook(WIDTH, WIDTH, 10**7, 64), _native_round),
    }
    # Both books start holding `pending` transactions of other senders (never committed).
    filler = rng.integers(0, 256, (pending, WIDTH), dtype=np.uint8)
    filler_ids = rng.integers(0, 256, (pending, WIDTH), dtype=np.uint8)
    zeros = np.zeros(pending, np.uint64)
    py_book, nat_book = sides["python"][0], sides["native"][0]
    fs, fi = split_rows(filler.tobytes(), WIDTH), split_rows(filler_ids.tobytes(), WIDTH)
    py_book.admit(fs, fi, zeros.tolist(), dict.fromkeys(fs, 0))
    nat_book.admit(filler.tobytes(), filler_ids.tobytes(), zeros, filler.tobytes(), zeros)
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(rounds):
        pick = rng.choice(senders, rows, replace=False)
        batch_senders = pool[pick].tobytes()
        batch_ids = rng.integers(0, 256, (rows, WIDTH), dtype=np.uint8).tobytes()
        state = {}  # every pool sender at nonce 0: each round's batch commits in full
        nonces = np.zeros(rows, np.uint64)
        for name, (book, run) in sides.items():
            t0 = time.perf_counter()
            accepted = run(book, batch_senders, batch_ids, nonces, state)
            times[name].append(time.perf_counter() - t0)
            if accepted != rows:
                raise SystemExit(f"{name}: {accepted} of {rows} accepted")
    out = {"rows": rows, "senders": senders, "pending": pending, "rounds": rounds}
    for name, ts in times.items():
        out[name] = spread([t * 1e6 for t in ts])  # microseconds per batch
    out["ratio_python_to_native"] = out["python"]["median"] / out["native"]["median"]
    return out


@click.command()
@click.option("--rows", default=512, show_default=True, help="transactions per batch")
@click.option("--senders", default=10_000, show_default=True)
@click.option("--pending", default=20_000, show_default=True, help="transactions already in the book")
@click.option("--rounds", default=200, show_default=True)
@click.option("--tiny", is_flag=True, help="a few rounds of small batches (CI)")
@click.option("--out", type=click.Path(path_type=Path))
def main(rows: int, senders: int, pending: int, rounds: int, tiny: bool, out: Path | None) -> None:
    if tiny:
        rows, senders, pending, rounds = 32, 200, 100, 5
    r = measure(rows, senders, pending, rounds)
    for name in ("python", "native"):
        s = r[name]
        print(f"{name:>6}: {fmt(s, '.1f')} us per {rows}-row batch, {s['median'] / rows:.3f} us/tx")
    print(f"python / native: {r['ratio_python_to_native']:.2f}x")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(r, indent=2))


if __name__ == "__main__":
    main()
