"""Trade-finance constants: op and refusal codes, hash domains, state keys, ids, enums, limits.

What every handler and client builder of the ``tradefin`` app agrees on (docs/finance.md,
"Trade-finance messages"). Record layouts are in ``records.py``.

The app runs beside ``finance``: its parties are finance's organizations (``fk/``, ``fo/``)
and a factored receivable is an invoice anchored with finance (``fd/``).

State layout (every key at most 64 bytes):

================================  ===========================================================
``tl/<lc 16>``                    a letter of credit: parties, current terms, amounts
                                  (drawn, reserved, paid), counters, its history
``tl/<lc 16>a<n u8>``             amendment n: proposed terms, status
``tl/<lc 16>p<n u8>``             presentation n: typed document fingerprints, findings,
                                  discrepancies, acceptance, maturity, payment
``tl/<lc 16>w<n u8>``             the forfaiting of drawing n (an accepted usance drawing)
``tw/<bill fingerprint 32>``      the forfaiting of a bill held off chain
``tg/<guarantee 16>``             a bank guarantee: amount, expiry, claims paid, its history
``tf/<invoice fingerprint 32>``   the one assignment of a receivable (factoring), its history
================================  ===========================================================

An LC's records share the ``tl/`` prefix and route by the LC id's first 8 bytes (one
placement rule): an LC, its amendments, presentations and the forfaitings of its drawings
live on one shard, so every LC op touches one shard. The other records are one key each.
A forfaiting is named by its ``forfait_id``: the instrument kind, then its 32-byte
reference (LC id + drawing index, zero padded; or the bill's fingerprint).
"""

from __future__ import annotations

import enum

from tierchain.crypto import ED25519_BLAKE3, CryptoSuite

# --- hash domains (the chain's suite's domain contexts; never change one: it changes ids) ----
TF_INSTRUMENT_ID = "tierchain 2026 tradefin instrument id"  # an LC or guarantee: (sender, nonce)
TF_PRESENTATION = "tierchain 2026 tradefin presentation digest"  # a drawing's document list
DOMAINS = (TF_INSTRUMENT_ID, TF_PRESENTATION)

# --- what the tradefin app claims (tierchain.apps.tradefin.app) -----------------------------
OP_CODES = range(192, 256)
REJECT_CODES = range(416, 480)

# op codes (protocol: never renumber)
OP_LC_APPLY = 192  # applicant: the signed application naming issuing bank, beneficiary, terms
OP_LC_ISSUE = 193  # issuing bank: opens the LC applied for
OP_LC_CANCEL = 194  # before issuance: the applicant withdraws, or the issuing bank declines
OP_LC_ADVISE = 195  # advising bank: advises the LC to the beneficiary
OP_LC_AMEND = 196  # issuing bank: proposes new amount / expiry / latest shipment
OP_LC_AMEND_REPLY = 197  # beneficiary: accepts or rejects the pending amendment
OP_LC_PRESENT = 198  # beneficiary: a drawing with typed document fingerprints
OP_LC_CHECK = 199  # nominated (advising) bank, then issuing bank: compliant or discrepant
OP_LC_WAIVE = 200  # applicant: waives a discrepant presentation's discrepancies
OP_LC_ACCEPT = 201  # issuing bank: honours a compliant (or waived) presentation
OP_LC_REFUSE = 202  # issuing bank: refuses a discrepant presentation, stating its reasons
OP_LC_PAY = 203  # issuing bank: pays an accepted drawing at maturity
OP_LC_CLOSE = 204  # issuing bank (expired or exhausted) or beneficiary (renounces)
OP_G_ISSUE = 208  # guarantor bank: a guarantee for an applicant in favour of a beneficiary
OP_G_CLAIM = 209  # beneficiary: a demand, with its document fingerprint
OP_G_PAY = 210  # guarantor: pays the open demand
OP_G_REJECT = 211  # guarantor: rejects the open demand, with reasons
OP_G_RELEASE = 212  # beneficiary releases it; or the guarantor closes it after expiry
OP_F_ASSIGN = 216  # seller: offers the assignment of an anchored invoice to a factor bank
OP_F_ACCEPT = 217  # factor: takes the assignment (its advance to the seller)
OP_F_DECLINE = 218  # factor declines, or seller withdraws, an offered assignment
OP_F_ACK = 219  # debtor: acknowledges the notice of assignment (pays the factor from now)
OP_F_PAY = 220  # debtor: pays the factor (in instalments up to the amount)
OP_F_DEFAULT = 221  # factor: declares the debtor's default after due date + grace
OP_F_RECOURSE = 222  # factor: claims the outstanding amount from the seller (with recourse)
OP_F_REPURCHASE = 223  # seller: pays the recourse claim
OP_W_OFFER = 232  # holder: offers an accepted usance drawing (or a bill) to a forfaiter
OP_W_ACCEPT = 233  # forfaiter: buys it without recourse at the price
OP_W_DECLINE = 234  # forfaiter declines, or the holder withdraws, an offer
OP_W_SETTLE = 235  # forfaiter: a bill's payment at maturity (an LC drawing: by OP_LC_PAY)


