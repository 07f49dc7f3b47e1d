"""``Reconciler``: one organization's side of a reconciliation pair, and the node's endpoint.

It runs against any sharing ledger (``ledger.ledger_of``: an embedded ``Chain``, a node
over HTTP, a test ledger)::

    a = Reconciler(chain, bank_a_keys, counterparty_org=org_id("BankB"))
    a.open_pair(counterparty_recipient_key=bank_b_public_key)     # once per pair
    b = Reconciler(chain, bank_b_keys, counterparty_org=org_id("BankA"))
    b.accept()                     # B checks the key it unseals, then confirms it
    a.post(day, {"TX-1": {"amount": 100, "ccy": "CNY"}, ...})       # any number of times
    report = a.report(day)          # matched, mismatched (field names), missing on us/them
    report.to_json()

The pair key is drawn by whoever opens (or re-keys) the pair and sealed to one key of each
organization; ``pair_key`` unseals this side's copy (with ``reader``, the key pair it was
sealed to: ``keys`` unless given) and checks it against the generation's public key check
(``PairKeyMismatch`` if it does not match: the proposer sealed another key to this side).
Nothing can be posted until the other side ``accept``s the generation (which unseals and
checks first, so a key that does not match is never accepted). A side that cannot accept
(its copy does not match, or was sealed to a key it no longer has) calls ``rekey``: a new
key, the next generation, which the other side then accepts. The finance state has no
index from an organization to its keys, so the counterparty's recipient key is an argument
of ``open_pair`` and ``rekey`` (it knows which of its keys it wants the key sealed to).

``post`` posts under the current generation. It chunks a day's records into postings of
at most ``codes.recon_posts_per_tx_max`` records that fit ``limits.payload_bytes_max``,
sends them one after another (each waits for its receipt; the first refusal stops it) and
remembers each record's reference and field names by tag (``books``, per generation and
day), so that ``report`` can name them; a process that did not post them gives its records
to ``report`` instead. A posting's records are remembered *before* its receipt is awaited
(and forgotten again if the ledger refuses it): if the wait times out (``PostingPending``,
a ``TimeoutError``; a node's ``RemoteLedger.send`` raises it after admitting the
transaction, which may still commit), they stay remembered, and ``report``, which reads
the rows the chain has, shows whether they were posted; retry only what it shows missing
on our side (posting a committed record again is ``ALREADY_POSTED``). With ``fields`` (the
agreed schema) every record must have exactly those fields (``ReconError`` before anything
is signed).

``report`` and ``public_report`` are of the current generation unless given one: a
re-keyed pair keeps its old generations' rows and keys (``recon.generation_key``), so a
party can still report an old generation's days.

``make_endpoint(chain)`` is the node API's ``sharing.recon_report``: the public report of
one pair, generation and day, page by page (``ENDPOINT``); ``fetch_public_report`` reads
all its pages, refusing a node whose pages do not move forward (``PagingError``).
"""

from __future__ import annotations

import secrets
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
    "PagingError",
    "PairKeyMismatch",
    "PostingPending",
    "ReconError",
    "Reconciler",
    "Result",
    "chunk",
    "fetch_public_report",
    "make_endpoint",
]

endpoint_rows_max = 10_000  # rows one endpoint call scans (engine.queries.scan_limit_max)
report_rows_max = 10_000_000  # rows fetch_public_report reads by default (its page bound)


class PairKeyMismatch(ReconError):
    """The pair key this side unseals is not the one the generation's key check names (the
    proposer sealed different keys to the two sides): nothing posted under it would match.
    Do not accept the generation: re-key the pair (``Reconciler.rekey``)."""


class PagingError(ReconError):
    """The endpoint's pages do not move forward (a ``next`` cursor that is not after the
    last one, rows outside the page's range, more rows than asked) or do not end within
    the page bound: a faulty node."""


class PostingPending(TimeoutError):
    """A posting's receipt did not come in time; the transaction may still commit.
    ``results``: the postings that did (and were accepted) before it; ``tags``: the records
    of the one in doubt (remembered: ``Reconciler.report`` names them if they landed).
    Records after it were not sent."""

    def __init__(self, results: list[Result], tags: list[bytes]) -> None:
        super().__init__(f"a posting of {len(tags)} records was not committed in time (it may still be)")
        self.results, self.tags = results, tags


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


