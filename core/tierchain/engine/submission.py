"""What a submitter and a subscriber hold: a ``Submission`` per submitted batch, a
``Subscription`` per subscriber, and the errors they can be given.

``Chain.submit`` (``tierchain.engine.chain``) returns a ``Submission``: a code per
transaction at once (admission), receipts once the block holding each accepted one is
durable. The committer thread (``tierchain.engine.pipeline``) settles it through
``_committed``; a stopped stage through ``_fail``. Its future resolves to ``None``, never
to the submission itself (a cycle through the future would leave every batch to the
cyclic GC), and is bridged to asyncio by ``wait_async``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from tierchain.errors import Reject, TierChainError
from tierchain.wire.batch import Batch
from tierchain.wire.block import Header, Receipt

subscriber_queue_max = 1024


class ChainError(TierChainError):
    """The chain cannot open or continue (wrong genesis, damaged database, stopped)."""


class SubscriberLagged(TierChainError):
    """A subscriber fell ``subscriber_queue_max`` blocks behind and was dropped."""


@dataclasses.dataclass(frozen=True)
class CommittedBlock:
    header: Header
    receipts: list[Receipt]


class Submission:
    """The fate of one submitted batch: a code per transaction now, receipts at commit."""

    def __init__(self, batch: Batch) -> None:
        self._batch = batch
        n = len(batch)
        self.codes = np.zeros(n, np.uint8)  # per submitted tx; 0 = accepted
        self.receipts: list[Receipt | None] = [None] * n
        self.heights = np.zeros(n, np.uint64)
        self._lock = threading.Lock()
        self._waiting = 0
        self._future: concurrent.futures.Future = concurrent.futures.Future()

    @functools.cached_property
    def tx_ids(self) -> list[bytes]:
        """Per submitted tx, its id (``b""`` for rows that did not decode); built on first use."""
        return self._batch.tx_ids()

    def _expect(self, n: int) -> None:
        """Called by the mempool, under its lock, before the rows can reach a block."""
        with self._lock:
            self._waiting += n

    def _admitted(self, codes: np.ndarray) -> None:
        self.codes[:] = codes
        self._settle()

    def _settle(self) -> None:
        with self._lock:
            if not self._waiting and not self._future.done():
                self._future.set_result(None)  # not self: a Submission<->Future cycle would
                # leave every batch, its receipts and events to the cyclic GC (long pauses)

    @property
    def accepted(self) -> int:
        return int((self.codes == 0).sum())

    def rejections(self) -> list[tuple[int, Reject]]:
        return [(int(i), Reject(int(self.codes[i]))) for i in np.flatnonzero(self.codes)]

    def _committed(self, rows: np.ndarray, receipts: list[Receipt], height: int) -> None:
        if len(rows) != len(receipts):
            raise ValueError(f"{len(rows)} rows, {len(receipts)} receipts")
        if len(rows) and rows[-1] - rows[0] + 1 == len(rows):  # ascending: a run of rows
            self.receipts[rows[0] : rows[-1] + 1] = receipts  # one C-level copy, the usual case
        else:
            for row, receipt in zip(rows.tolist(), receipts, strict=True):
                self.receipts[row] = receipt
        self.heights[rows] = height
        with self._lock:
            self._waiting -= len(rows)
        self._settle()

    def _fail(self, exc: BaseException) -> None:
        if not self._future.done():
            self._future.set_exception(exc)

    def add_done_callback(self, fn: Callable[[concurrent.futures.Future], Any]) -> None:
        """Call ``fn(future)`` once every accepted transaction is committed (or the chain
        failed), on the thread that settles it: keep ``fn`` short."""
        self._future.add_done_callback(fn)

    def wait(self, timeout: float | None = None) -> list[Receipt | None]:
        """Block until every accepted transaction is durably committed; receipts in submit order."""
        self._future.result(timeout)
        return self.receipts

    async def wait_async(self) -> list[Receipt | None]:
        await asyncio.wrap_future(self._future)
        return self.receipts


class Subscription:
    """Committed blocks, in height order, from a bounded queue."""

    def __init__(self, chain: Any) -> None:  # a tierchain.engine.chain.Chain
        self._chain = chain
        self._queue: queue.Queue = queue.Queue(subscriber_queue_max)
        self.lagged = False

    def _push(self, item: CommittedBlock | None) -> bool:
        try:
            self._queue.put_nowait(item)
            return True
        except queue.Full:
            self.lagged = True
            return False

    def get(self, timeout: float | None = None) -> CommittedBlock | None:
        """The next block; None once the chain closes; raises ``SubscriberLagged``."""
        if self.lagged and self._queue.empty():
            raise SubscriberLagged("fell behind; resume with Chain.blocks(from_height)")
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def __iter__(self) -> Iterator[CommittedBlock]:
        while (item := self.get()) is not None:
            yield item

    def close(self) -> None:
        self._chain._unsubscribe(self)
