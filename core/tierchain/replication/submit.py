"""Submissions to a replicated node: the node API's ``POST /v1/txs``, forwarded to CometBFT.

A replicated node does not put transactions into a block itself: CometBFT's mempool
holds them, gossips them to the validators and a proposer takes them. So
``Forwarder.submit`` decodes the batch and admits it as CheckTx would
(``TierChainApp.admit_local``: admission, signatures in one batch, each sender's nonce
sequence) — the codes the submitter gets — then forwards the admitted rows to the node's
own CometBFT RPC as one JSON-RPC batch of ``broadcast_tx_async``: CometBFT queues each for
CheckTx without a round trip per transaction, and that CheckTx passes them at once (the
app remembers what it admitted). A row CometBFT's mempool refuses outright (full, or
already in its cache) gets ``MEMPOOL_FULL`` / ``DUPLICATE``. When a block holding an
accepted transaction commits here, the watcher thread (a chain ``Subscription``) hands the
submission its receipt, so ``?wait=`` answers exactly as on a solo node.

Bounds: at most ``tracked_max`` accepted transactions wait for their block; one that is
not committed within ``wait_heights_max`` blocks (CometBFT may drop it on recheck) fails
its submission with ``NotCommitted`` instead of waiting forever. A batch is forwarded in
requests of at most ``forward_txs_max`` transactions (CometBFT's ``rpc.max_request_batch_size``,
which ``tierchain net init`` sets to match).
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import threading
from typing import Any

import numpy as np

from tierchain.engine.submission import ChainError, Submission
from tierchain.errors import Reject, RejectedError
from tierchain.replication.app import TierChainApp
from tierchain.wire.batch import decode_batch, row_bytes

log = logging.getLogger("tierchain.replication")
forward_txs_max = 2000  # per JSON-RPC batch request; net init sets rpc.max_request_batch_size to this
forward_body_bytes_max = 8 << 20  # and rpc.max_body_bytes to at least this (2000 base64 txs fit)
tracked_max = 200_000
wait_heights_max = 64
expire_every_heights = 16
forward_timeout_s = 30.0


class NotCommitted(ChainError):
    """An accepted transaction left CometBFT's mempool without being committed."""


