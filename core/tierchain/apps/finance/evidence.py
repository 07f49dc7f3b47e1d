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


@OPS.op(c.OP_ANCHOR, "fin.anchor")
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
