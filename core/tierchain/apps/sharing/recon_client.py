"""``Reconciler``: one organization's side of a reconciliation pair, and the node's endpoint.

It runs against any sharing ledger (``ledger.ledger_of``: an embedded ``Chain``, a node
over HTTP, a test ledger)::

    rec = Reconciler(chain, bank_a_keys, counterparty_org=org_id("BankB"))
    rec.open_pair(counterparty_recipient_key=bank_b_public_key)   # once per pair
    rec.post(day, {"TX-1": {"amount": 100, "ccy": "CNY"}, ...})     # any number of times
    report = rec.report(day)        # matched, mismatched (field names), missing on us/them
    report.to_json()

The pair key is drawn by whoever opens the pair and sealed to one key of each organization;
``pair_key`` unseals this side's copy (with ``reader``, the key pair it was sealed to:
``keys`` unless given) and checks it against the pair's public key check. The finance
state has no index from an organization to its keys, so the counterparty's recipient key
is an argument of ``open_pair`` (it knows which of its keys it wants the key sealed to).

``post`` chunks a day's records into postings of at most ``codes.recon_posts_per_tx_max``
records that fit ``limits.payload_bytes_max``, sends them one after another (each waits
for its receipt; the first refusal stops it) and remembers each posted tag's reference
and field names, so that ``report`` can name them; a process that did not post them gives
its records to ``report`` instead. With ``fields`` (the agreed schema) every record must
have exactly those fields (``ReconError`` before anything is signed).

``make_endpoint(chain)`` is the node API's ``sharing.recon_report``: the public report of
one pair and day, page by page (``ENDPOINT``).
"""

from __future__ import annotations

import secrets
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from tierchain.apps.finance import codes as fc
from tierchain.apps.sharing import codes as c
from tierchain.apps.sharing import recon
from tierchain.apps.sharing import recon_report as rr
from tierchain.apps.sharing.ledger import Ledger, Result, check_suite, ledger_of, scan_all, send_signed
from tierchain.apps.sharing.recon_report import FieldValue, ReconError, Ref
from tierchain.crypto import KeyPair
from tierchain.engine import apps
from tierchain.limits import payload_bytes_max
from tierchain.wire import tx as txcodec

__all__ = [
    "ENDPOINT",
    "PairKeyMismatch",
    "ReconError",
    "Reconciler",
    "Result",
    "chunk",
    "fetch_public_report",
    "make_endpoint",
]

_U32 = struct.Struct("<I")
endpoint_rows_max = 10_000  # rows one endpoint call scans (engine.queries.scan_limit_max)


class PairKeyMismatch(ReconError):
    """The pair key this side unseals is not the one the pair's key check names (the opener
    sealed different keys to the two sides): nothing posted under it would match."""


def chunk(entries: Sequence[recon.Entry]) -> list[list[recon.Entry]]:
    """``entries`` in order, cut into postings of at most ``recon_posts_per_tx_max`` records
    whose payloads fit ``payload_bytes_max``."""
    out: list[list[recon.Entry]] = []
    part: list[recon.Entry] = []
    size = recon.post_bytes([])
    for e in entries:
        n = recon.entry_bytes(e)
        if part and (len(part) == c.recon_posts_per_tx_max or size + n > payload_bytes_max):
            out.append(part)
            part, size = [], recon.post_bytes([])
        part.append(e)
        size += n
    if part:
        out.append(part)
    return out


