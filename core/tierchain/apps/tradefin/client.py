"""``TradeFin``: the high-level API of trade-finance messages. It derives every declared key.

::

    tf = TradeFin(chain)                     # an embedded Chain, a NodeClient, or a Ledger
    buyer, issuer = tf.party(buyer_keys), tf.party(bank_keys)
    terms = Terms(issuer=tf.org_id("BankA"), advising=tf.org_id("BankB"),
                  beneficiary=tf.org_id("Tier1"), amount=1_000_000, expiry_ms=...,
                  latest_shipment_ms=..., required_docs=(DocType.INVOICE, DocType.TRANSPORT_DOCUMENT))
    lc = buyer.apply(terms, application_fp).check().id
    issuer.issue(lc, lc_text_fp).check()
    ...
    tf.lc_history(lc)                        # the LC's whole story as JSON

Each op method signs one transaction, sends it and waits for its receipt (``timeout_s``);
a ``Result`` carries the code (an engine ``Reject``, finance's ``FinanceReject`` for
membership and counterparties, or this app's ``TradeReject``), the id of the instrument it
is about (``id``) and, for an amendment or a presentation, its index (``index``). A party's
keys must be of the ledger's crypto suite (``SuiteMismatch``). Ids the client cannot find
still produce a valid transaction: the ledger names the refusal.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tierchain.apps.finance import codes as fc
from tierchain.apps.sharing.ledger import Result, check_suite, ledger_of, scan_all, send_signed
from tierchain.apps.tradefin import codes as c
from tierchain.apps.tradefin import factoring, forfaiting, guarantee, lc, views
from tierchain.apps.tradefin.lc import Terms
from tierchain.apps.tradefin.records import (
    ZERO_FP,
    Amendment,
    Forfait,
    Guarantee,
    Lc,
    Presentation,
    Receivable,
)
from tierchain.crypto import CryptoSuite, KeyPair
from tierchain.wire import tx as txcodec

__all__ = ["Result", "Terms", "TradeFin", "TradeParty", "mask_of"]


def mask_of(bits: Iterable[int] | int) -> int:
    """A mask from enum members (``Discrepancy``, ``ClaimRejection``) or a mask as it is."""
    return bits if isinstance(bits, int) else sum(1 << int(b) for b in set(bits))


class TradeFin:
    """Queries and parties over one ledger."""

    def __init__(self, ledger: Any, timeout_s: float = 30.0) -> None:
        self.ledger = ledger_of(ledger)
        self.timeout_s = timeout_s

    @property
    def suite(self) -> CryptoSuite:
        return self.ledger.suite

    def party(self, keys: KeyPair) -> TradeParty:
        """``keys`` acting on this ledger; ``SuiteMismatch`` if they are another suite's keys."""
        check_suite(self.ledger, keys)
        return TradeParty(self, keys)

    # --- ids --------------------------------------------------------------------------------
    def org_id(self, name: str | bytes) -> bytes:
        return fc.org_id(name, suite=self.suite)

    def document_fingerprint(self, document: bytes) -> bytes:
        """A document's fingerprint on this ledger (finance's: what ``anchor`` anchors)."""
        return fc.document_fingerprint(document, suite=self.suite)

    def drawing_forfait_id(self, lc_id: bytes, n: int) -> bytes:
        return c.drawing_forfait_id(lc_id, n)

    def bill_forfait_id(self, bill_fp: bytes) -> bytes:
        return c.forfait_id(c.ForfaitKind.BILL, bill_fp)

    # --- records ------------------------------------------------------------------------------
    def get(self, key: bytes) -> bytes | None:
        return self.ledger.state_get(key)

    def org_of(self, public_key: bytes) -> bytes | None:
        raw = self.get(fc.key_key(public_key))
        return None if raw is None else fc.KeyRecord.decode(raw).org

    def _rec(self, key: bytes, record: type) -> Any:
        raw = self.get(key)
        return None if raw is None else record.decode(raw)

    def lc(self, lc_id: bytes) -> Lc | None:
        return self._rec(c.lc_key(lc_id), Lc)

    def amendment(self, lc_id: bytes, n: int) -> Amendment | None:
        return self._rec(c.amendment_key(lc_id, n), Amendment)

    def presentation(self, lc_id: bytes, n: int) -> Presentation | None:
        return self._rec(c.presentation_key(lc_id, n), Presentation)

    def guarantee(self, gid: bytes) -> Guarantee | None:
        return self._rec(c.guarantee_key(gid), Guarantee)

    def receivable(self, invoice_fp: bytes) -> Receivable | None:
        return self._rec(c.receivable_key(invoice_fp), Receivable)

    def forfait(self, fid: bytes) -> Forfait | None:
        return self._rec(c.forfait_key(fid), Forfait)

    def lcs(self, limit: int | None = None) -> list[tuple[bytes, Lc]]:
        """Every LC on the ledger (id, record), in id order."""
        head = len(c.lc_key(bytes(c.id_bytes)))
        rows = scan_all(self.ledger, c.LC_PREFIX)
        out = [(k[len(c.LC_PREFIX) :], Lc.decode(v)) for k, v in rows if len(k) == head]
        return out if limit is None else out[:limit]

    # --- penetration queries ---------------------------------------------------------------------
    def lc_history(self, lc_id: bytes) -> dict | None:
        return views.lc_history(self.get, lc_id)

    def guarantee_view(self, gid: bytes) -> dict | None:
        return views.guarantee_view(self.get, gid)

    def receivable_chain(self, invoice_fp: bytes) -> dict | None:
        return views.receivable_chain(self.get, invoice_fp)

    def forfait_view(self, fid: bytes) -> dict | None:
        return views.forfait_view(self.get, fid)