class TradeReject(enum.IntEnum):
    """The tradefin app's refusal codes (416..479). Protocol numbers: never renumber one.

    Membership is finance's check (``orgs.member``: ``NOT_A_MEMBER``, ``KEY_REVOKED``,
    ``ORG_INACTIVE``, ``ROLE_MISSING``), and so are counterparties (``NO_SUCH_ORG``,
    ``BAD_COUNTERPARTY``): the app requires finance and refuses with its codes too."""

    # letters of credit
    TF_NO_SUCH_LC = 416
    TF_NOT_APPLICANT = 417
    TF_NOT_ISSUING_BANK = 418
    TF_NOT_ADVISING_BANK = 419  # neither the advising (nominated) nor the issuing bank
    TF_NOT_BENEFICIARY = 420
    TF_BAD_LC_STATE = 421  # the op is not allowed in the LC's status
    TF_LC_EXPIRED = 422  # a presentation or amendment after the expiry (block time)
    TF_BAD_EXPIRY = 423  # an expiry or due date not after the block time, or too far ahead
    TF_AMENDMENT_PENDING = 424  # one amendment at a time
    TF_NO_SUCH_AMENDMENT = 425  # not the pending one
    TF_BELOW_DRAWN = 426  # an amended amount (with tolerance) below what is drawn and reserved
    TF_EXCEEDS_AVAILABLE = 427  # a drawing over amount + tolerance - drawn - reserved
    TF_PRESENTATIONS_EXHAUSTED = 428  # the LC's maximum number of presentations was made
    TF_PARTIAL_NOT_ALLOWED = 429  # a second drawing under an LC without partial drawings
    TF_NO_SUCH_PRESENTATION = 430
    TF_BAD_PRESENTATION_STATE = 431  # the op is not allowed in the presentation's status
    TF_DISCREPANCIES_PRESENT = 432  # a compliant finding on a presentation with automatic ones
    TF_ALREADY_CHECKED = 433  # the nominated bank checks once, before the issuing bank
    TF_NOT_DUE = 434  # a payment before maturity
    TF_REFUSAL_TOO_LATE = 435  # a refusal (or discrepant finding) after the examination period
    TF_UNSTATED_DISCREPANCY = 436  # a refusal reason that is not among the findings
    TF_PRESENTATION_OPEN = 437  # a close while a presentation is under examination
    TF_NOT_CLOSABLE = 438  # the issuing bank closes an unexpired, unexhausted LC
    TF_HISTORY_FULL = 439
    TF_AMENDMENTS_EXHAUSTED = 440
    # guarantees
    TF_NO_SUCH_GUARANTEE = 444
    TF_NOT_GUARANTOR = 445
    TF_GUARANTEE_EXPIRED = 446  # a demand after the expiry
    TF_CLAIM_OPEN = 447  # one demand at a time; no release while one is open
    TF_NO_OPEN_CLAIM = 448
    TF_EXCEEDS_GUARANTEE = 449  # a demand over amount - paid
    TF_GUARANTEE_CLOSED = 450  # released, expired or paid in full
    TF_CLAIMS_EXHAUSTED = 451
    TF_NOT_EXPIRED = 452  # the guarantor closes only after the expiry
    # factoring
    TF_RECEIVABLE_ASSIGNED = 456  # the invoice is already assigned (or offered): never twice
    TF_INVOICE_NOT_ANCHORED = 457  # no finance anchor of the invoice fingerprint
    TF_INVOICE_NOT_SELLERS = 458  # the invoice was not anchored by the seller
    TF_INVOICE_IN_VOUCHER = 459  # the invoice already backs a finance voucher
    TF_NO_SUCH_RECEIVABLE = 460
    TF_NOT_FACTOR = 461
    TF_NOT_SELLER = 462
    TF_NOT_DEBTOR = 463
    TF_BAD_RECEIVABLE_STATE = 464
    TF_NOT_OVERDUE = 465  # a default before due date + grace
    TF_NO_RECOURSE = 466  # a recourse claim on a without-recourse assignment
    TF_EXCEEDS_OUTSTANDING = 467
    TF_NOTICE_NOT_ACKNOWLEDGED = 468  # the debtor pays the factor only after acknowledging
    TF_OFFERS_EXHAUSTED = 469  # a receivable (or instrument) offered too many times
    # forfaiting
    TF_NO_SUCH_FORFAIT = 472
    TF_ALREADY_FORFAITED = 473  # the instrument is already offered or sold
    TF_NOT_FORFAITABLE = 474  # not an accepted, unpaid usance drawing
    TF_NOT_FORFAITER = 475
    TF_BAD_FORFAIT_STATE = 476
    TF_MATURED = 477  # an offer or purchase at or after the instrument's maturity
    TF_NOT_HOLDER = 478  # not the party that offered the instrument


