"""The state transition: a decoded block in; receipts, writes and roots out.

One definition, used by block production (``engine/pipeline.py``), re-verification
(``verify.py``), the recorded regression run (tests/vectors/transition_v1.json)
and, later, an ABCI ``FinalizeBlock``:

* ``genesis(config, ...)``: the genesis state streamed once through the state
  commitment (and the caller's ``sink``, e.g. the state table); the height-0 roots;
* ``execute(block, base, height, timestamp_ms, ...)``: the block's transactions
  run by the chain's apps (``execute.execute_block``) against ``base``, the
  parent state's reader; the receipts, the writes, the tx root (over the tx ids)
  and the receipt root (over the encoded receipts). ``Outcome``;
* ``transition(...)``: ``execute``, then the commitment's next version
  (``Commitment.prepare``): its root is the header's ``state_root``. ``Transition``.

Pure: no threads, no storage writes, no clock; the same inputs give the same
bytes. The chain splits ``transition`` at its one seam to pipeline it: the
producer calls ``execute`` and the commitment's ``prepare`` runs inline or on the
tree thread (``tree_stage``), while an earlier block commits; the result is the
same (tests/engine/test_transition.py checks the committed headers against this module).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from tierchain.crypto import merkle
from tierchain.crypto.suite import CryptoSuite
from tierchain.engine import apps
from tierchain.engine.execute import BaseGet, BlockColumns, execute_block
from tierchain.engine.genesis import genesis_chunks
from tierchain.state.commitment import Commitment, Version
from tierchain.wire import block as block_wire
from tierchain.wire.batch import Batch
from tierchain.wire.block import Receipt

if TYPE_CHECKING:
    from tierchain.config import ChainConfig

__all__ = ["Outcome", "Roots", "Transition", "apply_writes", "execute", "genesis", "transition", "tx_root"]

Writes = dict[bytes, "bytes | None"]


@dataclasses.dataclass(frozen=True, slots=True)
class Roots:
    """The three roots a header commits to."""

    tx_root: bytes
    receipt_root: bytes
    state_root: bytes


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class Outcome:
    """What executing a block gives, before the state commitment."""

    receipts: list[Receipt]
    writes: Writes  # key -> new value, None = deleted
    tx_root: bytes
    receipt_root: bytes


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class Transition:
    """A block's whole transition: its ``Outcome`` and the commitment's ``Version`` after it."""

    outcome: Outcome
    version: Version

    @property
    def roots(self) -> Roots:
        return Roots(self.outcome.tx_root, self.outcome.receipt_root, self.version.root)


def tx_root(block: Batch, suite: CryptoSuite) -> bytes:
    """Merkle root of the block's tx ids, in block order."""
    return merkle.root_packed(block.digest.tobytes(), suite=suite)


def receipt_root(receipts: list[Receipt], suite: CryptoSuite) -> bytes:
    """Merkle root of the encoded receipts, in block order."""
    return merkle.root(block_wire.encoded(receipts), suite=suite)


def genesis(
    config: ChainConfig,
    *,
    app_set: apps.AppSet,
    suite: CryptoSuite,
    commitment: Commitment,
    sink: Callable[[list[tuple[bytes, bytes]]], None] | None = None,
    w=None,
) -> Roots:
    """The height-0 roots: the genesis state (``genesis.genesis_chunks``, ascending chunks)
    streams once through ``sink`` (if given) and the commitment (records in ``w``, a
    stored tree's genesis write txn)."""
    chunks: Iterable[list[tuple[bytes, bytes]]] = genesis_chunks(config, app_set=app_set)
    if sink is not None:

        def streamed(chunks=chunks):
            for chunk in chunks:
                sink(chunk)
                yield chunk

        chunks = streamed()
    state_root = commitment.genesis(chunks, w)
    empty = merkle.root([], suite=suite)
    return Roots(empty, empty, state_root)


def execute(
    block: Batch,
    base: BaseGet,
    height: int,
    timestamp_ms: int,
    *,
    app_set: apps.AppSet,
    suite: CryptoSuite,
    cols: BlockColumns | None = None,
    shard: tuple[int, int] = (0, 1),
    keys: list[bytes] | None = None,
) -> Outcome:
    """Run ``block`` (every row decoded) on the state ``base`` reads; ``cols``: its
    columns as Python values if the caller built them already; ``keys``: every key it
    may touch (``execute.declared_keys``), if the caller listed them already."""
    result = execute_block(
        block, base, height, timestamp_ms, cols=cols, app_set=app_set, suite=suite, shard=shard, keys=keys
    )
    return Outcome(
        result.receipts, result.writes, tx_root(block, suite), receipt_root(result.receipts, suite)
    )


def transition(
    block: Batch,
    base: BaseGet,
    height: int,
    timestamp_ms: int,
    *,
    app_set: apps.AppSet,
    suite: CryptoSuite,
    commitment: Commitment,
    cols: BlockColumns | None = None,
    shard: tuple[int, int] = (0, 1),
) -> Transition:
    """``execute`` and the commitment's version after it (module docstring)."""
    outcome = execute(block, base, height, timestamp_ms, app_set=app_set, suite=suite, cols=cols, shard=shard)
    return Transition(outcome, commitment.prepare(height, outcome.writes))


def apply_writes(state: dict[bytes, bytes], writes: Writes) -> None:
    """Apply a block's writes to an in-memory state (re-execution, tests)."""
    for k, v in writes.items():
        if v is None:
            state.pop(k, None)
        else:
            state[k] = v
