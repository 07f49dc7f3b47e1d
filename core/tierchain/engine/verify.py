"""Full re-verification of a chain from its database alone (``tierchain verify``).

Checks, for every block from genesis: the header decodes and its checksum holds;
it links to the previous header's hash; heights are consecutive and timestamps
never go back; the proposer is the chain's and its signature is valid (a replicated
chain's headers, whose proposer varies: signed by the key this database records); every
transaction decodes canonically, its signature is valid (batch, native) and it passes
its apps' admission checks (``App.checks``: proofs, one call per batch); the
tx root matches; re-executing the block from the re-executed state of its parent
gives byte-identical receipts, the same receipt root and the same state root;
every transaction is indexed at its place. At the end, the stored state equals
the re-executed state key for key.

Re-execution is the node's own state transition (``tierchain.engine.transition``) over
a state kept in memory (a dict) and the chain's state commitment kept in memory
too (``commitment.commitment_of`` without a store; for "smt" chains the same Rust
tree update as the node): every header's state root must equal the recomputed
one, and so must every root the database still keeps for a height
(``smt_roots``; pruned heights have none).
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tierchain.config import ChainConfig
from tierchain.crypto import suite_of
from tierchain.engine import apps, mempool, transition
from tierchain.errors import InvariantViolation, Reject, TierChainError
from tierchain.state import log, tx_index
from tierchain.state.commitment import commitment_of
from tierchain.state.storage import StorageError, Store
from tierchain.wire.batch import decode_batch
from tierchain.wire.block import ZERO_HASH


@dataclasses.dataclass
class VerifyReport:
    height: int = -1
    txs: int = 0
    problems: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_chain(
    path: str | Path, progress: Callable[[int, int], None] | None = None, problems_max: int = 100
) -> VerifyReport:
    report = VerifyReport()

    def problem(text: str) -> bool:
        report.problems.append(text)
        return len(report.problems) >= problems_max

    store = Store(Path(path) / "db", readonly=True)
    try:
        with store.read() as r:
            genesis = r.get("meta", "genesis")
            proposer = r.get("meta", "proposer")
            last = r.last("headers")
            if genesis is None or proposer is None or last is None:
                problem("no genesis in the database")
                return report
            # A replicated chain's headers are signed by this node, not by their proposer.
            replicated = r.get("meta", "mode") not in (None, b"solo")
            config = ChainConfig.from_toml(genesis.decode())
            suite = suite_of(config)  # the chain's crypto suite, as the node chose it
            # The apps the genesis names, loaded by name (built in, entry point, TIERCHAIN_APPS).
            app_set = apps.resolve(config.apps)
            top = last[0]
            state: dict[bytes, bytes] = {}
            commitment = commitment_of(config, suite=suite)  # in memory
            state_root = transition.genesis(
                config, app_set=app_set, suite=suite, commitment=commitment, sink=state.update
            ).state_root
            prev = None
            for height in range(top + 1):
                header = r.get("headers", height)
                if header is None:
                    if problem(f"height {height}: header missing"):
                        break
                    continue
                if progress:
                    progress(height, top)
                if header.height != height or header.chain_id != config.chain_id:
                    problem(f"height {height}: header says height {header.height} chain {header.chain_id}")
                if replicated:
                    # CometBFT's proposer varies; the signature is this node's (replication/ledger.py).
                    if not suite.verify(proposer, header.hash(suite), header.signature):
                        problem(f"height {height}: header not signed by this node's key")
                else:
                    if header.proposer != proposer:
                        problem(f"height {height}: proposer is not the chain's")
                    if not header.signature_ok(suite):
                        problem(f"height {height}: bad header signature")
                if prev is None:
                    if header.prev_hash != ZERO_HASH:
                        problem("genesis header has a parent")
                else:
                    if header.prev_hash != prev.hash(suite):
                        problem(f"height {height}: does not link to header {height - 1}")
                    if header.timestamp_ms < prev.timestamp_ms:
                        problem(f"height {height}: timestamp goes back")
                block_buf = r.get("blocks", height)
                receipts = r.get("receipts", height)
                if block_buf is None or receipts is None:
                    problem(f"height {height}: {'block' if block_buf is None else 'receipts'} missing")
                    break
                batch = decode_batch(block_buf, suite=suite)
                n = len(batch)
                if not batch.ok.all():
                    problem(f"height {height}: a transaction does not decode")
                    break
                if n != header.tx_count:
                    problem(f"height {height}: {n} txs, header says {header.tx_count}")
                if n:
                    valid = np.frombuffer(
                        suite.verify_batch_packed(
                            batch.sender.tobytes(), batch.digest.tobytes(), batch.signature.tobytes()
                        ),
                        np.uint8,
                    )
                    for i in np.flatnonzero(valid == 0).tolist():
                        problem(f"height {height}: tx {i} has a bad signature")
                    # The apps' admission checks (proofs), on every transaction of the block.
                    checked = np.zeros(n, np.uint8)
                    mempool.run_checks(batch, checked, valid != 0, app_set.checks, suite)
                    for i in np.flatnonzero(checked).tolist():
                        problem(f"height {height}: tx {i} fails admission: {Reject(int(checked[i])).name}")
                # Each root is computed once: a re-executed block's come with its outcome
                # (transition.execute); the genesis block is not executed.
                outcome: transition.Outcome | None = None
                if height:
                    result = transition.transition(
                        batch,
                        state.get,
                        height,
                        header.timestamp_ms,
                        app_set=app_set,
                        suite=suite,
                        commitment=commitment,
                        shard=(config.shard_index, config.shard_count),
                    )
                    outcome = result.outcome
                    state_root = result.version.root
                    transition.apply_writes(state, outcome.writes)
                tx_root = outcome.tx_root if outcome is not None else transition.tx_root(batch, suite)
                if tx_root != header.tx_root:
                    problem(f"height {height}: tx root mismatch")
                # The stored receipts against the header: their root is the re-executed
                # receipts' when they are the same.
                if outcome is not None and outcome.receipts == receipts:
                    receipt_root = outcome.receipt_root
                else:
                    if outcome is not None:
                        problem(f"height {height}: re-executed receipts differ")
                    receipt_root = transition.receipt_root(receipts, suite)
                if receipt_root != header.receipt_root:
                    problem(f"height {height}: receipt root mismatch")
                if state_root != header.state_root:
                    problem(f"height {height}: state root mismatch after re-execution")
                if commitment.proves:
                    kept = r.get("smt_roots", height)
                    if kept is not None and kept[0] != state_root:
                        problem(f"height {height}: stored state tree root differs from re-execution")
                for i in range(n):
                    if tx_index.position_at(r, batch.digest[i].tobytes(), height) != i:
                        problem(f"height {height}: tx {i} not indexed at its place")
                        break
                report.txs += n
                report.height = height
                prev = header
                if len(report.problems) >= problems_max:
                    break
            if report.ok:
                stored = log.current_items(r)
                if stored != state:
                    missing = len(state.keys() - stored.keys())
                    extra = len(stored.keys() - state.keys())
                    problem(f"stored state differs from re-execution ({missing} missing, {extra} extra keys)")
    except StorageError as exc:
        problem(f"storage: {exc}")
    except apps.AppError as exc:  # before TierChainError: name the app that cannot be loaded
        problem(f"apps: {exc}")
    except InvariantViolation as exc:
        # Re-executing a stored block broke a ledger invariant: the node that committed it
        # ran other code (or the block was tampered with); either way a finding, not a crash.
        problem(f"height {report.height + 1}: re-execution stopped: {exc}")
    except (TierChainError, ValueError, TypeError, struct.error) as exc:
        # A damaged database must give a report, not a traceback.
        problem(f"height {report.height + 1}: cannot decode: {exc!r}")
    finally:
        store.close()
    return report
