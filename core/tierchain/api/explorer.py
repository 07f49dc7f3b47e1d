"""The web explorer: pages served by the node at ``GET /explorer/`` (docs/api.md, "The explorer").

Static pages (``explorer/``: HTML, CSS and JavaScript modules, no build step) that read the
chain through the node's own APIs from the browser: the network API over HTTP/JSON
(``POST /api/v1/GetHead``, ``GetBlock``, ``GetTx``, ``GetInfo``) and the apps' endpoints
(``POST /v1/app/<name>``: ``finance.lineage``, ``finance.orgs``, ``bills.lineage``,
``abs.pool``). What this module adds is the server side of the pages' **verify** buttons:

``GET /explorer/verify?...`` answers a *transcript* (JSON) of checking one fact against the
chain's head, as a light client would (``tierchain.proofs``), so a reader sees what was
proven and by whom:

* a state record: ``key=<hex>``, or ``fact=<kind>&id=<hex>`` naming a record of an app
  (``FACTS``: piece, voucher, org, orgkey, doc, clearing, bill, pool, asset); the node
  proves the key at its head (``ProveState``), then the transcript checks that the header
  decodes and is signed by its proposer (``Header.signature_ok``), that the proof decodes,
  names this key and this height, and that the state root it recomputes is the header's
  (``proofs.verify_state_encoded``); it shows the key, the proven value's digest (the
  state tree's value hash) and what the value decodes to, the height, the state root, the
  header's hash and its proposer;
* a transaction: ``tx=<hex id>``, its inclusion proof (``ProveTx``) checked with
  ``proofs.verify_tx`` (the tx id under the header's ``tx_root``, its receipt under
  ``receipt_root``), with the receipt's code;
* a block header: ``height=<n>``, its proposer's signature and its link to the previous
  header's hash.

``verified`` is true only if every check passed. What a transcript cannot say is whether to
trust the proposer: it names the proposer's key, to compare with the one the reader knows.
The checks are pure functions of the bytes (``state_transcript``, ``tx_transcript``,
``header_transcript``), so a tampered proof is reported as such.

Verify calls go through the node's API authenticator and rate limits as an API call would
(``tierchain.api.auth``): a node that requires signed calls refuses an unsigned browser's
(and its pages' API calls too). Static files are answered with a strict
``Content-Security-Policy`` (scripts and styles from the node only, no inline code).
"""

from __future__ import annotations

import json
import logging
import re
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

from tierchain import limits, proofs
from tierchain.api.errors import ApiError, Caller, bad
from tierchain.api.schema import message
from tierchain.api.service import NodeService
from tierchain.crypto import CryptoSuite
from tierchain.wire.block import CodecError, Header, decode_header, decode_receipt

log = logging.getLogger("tierchain.explorer")

PREFIX = "/explorer"
VERIFY = PREFIX + "/verify"
ASSETS = Path(__file__).with_name("explorer")
_ASSET = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}\.(html|js|css|svg)")
CONTENT_TYPES = {
    "html": b"text/html; charset=utf-8",
    "js": b"text/javascript; charset=utf-8",
    "css": b"text/css; charset=utf-8",
    "svg": b"image/svg+xml",
}
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-cache"),
]
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
_HEIGHT = re.compile(r"[0-9]{1,20}")
TRUST_NOTE = (
    "the checks prove the fact against a header signed by its proposer; "
    "whether to trust that proposer is yours to decide: compare its key with the one you know"
)

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


# --- the checks (pure) ---------------------------------------------------------------------


def _check(checks: list[dict], name: str, ok: bool, detail: str = "") -> bool:
    checks.append({"check": name, "ok": bool(ok), "detail": detail})
    return bool(ok)


def key_text(key: bytes) -> str:
    """A state key for people: its printable prefix up to and with the first ``/``, then hex."""
    cut = key.find(b"/") + 1
    head = key[:cut]
    if cut and all(0x20 < b < 0x7F for b in head):
        return head.decode() + key[cut:].hex()
    return key.hex()


def _header_fields(h: Header | None, suite: CryptoSuite) -> dict:
    if h is None:
        return dict.fromkeys(("height", "chain_id", "timestamp_ms", "state_root", "header_hash", "proposer"))
    return {
        "height": h.height,
        "chain_id": h.chain_id,
        "timestamp_ms": h.timestamp_ms,
        "state_root": h.state_root.hex(),
        "header_hash": h.hash(suite).hex(),
        "proposer": h.proposer.hex(),
    }