# --- enums (protocol numbers) ---------------------------------------------------------------
class LcStatus(enum.IntEnum):
    APPLIED = 1
    ISSUED = 2
    ADVISED = 3
    CLOSED = 4
    WITHDRAWN = 5  # the applicant withdrew the application
    DECLINED = 6  # the issuing bank declined to issue


class PresentationStatus(enum.IntEnum):
    PRESENTED = 1  # under examination
    COMPLIANT = 2  # the issuing bank found it compliant
    DISCREPANT = 3
    WAIVED = 4  # discrepant, the applicant waived the discrepancies
    ACCEPTED = 5  # honoured: drawn, payable at maturity
    REFUSED = 6
    PAID = 7


EXAMINING = frozenset(
    (
        PresentationStatus.PRESENTED,
        PresentationStatus.COMPLIANT,
        PresentationStatus.DISCREPANT,
        PresentationStatus.WAIVED,
    )
)


class Finding(enum.IntEnum):
    NONE = 0
    COMPLIANT = 1
    DISCREPANT = 2


class AmendmentStatus(enum.IntEnum):
    PENDING = 1
    ACCEPTED = 2
    REJECTED = 3
    LAPSED = 4  # the LC closed with the amendment pending


class DocType(enum.IntEnum):
    """The documents an LC calls for (the types of a presentation's fingerprints)."""

    INVOICE = 1
    TRANSPORT_DOCUMENT = 2  # waybill, bill of lading
    INSPECTION_CERTIFICATE = 3
    INSURANCE_DOCUMENT = 4
    PACKING_LIST = 5
    CERTIFICATE_OF_ORIGIN = 6
    WAREHOUSE_RECEIPT = 7
    RECEIPT_OF_GOODS = 8  # the buyer's goods receipt (domestic LCs)
    DRAFT = 9
    OTHER = 10


class Discrepancy(enum.IntEnum):
    """Bits of a discrepancy mask. The first five are found by the chain at presentation
    (``AUTOMATIC``); the others only by an examining bank."""

    LATE_SHIPMENT = 0  # shipment after the latest shipment date
    LATE_PRESENTATION = 1  # presented after shipment + the presentation period
    MISSING_DOCUMENT = 2  # a document type the LC calls for is not presented
    AMOUNT_SHORT = 3  # a sole drawing (no partial drawings) below amount - tolerance
    INCONSISTENT_DATA = 4  # e.g. a shipment date after the presentation
    DESCRIPTION_MISMATCH = 5
    AMOUNT_MISMATCH = 6
    UNSIGNED_DOCUMENT = 7
    WRONG_PARTY = 8
    OTHER = 9


