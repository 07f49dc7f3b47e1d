"""The node's local HTTP endpoint (``tierchain node run``) and its client.

Binary in, JSON out. The server listens on loopback by default; it is the
operator's control and submission surface, not a public API gateway.

* ``POST /v1/txs[?wait=SECONDS]`` body: framed transactions (``wire.frame``),
  at most ``limits.batch_bytes_max`` bytes. Reply: per transaction the reject
  code name (``OK`` if accepted) and tx id; with ``wait``, also the receipts
  once durably committed.
* ``GET /v1/head``, ``GET /v1/block/<height>``, ``GET /v1/tx/<hex id>``,
  ``GET /v1/state/<hex key>``, ``GET /v1/nonce/<hex public key>``.
"""

from __future__ import annotations

import http.server
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from tierchain import limits
from tierchain.block import Header, Receipt
from tierchain.chain import Chain
from tierchain.errors import Reject, RejectedError, TierChainError

wait_s_max = 60.0


class RpcError(TierChainError):
    """The node could not be reached or answered with an error."""


def header_json(h: Header) -> dict[str, Any]:
    return {
        "height": h.height,
        "hash": h.hash().hex(),
        "prev_hash": h.prev_hash.hex(),
        "timestamp_ms": h.timestamp_ms,
        "tx_count": h.tx_count,
        "tx_root": h.tx_root.hex(),
        "receipt_root": h.receipt_root.hex(),
        "state_root": h.state_root.hex(),
        "proposer": h.proposer.hex(),
        "signature": h.signature.hex(),
        "chain_id": h.chain_id,
    }


def receipt_json(r: Receipt | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return {
        "tx_id": r.tx_id.hex(),
        "code": Reject(r.code).name,
        "events": [{"topic": e.topic.decode(errors="replace"), "data": e.data.hex()} for e in r.events],
    }


def _handler(chain: Chain) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "tierchain"

        def log_message(self, fmt: str, *args: Any) -> None:  # requests are not worth a log line each
            pass

        def _reply(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            if url.path != "/v1/txs":
                return self._reply(404, {"error": "not found"})
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= limits.batch_bytes_max:
                return self._reply(413, {"error": Reject.BATCH_TOO_LARGE.name})
            body = self.rfile.read(length)
            try:
                sub = chain.submit(body)
            except RejectedError as exc:
                return self._reply(
                    503 if exc.code == Reject.SHUTTING_DOWN else 400,
                    {"error": exc.code.name, "detail": exc.detail},
                )
            reply: dict[str, Any] = {
                "codes": [Reject(int(c)).name for c in sub.codes],
                "tx_ids": [t.hex() for t in sub.tx_ids],
            }
            wait = urllib.parse.parse_qs(url.query).get("wait")
            if wait:
                try:
                    receipts = sub.wait(min(float(wait[0]), wait_s_max))
                    reply["receipts"] = [receipt_json(r) for r in receipts]
                    reply["heights"] = [int(h) for h in sub.heights]
                except TimeoutError:
                    reply["timeout"] = True
            self._reply(200, reply)

        def do_GET(self) -> None:
            parts = urllib.parse.urlsplit(self.path).path.strip("/").split("/")
            try:
                if parts == ["v1", "head"]:
                    return self._reply(200, header_json(chain.head()))
                if len(parts) == 3 and parts[:2] == ["v1", "block"]:
                    h = chain.header(int(parts[2]))
                    if h is None:
                        return self._reply(404, {"error": "no such block"})
                    return self._reply(
                        200,
                        {
                            "header": header_json(h),
                            "receipts": [receipt_json(r) for r in chain.receipts(h.height)],
                        },
                    )
                if len(parts) == 3 and parts[:2] == ["v1", "tx"]:
                    found = chain.tx(bytes.fromhex(parts[2]))
                    if found is None:
                        return self._reply(404, {"error": "no such transaction"})
                    height, pos, raw, receipt = found
                    return self._reply(
                        200,
                        {
                            "height": height,
                            "position": pos,
                            "tx": raw.hex(),
                            "receipt": receipt_json(receipt),
                        },
                    )
                if len(parts) == 3 and parts[:2] == ["v1", "state"]:
                    value = chain.state_get(bytes.fromhex(parts[2]))
                    return self._reply(200, {"value": None if value is None else value.hex()})
                if len(parts) == 3 and parts[:2] == ["v1", "nonce"]:
                    return self._reply(200, {"nonce": chain.nonce(bytes.fromhex(parts[2]))})
            except (ValueError, TierChainError) as exc:
                return self._reply(400, {"error": str(exc)})
            self._reply(404, {"error": "not found"})

    return Handler


class NodeServer:
    def __init__(self, chain: Chain, host: str = "127.0.0.1", port: int = 7545) -> None:
        self.httpd = http.server.ThreadingHTTPServer((host, port), _handler(chain))
        self.httpd.daemon_threads = True
        self.address = self.httpd.server_address
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="tierchain-rpc", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class NodeClient:
    def __init__(self, url: str = "http://127.0.0.1:7545", timeout_s: float = 70.0) -> None:
        self.url, self.timeout_s = url.rstrip("/"), timeout_s

    def _call(self, path: str, data: bytes | None = None) -> dict[str, Any]:
        req = urllib.request.Request(self.url + path, data=data, method="POST" if data is not None else "GET")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as exc:
            try:
                detail = json.load(exc)
            except ValueError:
                detail = {"error": exc.reason}
            raise RpcError(f"{exc.code}: {detail.get('error')} {detail.get('detail', '')}".strip()) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise RpcError(f"cannot reach node at {self.url}: {exc}") from exc

    def submit(self, framed: bytes, wait_s: float | None = None) -> dict[str, Any]:
        query = f"?wait={wait_s}" if wait_s else ""
        return self._call("/v1/txs" + query, framed)

    def head(self) -> dict[str, Any]:
        return self._call("/v1/head")

    def nonce(self, public_key: bytes) -> int:
        return int(self._call(f"/v1/nonce/{public_key.hex()}")["nonce"])
