"""``Receipts``: the high-level API of warehouse receipts. It derives every declared key.

::

    rc = Receipts(chain)                        # an embedded Chain, a NodeClient, or a ledger
    depot, t1, bank = rc.party(depot_keys), rc.party(t1_keys), rc.party(bank_keys)
    fp = depot.anchor_document(receipt_pdf).check().id          # finance's evidence op
    rid = depot.issue(t1_org, 10_000_000, "CU-CATHODE", "g", "SH-WGQ-07", anchor=fp).check().id
    depot.goods("gate-01", [(rid, MoveKind.GOODS_OUT, 2_000)]).check().outcomes  # [APPLIED]
    t1.pledge(rid, bank_org, loan=5_000_000, due_ms=...).check(); bank.accept(rid).check()
    rc.lineage(rid)                             # JSON: history, movements, splits, pledges

Each op method signs one transaction, sends it and waits for its receipt (``timeout_s``);
a ``Result`` carries the code (the engine's ``Reject``, finance's ``FinanceReject`` or this
app's ``ReceiptReject``) and what the transaction created (``id``, split parts ``ids``) or,
for a goods batch, each movement's ``outcomes`` (applied or the anomaly recorded). A party's
keys must be of the ledger's crypto suite (finance's ``SuiteMismatch``). The ledger
adapters are the sharing app's (``sharing.ledger.ledger_of``), which name any app's codes.
"""

from __future__ import annotations

from typing import Any

from tierchain.apps.finance import codes as fc
from tierchain.apps.finance import evidence
from tierchain.apps.receipts import codes as c
from tierchain.apps.receipts import goods as goods_ops
from tierchain.apps.receipts import issue as issue_ops
from tierchain.apps.receipts import lineage as lin
from tierchain.apps.receipts import offers, split
from tierchain.apps.receipts.codes import MoveKind, Outcome
from tierchain.apps.sharing import ledger as sl
from tierchain.crypto import CryptoSuite, KeyPair
from tierchain.wire import tx as txcodec

__all__ = ["MoveKind", "Outcome", "Receipts", "ReceiptsParty", "Result"]


class Result(sl.Result):
    """``sharing.ledger.Result``: what the transaction created (``id``, a split's ``ids``) or,
    for a goods batch, each movement's ``outcomes``, and how many are anomalies."""

    @property
    def anomalies(self) -> int:
        return sum(o != Outcome.APPLIED for o in self.outcomes)


class Receipts:
    """Queries and parties over one ledger."""

    def __init__(self, ledger: Any, timeout_s: float = 30.0) -> None:
        self.ledger: sl.Ledger = sl.ledger_of(ledger)
        self.timeout_s = timeout_s

    @property
    def suite(self) -> CryptoSuite:
        return self.ledger.suite

    def party(self, keys: KeyPair) -> ReceiptsParty:
        """``keys`` acting on this ledger; ``SuiteMismatch`` if they are another suite's keys."""
        sl.check_suite(self.ledger, keys)
        return ReceiptsParty(self, keys)

    # --- queries -------------------------------------------------------------------------------
    def get(self, key: bytes) -> bytes | None:
        return self.ledger.state_get(key)

    def scan(self, prefix: bytes) -> list[tuple[bytes, bytes]]:
        return sl.scan_all(self.ledger, prefix)

    def org_id(self, name: str | bytes) -> bytes:
        return fc.org_id(name, suite=self.suite)

    def org_of(self, public_key: bytes) -> bytes | None:
        raw = self.get(fc.key_key(public_key))
        return None if raw is None else fc.KeyRecord.decode(raw).org

    def receipt(self, rid: bytes) -> c.Receipt | None:
        raw = self.get(c.receipt_key(rid))
        return None if raw is None else c.Receipt.decode(raw)

    def feed(self, warehouse: bytes, feed: str | bytes) -> c.Feed | None:
        raw = self.get(c.feed_key(warehouse, c.feed_id(feed)))
        return None if raw is None else c.Feed.decode(raw)

    def stock(self, warehouse: bytes, item: bytes, unit: bytes, location: bytes) -> c.Stock | None:
        return lin.stock(self.get, warehouse, item, unit, location, suite=self.suite)

    def stock_of(self, rid: bytes) -> c.Stock | None:
        """The stock a receipt's goods count in."""
        rec = self.receipt(rid)
        return None if rec is None else self.stock(rec.warehouse, rec.item, rec.unit, rec.location)

    def movements(self, rid: bytes) -> list[tuple[bytes, int, c.Movement]]:
        return lin.movements(self.scan, rid)

    def lineage(self, rid: bytes) -> dict:
        """The receipt's lineage as JSON (``lineage.lineage``); ``LineageError`` if unknown."""
        return lin.lineage(self.get, self.scan, rid, suite=self.suite)

    def receipts_of(self, warehouse: bytes) -> list[tuple[bytes, c.Receipt]]:
        return lin.receipts_of(self.scan, warehouse)

    def anomalies_of(self, warehouse: bytes) -> list[dict]:
        return lin.anomalies_of(self.scan, warehouse)

    def in_store(self, warehouse: bytes, item: bytes, unit: bytes, location: bytes) -> int:
        """The sum of the live receipts' balances for one item/unit/location of a warehouse
        (what the stock's goods-in minus goods-out must equal)."""
        return sum(
            r.balance
            for _, r in self.receipts_of(warehouse)
            if r.live and (r.item, r.unit, r.location) == (item, unit, location)
        )


