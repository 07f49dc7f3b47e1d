"""The cyclic garbage collector's settings for a process that runs a node.

A node allocates container objects by the tens of thousands per block — receipts and
their events, tuples, the lists of a block's columns — nearly all of them freed by
reference counting, none in a cycle. With CPython's default thresholds (700, 10, 10)
the collector still runs a young collection every 700 of them (about 17 per 4,096-tx
block) and, every hundred or so, a full collection that walks every list the pipeline
and the mempool hold, item by item; perf of a closed-loop run put about a tenth of the
process's CPU in the collector (``visit_decref``, ``visit_reachable``,
``gc_collect_main``), all of it holding the GIL the producer needs.

``tune()`` moves what exists at start-up (modules, the app set, genesis) to the
permanent generation (``gc.freeze``) and raises the thresholds (``THRESHOLDS``): young
collections every 50,000 allocations and full ones rarely, so cycles (a caught
exception's traceback, a closure) are still collected, later. It changes the whole
process, so the library never calls it by itself: the CLI (every ``tierchain``
command), shard processes and the load generator do, and an application that embeds a
chain calls it once at start-up (docs/embedding.md). ``TIERCHAIN_GC_TUNE=0`` leaves the
collector as it is (A/B measurements, chasing memory). Measured: docs/benchmarks.md.
"""

from __future__ import annotations

import gc
import os

__all__ = ["ENV", "THRESHOLDS", "tune"]

ENV = "TIERCHAIN_GC_TUNE"
THRESHOLDS = (50_000, 20, 100)


def tune() -> None:
    """Freeze the objects alive now and raise the collector's thresholds (module docstring);
    nothing when ``TIERCHAIN_GC_TUNE=0``."""
    if os.environ.get(ENV, "1") == "0":
        return
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