def _block_roots(h: Header | None) -> dict:
    return {
        "tx_root": None if h is None else h.tx_root.hex(),
        "receipt_root": None if h is None else h.receipt_root.hex(),
    }


def _verdict(checks: list[dict], suite: CryptoSuite) -> dict:
    """A transcript's end: its checks, whether all passed, and what trusting it still takes."""
    return {
        "suite": suite.name,
        "checks": checks,
        "verified": all(c["ok"] for c in checks),
        "trust": TRUST_NOTE,
    }


def _signed_header(checks: list[dict], header: bytes, suite: CryptoSuite) -> Header | None:
    """The decoded header after two checks (it decodes; its proposer signed it), or None."""
    try:
        h = decode_header(bytes(header))
    except (CodecError, ValueError) as exc:
        _check(checks, "the header decodes", False, str(exc))
        _check(checks, "the header is signed by its proposer", False, "no header")
        return None
    _check(checks, "the header decodes", True, f"height {h.height}, {len(header)} bytes")
    _check(
        checks,
        "the header is signed by its proposer",
        h.signature_ok(suite),
        f"{suite.name} signature by {h.proposer.hex()}",
    )
    return h


def state_transcript(
    suite: CryptoSuite,
    key: bytes,
    header: bytes,
    proof: bytes,
    decode: Callable[[bytes, bytes], Any] | None = None,
) -> dict:
    """The transcript of checking the encoded state ``proof`` of ``key`` against the encoded
    ``header`` (see the module docstring); ``decode(key, value)`` names what a proven value
    holds (None: nothing shown)."""
    checks: list[dict] = []
    h = _signed_header(checks, header, suite)
    try:
        p = proofs.decode_state_proof(bytes(proof), suite=suite.name)
    except proofs.ProofError as exc:
        p = None
        _check(checks, "the proof decodes", False, str(exc))
    else:
        _check(checks, "the proof decodes", True, f"{len(p.siblings)} siblings, {len(proof)} bytes")
        _check(checks, "the proof is about this key", bytes(p.key) == key, key_text(bytes(p.key)))
        _check(
            checks,
            "the proof is at the header's height",
            h is not None and p.height == h.height,
            f"proof height {p.height}",
        )
    recomputed = proofs.state_root_from_proof(p, suite=suite.name) if p is not None else None
    _check(
        checks,
        "the state root recomputed from the proof is the header's",
        proofs.verify_state_encoded(bytes(header), bytes(proof), key, suite=suite.name),
        f"recomputed {recomputed.hex() if recomputed else 'nothing'}",
    )
    value = None if p is None else p.value
    decoded = None
    if value is not None and decode is not None:
        try:
            decoded = decode(key, value)
        except Exception as exc:  # a value this view cannot decode is shown undecoded, never an error
            decoded = {"error": f"{type(exc).__name__}: {exc}"}
    return {
        "kind": "state",
        "key": key.hex(),
        "key_text": key_text(key),
        "found": value is not None,
        "value_bytes": None if value is None else len(value),
        "value_digest": None if value is None else proofs.value_hash(value, suite=suite.name).hex(),
        "decoded": decoded,
        **_header_fields(h, suite),
        "recomputed_root": recomputed.hex() if recomputed else None,
        **_verdict(checks, suite),
    }


def tx_transcript(
    suite: CryptoSuite, tx_id: bytes, header: bytes, proof: bytes, code_name: Callable[[int], str] = str
) -> dict:
    """The transcript of checking the encoded inclusion ``proof`` of ``tx_id`` (and of its
    receipt) against the encoded ``header``; ``code_name`` names the receipt's code."""
    checks: list[dict] = []
    h = _signed_header(checks, header, suite)
    receipt = None
    try:
        p = proofs.decode_tx_proof(bytes(proof))
    except proofs.ProofError as exc:
        p = None
        _check(checks, "the proof decodes", False, str(exc))
    else:
        _check(checks, "the proof decodes", True, f"position {p.index} of {p.size}")
        _check(checks, "the proof is about this transaction", p.tx_id == tx_id, p.tx_id.hex())
        _check(
            checks,
            "the proof is at the header's height",
            h is not None and p.height == h.height,
            f"proof height {p.height}",
        )
        try:
            receipt = decode_receipt(p.receipt)[0]
        except (CodecError, ValueError, IndexError):
            receipt = None
        _check(
            checks,
            "the proven receipt is this transaction's",
            receipt is not None and receipt.tx_id == tx_id,
            "" if receipt is None else f"code {code_name(receipt.code)}",
        )
    ok = p is not None and proofs.verify_tx(bytes(header), p, tx_id, suite=suite.name)
    _check(
        checks,
        "the tx id and its receipt are in the header's tx_root and receipt_root",
        ok,
        f"Merkle paths of {len(p.tx_path)} and {len(p.receipt_path)} hashes" if p else "no proof",
    )
    return {
        "kind": "tx",
        "tx_id": tx_id.hex(),
        "position": None if p is None else p.index,
        "block_txs": None if p is None else p.size,
        "receipt_code": None if receipt is None else code_name(receipt.code),
        # the receipt's leaf in the block's receipt tree (what its Merkle path proves)
        "receipt_digest": None if p is None else proofs.merkle_leaf_hash(p.receipt, suite=suite.name).hex(),
        **_header_fields(h, suite),
        **_block_roots(h),
        **_verdict(checks, suite),
    }