Book = dict[bytes, tuple[Ref, tuple[str, ...]]]  # tag -> (reference, the record's field names)


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
        self._pair_keys: dict[int, tuple[bytes, recon.PairKeys]] = {}  # generation -> key, derived
        # What this process posted (or submitted): (generation, day) -> tag -> (ref, field names).
        self.books: dict[tuple[int, int], Book] = {}

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

    def pair(self, generation: int | None = None) -> recon.PairRecord | None:
        """The pair's record of ``generation`` (None: the current one, which says whether it
        was accepted); None if there is no pair or no such generation yet."""
        pid = self.pair_id
        raw = self.ledger.state_get(c.pair_key(pid))
        if raw is None:
            return None
        record = recon.PairRecord.decode(raw, self.suite.public_key_bytes)
        if generation is None or generation == record.generation:
            return record
        if not 0 <= generation < record.generation:
            return None
        raw = self.ledger.state_get(recon.generation_key(pid, generation))
        return None if raw is None else recon.PairRecord.decode(raw, self.suite.public_key_bytes)

    @property
    def generation(self) -> int:
        """The pair's current generation (``ReconError`` if there is no pair)."""
        record = self.pair()
        if record is None:
            raise ReconError("no reconciliation pair: open it first")
        return record.generation

    def send(self, tx: txcodec.Tx, **extra: Any) -> Result:
        return send_signed(self.ledger, self.keys, tx, self.timeout_s, **extra)

    # --- the pair ----------------------------------------------------------------------------
    def _sealed(
        self, counterparty_recipient_key: bytes, own_recipient_key: bytes | None
    ) -> tuple[bytes, bytes, bytes, bytes, bytes]:
        """A fresh pair key's check, and the two recipient keys with the key sealed to each."""
        suite = self.suite
        pair_key = secrets.token_bytes(suite.aead_key_bytes)
        own_key = self.reader.public_key if own_recipient_key is None else own_recipient_key
        try:
            own_sealed = suite.seal(own_key, pair_key)
            other_sealed = suite.seal(counterparty_recipient_key, pair_key)
        except ValueError as exc:
            raise ReconError(f"cannot seal the pair key: {exc}") from None
        check = recon.key_check(pair_key, suite)
        return check, own_key, own_sealed, counterparty_recipient_key, other_sealed

    def open_pair(self, counterparty_recipient_key: bytes, own_recipient_key: bytes | None = None) -> Result:
        """Open the pair (generation 0): a fresh pair key sealed to ``own_recipient_key``
        (``reader``'s key unless given: an active key of this organization) and to
        ``counterparty_recipient_key`` (an active key of the counterparty). The counterparty
        then ``accept``s it."""
        sealed = self._sealed(counterparty_recipient_key, own_recipient_key)
        tx = recon.pair_open(
            self.ledger.chain_id, self.pk, self.org, self.ledger.nonce(self.pk), self.counterparty,
            *sealed, suite=self.suite,
        )  # fmt: skip
        return self.send(tx, id=self.pair_id)

    def rekey(self, counterparty_recipient_key: bytes, own_recipient_key: bytes | None = None) -> Result:
        """Replace the current generation by a fresh pair key (the next generation), sealed as
        for ``open_pair``; the counterparty then ``accept``s it. ``ReconError`` if there is no
        pair; ``STALE_GENERATION`` if another re-key came first."""
        generation = self.generation
        sealed = self._sealed(counterparty_recipient_key, own_recipient_key)
        tx = recon.pair_rekey(
            self.ledger.chain_id, self.pk, self.org, self.ledger.nonce(self.pk), generation,
            self.counterparty, *sealed, suite=self.suite,
        )  # fmt: skip
        return self.send(tx, id=self.pair_id)

    def accept(self) -> Result:
        """Accept the current generation, after unsealing its key and checking it against
        the key check (``PairKeyMismatch``: re-key instead; ``ReconError`` if this key cannot
        unseal it). The ledger refuses the proposer's own accept (``BAD_GRANTEE``) and a
        second one (``ALREADY_ACCEPTED``)."""
        record = self.pair()
        if record is None:
            raise ReconError("no reconciliation pair to accept")
        if self.pair_key(record.generation) is None:
            raise ReconError(f"cannot unseal generation {record.generation}'s key with this key")
        tx = recon.pair_accept(
            self.ledger.chain_id,
            self.pk,
            self.org,
            self.ledger.nonce(self.pk),
            self.pair_id,
            record.generation,
        )
        return self.send(tx, id=self.pair_id)

    def pair_key(self, generation: int | None = None) -> bytes | None:
        """The pair key of ``generation`` (None: the current one), unsealed from the chain
        with ``reader`` (None: no pair or no such generation, this organization is not one
        of it, or its key was sealed to another key); ``PairKeyMismatch`` if it is not the
        key the generation's key check names."""
        if generation is not None and generation in self._pair_keys:
            return self._pair_keys[generation][0]
        record = self.pair(generation)
        if record is None:
            return None
        if record.generation in self._pair_keys:
            return self._pair_keys[record.generation][0]
        side = record.side_of(self.org)
        if side is None or record.recipients[side] != self.reader.public_key:
            return None
        key = self.suite.unseal(self.reader, record.sealed[side])
        if key is None or len(key) != self.suite.aead_key_bytes:
            return None
        if recon.key_check(key, self.suite) != record.check:
            raise PairKeyMismatch(
                f"the unsealed pair key of generation {record.generation} does not match its key check"
            )
        self._pair_keys[record.generation] = (key, recon.derive(key, self.suite))
        return key

    def _derived(self, generation: int) -> tuple[bytes, recon.PairKeys]:
        if self.pair_key(generation) is None:
            raise ReconError(
                f"no pair key of generation {generation} for this key: open the pair (or read it "
                "with its recipient key)"
            )
        return self._pair_keys[generation]

    # --- postings -------------------------------------------------------------------------
    def entries(
        self, day: int, records: Mapping[Ref, Mapping[str, FieldValue]], generation: int | None = None
    ) -> list[tuple[Ref, recon.Entry]]:
        """What this side posts for ``records`` on ``day`` under ``generation`` (None: the
        current one), checked against the schema."""
        if not 0 <= day < 1 << 32:
            raise ReconError("a day is a u32 (ms // codes.day_ms)")
        if self.fields is not None:
            for ref, fields in records.items():
                if tuple(sorted(fields)) != self.fields:
                    raise ReconError(f"record {ref!r:.80}: fields {sorted(fields)} are not the schema's")
        generation = self.generation if generation is None else generation
        _, keys = self._derived(generation)
        return rr.entries(keys, self.suite, self.pair_id, generation, day, self.side, records)

    def _remember(
        self, generation: int, day: int, posted: list[tuple[Ref, recon.Entry]], records: Mapping
    ) -> dict[bytes, tuple[Ref, tuple[str, ...]] | None]:
        """Name ``posted``'s tags in the book of ``generation`` and ``day``; what the book had
        for them before (for ``_forget``). A withdrawal keeps what the book knew of its
        reference (the other side may still post it)."""
        book = self.books.setdefault((generation, day), {})
        before = {e.tag: book.get(e.tag) for _, e in posted}
        for ref, e in posted:
            if e.is_withdrawal:
                book.setdefault(e.tag, (ref, ()))
            else:
                book[e.tag] = (ref, tuple(sorted(records[ref])))
        return before

    def _forget(self, generation: int, day: int, before: Mapping[bytes, Any]) -> None:
        book = self.books[(generation, day)]
        for tag, old in before.items():
            if old is None:
                book.pop(tag, None)
            else:
                book[tag] = old

    def _post(
        self, day: int, entries: list[tuple[Ref, recon.Entry]], records: Mapping, amend: bool, generation: int
    ) -> list[Result]:
        refs = {e.tag: ref for ref, e in entries}
        results: list[Result] = []
        for part in chunk([e for _, e in entries]):
            tx = recon.recon_post(
                self.ledger.chain_id,
                self.pk,
                self.org,
                self.ledger.nonce(self.pk),
                self.pair_id,
                generation,
                day,
                part,
                amend,
            )
            # Remembered before the wait: a receipt that times out may still come (the
            # transaction was admitted); only a refusal takes the records back out.
            before = self._remember(generation, day, [(refs[e.tag], e) for e in part], records)
            try:
                r = self.send(tx, id=self.pair_id, tags=[e.tag for e in part])
            except TimeoutError as exc:
                raise PostingPending(results, [e.tag for e in part]) from exc
            results.append(r)
            if not r.ok:
                self._forget(generation, day, before)
                break
        return results

    def post(
        self, day: int, records: Mapping[Ref, Mapping[str, FieldValue]], amend: bool = False
    ) -> list[Result]:
        """Post this side's ``records`` (reference -> fields) of ``day`` under the current
        generation: one Result per posting, stopping at the first refusal (``PostingPending``
        if a receipt times out). ``amend``: replace records already posted."""
        generation = self.generation
        return self._post(day, self.entries(day, records, generation), records, amend, generation)

    def withdraw(self, day: int, refs: Iterable[Ref]) -> list[Result]:
        """Take this side's postings of ``refs`` off ``day`` (records posted in error) in the
        current generation."""
        generation = self.generation
        _, keys = self._derived(generation)
        entries = [(ref, recon.withdrawal(rr.tag_of(keys, self.suite, ref))) for ref in dict.fromkeys(refs)]
        return self._post(day, entries, {}, True, generation)

    def signed_posts(
        self,
        day: int,
        records: Mapping[Ref, Mapping[str, FieldValue]],
        amend: bool = False,
        nonce: int | None = None,
    ) -> list[bytes]:
        """The signed postings ``post`` would send (current generation), with consecutive
        nonces from ``nonce`` (the ledger's next one by default), for a caller that submits
        them itself (a pipeline, a bench). The records are remembered as posted."""
        generation = self.generation
        entries = self.entries(day, records, generation)
        nonce = self.ledger.nonce(self.pk) if nonce is None else nonce
        out = []
        for i, part in enumerate(chunk([e for _, e in entries])):
            tx = recon.recon_post(
                self.ledger.chain_id, self.pk, self.org, nonce + i, self.pair_id, generation, day, part, amend
            )
            out.append(self.keys.sign_tx(tx).encode())
        self._remember(generation, day, entries, records)
        return out

    # --- reports ------------------------------------------------------------------------
    def public_report(self, day: int, generation: int | None = None) -> rr.PublicReport:
        """The day's public report under ``generation`` (None: the current one), from the
        committed rows (what anyone can compute)."""
        pid = self.pair_id
        generation = self.generation if generation is None else generation
        rows = scan_all(self.ledger, c.posting_key(pid, generation, day, b""))
        return rr.report(pid, generation, day, rows)

    def report(
        self,
        day: int,
        records: Mapping[Ref, Mapping[str, FieldValue]] | None = None,
        public: rr.PublicReport | None = None,
        generation: int | None = None,
    ) -> rr.Report:
        """This side's report of ``day`` under ``generation`` (None: ``public``'s if given,
        else the current one): the public report (read now unless given, e.g. from the
        node's endpoint: ``PublicReport.from_json``) with tags mapped to references and
        mismatches explained with that generation's key. References and field names come
        from what this process posted and from ``records`` (this side's books of the day),
        if given."""
        if generation is None:
            generation = self.generation if public is None else public.generation
        public = self.public_report(day, generation) if public is None else public
        if (public.pair, public.generation, public.day) != (self.pair_id, generation, day):
            raise ReconError("a report of another pair, generation or day")
        pair_key, keys = self._derived(generation)
        book = self.books.get((generation, day), {})
        refs = {tag: ref for tag, (ref, _) in book.items()}
        names: dict[bytes, tuple[str, ...]] = {tag: n for tag, (_, n) in book.items()}
        for ref, fields in (records or {}).items():
            tag = rr.tag_of(keys, self.suite, ref)
            refs[tag], names[tag] = ref, tuple(sorted(fields))
        schema: rr.FieldNames = self.fields if self.fields is not None else names
        explained = rr.explain(
            public.mismatched, pair_key, self.suite, schema, pair=public.pair, generation=generation, day=day
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

    Body: ``{"pair": hex 16 bytes, "day": u32, "generation": u16 (optional, default the
    pair's current one), "after": hex tag (optional), "limit": 1..endpoint_rows_max
    (optional, default the maximum)}``. Answer: the public report of up to ``limit`` rows
    after ``after`` (``PublicReport.to_json``: generation, counts, tags of matched,
    mismatched — with both sealed field vectors — and missing rows per side), the pair's
    two organizations (``orgs``: A, B), its current generation (``current_generation``)
    and whether that one is accepted (``accepted``), and ``next``: the tag to pass as
    ``after`` for the next page, null when this page ends the day. Refusals
    (``EndpointError``, status 400): ``BAD_REQUEST`` (unknown fields), ``BAD_PAIR``,
    ``BAD_DAY``, ``BAD_GENERATION`` (not a u16, or after the current one), ``BAD_AFTER``,
    ``BAD_LIMIT``; ``NO_SUCH_PAIR`` (404)."""
    ledger = ledger_of(chain)
    accepted = {"pair", "day", "generation", "after", "limit"}

    def handler(body: dict) -> dict[str, Any]:
        extra = sorted(set(body) - accepted)
        if extra:
            raise apps.EndpointError(
                "BAD_REQUEST", f"unknown fields {extra[:5]} (accepted: {sorted(accepted)})"
            )
        pid = _field(body, "pair", "BAD_PAIR", _hex_of(c.id_bytes))
        day = _field(body, "day", "BAD_DAY", _int_in(0, (1 << 32) - 1))
        generation = _field(body, "generation", "BAD_GENERATION", _int_in(0, recon.generation_max), -1)
        after = _field(body, "after", "BAD_AFTER", _hex_of(c.tag_bytes), b"")
        limit = _field(body, "limit", "BAD_LIMIT", _int_in(1, endpoint_rows_max), endpoint_rows_max)
        raw = ledger.state_get(c.pair_key(pid))
        if raw is None:
            raise apps.EndpointError("NO_SUCH_PAIR", f"no reconciliation pair {pid.hex()}", 404)
        record = recon.PairRecord.decode(raw, ledger.suite.public_key_bytes)
        if generation < 0:
            generation = record.generation
        elif generation > record.generation:
            raise apps.EndpointError(
                "BAD_GENERATION", f"the pair's current generation is {record.generation}, not {generation}"
            )
        prefix = c.posting_key(pid, generation, day, b"")
        rows = ledger.state_scan(prefix, limit, prefix + after if after else b"")
        out = rr.report(pid, generation, day, rows).to_json()
        out["orgs"] = [record.orgs[0].hex(), record.orgs[1].hex()]
        out["current_generation"], out["accepted"] = record.generation, record.accepted
        out["next"] = rows[-1][0][-c.tag_bytes :].hex() if len(rows) == limit else None
        return out

    return handler


ENDPOINT = apps.Endpoint("sharing.recon_report", make_endpoint)


def _page_tags(page: rr.PublicReport) -> Iterable[bytes]:
    yield from page.matched
    yield from (m.tag for m in page.mismatched)
    yield from page.missing_on_a
    yield from page.missing_on_b


def fetch_public_report(
    call: Callable[[dict], dict[str, Any]],
    pair: bytes,
    day: int,
    page_rows: int = endpoint_rows_max,
    *,
    generation: int | None = None,
    pages_max: int | None = None,
) -> rr.PublicReport:
    """The whole public report of ``pair`` and ``day`` under ``generation`` (None: the
    pair's current one, as the endpoint answers it) from the endpoint, page by page:
    ``call(body)`` is one endpoint call (``make_endpoint(chain)``, or over HTTP ``lambda
    body: client.app(ENDPOINT.name, body)`` with a ``NodeClient``). Hand it to
    ``Reconciler.report(day, public=...)`` to explain it.

    Each page must move forward: its rows' tags after the cursor it was asked from, at
    most ``page_rows`` of them, and its ``next`` (a tag) strictly after that cursor and
    not before any of its tags; at most ``pages_max`` pages (default: enough for
    ``report_rows_max`` rows). ``PagingError`` otherwise (a faulty node), ``ReconError``
    for a page of another pair, generation or day."""
    if not 1 <= page_rows <= endpoint_rows_max:
        raise ValueError(f"page_rows: 1..{endpoint_rows_max}")
    pages_max = -(-report_rows_max // page_rows) if pages_max is None else pages_max
    body: dict[str, Any] = {"pair": pair.hex(), "day": day, "limit": page_rows}
    if generation is not None:
        body["generation"] = generation
    out: rr.PublicReport | None = None
    cursor = b""  # the last page's next: every tag of this page is after it
    for _ in range(pages_max):
        answer = call(body)
        page = rr.PublicReport.from_json(answer)
        want = generation if out is None else out.generation
        if (page.pair, page.day) != (pair, day) or want not in (None, page.generation):
            raise ReconError("the endpoint answered for another pair, generation or day")
        tags = list(_page_tags(page))
        if len(tags) > page_rows or any(t <= cursor for t in tags):
            raise PagingError("a page of more rows than asked, or of rows not after its cursor")
        nxt = answer.get("next")
        if out is None:
            out = page
        else:
            out.extend(page)
        if nxt is None:
            return out
        try:
            step = bytes.fromhex(nxt) if isinstance(nxt, str) else b""
        except ValueError:
            step = b""
        if len(step) != c.tag_bytes or step <= cursor or any(t > step for t in tags):
            raise PagingError(f"the next cursor {str(nxt)[:40]!r} does not move the report forward")
        cursor = step
        # Ask for the generation the first page named, so that a re-key mid-way cannot mix two.
        body = {**body, "generation": out.generation, "after": nxt}
    raise PagingError(f"the report did not end within {pages_max} pages of {page_rows} rows")