AUTOMATIC = (1 << 5) - 1
DISCREPANCY_MASK = (1 << len(Discrepancy)) - 1


class GuaranteeKind(enum.IntEnum):
    PERFORMANCE = 1
    ADVANCE_PAYMENT = 2
    BID = 3
    PAYMENT = 4
    RETENTION = 5
    WARRANTY = 6


class GuaranteeStatus(enum.IntEnum):
    ISSUED = 1
    CLAIMED = 2  # a demand is open
    RELEASED = 3  # by the beneficiary
    EXPIRED = 4  # closed by the guarantor after the expiry
    EXHAUSTED = 5  # paid in full


class ClaimRejection(enum.IntEnum):
    """Bits of a guarantee demand's rejection reasons."""

    NON_COMPLIANT_DEMAND = 0
    LATE_DEMAND = 1
    MISSING_STATEMENT = 2
    WRONG_AMOUNT = 3
    OTHER = 4


CLAIM_REJECTION_MASK = (1 << len(ClaimRejection)) - 1


class ReceivableStatus(enum.IntEnum):
    OFFERED = 1  # the seller offered the assignment; the factor has not taken it
    DECLINED = 2  # declined or withdrawn: the seller may offer it again
    ASSIGNED = 3
    SETTLED = 4  # the debtor paid in full
    DEFAULTED = 5
    RECOURSE_CLAIMED = 6
    REPURCHASED = 7  # the seller paid the recourse claim


class ForfaitKind(enum.IntEnum):
    LC_DRAWING = 1  # an accepted usance drawing under an LC on this chain (checked)
    BILL = 2  # a bill (or other usance instrument) by its fingerprint (off chain)


class ForfaitStatus(enum.IntEnum):
    OFFERED = 1
    DECLINED = 2
    PURCHASED = 3
    SETTLED = 4  # paid to the forfaiter at maturity
    LAPSED = 5  # the drawing was paid to the beneficiary while the offer was open


class Event(enum.IntEnum):
    """Kinds of history entries (every instrument keeps its own)."""

    APPLIED = 1
    ISSUED = 2
    WITHDRAWN = 3
    DECLINED = 4
    ADVISED = 5
    AMENDMENT_PROPOSED = 6
    AMENDMENT_ACCEPTED = 7
    AMENDMENT_REJECTED = 8
    PRESENTED = 9
    CHECKED_NOMINATED = 10
    CHECKED_COMPLIANT = 11
    CHECKED_DISCREPANT = 12
    WAIVED = 13
    ACCEPTED = 14
    REFUSED = 15
    PAID = 16
    CLOSED = 17
    G_ISSUED = 20
    G_CLAIMED = 21
    G_PAID = 22
    G_REJECTED = 23
    G_RELEASED = 24
    G_EXPIRED = 25
    F_OFFERED = 30
    F_DECLINED = 31
    F_ASSIGNED = 32
    F_ACKNOWLEDGED = 33
    F_PAID = 34
    F_DEFAULTED = 35
    F_RECOURSE_CLAIMED = 36
    F_REPURCHASED = 37
    W_OFFERED = 40
    W_DECLINED = 41
    W_PURCHASED = 42
    W_SETTLED = 43
    W_LAPSED = 44