class Forwarder:
    """Forward submissions to CometBFT at ``rpc_host:rpc_port`` and settle them at commit."""

    def __init__(self, app: TierChainApp, rpc_host: str, rpc_port: int) -> None:
        self.app, self.chain, self.host, self.port = app, app.chain, rpc_host, rpc_port
        self._lock = threading.Lock()
        # tx id -> (submission, row, height it was forwarded at)
        self._tracked: dict[bytes, tuple[Submission, int, int]] = {}
        self._local = threading.local()
        self._sub = self.chain.subscribe()
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="tierchain-forwarder", daemon=True)
        self._watcher.start()

    def close(self) -> None:
        self._stop.set()
        self._sub.close()
        self._watcher.join(5)

    # --- submit ----------------------------------------------------------------------

    def submit(self, buf: bytes) -> Submission:
        batch = decode_batch(buf, suite=self.chain.suite)
        ticket = Submission(batch)
        with self._lock:
            full = len(self._tracked) + len(batch) > tracked_max
        if full:
            raise RejectedError(Reject.MEMPOOL_FULL, f"{tracked_max} transactions already wait for a block")
        # Admitted here, as CheckTx would (the app's own checks, signatures in one batch), then
        # handed to CometBFT without waiting for its CheckTx, which passes them at once.
        codes = self.app.admit_local(batch)
        rows = np.flatnonzero(codes == 0)
        # Tracked BEFORE they are forwarded (a block can commit them before CometBFT's answer
        # to the broadcast is back here), and one submission per tx id: a resubmission of one
        # that still waits is a duplicate (its admit_local entry is the first one's: kept).
        ids = row_bytes(batch.digest[rows])
        mine: list[int] = []
        if rows.size:
            height = self.chain.height
            with self._lock:
                tracked = self._tracked
                for k, (row, tx_id) in enumerate(zip(rows.tolist(), ids, strict=True)):
                    if tx_id in tracked:
                        codes[row] = Reject.DUPLICATE
                    else:
                        tracked[tx_id] = (ticket, row, height)
                        mine.append(k)
            rows, ids = rows[mine], [ids[k] for k in mine]
            ticket._expect(len(rows))
        answered = 0
        try:
            for start in range(0, len(rows), forward_txs_max):
                part = rows[start : start + forward_txs_max]
                codes[part] = self._broadcast([batch.tx_bytes(i) for i in part.tolist()])
                answered = start + len(part)
        finally:  # refused by CometBFT, or not answered (the RPC failed): nothing to wait for
            gone = [k for k, r in enumerate(rows.tolist()) if k >= answered or codes[r]]
            if gone:
                self.app.forget_local(batch, rows[gone], codes[rows[gone]] == Reject.MEMPOOL_FULL)
                with self._lock:  # this submission's own entries (taken above), unless a block settled them
                    dropped = sum(self._tracked.pop(ids[k], None) is not None for k in gone)
                ticket._expect(-dropped)
        ticket._admitted(codes)
        return ticket

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=forward_timeout_s)
            self._local.conn = conn
        return conn

    def _broadcast(self, txs: list[bytes]) -> list[int]:
        """0 for each of ``txs`` CometBFT's mempool took, else why not (one JSON-RPC batch of
        ``broadcast_tx_async``: its CheckTx is not waited for; the app admitted them already)."""
        body = json.dumps(
            [
                {
                    "jsonrpc": "2.0",
                    "id": i,
                    "method": "broadcast_tx_async",
                    "params": {"tx": base64.b64encode(tx).decode()},
                }
                for i, tx in enumerate(txs)
            ]
        ).encode()
        for attempt in (0, 1):  # a kept-alive connection CometBFT closed: reconnect once
            conn = self._connection()
            try:
                conn.request("POST", "/", body, {"Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
                break
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                self._local.conn = None
                if attempt:
                    raise RejectedError(Reject.SHUTTING_DOWN, f"CometBFT RPC unreachable: {exc}") from None
        if resp.status != 200:
            raise RejectedError(Reject.SHUTTING_DOWN, f"CometBFT RPC answered {resp.status}: {data[:200]!r}")
        answers = json.loads(data)
        if isinstance(answers, dict):  # CometBFT answers a batch of one with the bare response
            if answers.get("id") is None:  # one error for the whole batch (e.g. its size)
                raise RejectedError(Reject.SHUTTING_DOWN, f"CometBFT RPC: {answers.get('error')}")
            answers = [answers]
        codes = [int(Reject.MEMPOOL_FULL)] * len(txs)
        for a in answers:
            i = a.get("id")
            if not isinstance(i, int) or not 0 <= i < len(txs):
                continue
            if "result" in a:
                codes[i] = _code(a["result"])
            else:  # CometBFT refused before CheckTx: mempool full, tx already in cache, too large
                codes[i] = _rpc_error_code(a.get("error") or {})
        return codes

    # --- settle at commit --------------------------------------------------------------

    def _watch(self) -> None:
        settled = self.chain.height
        while not self._stop.is_set():
            try:
                block = self._sub.get(timeout=0.2)
            except ChainError:  # fell behind (SubscriberLagged): resubscribe, read the gap back
                self._sub = self.chain.subscribe()
                block = None
            if block is None:
                top = self.chain.height
            else:
                top = block.header.height - 1
            for h in range(settled + 1, top + 1):  # blocks the subscription did not deliver
                self._settle(h, self.chain.receipts(h) or [])
            settled = max(settled, top)
            if block is not None and block.header.height > settled:
                self._settle(block.header.height, block.receipts)
                settled = block.header.height

    def _settle(self, height: int, receipts: list) -> None:
        done: dict[int, tuple[Submission, list[int], list]] = {}
        with self._lock:
            for rc in receipts:
                entry = self._tracked.pop(rc.tx_id, None)
                if entry is not None:
                    ticket, row, _ = entry
                    rows, rcs = done.setdefault(id(ticket), (ticket, [], []))[1:]
                    rows.append(row)
                    rcs.append(rc)
            expired = []
            if height % expire_every_heights == 0:  # a scan of every tracked tx: not every block
                stale = [t for t, (_, _, h) in self._tracked.items() if height - h > wait_heights_max]
                expired = [self._tracked.pop(t)[0] for t in stale]
        for ticket, rows, rcs in done.values():
            ticket._committed(np.asarray(rows, np.int64), rcs, height)
        for ticket in dict.fromkeys(expired):
            ticket._fail(NotCommitted(f"not committed within {wait_heights_max} blocks of its submission"))


def _code(result: dict[str, Any]) -> int:
    code = int(result.get("code", 0))
    if code and result.get("codespace") not in ("tierchain", "", None):
        return int(Reject.MEMPOOL_FULL)  # a code from outside this app: treat as "retry later"
    return code


def _rpc_error_code(error: dict[str, Any]) -> int:
    text = f"{error.get('message', '')} {error.get('data', '')}".lower()
    if "already exists in cache" in text:
        return int(Reject.DUPLICATE)
    if "too large" in text:
        return int(Reject.TOO_LARGE)
    return int(Reject.MEMPOOL_FULL)