class Reconciler:
    """``keys`` (a key of one organization) reconciling with ``counterparty_org``."""

    def __init__(
        self,
        ledger: Any,
        keys: KeyPair,
        counterparty_org: bytes,
        *,
        reader: KeyPair | None = None,
        fields: Iterable[str] | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.ledger: Ledger = ledger_of(ledger)
        self.suite = self.ledger.suite
        for kp in (keys, reader or keys):
            check_suite(self.ledger, kp)
        if len(counterparty_org) != c.id_bytes:
            raise ValueError("an organization id is 16 bytes")
        self.keys, self.pk, self.reader = keys, keys.public_key, reader or keys
        self.counterparty = bytes(counterparty_org)
        self.fields = None if fields is None else tuple(sorted(fields))
        if self.fields is not None:
            rr.encoded_fields(dict.fromkeys(self.fields, b""))  # the schema's names are valid names
        self.timeout_s = timeout_s
        self._org: bytes | None = None
        self._pair_key: bytes | None = None
        self._keys: recon.PairKeys | None = None
        # What this process posted: day -> tag -> (reference, the record's field names).
        self.books: dict[int, dict[bytes, tuple[Ref, tuple[str, ...]]]] = {}

    # --- who and which pair ---------------------------------------------------------------
    @property
    def org(self) -> bytes:
        """This key's organization (the zero id for a key the chain does not know: its
        transactions are then refused with ``SENDER_NOT_MEMBER``, as they should be)."""
        if self._org is None:
            raw = self.ledger.state_get(fc.key_key(self.pk))
            if raw is None:
                return fc.ZERO_ID
            self._org = fc.KeyRecord.decode(raw).org
        return self._org

    @property
    def pair_id(self) -> bytes:
        return c.pair_id(self.org, self.counterparty, suite=self.suite)

    @property
    def side(self) -> int:
        """0 if this organization is the pair's A (the lower id), 1 if it is B."""
        return int(self.org > self.counterparty)

    def pair(self) -> recon.PairRecord | None:
        raw = self.ledger.state_get(c.pair_key(self.pair_id))
        return None if raw is None else recon.PairRecord.decode(raw, self.suite.public_key_bytes)

    def send(self, tx: txcodec.Tx, **extra: Any) -> Result:
        return send_signed(self.ledger, self.keys, tx, self.timeout_s, **extra)

    # --- the pair ----------------------------------------------------------------------------
    def open_pair(self, counterparty_recipient_key: bytes, own_recipient_key: bytes | None = None) -> Result:
        """Open the pair: a fresh pair key sealed to ``own_recipient_key`` (this key unless
        given: an active key of this organization) and to ``counterparty_recipient_key`` (an
        active key of the counterparty)."""
        suite = self.suite
        pair_key = secrets.token_bytes(suite.aead_key_bytes)
        own_key = self.reader.public_key if own_recipient_key is None else own_recipient_key
        try:
            own_sealed = suite.seal(own_key, pair_key)
            other_sealed = suite.seal(counterparty_recipient_key, pair_key)
        except ValueError as exc:
            raise ReconError(f"cannot seal the pair key: {exc}") from None
        tx = recon.pair_open(
            self.ledger.chain_id, self.pk, self.org, self.ledger.nonce(self.pk), self.counterparty,
            recon.key_check(pair_key, suite), own_key, own_sealed, counterparty_recipient_key, other_sealed,
            suite=suite,
        )  # fmt: skip
        return self.send(tx, id=self.pair_id)

    def pair_key(self) -> bytes | None:
        """The pair key, unsealed from the chain with ``reader`` (None: no pair yet, this
        organization is not one of it, or its key was sealed to another key);
        ``PairKeyMismatch`` if it is not the key the pair's key check names."""
        if self._pair_key is not None:
            return self._pair_key
        record = self.pair()
        side = None if record is None else record.side_of(self.org)
        if record is None or side is None or record.recipients[side] != self.reader.public_key:
            return None
        key = self.suite.unseal(self.reader, record.sealed[side])
        if key is None or len(key) != self.suite.aead_key_bytes:
            return None
        if recon.key_check(key, self.suite) != record.check:
            raise PairKeyMismatch("the unsealed pair key does not match the pair's key check")
        self._pair_key, self._keys = key, recon.derive(key, self.suite)
        return key

    def _derived(self) -> recon.PairKeys:
        if self.pair_key() is None or self._keys is None:
            raise ReconError("no pair key for this key: open the pair (or read it with its recipient key)")
        return self._keys

    # --- postings -------------------------------------------------------------------------
    def entries(
        self, day: int, records: Mapping[Ref, Mapping[str, FieldValue]]
    ) -> list[tuple[Ref, recon.Entry]]:
        """What this side posts for ``records`` on ``day`` (checked against the schema)."""
        if not 0 <= day < 1 << 32:
            raise ReconError("a day is a u32 (ms // codes.day_ms)")
        if self.fields is not None:
            for ref, fields in records.items():
                if tuple(sorted(fields)) != self.fields:
                    raise ReconError(f"record {ref!r:.80}: fields {sorted(fields)} are not the schema's")
        return rr.entries(self._derived(), self.suite, self.pair_id, day, self.side, records)

    def _remember(self, day: int, posted: list[tuple[Ref, recon.Entry]], records: Mapping) -> None:
        book = self.books.setdefault(day, {})
        for ref, e in posted:
            if e.is_withdrawal:
                book.pop(e.tag, None)
            else:
                book[e.tag] = (ref, tuple(sorted(records[ref])))

    def _post(
        self, day: int, entries: list[tuple[Ref, recon.Entry]], records: Mapping, amend: bool
    ) -> list[Result]:
        refs = {e.tag: ref for ref, e in entries}
        results = []
        for part in chunk([e for _, e in entries]):
            tx = recon.recon_post(
                self.ledger.chain_id,
                self.pk,
                self.org,
                self.ledger.nonce(self.pk),
                self.pair_id,
                day,
                part,
                amend,
            )
            r = self.send(tx, id=self.pair_id, tags=[e.tag for e in part])
            results.append(r)
            if not r.ok:
                break
            self._remember(day, [(refs[e.tag], e) for e in part], records)
        return results

    def post(
        self, day: int, records: Mapping[Ref, Mapping[str, FieldValue]], amend: bool = False
    ) -> list[Result]:
        """Post this side's ``records`` (reference -> fields) of ``day``: one Result per
        posting, stopping at the first refusal. ``amend``: replace records already posted."""
        return self._post(day, self.entries(day, records), records, amend)

    def withdraw(self, day: int, refs: Iterable[Ref]) -> list[Result]:
        """Take this side's postings of ``refs`` off ``day`` (records posted in error)."""
        keys = self._derived()
        entries = [(ref, recon.withdrawal(rr.tag_of(keys, self.suite, ref))) for ref in dict.fromkeys(refs)]
        return self._post(day, entries, {}, True)

    def signed_posts(
        self,
        day: int,
        records: Mapping[Ref, Mapping[str, FieldValue]],
        amend: bool = False,
        nonce: int | None = None,
    ) -> list[bytes]:
        """The signed postings ``post`` would send, with consecutive nonces from ``nonce``
        (the ledger's next one by default), for a caller that submits them itself (a
        pipeline, a bench). The records are remembered as posted."""
        entries = self.entries(day, records)
        nonce = self.ledger.nonce(self.pk) if nonce is None else nonce
        out = []
        for i, part in enumerate(chunk([e for _, e in entries])):
            tx = recon.recon_post(
                self.ledger.chain_id, self.pk, self.org, nonce + i, self.pair_id, day, part, amend
            )
            out.append(self.keys.sign_tx(tx).encode())
        self._remember(day, entries, records)
        return out

    # --- reports ------------------------------------------------------------------------
    def public_report(self, day: int) -> rr.PublicReport:
        """The day's public report, from the committed rows (what anyone can compute)."""
        pid = self.pair_id
        rows = scan_all(self.ledger, b"sy/" + pid + _U32.pack(day))
        return rr.report(pid, day, rows)

    def report(
        self,
        day: int,
        records: Mapping[Ref, Mapping[str, FieldValue]] | None = None,
        public: rr.PublicReport | None = None,
    ) -> rr.Report:
        """This side's report of ``day``: the public report (read now unless given, e.g. from
        the node's endpoint: ``PublicReport.from_json``) with tags mapped to references and
        mismatches explained. References and field names come from what this process
        posted and from ``records`` (this side's books of the day), if given."""
        public = self.public_report(day) if public is None else public
        if (public.pair, public.day) != (self.pair_id, day):
            raise ReconError("a report of another pair or day")
        keys = self._derived()
        book = self.books.get(day, {})
        refs = {tag: ref for tag, (ref, _) in book.items()}
        names: dict[bytes, tuple[str, ...]] = {tag: n for tag, (_, n) in book.items()}
        for ref, fields in (records or {}).items():
            tag = rr.tag_of(keys, self.suite, ref)
            refs[tag], names[tag] = ref, tuple(sorted(fields))
        schema: rr.FieldNames = self.fields if self.fields is not None else names
        assert self._pair_key is not None
        explained = rr.explain(
            public.mismatched, self._pair_key, self.suite, schema, pair=public.pair, day=day
        )
        return rr.party_report(public, self.side, refs, explained)


# --- the node's endpoint ---------------------------------------------------------------------
def _field(
    body: Mapping[str, Any], name: str, code: str, check: Callable[[Any], Any], default: Any = None
) -> Any:
    if name not in body:
        if default is None:
            raise apps.EndpointError(code, f"{name!r} is required")
        return default
    try:
        return check(body[name])
    except (TypeError, ValueError) as exc:
        raise apps.EndpointError(code, f"{name!r}: {exc}") from None


def _hex_of(size: int) -> Callable[[Any], bytes]:
    def check(value: Any) -> bytes:
        if not isinstance(value, str) or len(value) != 2 * size:
            raise ValueError(f"{size} bytes as hex")
        return bytes.fromhex(value)

    return check


def _int_in(lo: int, hi: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            raise ValueError(f"an integer in {lo}..{hi}")
        return value

    return check


def make_endpoint(chain: Any) -> Callable[[dict], dict[str, Any]]:
    """The ``sharing.recon_report`` endpoint of ``chain`` (any ledger ``ledger_of`` takes).

    Body: ``{"pair": hex 16 bytes, "day": u32, "after": hex tag (optional), "limit": 1..
    endpoint_rows_max (optional, default the maximum)}``. Answer: the public report of up
    to ``limit`` rows after ``after`` (``PublicReport.to_json``: counts, tags of matched,
    mismatched — with both sealed field vectors — and missing rows per side), the pair's
    two organizations (``orgs``: A, B), and ``next``: the tag to pass as ``after`` for the
    next page, null when this page ends the day. Refusals (``EndpointError``, status 400):
    ``BAD_REQUEST`` (unknown fields), ``BAD_PAIR``, ``BAD_DAY``, ``BAD_AFTER``,
    ``BAD_LIMIT``; ``NO_SUCH_PAIR`` (404)."""
    ledger = ledger_of(chain)
    accepted = {"pair", "day", "after", "limit"}

    def handler(body: dict) -> dict[str, Any]:
        extra = sorted(set(body) - accepted)
        if extra:
            raise apps.EndpointError(
                "BAD_REQUEST", f"unknown fields {extra[:5]} (accepted: {sorted(accepted)})"
            )
        pid = _field(body, "pair", "BAD_PAIR", _hex_of(c.id_bytes))
        day = _field(body, "day", "BAD_DAY", _int_in(0, (1 << 32) - 1))
        after = _field(body, "after", "BAD_AFTER", _hex_of(c.tag_bytes), b"")
        limit = _field(body, "limit", "BAD_LIMIT", _int_in(1, endpoint_rows_max), endpoint_rows_max)
        raw = ledger.state_get(c.pair_key(pid))
        if raw is None:
            raise apps.EndpointError("NO_SUCH_PAIR", f"no reconciliation pair {pid.hex()}", 404)
        record = recon.PairRecord.decode(raw, ledger.suite.public_key_bytes)
        prefix = b"sy/" + pid + _U32.pack(day)
        rows = ledger.state_scan(prefix, limit, prefix + after if after else b"")
        out = rr.report(pid, day, rows).to_json()
        out["orgs"] = [record.orgs[0].hex(), record.orgs[1].hex()]
        out["next"] = rows[-1][0][-c.tag_bytes :].hex() if len(rows) == limit else None
        return out

    return handler


ENDPOINT = apps.Endpoint("sharing.recon_report", make_endpoint)


def fetch_public_report(
    call: Callable[[dict], dict[str, Any]], pair: bytes, day: int, page_rows: int = endpoint_rows_max
) -> rr.PublicReport:
    """The whole public report of ``pair`` and ``day`` from the endpoint, page by page:
    ``call(body)`` is one endpoint call (``make_endpoint(chain)``, or over HTTP
    ``lambda body: client.app(ENDPOINT.name, body)`` with a ``NodeClient``). Hand it to
    ``Reconciler.report(day, public=...)`` to explain it."""
    body: dict[str, Any] = {"pair": pair.hex(), "day": day, "limit": page_rows}
    out: rr.PublicReport | None = None
    while True:
        answer = call(body)
        page = rr.PublicReport.from_json(answer)
        if (page.pair, page.day) != (pair, day):
            raise ReconError("the endpoint answered for another pair or day")
        if out is None:
            out = page
        else:
            out.extend(page)
        if answer.get("next") is None:
            return out
        body = {**body, "after": answer["next"]}