def header_transcript(suite: CryptoSuite, header: bytes, previous: bytes | None) -> dict:
    """The transcript of checking an encoded ``header``: its proposer's signature and, given
    the ``previous`` header (None at height 0), that it extends it by hash and height."""
    checks: list[dict] = []
    h = _signed_header(checks, header, suite)
    if h is not None and h.height > 0:
        try:
            prev = decode_header(bytes(previous)) if previous is not None else None
        except CodecError:
            prev = None
        _check(
            checks,
            "it extends the previous header (its prev_hash, the next height, the same chain)",
            prev is not None
            and h.prev_hash == prev.hash(suite)
            and h.height == prev.height + 1
            and h.chain_id == prev.chain_id,
            f"prev_hash {h.prev_hash.hex()}",
        )
    return {
        "kind": "header",
        **_header_fields(h, suite),
        "prev_hash": None if h is None else h.prev_hash.hex(),
        **_block_roots(h),
        **_verdict(checks, suite),
    }


# --- facts: app records by name --------------------------------------------------------------


def _id_arg(args: dict[str, str], n: int) -> bytes:
    text = args.get("id", "")
    if len(text) != 2 * n or not _HEX.fullmatch(text):
        raise bad(f"id is {n} bytes as hex")
    return bytes.fromhex(text)


def _fact_key(kind: str, args: dict[str, str], suite: CryptoSuite) -> bytes:
    """The state key of the record ``fact=<kind>`` names (``FACTS``)."""
    from tierchain.apps.abs import codes as ac
    from tierchain.apps.bills import codes as bc
    from tierchain.apps.finance import codes as fc

    extra = {"doc": {"type"}, "clearing": {"batch"}}.get(kind, set())
    allowed = {"fact", "id"} | extra | ({"name"} if kind == "org" else set())
    unknown = set(args) - allowed
    if unknown:
        takes = ", ".join(sorted(allowed - {"fact"}))
        raise bad(f"fact={kind} takes {takes}; not {sorted(unknown)[0][:20]!r}")
    if kind == "org" and "name" in args:
        if "id" in args:
            raise bad("an org by id or by name, not both")
        return fc.org_key(fc.org_id(args["name"], suite=suite))
    simple = {
        "piece": (fc.id_bytes, fc.piece_key),
        "voucher": (fc.id_bytes, fc.voucher_key),
        "org": (fc.id_bytes, fc.org_key),
        "orgkey": (limits.public_key_bytes, fc.key_key),
        "bill": (bc.id_bytes, bc.bill_key),
        "pool": (ac.id_bytes, ac.pool_key),
        "asset": (ac.id_bytes, ac.asset_key),
    }
    if kind in simple:
        n, key_of = simple[kind]
        return key_of(_id_arg(args, n))
    if kind == "doc":
        try:
            doc_type = fc.DocType[args.get("type", "")]
        except KeyError:
            raise bad(f"type is a document type: {', '.join(t.name for t in fc.DocType)}") from None
        return fc.doc_key(doc_type, _id_arg(args, 32))
    if kind == "clearing":
        text = args.get("batch", "")
        if not text.isdigit() or int(text) >= 1 << 16:
            raise bad("batch is a settlement batch number, 0..65535")
        return fc.clearing_key(_id_arg(args, fc.id_bytes), int(text))
    raise bad(f"fact is one of {', '.join(FACTS)}")


FACTS = ("piece", "voucher", "org", "orgkey", "doc", "clearing", "bill", "pool", "asset")