# --- limits ----------------------------------------------------------------------------------
id_bytes = 16
fp_bytes = 32
amount_max = 1 << 56  # minor units: amount * (10000 + tolerance) stays far inside a u64
tolerance_bps_max = 1000  # +/- 10%
presentation_days_max = 21
usance_days_max = 366
presentations_max = 8  # per LC
amendments_max = 8  # per LC
docs_per_presentation_max = 10
lc_validity_ms_max = 2 * 366 * 86_400_000  # an LC's expiry at most ~2 years ahead
examination_ms = 5 * 86_400_000  # the issuing bank's examination period (five days)
guarantee_validity_ms_max = 10 * 366 * 86_400_000
claims_max = 8  # demands per guarantee
receivable_offers_max = 4  # offers of one receivable (each declined but the last)
# The finance anchor of an invoice a factor took (``tf.f_accept``) names this as the voucher
# it backs: no voucher can be confirmed on it any more (``fin.confirm``: INVOICE_ALREADY_USED),
# as no factoring can take an invoice that backs a voucher (TF_INVOICE_IN_VOUCHER).
FACTORED = b"\xff" * 16
receivable_payments_max = 16  # instalments by which a debtor pays
receivable_due_ms_max = 2 * 366 * 86_400_000
forfait_offers_max = 4
day_ms = 86_400_000
# History entries each record keeps: enough for everything its limits allow (asserted).
lc_history_max = 3 + 1 + 2 * amendments_max + 6 * presentations_max + 1  # apply..close
guarantee_history_max = 1 + 2 * claims_max + 1
receivable_history_max = 2 * receivable_offers_max + 1 + 1 + receivable_payments_max + 3
forfait_history_max = 2 * forfait_offers_max + 2
assert lc_history_max <= 255 and receivable_history_max <= 255


# --- state keys ------------------------------------------------------------------------------
LC_PREFIX, FORFAIT_PREFIX, GUARANTEE_PREFIX, RECEIVABLE_PREFIX = b"tl/", b"tw/", b"tg/", b"tf/"
TAG_BYTES = 8  # tl/ keys route by the 8 bytes after the prefix


def lc_key(lc_id: bytes) -> bytes:
    return LC_PREFIX + lc_id


def amendment_key(lc_id: bytes, n: int) -> bytes:
    return LC_PREFIX + lc_id + b"a" + bytes((n,))


def presentation_key(lc_id: bytes, n: int) -> bytes:
    return LC_PREFIX + lc_id + b"p" + bytes((n,))


def guarantee_key(guarantee_id: bytes) -> bytes:
    return GUARANTEE_PREFIX + guarantee_id


def receivable_key(invoice_fp: bytes) -> bytes:
    return RECEIVABLE_PREFIX + invoice_fp


def forfait_key(fid: bytes) -> bytes:
    """The forfaiting record of ``fid`` (``forfait_id``): beside its LC, or by the bill."""
    if fid[0] == ForfaitKind.LC_DRAWING:
        return LC_PREFIX + fid[1 : 1 + id_bytes] + b"w" + fid[1 + id_bytes : 2 + id_bytes]
    return FORFAIT_PREFIX + fid[1:]


# --- ids (the chain's suite's hashes) ---------------------------------------------------------
def instrument_id(sender: bytes, nonce: int, *, suite: CryptoSuite = ED25519_BLAKE3) -> bytes:
    """The id of the LC (application) or guarantee a tx creates: known before signing."""
    return suite.hash(TF_INSTRUMENT_ID, sender + nonce.to_bytes(8, "little"))[:id_bytes]


forfait_id_bytes = 33


def forfait_id(kind: int, ref: bytes) -> bytes:
    """A forfaiting's id: the instrument's kind, then its reference padded to 32 bytes (an
    LC drawing: ``drawing_ref``; a bill: its fingerprint). One record per instrument."""
    return bytes((kind,)) + ref.ljust(32, b"\0")


def drawing_ref(lc_id: bytes, n: int) -> bytes:
    """The reference of presentation ``n`` of an LC (what a forfaiting of it names)."""
    return lc_id + bytes((n,))


def drawing_forfait_id(lc_id: bytes, n: int) -> bytes:
    return forfait_id(ForfaitKind.LC_DRAWING, drawing_ref(lc_id, n))


def valid_forfait_id(fid: bytes) -> bool:
    """A canonical forfait id: a known kind; an LC drawing's reference zero padded."""
    if len(fid) != forfait_id_bytes or fid[0] not in ForfaitKind._value2member_map_:
        return False
    return fid[0] != ForfaitKind.LC_DRAWING or fid[2 + id_bytes :] == bytes(32 - id_bytes - 1)