class TradeParty:
    """One key acting for its organization (applicant, bank, beneficiary, seller, debtor...)."""

    def __init__(self, tf: TradeFin, keys: KeyPair) -> None:
        self.tf, self.keys, self.pk = tf, keys, keys.public_key

    @property
    def suite(self) -> CryptoSuite:
        return self.tf.suite

    @property
    def org(self) -> bytes:
        """The sender's organization (the zero id for an unknown key: ops then fail with
        finance's NOT_A_MEMBER, as they should)."""
        return self.tf.org_of(self.pk) or fc.ZERO_ID

    def _args(self) -> tuple[int, bytes, bytes, int]:
        return self.tf.ledger.chain_id, self.pk, self.org, self.tf.ledger.nonce(self.pk)

    def send(self, tx: txcodec.Tx, **extra: Any) -> Result:
        return send_signed(self.tf.ledger, self.keys, tx, self.tf.timeout_s, **extra)

    # --- letters of credit -------------------------------------------------------------------
    def apply(self, terms: Terms, application_fp: bytes = ZERO_FP) -> Result:
        """Applicant: apply for an LC (``Result.id``: the LC id)."""
        tx, lc_id = lc.apply(*self._args(), terms, application_fp, suite=self.suite)
        return self.send(tx, id=lc_id)

    def issue(self, lc_id: bytes, fp: bytes = ZERO_FP) -> Result:
        """Issuing bank: open the LC applied for (``fp``: the LC text's fingerprint)."""
        return self.send(lc.issue(*self._args(), lc_id, self.tf.lc(lc_id), fp), id=lc_id)

    def cancel(self, lc_id: bytes, fp: bytes = ZERO_FP) -> Result:
        """Before issuance: the applicant withdraws, or the issuing bank declines."""
        return self.send(lc.head_only(c.OP_LC_CANCEL, *self._args(), lc_id, fp), id=lc_id)

    def advise(self, lc_id: bytes, fp: bytes = ZERO_FP) -> Result:
        """Advising bank: advise the LC to the beneficiary."""
        return self.send(lc.head_only(c.OP_LC_ADVISE, *self._args(), lc_id, fp), id=lc_id)

    def amend(
        self,
        lc_id: bytes,
        *,
        amount: int | None = None,
        expiry_ms: int | None = None,
        latest_shipment_ms: int | None = None,
        fp: bytes = ZERO_FP,
    ) -> Result:
        """Issuing bank: propose new terms (unnamed ones stay); ``Result.index``: the amendment."""
        cur = self.tf.lc(lc_id)
        n = cur.amendments if cur else 0
        amount = amount if amount is not None else (cur.amount if cur else 1)
        expiry_ms = expiry_ms if expiry_ms is not None else (cur.expiry_ms if cur else 1)
        latest = (
            latest_shipment_ms if latest_shipment_ms is not None else (cur.latest_shipment_ms if cur else 1)
        )
        tx = lc.amend(*self._args(), lc_id, n, amount, expiry_ms, latest, fp)
        return self.send(tx, id=lc_id, index=n)

    def reply_amendment(self, lc_id: bytes, accept: bool) -> Result:
        """Beneficiary: accept or reject the pending amendment."""
        cur = self.tf.lc(lc_id)
        n = cur.pending - 1 if cur and cur.pending else (cur.amendments if cur else 0)
        return self.send(lc.amend_reply(*self._args(), lc_id, n, accept), id=lc_id, index=n)

    def present(self, lc_id: bytes, amount: int, shipment_ms: int, docs: list[tuple[int, bytes]]) -> Result:
        """Beneficiary: draw ``amount`` against typed document fingerprints (``Result.index``)."""
        cur = self.tf.lc(lc_id)
        n = cur.presentations if cur else 0
        tx = lc.present(*self._args(), lc_id, n, amount, shipment_ms, docs)
        return self.send(tx, id=lc_id, index=n)

    def check(
        self,
        lc_id: bytes,
        n: int,
        compliant: bool,
        discrepancies: Iterable[int] | int = (),
        fp: bytes = ZERO_FP,
    ) -> Result:
        """Nominated or issuing bank: the examination's finding (discrepancies if not compliant)."""
        finding = c.Finding.COMPLIANT if compliant else c.Finding.DISCREPANT
        tx = lc.check(*self._args(), lc_id, n, finding, mask_of(discrepancies), fp)
        return self.send(tx, id=lc_id, index=n)

    def waive(self, lc_id: bytes, n: int, fp: bytes = ZERO_FP) -> Result:
        """Applicant: waive a discrepant presentation's discrepancies."""
        return self.send(lc.step(c.OP_LC_WAIVE, *self._args(), lc_id, n, fp), id=lc_id, index=n)

    def accept(self, lc_id: bytes, n: int, fp: bytes = ZERO_FP) -> Result:
        """Issuing bank: honour a compliant or waived presentation."""
        return self.send(lc.step(c.OP_LC_ACCEPT, *self._args(), lc_id, n, fp), id=lc_id, index=n)

    def refuse(self, lc_id: bytes, n: int, reasons: Iterable[int] | int, fp: bytes = ZERO_FP) -> Result:
        """Issuing bank: refuse a discrepant presentation, stating ``reasons`` (``Discrepancy``)."""
        tx = lc.refuse(*self._args(), lc_id, n, mask_of(reasons), fp)
        return self.send(tx, id=lc_id, index=n)

    def pay(self, lc_id: bytes, n: int, fp: bytes = ZERO_FP) -> Result:
        """Issuing bank: pay an accepted drawing at maturity (to its forfaiter if sold)."""
        tx = lc.step(c.OP_LC_PAY, *self._args(), lc_id, n, fp)
        return self.send(tx, id=lc_id, index=n)

    def close(self, lc_id: bytes, fp: bytes = ZERO_FP) -> Result:
        """Beneficiary (renounce) or issuing bank (expired or exhausted): close the LC."""
        cur = self.tf.lc(lc_id)
        return self.send(lc.close(*self._args(), lc_id, cur.pending if cur else 0, fp), id=lc_id)

    # --- guarantees --------------------------------------------------------------------------
    def issue_guarantee(
        self,
        applicant: bytes,
        beneficiary: bytes,
        kind: int,
        amount: int,
        expiry_ms: int,
        fp: bytes = ZERO_FP,
    ) -> Result:
        """Guarantor bank: issue a guarantee (``Result.id``: its id)."""
        tx, gid = guarantee.issue(
            *self._args(), applicant, beneficiary, kind, amount, expiry_ms, fp, suite=self.suite
        )
        return self.send(tx, id=gid)

    def claim(self, gid: bytes, amount: int, demand_fp: bytes) -> Result:
        """Beneficiary: demand ``amount`` under the guarantee."""
        return self.send(guarantee.claim(*self._args(), gid, amount, demand_fp), id=gid)

    def pay_claim(self, gid: bytes, fp: bytes = ZERO_FP) -> Result:
        return self.send(guarantee.simple(c.OP_G_PAY, *self._args(), gid, fp), id=gid)

    def reject_claim(self, gid: bytes, reasons: Iterable[int] | int, fp: bytes = ZERO_FP) -> Result:
        return self.send(guarantee.reject(*self._args(), gid, mask_of(reasons), fp), id=gid)

    def release_guarantee(self, gid: bytes, fp: bytes = ZERO_FP) -> Result:
        """Beneficiary: release; guarantor: close after the expiry."""
        return self.send(guarantee.simple(c.OP_G_RELEASE, *self._args(), gid, fp), id=gid)

    # --- factoring -----------------------------------------------------------------------------
    def assign(
        self,
        invoice_fp: bytes,
        debtor: bytes,
        factor: bytes,
        amount: int,
        due_ms: int,
        advance: int,
        recourse: bool,
        notice_fp: bytes = ZERO_FP,
    ) -> Result:
        """Seller: offer the assignment of an anchored invoice's receivable to ``factor``."""
        tx = factoring.assign(
            *self._args(), invoice_fp, debtor, factor, amount, due_ms, advance, recourse, notice_fp
        )
        return self.send(tx, fingerprint=invoice_fp)

    def _f(self, op: int, invoice_fp: bytes, doc: bytes) -> Result:
        return self.send(factoring.step(op, *self._args(), invoice_fp, doc), fingerprint=invoice_fp)

    def take_assignment(self, invoice_fp: bytes, agreement_fp: bytes = ZERO_FP) -> Result:
        """Factor: accept the offered assignment."""
        return self._f(c.OP_F_ACCEPT, invoice_fp, agreement_fp)

    def decline_assignment(self, invoice_fp: bytes, fp: bytes = ZERO_FP) -> Result:
        """Factor declines, or seller withdraws, the open offer."""
        return self._f(c.OP_F_DECLINE, invoice_fp, fp)

    def acknowledge(self, invoice_fp: bytes, fp: bytes = ZERO_FP) -> Result:
        """Debtor: acknowledge the notice of assignment."""
        return self._f(c.OP_F_ACK, invoice_fp, fp)

    def pay_receivable(self, invoice_fp: bytes, amount: int, fp: bytes = ZERO_FP) -> Result:
        """Debtor: pay the factor."""
        return self.send(factoring.pay(*self._args(), invoice_fp, amount, fp), fingerprint=invoice_fp)

    def declare_default(self, invoice_fp: bytes, fp: bytes = ZERO_FP) -> Result:
        return self._f(c.OP_F_DEFAULT, invoice_fp, fp)

    def claim_recourse(self, invoice_fp: bytes, fp: bytes = ZERO_FP) -> Result:
        return self._f(c.OP_F_RECOURSE, invoice_fp, fp)

    def repurchase(self, invoice_fp: bytes, fp: bytes = ZERO_FP) -> Result:
        """Seller: pay the factor's recourse claim."""
        return self._f(c.OP_F_REPURCHASE, invoice_fp, fp)

    # --- forfaiting ------------------------------------------------------------------------------
    def forfait_drawing(
        self, lc_id: bytes, n: int, forfaiter: bytes, price: int, fp: bytes = ZERO_FP
    ) -> Result:
        """Beneficiary: offer an accepted usance drawing to ``forfaiter`` (``Result.id``: the forfait id)."""
        tx, fid = forfaiting.offer_lc(*self._args(), lc_id, n, forfaiter, price, fp)
        return self.send(tx, id=fid, index=n)

    def forfait_bill(
        self,
        bill_fp: bytes,
        forfaiter: bytes,
        obligor: bytes,
        face: int,
        maturity_ms: int,
        price: int,
        fp: bytes = ZERO_FP,
    ) -> Result:
        """Holder: offer a bill (by its fingerprint) to ``forfaiter``."""
        tx, fid = forfaiting.offer_bill(
            *self._args(), bill_fp, forfaiter, obligor, face, maturity_ms, price, fp
        )
        return self.send(tx, id=fid)

    def _w(self, op: int, fid: bytes, fp: bytes) -> Result:
        return self.send(forfaiting.step(op, *self._args(), fid, self.tf.forfait(fid), fp), id=fid)

    def buy_forfait(self, fid: bytes, fp: bytes = ZERO_FP) -> Result:
        """Forfaiter: buy the offered instrument, without recourse."""
        return self._w(c.OP_W_ACCEPT, fid, fp)

    def decline_forfait(self, fid: bytes, fp: bytes = ZERO_FP) -> Result:
        return self._w(c.OP_W_DECLINE, fid, fp)

    def settle_forfait(self, fid: bytes, fp: bytes = ZERO_FP) -> Result:
        """Forfaiter: a bill's payment at maturity."""
        return self._w(c.OP_W_SETTLE, fid, fp)
