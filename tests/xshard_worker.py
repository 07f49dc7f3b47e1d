"""Kill target: a cluster + coordinator under a stream of cross-shard transfers.

python xshard_worker.py ROOT PROGRESS_FILE — runs until killed. Writes
``<prepared count> <shard pids...>`` to PROGRESS_FILE after every batch.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from pathlib import Path

import xshard_world as w
from tierchain.apps.coordinator import Coordinator
from tierchain.sharding.cluster import Cluster, ShardUnavailable


def _nonce(cluster: Cluster, user) -> int:
    while True:
        try:
            return cluster.call(w.home(user.public_key), "nonce", user.public_key)
        except (TimeoutError, ShardUnavailable):
            time.sleep(0.05)


def _drive(coord: Coordinator) -> None:
    while True:
        try:
            coord.step()
        except Exception:  # a shard restarting: the next step picks up where this one stopped
            pass
        time.sleep(0.1)


def main() -> None:
    root, progress = Path(sys.argv[1]), Path(sys.argv[2])
    rng = random.Random(7)
    with Cluster(root, w.BASE, w.NODE.seed, w.N) as cluster:
        coord = Coordinator(cluster, w.COORD, margin_ms=200)
        # Steps 0.1 s apart, so that transfers are always in flight at the kill.
        threading.Thread(target=_drive, args=(coord,), daemon=True).start()
        nonces = {u.public_key: _nonce(cluster, u) for u in w.USERS}
        prepared = 0
        while True:
            batch = []
            pairs = w.cross_pairs(rng, 12)
            for s, r in pairs:
                batch.append(w.xtransfer(s, nonces[s.public_key], r.public_key, rng.randrange(1, 500), 1_500))
            try:
                sub = cluster.submit(batch)
                receipts = sub.wait(30)
            except (TimeoutError, ShardUnavailable):
                time.sleep(0.05)  # a shard is restarting; its in-doubt rows are settled for us
                nonces = {u.public_key: _nonce(cluster, u) for u in w.USERS}
                continue
            for (s, _), code, rc in zip(pairs, sub.codes.tolist(), receipts, strict=True):
                if code == 0 and rc is not None:
                    nonces[s.public_key] += 1
                    prepared += rc.code == 0
                else:
                    nonces[s.public_key] = _nonce(cluster, s)
            pids = " ".join(str(cluster.pid(i)) for i in range(w.N))
            # Write then rename: the test polls this file and must never read it half-written.
            tmp = progress.with_suffix(".tmp")
            tmp.write_text(f"{prepared} {pids}")
            tmp.replace(progress)


if __name__ == "__main__":
    main()