def decode_value(chain: Any) -> Callable[[bytes, bytes], dict | None]:
    """What a proven value of a known record holds, by its key's prefix (None: not known)."""
    from tierchain.apps.abs import codes as ac
    from tierchain.apps.bills import codes as bc
    from tierchain.apps.finance import codes as fc
    from tierchain.apps.finance.lineage import namer

    name = namer(chain.state_get)

    def org(oid: bytes) -> dict:
        return {"id": oid.hex(), "name": name(oid)}

    def decode(key: bytes, value: bytes) -> dict | None:
        if key.startswith(b"fx/"):
            p = fc.Piece.decode(value)
            return {
                "record": "piece",
                "voucher": p.voucher.hex(),
                "parent": None if p.parent == fc.ZERO_ID else p.parent.hex(),
                "amount": str(p.amount) if p.amount else None,
                "holder": org(p.holder),
                "state": fc.PieceState(p.state).name,
                "children": p.children,
                "events": len(p.history),
            }
        if key.startswith(b"fv/"):
            v = fc.Voucher.decode(value)
            return {
                "record": "voucher",
                "obligor": org(v.obligor),
                "beneficiary": org(v.beneficiary),
                "face": str(v.face) if v.face else None,
                "maturity_ms": v.maturity_ms,
                "status": fc.VoucherStatus(v.status).name,
                "settled": str(v.settled),
                "documents": len(v.docs),
            }
        if key.startswith(b"fo/"):
            o = fc.OrgRecord.decode(value)
            return {
                "record": "organization",
                "name": o.name.decode("utf-8", "replace"),
                "roles": chain.apps.role_names(o.roles),
                "status": "ACTIVE" if o.status == 1 else f"INACTIVE ({o.status})",
                "keys_active": o.keys_active,
            }
        if key.startswith(b"fk/"):
            k = fc.KeyRecord.decode(value)
            return {"record": "key", "org": org(k.org), "status": fc.KeyStatus(k.status).name}
        if key.startswith(b"fd/"):
            d = fc.DocRecord.decode(value)
            return {
                "record": "document",
                "anchored_by": org(d.org),
                "signer": d.signer.hex(),
                "height": d.height,
                "tx_id": d.tx_id.hex(),
            }
        if key.startswith(b"fc/"):
            height, rows = fc.decode_clearing(value)
            return {
                "record": "clearing",
                "height": height,
                "rows": len(rows),
                "paid": str(sum(a for _, _, a in rows)),
            }
        if key.startswith(b"bl/"):
            b = bc.Bill.decode(value)
            return {
                "record": "bill",
                "face": str(b.face),
                "drawer": org(b.drawer),
                "holder": org(b.holder),
                "state": bc.BillState(b.state).name,
                "endorsements": len(b.chain),
            }
        if key.startswith(ac.PREFIX) and len(key) == len(ac.pool_key(bytes(ac.id_bytes))):
            tag = key[len(ac.PREFIX) + ac.tag_bytes : len(ac.PREFIX) + ac.tag_bytes + 1]
            if tag == b"P":
                pool = ac.Pool.decode(value)
                return {
                    "record": "pool",
                    "name": pool.name.decode("utf-8", "replace"),
                    "status": ac.PoolStatus(pool.status).name,
                    "assets": pool.assets,
                    "cutoff_balance": str(pool.cutoff_balance),
                }
            if tag == b"A":
                a = ac.Asset.decode(value)
                return {
                    "record": "asset",
                    "status": ac.AssetStatus(a.status).name,
                    "principal": str(a.principal),
                    "outstanding": str(a.outstanding),
                }
        return None

    return decode


# --- the explorer's HTTP face ------------------------------------------------------------------


