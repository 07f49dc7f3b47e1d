"""The transaction index (tx id -> height and position), written through an inbox.

Tx ids are hashes: put straight into ``tx_index`` (a B+tree in id order), a block's
ids each land on a leaf page of their own once the table has many more leaf pages
than a block has ids, and LMDB copies and writes every page a transaction touches, so
a block wrote up to one 4 KiB page per transaction, more than all its other records
together (docs/architecture.md, "The tx index is written through an inbox").

So a block puts its pairs in ``tx_inbox`` under ``partition ‖ height ‖ id`` (the
partition is the id's first byte): each partition's new records land at its end,
about ``partitions`` pages a block whatever the index's size. And each block moves
one partition, ``height % partitions``, from the inbox into ``tx_index``: the ids
of up to ``partitions`` blocks that share a first byte, which fall within one
``partitions``-th of the index's pages, in id order. Every id reaches ``tx_index``
within ``partitions`` blocks; a lookup reads ``tx_index``, then the id's inbox
partition. Both happen in the block's write transaction, so a crash leaves the two
tables as of the last committed block, and no record is ever in neither.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tierchain import limits

partitions = 256
_key_size = 1 + 8 + 32  # partition, height (big-endian), tx id
# A partition holds the ids of at most ``partitions`` blocks (each block moves one);
# more under one prefix is a damaged inbox, refused before anything moves.
partition_records_max = partitions * limits.batch_txs_max
_locations = np.dtype([("height", "<u8"), ("pos", "<u4")])  # tx_index's value, Struct("<QI")


def block_pairs(digests: np.ndarray, height: int) -> tuple[bytes, bytes]:
    """The inbox records of a block whose tx ids are the rows of ``digests`` (n x 32
    bytes), packed for ``WriteTxn.put_packed``: keys and positions (u32)."""
    n = len(digests)
    keys = np.empty((n, _key_size), dtype=np.uint8)
    keys[:, 0] = digests[:, 0]
    keys[:, 1:9] = np.frombuffer(height.to_bytes(8, "big"), dtype=np.uint8)
    keys[:, 9:] = digests
    return keys.tobytes(), np.arange(n, dtype="<u4").tobytes()


def write(w, height: int, pairs: tuple[bytes, bytes]) -> int:
    """Block ``height``'s part of the index in write txn ``w``: its inbox records
    (``block_pairs``), then partition ``height % partitions`` moved into ``tx_index``.
    Returns how many records moved."""
    w.put_packed("tx_inbox", *pairs, sort=True)
    keys, values = w.take_packed("tx_inbox", bytes([height % partitions]), partition_records_max)
    if not keys:
        return 0
    rows = np.frombuffer(keys, dtype=np.uint8).reshape(-1, _key_size)
    loc = np.empty(len(rows), dtype=_locations)
    loc["height"] = np.ascontiguousarray(rows[:, 1:9]).view(">u8").ravel()
    loc["pos"] = np.frombuffer(values, dtype="<u4")
    w.put_packed("tx_index", np.ascontiguousarray(rows[:, 9:]).tobytes(), loc.tobytes(), sort=True)
    return len(rows)


def locate(r, tx_ids: Sequence[bytes]) -> list[tuple[int, int] | None]:
    """(height, position) of each of ``tx_ids`` in read txn ``r`` (None: not committed).

    ``tx_index`` first; the ids it lacks are looked for in their inbox partitions, each
    partition read once, natively, however many ids fall in it."""
    found: list[tuple[int, int] | None] = [r.get("tx_index", t) if len(t) == 32 else None for t in tx_ids]
    missing: dict[int, dict[bytes, list[int]]] = {}
    for i, (t, loc) in enumerate(zip(tx_ids, found, strict=True)):
        if loc is None and len(t) == 32:
            missing.setdefault(t[0], {}).setdefault(t, []).append(i)
    for part, wanted in missing.items():
        ids = list(wanted)
        for t, hit in zip(ids, r.scan_tails("tx_inbox", bytes([part]), ids), strict=True):
            if hit is not None:
                height, (pos,) = int.from_bytes(hit[0], "big"), hit[1]
                for i in wanted[t]:
                    found[i] = (height, pos)
    return found


def position_at(r, tx_id: bytes, height: int) -> int | None:
    """The position the index gives ``tx_id`` if it places it in block ``height``, else None."""
    loc = r.get("tx_index", tx_id)
    if loc is not None:
        return loc[1] if loc[0] == height else None
    found = r.get("tx_inbox", bytes([tx_id[0]]) + height.to_bytes(8, "big") + tx_id)
    return None if found is None else found[0]
