"""Evidence anchoring (存证): typed document fingerprints, signed and timestamped.

``anchor`` records ``fd/<type><fingerprint>`` with the submitting organization
and key, the block height and time, and the anchoring tx id; the tx is signed by
the submitter, so anyone can later fetch it (``Chain.tx``) and check the
signature and the fingerprint. A fingerprint is anchored once per type
(``DOC_EXISTS``). A confirmation binds its documents to the voucher; an invoice
already bound to a voucher cannot back another (``INVOICE_ALREADY_USED``).

Who may anchor which type: contracts, invoices and delivery notes — core
enterprises and suppliers; waybills — logistics, suppliers and core
enterprises; warehouse receipts — warehouses only.
"""

from __future__ import annotations

import struct

from tierchain.apps.finance import codes as c
from tierchain.apps.finance.codes import FinanceReject
from tierchain.apps.finance.orgs import make_tx, member, member_reads, role_bits
from tierchain.engine import apps
from tierchain.engine.execute import OpFailed, TxContext
from tierchain.errors import Reject
from tierchain.wire import tx

OPS = apps.OpTable()  # this module's ops (tierchain.apps.finance.app)

ANCHOR_ROLES = {
    c.DocType.CONTRACT: role_bits("core_enterprise", "supplier"),
    c.DocType.INVOICE: role_bits("core_enterprise", "supplier"),
    c.DocType.DELIVERY_NOTE: role_bits("core_enterprise", "supplier"),
    c.DocType.WAYBILL: role_bits("logistics", "supplier", "core_enterprise"),
    c.DocType.WAREHOUSE_RECEIPT: role_bits("warehouse"),
}
_ANCHOR = struct.Struct("<B32s")
# Documents between the two parties of a receivable: only the obligor or the beneficiary
# may have anchored them (a third party's invoice backs nobody's payable). Waybills,
# warehouse receipts and delivery notes come from logistics and warehouses by nature.
PARTY_DOCS = frozenset((c.DocType.INVOICE, c.DocType.CONTRACT))
_DOC = struct.Struct("<B32s")
DOC_BYTES = _DOC.size  # one document of a list: type u8, fingerprint 32


@OPS.op(c.OP_ANCHOR, "fin.anchor", native="fin.anchor")
def _anchor(ctx: TxContext) -> None:
    if len(ctx.payload) != _ANCHOR.size:
        raise OpFailed(Reject.BAD_PAYLOAD)
    doc_type, fp = _ANCHOR.unpack(ctx.payload)
    if doc_type not in ANCHOR_ROLES:
        raise OpFailed(Reject.BAD_PAYLOAD, "unknown document type")
    oid, _ = member(ctx, ANCHOR_ROLES[doc_type])
    key = c.doc_key(doc_type, fp)
    if ctx.get(key) is not None:
        raise OpFailed(FinanceReject.DOC_EXISTS)
    ctx.put(key, c.DocRecord(oid, ctx.sender, ctx.height, ctx.timestamp_ms, ctx.tx_id).encode())
    ctx.emit(b"fin.doc.anchored", ctx.payload)


def anchor(chain_id: int, sender: bytes, org: bytes, nonce: int, doc_type: int, fingerprint: bytes) -> tx.Tx:
    if len(fingerprint) != 32:
        raise ValueError("a document fingerprint is 32 bytes (codes.document_fingerprint)")
    return make_tx(
        chain_id,
        c.OP_ANCHOR,
        sender,
        nonce,
        member_reads(sender, org),
        {c.doc_key(doc_type, fingerprint)},
        _ANCHOR.pack(doc_type, fingerprint),
    )


# --- document lists (a confirmation's, a claim's) ----------------------------------------------


def check_docs(docs: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """A list of documents: 1..docs_per_voucher_max of them, none listed twice."""
    if not 1 <= len(docs) <= c.docs_per_voucher_max:
        raise OpFailed(Reject.BAD_PAYLOAD, "documents")
    if len(set(docs)) != len(docs):
        raise OpFailed(Reject.BAD_PAYLOAD, "a document listed twice")
    return docs


def pack_docs(docs: list[tuple[int, bytes]]) -> bytes:
    """Documents on the wire: (type u8, fingerprint 32) each."""
    return b"".join(_DOC.pack(t, fp) for t, fp in docs)


def unpack_docs(payload: bytes, offset: int, n: int) -> list[tuple[int, bytes]]:
    """The ``n`` documents at ``offset`` (``pack_docs``), unchecked; struct.error if short."""
    return [_DOC.unpack_from(payload, offset + i * _DOC.size) for i in range(n)]


def parse_docs(payload: bytes, offset: int, n: int) -> list[tuple[int, bytes]]:
    """The ``n`` (type, fingerprint) documents at ``offset`` of a payload, checked."""
    if not 1 <= n <= c.docs_per_voucher_max:
        raise OpFailed(Reject.BAD_PAYLOAD, "documents")
    return check_docs(unpack_docs(payload, offset, n))


def party_checked(doc_type: int, rec: c.DocRecord, a: bytes, b: bytes) -> None:
    """A party document (``PARTY_DOCS``) must have been anchored by ``a`` or ``b``."""
    if doc_type in PARTY_DOCS and rec.org not in (a, b):
        raise OpFailed(FinanceReject.DOC_NOT_FROM_PARTY)