_EMPTY = c.Receipt(
    c.ZERO_ID, c.ZERO_ID, c.ZERO_ID, c.ZERO_ID, 0, 0, 0, c.State.ACTIVE, c.ZERO_ID, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, c.ZERO_FP, 0, 0, b"?", b"?", b"?",
)  # fmt: skip


class ReceiptsParty:
    """One key acting for its organization: a warehouse, a holder, a bank."""

    def __init__(self, rc: Receipts, keys: KeyPair) -> None:
        self.rc, self.keys, self.pk = rc, keys, keys.public_key

    @property
    def suite(self) -> CryptoSuite:
        return self.rc.suite

    @property
    def org(self) -> bytes:
        """The sender's organization (the zero id if the key is unknown: ops then fail with
        finance's NOT_A_MEMBER, as they should)."""
        return self.rc.org_of(self.pk) or fc.ZERO_ID

    def _args(self) -> tuple[int, bytes, bytes, int]:
        ledger = self.rc.ledger
        return ledger.chain_id, self.pk, self.org, ledger.nonce(self.pk)

    def send(self, tx: txcodec.Tx, **extra: Any) -> Result:
        return sl.send_signed(self.rc.ledger, self.keys, tx, self.rc.timeout_s, result=Result, **extra)

    # --- warehouse -------------------------------------------------------------------------------
    def anchor_document(self, document: bytes) -> Result:
        """Anchor a warehouse-receipt document's fingerprint (finance's ``fin.anchor``,
        ``DocType.WAREHOUSE_RECEIPT``); ``Result.id`` is the fingerprint to issue with."""
        fp = fc.document_fingerprint(document, suite=self.suite)
        chain_id, pk, org, nonce = self._args()
        tx = evidence.anchor(chain_id, pk, org, nonce, fc.DocType.WAREHOUSE_RECEIPT, fp)
        return self.send(tx, id=fp)

    def issue(
        self,
        depositor: bytes,
        quantity: int,
        item: str | bytes,
        unit: str | bytes,
        location: str | bytes,
        anchor: bytes | None = None,
    ) -> Result:
        """Issue a receipt for ``quantity`` (minor units of ``unit``) of ``item`` stored at
        ``location`` to organization ``depositor``; ``anchor``: an anchored document's
        fingerprint (``anchor_document``). ``Result.id``: the new receipt."""
        chain_id, pk, org, nonce = self._args()
        tx, rid = issue_ops.issue(
            chain_id, pk, org, nonce, depositor, quantity, _b(item), _b(unit), _b(location),
            anchor or c.ZERO_FP, suite=self.suite,
        )  # fmt: skip
        return self.send(tx, id=rid)

    def attach_anchor(self, rid: bytes, fingerprint: bytes) -> Result:
        return self.send(issue_ops.attach_anchor(*self._args(), rid, fingerprint), id=rid)

    def goods(self, feed: str | bytes, moves: list[tuple]) -> Result:
        """A batch of one feed's movements: ``(receipt, MoveKind, quantity)`` each, numbered
        from the feed's next sequence number, or ``(receipt, kind, quantity, seq)`` as the
        device numbered them. ``Result.outcomes``: each movement's, read back from the chain."""
        fid = c.feed_id(feed)
        chain_id, pk, org, nonce = self._args()
        known = self.rc.feed(org, fid)
        nxt = (known.last_seq if known else 0) + 1
        batch = []
        for i, m in enumerate(moves):
            seq = m[3] if len(m) > 3 else nxt + i
            batch.append(goods_ops.Move(m[0], int(m[1]), m[2], seq))
        stocks = {}
        for m in batch:
            rec = self.rc.receipt(m.receipt) or _EMPTY
            stocks[m.receipt] = c.stock_id(rec.item, rec.unit, rec.location, suite=self.suite)
        r = self.send(goods_ops.goods(chain_id, pk, org, nonce, fid, batch, stocks))
        if r.ok:
            for m in batch:
                raw = self.rc.get(c.move_key(m.receipt, fid, m.seq))
                r.outcomes.append(Outcome(c.Movement.decode(raw).outcome) if raw else Outcome.APPLIED)
        return r

    def goods_in(self, rid: bytes, quantity: int, feed: str | bytes = "manual") -> Result:
        return self.goods(feed, [(rid, MoveKind.GOODS_IN, quantity)])

    def goods_out(self, rid: bytes, quantity: int, feed: str | bytes = "manual") -> Result:
        return self.goods(feed, [(rid, MoveKind.GOODS_OUT, quantity)])

    def close(self, rid: bytes) -> Result:
        """Holder or warehouse: withdraw / cancel a receipt whose balance is zero."""
        return self.send(issue_ops.close(*self._args(), rid), id=rid)

    # --- holder ---------------------------------------------------------------------------------
    def transfer(self, rid: bytes, to: bytes) -> Result:
        """Offer the receipt to organization ``to``; it moves when ``to`` accepts."""
        return self.send(offers.offer_transfer(*self._args(), rid, to), id=rid)

    def pledge(self, rid: bytes, bank: bytes, loan: int, due_ms: int) -> Result:
        """Offer the receipt to ``bank`` as collateral for ``loan``, due at ``due_ms``."""
        return self.send(offers.offer_pledge(*self._args(), rid, bank, loan, due_ms), id=rid)

    def split(self, rid: bytes, parts: list[int]) -> Result:
        """Split into ``parts`` (summing exactly to the balance); ``Result.ids``: the parts."""
        chain_id, pk, org, nonce = self._args()
        tx, kids = split.split(chain_id, pk, org, nonce, rid, parts, suite=self.suite)
        return self.send(tx, id=rid, ids=kids)

    # --- offeree, pledgee -------------------------------------------------------------------------
    def accept(self, rid: bytes) -> Result:
        return self.send(offers.accept(*self._args(), rid), id=rid)

    def return_offer(self, rid: bytes) -> Result:
        """Decline (offeree) or withdraw (holder) a pending offer."""
        return self.send(offers.return_offer(*self._args(), rid), id=rid)

    def release(self, rid: bytes) -> Result:
        """Pledgee: end the pledge."""
        return self.send(offers.release(*self._args(), rid), id=rid)

    def allow_out(self, rid: bytes, quantity: int) -> Result:
        """Pledgee: let ``quantity`` more of the pledged goods leave (a partial release)."""
        return self.send(offers.allow_out(*self._args(), rid, quantity), id=rid)

    def take_on_default(self, rid: bytes) -> Result:
        """Pledgee (a bank), after the loan's due time: become the receipt's holder."""
        return self.send(offers.pledge_default(*self._args(), rid), id=rid)


def _b(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value
