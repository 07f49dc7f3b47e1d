"""``Bills``: the high-level API of digital bills. It derives every declared key.

::

    bills = Bills(chain)                       # a Chain, a NodeClient, or a ledger
    core, t1, bank = bills.party(core_keys), bills.party(t1_keys), bills.party(bank_keys)
    bid = core.issue(BillKind.COMMERCIAL, acceptor=core_org, payee=t1_org, face=1_000_000,
                     maturity=date(2026, 12, 31)).check().id   # on shard i of n: shard=(i, n)
    core.accept(bid).check(); t1.sign(bid).check()            # acceptance, delivery
    t1.discount(bid, bank_org, 985_000).check(); bank.sign(bid).check()
    bank.present(bid)   # on/after the due day;  core.pay(bid)
    bills.lineage(bid)  # JSON: the endorsement chain, holders, financing, payments, history

Every op method reads the bill's committed record, builds the tx for that exact state (its
event count: a tx built for an older state is refused ``BILL_STALE``), signs, sends and
waits for the receipt (``timeout_s``). A ``Result``'s ``code`` is the engine's ``Reject``,
finance's ``FinanceReject`` (membership, committee, counterparty, documents) or
``BillReject`` (named by the chain's app set); ``Result.check()`` raises ``RejectedError`` on a
refusal; ``Result.id`` is the bill.

Ledgers: the sharing app's adapters (``tierchain.apps.sharing.ledger.ledger_of``), which name
any app's codes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from typing import Any

from tierchain.apps.bills import codes as c
from tierchain.apps.bills import committee, days, lifecycle, lineage, payment
from tierchain.apps.bills.codes import Action, Bill, BillKind, OfferKind
from tierchain.apps.finance import codes as fc
from tierchain.apps.finance.client import SuiteMismatch
from tierchain.apps.sharing.ledger import Ledger, Result, check_suite, ledger_of, send_signed
from tierchain.crypto import CryptoSuite, KeyPair
from tierchain.wire import tx as txcodec

__all__ = ["BillParty", "Bills", "Result", "SuiteMismatch", "day_of"]


def day_of(when: dt.date | str | int) -> int:
    """A day number from a date, an ISO date string or a day number."""
    if isinstance(when, int):
        return when
    if isinstance(when, str):
        when = dt.date.fromisoformat(when)
    return days.days_from_civil(when.year, when.month, when.day)


class Bills:
    """Queries and parties over one ledger."""

    def __init__(self, ledger: Any, timeout_s: float = 30.0) -> None:
        self.ledger: Ledger = ledger_of(ledger)
        self.timeout_s = timeout_s

    @property
    def suite(self) -> CryptoSuite:
        return self.ledger.suite

    def party(self, keys: KeyPair) -> BillParty:
        """``keys`` acting for their organization (``SuiteMismatch`` for another suite's keys)."""
        check_suite(self.ledger, keys)
        return BillParty(self, keys)

    def org_id(self, name: str) -> bytes:
        return fc.org_id(name, suite=self.suite)

    # --- queries ----------------------------------------------------------------------------
    def bill(self, bid: bytes) -> Bill | None:
        raw = self.ledger.state_get(c.bill_key(bid))
        return None if raw is None else Bill.decode(raw)

    def events(self, bid: bytes) -> list[c.Event]:
        return lineage.events(self.ledger, bid)

    def lineage(self, bid: bytes) -> dict | None:
        """The bill's endorsement chain, holders, financing, payments and history (JSON-able)."""
        return lineage.lineage(self.ledger, bid)

    def params(self) -> c.Params:
        return c.Params.decode(self.ledger.state_get(c.PARAMS_KEY))

    def calendar(self, year: int) -> c.Calendar | None:
        raw = self.ledger.state_get(c.calendar_key(year))
        return None if raw is None else c.Calendar.decode(raw)

    def ballot(self, action: int, version: int, body: bytes) -> c.Ballot | None:
        raw = self.ledger.state_get(c.ballot_key(c.ballot_id(action, version, body, suite=self.suite)))
        return None if raw is None else c.Ballot.decode(raw)

    def is_business_day(self, day: int) -> bool:
        return days.is_business_day(day, self.params().weekend_mask, self.calendar)

    def today(self, timestamp_ms: int) -> int:
        """The local day of a block time under the chain's parameters."""
        return days.local_day(timestamp_ms, self.params().tz_offset_min)


class BillParty:
    """One key acting for its organization: drawer, acceptor, holder, bank or committee."""

    def __init__(self, bills: Bills, keys: KeyPair) -> None:
        self.bills, self.keys, self.pk = bills, keys, keys.public_key

    @property
    def org(self) -> bytes:
        """The key's organization (the zero id if unknown: ops then fail NOT_A_MEMBER)."""
        raw = self.bills.ledger.state_get(fc.key_key(self.pk))
        return fc.ZERO_ID if raw is None else fc.KeyRecord.decode(raw).org

    def _send(self, tx: txcodec.Tx, bid: bytes | None = None) -> Result:
        return send_signed(self.bills.ledger, self.keys, tx, self.bills.timeout_s, id=bid)

    def _head(self) -> tuple[int, bytes, bytes, int]:
        ledger = self.bills.ledger
        return ledger.chain_id, self.pk, self.org, ledger.nonce(self.pk)

    def _seq(self, bid: bytes) -> int:
        """The bill's event count (0 for an unknown bill: the op is refused BILL_NO_SUCH_BILL)."""
        bill = self.bills.bill(bid)
        return 0 if bill is None else bill.events

    # --- committee --------------------------------------------------------------------------
    def _vote(self, action: int, body: bytes, version: int | None) -> Result:
        key = committee.target_key(action, body)
        if version is None:
            version = committee.current_version(action, self.bills.ledger.state_get(key)) + 1
        ledger = self.bills.ledger
        tx = committee.vote(
            ledger.chain_id, self.pk, ledger.nonce(self.pk), action, version, body, suite=self.bills.suite
        )
        return self._send(tx)

    def vote_params(self, params: c.Params | None = None, version: int | None = None, **changes) -> Result:
        """Vote parameters: ``params``, or the current ones with ``changes`` (field=value)."""
        base = params if params is not None else self.bills.params()
        return self._vote(Action.SET_PARAMS, dataclasses.replace(base, **changes).body(), version)

    def vote_calendar(
        self,
        year: int,
        holidays: list = (),
        workdays: list = (),
        *,
        bitmap: bytes | None = None,
        version: int | None = None,
    ) -> Result:
        """Vote ``year``'s business-day calendar: weekends (the chain's weekend mask), plus
        ``holidays``, minus ``workdays`` (dates or day numbers); or a ready ``bitmap``."""
        if bitmap is None:
            mask = self.bills.params().weekend_mask
            bitmap = days.calendar_bitmap(
                year, mask, [day_of(d) for d in holidays], [day_of(d) for d in workdays]
            )
        return self._vote(Action.SET_CALENDAR, committee.calendar_body(year, bitmap), version)

    # --- drawing and circulation -----------------------------------------------------------
    def issue(
        self,
        kind: int,
        acceptor: bytes,
        payee: bytes,
        face: int,
        maturity: dt.date | str | int,
        *,
        not_transferable: bool = False,
        docs: list[tuple[int, bytes]] = (),
        tag: bytes | None = None,
        shard: tuple[int, int] | None = None,
        claimed: Iterable[tuple[int, bytes]] = (),
    ) -> Result:
        """Draw a bill (``Result.id``: the new bill), awaiting the acceptor.

        Placement on a cluster (the ledger is one shard): ``shard=(i, n)`` derives the tag
        that puts the bill on shard ``i`` of ``n`` from this tx's nonce
        (``codes.placement_tag``, the bills app's placement rules); or ``tag`` names the
        8-byte tag itself. Neither: the untagged payload and id of a chain without shards.
        ``claimed``: documents anchored on another shard, cited for ``tag``
        (``Party.claim(payee, docs, tag=tag)`` where they are) and carried here."""
        chain_id, pk, org, nonce = self._head()
        if shard is not None:
            if tag is not None:
                raise ValueError("a tag or a shard, not both")
            tag = c.placement_tag(*shard, pk, nonce, suite=self.bills.suite)
        tx, bid = lifecycle.issue(
            chain_id, pk, org, nonce, BillKind(kind), acceptor, payee, face, day_of(maturity),
            not_transferable=not_transferable, docs=list(docs), tag=tag, suite=self.bills.suite,
            claimed=claimed,
        )  # fmt: skip
        return self._send(tx, bid)

    def _op(self, build, bid: bytes, *args) -> Result:
        return self._send(build(*self._head(), bid, self._seq(bid), *args), bid)

    def accept(self, bid: bytes) -> Result:
        return self._op(lifecycle.accept, bid)

    def refuse(self, bid: bytes, reason: int) -> Result:
        return self._op(lifecycle.refuse, bid, reason)

    def revoke(self, bid: bytes) -> Result:
        return self._op(lifecycle.revoke, bid)

    def endorse(self, bid: bytes, to: bytes, *, restrictive: bool = False) -> Result:
        return self._op(lifecycle.offer, bid, OfferKind.ENDORSE, to, 0, restrictive)

    def discount(self, bid: bytes, bank: bytes, price: int) -> Result:
        return self._op(lifecycle.offer, bid, OfferKind.DISCOUNT, bank, price)

    def rediscount(self, bid: bytes, bank: bytes, price: int) -> Result:
        return self._op(lifecycle.offer, bid, OfferKind.REDISCOUNT, bank, price)

    def pledge(self, bid: bytes, bank: bytes, loan: int) -> Result:
        return self._op(lifecycle.offer, bid, OfferKind.PLEDGE, bank, loan)

    def offer(self, bid: bytes, kind: int, to: bytes, price: int = 0, restrictive: bool = False) -> Result:
        return self._op(lifecycle.offer, bid, kind, to, price, restrictive)

    def sign(self, bid: bytes) -> Result:
        """The offeree signs: receives delivery, an endorsement, a discount, a rediscount or a pledge."""
        return self._send(lifecycle.simple(c.OP_SIGN, *self._head(), bid, self._seq(bid)), bid)

    def reject(self, bid: bytes) -> Result:
        return self._send(lifecycle.simple(c.OP_REJECT, *self._head(), bid, self._seq(bid)), bid)

    def cancel(self, bid: bytes) -> Result:
        return self._send(lifecycle.simple(c.OP_CANCEL, *self._head(), bid, self._seq(bid)), bid)

    def release(self, bid: bytes) -> Result:
        return self._send(lifecycle.simple(c.OP_RELEASE, *self._head(), bid, self._seq(bid)), bid)

    # --- payment and recourse ----------------------------------------------------------------
    def present(self, bid: bytes) -> Result:
        return self._op(payment.present, bid)

    def pay(self, bid: bytes) -> Result:
        return self._op(payment.pay, bid)

    def dishonour(self, bid: bytes, reason: int) -> Result:
        return self._op(payment.dishonour, bid, reason)

    def claim(self, bid: bytes) -> Result:
        return self._op(payment.claim, bid)

    def recourse_pay(self, bid: bytes) -> Result:
        return self._op(payment.recourse_pay, bid)

    def recourse_refuse(self, bid: bytes, reason: int) -> Result:
        return self._op(payment.recourse_refuse, bid, reason)