class Explorer:
    """The explorer for ``NodeApp``: its pages and ``/explorer/verify`` (module docstring)."""

    def __init__(self, service: NodeService, call: Callable[..., Awaitable[Any]]) -> None:
        """``call(fn, *args)``: run a blocking function off the event loop (the node's pool)."""
        self.service, self.call = service, call
        self.chain = service.chain
        self._assets: dict[str, bytes] = {}

    def handles(self, path: str) -> bool:
        return path == PREFIX or path.startswith(PREFIX + "/")

    async def __call__(
        self, scope: dict[str, Any], receive: Receive, send: Send, headers: list[tuple[bytes, bytes]] = ()
    ) -> None:
        """Answer one request; ``headers`` go on the response (the node's request id)."""
        extra = [*SECURITY_HEADERS, *headers]
        try:
            status, body, ctype, more = await self._serve(scope)
        except ApiError as exc:
            status, ctype, more = exc.http_status, b"application/json", []
            body = json.dumps({"error": exc.code, "detail": exc.detail}).encode()
        except Exception as exc:  # a bug: answered, and logged with its traceback
            log.exception("explorer request failed", extra={"fields": {"path": scope.get("path", "")[:200]}})
            status, ctype, more = 500, b"application/json", []
            body = json.dumps({"error": "INTERNAL_ERROR", "detail": type(exc).__name__}).encode()
        head = [(b"content-type", ctype), (b"content-length", str(len(body)).encode()), *more, *extra]
        if scope["method"] != "GET":
            head.append((b"connection", b"close"))  # a body we did not read must not be parsed
        await send({"type": "http.response.start", "status": status, "headers": head})
        await send({"type": "http.response.body", "body": body})

    async def _serve(self, scope: dict[str, Any]) -> tuple[int, bytes, bytes, list]:
        path = scope["path"]
        if scope["method"] != "GET":
            raise ApiError(grpc.StatusCode.INVALID_ARGUMENT, "METHOD_NOT_ALLOWED", "the explorer serves GET")
        if path == PREFIX:
            return 308, b"", b"text/plain", [(b"location", b"/explorer/")]
        if path == VERIFY:
            raw = scope.get("query_string", b"")
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            peer = "{}:{}".format(*scope["client"]) if scope.get("client") else "unknown"
            caller = self.service.auth.caller(VERIFY, raw, headers, peer)
            self.service.auth.charge(caller)
            answer = await self.call(self.verify, _query(raw), caller)
            return 200, json.dumps(answer).encode(), b"application/json", []
        name = path[len(PREFIX) + 1 :] or "index.html"
        body = self._asset(name)
        if body is None:
            raise ApiError(grpc.StatusCode.NOT_FOUND, "NOT_FOUND", f"no explorer file {name[:80]!r}")
        return 200, body, CONTENT_TYPES[name.rsplit(".", 1)[1]], []

    def _asset(self, name: str) -> bytes | None:
        """A file of ``explorer/`` by plain name (no folders), read once."""
        if name not in self._assets:
            if not _ASSET.fullmatch(name) or not (ASSETS / name).is_file():
                return None
            self._assets[name] = (ASSETS / name).read_bytes()
        return self._assets[name]

    def verify(self, args: dict[str, str], caller: Caller) -> dict:
        """The transcript the query asks for (module docstring); blocking (the node's pool)."""
        suite = self.chain.suite
        given = [k for k in ("key", "fact", "tx", "height") if k in args]
        if len(given) != 1:
            raise bad("verify one of: key=<hex>, fact=<kind>&id=<hex>, tx=<hex id>, height=<n>")
        if given == ["tx"]:
            if set(args) != {"tx"} or len(args["tx"]) != 64 or not _HEX.fullmatch(args["tx"]):
                raise bad("tx is a tx id: 32 bytes as hex, alone")
            tx_id = bytes.fromhex(args["tx"])
            p = self.service.call("ProveTx", message("ProveTxRequest")(tx_id=tx_id), caller)
            return tx_transcript(suite, tx_id, p.header, p.proof, self.chain.apps.reject_name)
        if given == ["height"]:
            text = args["height"]
            if set(args) != {"height"} or not _HEIGHT.fullmatch(text) or int(text) >= 1 << 64:
                raise bad("height is a block height (0..2^64-1), alone")
            h = self.chain.header(int(text))
            if h is None:
                raise ApiError(grpc.StatusCode.NOT_FOUND, "NO_SUCH_BLOCK", f"no block at height {text}")
            prev = self.chain.header(h.height - 1) if h.height else None
            return header_transcript(suite, h.encode(), None if prev is None else prev.encode())
        if given == ["key"]:
            text = args["key"]
            if set(args) != {"key"} or not _HEX.fullmatch(text) or len(text) > 2 * limits.key_bytes_max:
                raise bad(f"key is a state key: 1..{limits.key_bytes_max} bytes as hex, alone")
            key = bytes.fromhex(text)
            fact = None
        else:
            key = _fact_key(args["fact"], args, suite)
            fact = dict(args)
        p = self.service.call("ProveState", message("ProveStateRequest")(key=key), caller)
        return {**state_transcript(suite, key, p.header, p.proof, decode_value(self.chain)), "fact": fact}


def _query(raw: bytes) -> dict[str, str]:
    text = raw.decode("latin-1")
    try:
        pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, strict_parsing=True) if text else []
    except ValueError:
        raise bad(f"malformed query string {text[:80]!r}") from None
    args: dict[str, str] = {}
    for k, v in pairs:
        if k in args:
            raise bad(f"query parameter {k[:20]!r} given twice")
        args[k] = v
    return args
