"""Record codecs of the tradefin app: fixed little-endian layouts, lengths checked.

Each record is a frozen dataclass whose fields, in order, are packed by its struct; a
record with a ``history`` (the last field) appends a count byte and its entries, and one
with ``docs`` appends a count byte and (type, fingerprint) pairs. ``decode`` refuses any
value whose length is not exactly its layout's (``RecordError``): a damaged value fails
loudly instead of being misread. Integers only (amounts in minor units, times in block ms).
"""

from __future__ import annotations

import dataclasses
import struct
from typing import ClassVar, TypeVar

from tierchain.apps.finance.codes import RecordError
from tierchain.apps.tradefin import codes as c

__all__ = [
    "Amendment",
    "Entry",
    "Forfait",
    "Guarantee",
    "Lc",
    "Presentation",
    "Receivable",
    "RecordError",
]

T = TypeVar("T", bound="_Packed")
_ENTRY = struct.Struct("<BQQ16sBQ32s")


@dataclasses.dataclass(frozen=True)
class Entry:
    """One history entry: what happened (``codes.Event``), when, by which organization
    (the signer's; for an offer of a receivable or instrument: the offeree, the offeror
    being the record's seller; for a payment: the payee), about which amendment or
    presentation (``ref``; 255: none), the amount it moved or named, and the fingerprint of
    the step's document (zero if none; a presentation's: a digest of its document list)."""

    kind: int
    height: int
    timestamp_ms: int
    org: bytes
    ref: int
    amount: int
    fp: bytes

    def encode(self) -> bytes:
        return _ENTRY.pack(
            self.kind, self.height, self.timestamp_ms, self.org, self.ref, self.amount, self.fp
        )


NO_REF = 255
ZERO_FP = bytes(32)


class _Packed:
    """Fields in order, packed by ``_S``; then the optional variable tail."""

    _S: ClassVar[struct.Struct]
    _TAIL: ClassVar[str] = ""  # "history" or "docs": the last field's kind
    _NAME: ClassVar[str] = "record"

    def encode(self) -> bytes:
        names = [f.name for f in dataclasses.fields(self)]  # type: ignore[arg-type]
        fixed = names[:-1] if self._TAIL else names
        head = self._S.pack(*(getattr(self, n) for n in fixed))
        if self._TAIL == "history":
            return head + bytes((len(self.history),)) + b"".join(e.encode() for e in self.history)  # type: ignore[attr-defined]
        if self._TAIL == "docs":
            return head + bytes((len(self.docs),)) + b"".join(bytes((t,)) + fp for t, fp in self.docs)  # type: ignore[attr-defined]
        return head

    @classmethod
    def decode(cls: type[T], raw: bytes) -> T:
        size = cls._S.size
        if len(raw) < size + (1 if cls._TAIL else 0):
            raise RecordError(cls._NAME)
        fields = list(cls._S.unpack_from(raw))
        if cls._TAIL:
            n, rest = raw[size], raw[size + 1 :]
            width = _ENTRY.size if cls._TAIL == "history" else 33
            if len(rest) != n * width:
                raise RecordError(f"{cls._NAME} {cls._TAIL}")
            if cls._TAIL == "history":
                tail = tuple(Entry(*_ENTRY.unpack_from(rest, i * width)) for i in range(n))
            else:
                tail = tuple((rest[i * 33], rest[i * 33 + 1 : i * 33 + 33]) for i in range(n))
            fields.append(tail)
        elif len(raw) != size:
            raise RecordError(cls._NAME)
        return cls(*fields)

    def with_entry(self: T, entry: Entry, **changes: object) -> T:
        """This record with ``changes`` and ``entry`` appended to its history."""
        return dataclasses.replace(self, history=(*self.history, entry), **changes)  # type: ignore[attr-defined,arg-type]


@dataclasses.dataclass(frozen=True)
class Lc(_Packed):
    """``tl/<lc>``: a letter of credit. ``amount``, ``expiry_ms`` and ``latest_shipment_ms``
    are the current terms (amendments accepted by the beneficiary change them). Amounts:
    ``drawn`` (accepted drawings, paid or not), ``reserved`` (drawings under examination),
    ``paid``; the chain keeps ``drawn + reserved <= max_amount`` and ``paid <= drawn``."""

    applicant: bytes
    issuer: bytes
    advising: bytes
    beneficiary: bytes
    amount: int
    tolerance_bps: int
    expiry_ms: int
    latest_shipment_ms: int
    presentation_days: int
    usance_days: int  # 0: payable at sight; else days after acceptance
    presentations_max: int
    partial: int  # 1: partial drawings allowed
    required_docs: int  # mask of 1 << DocType
    status: int
    applied_ms: int
    issued_ms: int
    drawn: int
    reserved: int
    paid: int
    presentations: int  # made so far (index of the next)
    examining: int  # presentations under examination
    amendments: int  # proposed so far (index of the next)
    pending: int  # 1 + the index of the pending amendment; 0: none
    history: tuple[Entry, ...]

    _S = struct.Struct("<16s16s16s16sQHQQBHBBHBQQQQQBBBB")
    _TAIL = "history"
    _NAME = "letter of credit"

    @property
    def max_amount(self) -> int:
        """The most that may be drawn: the amount plus its tolerance (rounded down)."""
        return self.amount + self.amount * self.tolerance_bps // 10_000

    @property
    def min_sole_drawing(self) -> int:
        """A sole drawing (no partial drawings) below this is short (``AMOUNT_SHORT``)."""
        return self.amount - self.amount * self.tolerance_bps // 10_000

    @property
    def available(self) -> int:
        return self.max_amount - self.drawn - self.reserved


@dataclasses.dataclass(frozen=True)
class Amendment(_Packed):
    """``tl/<lc>a<n>``: proposed terms (all three, the unchanged ones repeated)."""

    amount: int
    expiry_ms: int
    latest_shipment_ms: int
    fp: bytes
    status: int
    proposed_height: int
    proposed_ms: int
    replied_height: int

    _S = struct.Struct("<QQQ32sBQQQ")
    _NAME = "amendment"


@dataclasses.dataclass(frozen=True)
class Presentation(_Packed):
    """``tl/<lc>p<n>``: one drawing. ``automatic``: the discrepancies the chain found when it
    was presented; ``nominated_*``: the nominated (advising) bank's finding, advisory;
    ``finding``/``discrepancies``: the issuing bank's, binding (its discrepancies include the
    automatic ones); ``reasons``: a refusal's; ``payee``: who was paid (the beneficiary, or
    the forfaiter that bought the drawing)."""

    amount: int
    shipment_ms: int
    presented_height: int
    presented_ms: int
    status: int
    automatic: int
    nominated_finding: int
    nominated_discrepancies: int
    finding: int
    discrepancies: int
    reasons: int
    accepted_ms: int
    maturity_ms: int
    paid_ms: int
    payee: bytes
    docs: tuple[tuple[int, bytes], ...]

    _S = struct.Struct("<QQQQBHBHBHHQQQ16s")
    _TAIL = "docs"
    _NAME = "presentation"


@dataclasses.dataclass(frozen=True)
class Guarantee(_Packed):
    """``tg/<id>``: a bank guarantee. ``paid <= amount`` always; one demand open at a time
    (``claim_amount``/``claim_fp``/``claim_ms``, zero when none)."""

    guarantor: bytes
    applicant: bytes
    beneficiary: bytes
    kind: int
    amount: int
    expiry_ms: int
    status: int
    issued_ms: int
    paid: int
    claims: int
    claim_amount: int
    claim_ms: int
    claim_fp: bytes
    history: tuple[Entry, ...]

    _S = struct.Struct("<16s16s16sBQQBQQBQQ32s")
    _TAIL = "history"
    _NAME = "guarantee"

    @property
    def remaining(self) -> int:
        return self.amount - self.paid


@dataclasses.dataclass(frozen=True)
class Receivable(_Packed):
    """``tf/<invoice fingerprint>``: the assignment of one receivable. ``factor`` is the
    bank offered (or holding) it; ``advance`` what the factor pays the seller; ``paid`` what
    the debtor paid the factor; ``recourse_paid`` what the seller repaid on recourse."""

    seller: bytes
    debtor: bytes
    factor: bytes
    amount: int
    due_ms: int
    advance: int
    recourse: int  # 1: with recourse against the seller
    status: int
    acknowledged: int  # 1: the debtor acknowledged the notice of assignment
    offers: int
    paid: int
    payments: int
    recourse_paid: int
    history: tuple[Entry, ...]

    _S = struct.Struct("<16s16s16sQQQBBBBQBQ")
    _TAIL = "history"
    _NAME = "receivable"

    @property
    def outstanding(self) -> int:
        return self.amount - self.paid


@dataclasses.dataclass(frozen=True)
class Forfait(_Packed):
    """``tw/<id>``: the forfaiting of one usance instrument, without recourse: an LC drawing
    (``ref`` = LC id + presentation index, padded) or a bill (``ref`` = its fingerprint)."""

    kind: int
    ref: bytes  # 32 bytes
    seller: bytes
    forfaiter: bytes
    obligor: bytes
    face: int
    price: int
    maturity_ms: int
    status: int
    offers: int
    history: tuple[Entry, ...]

    _S = struct.Struct("<B32s16s16s16sQQQBB")
    _TAIL = "history"
    _NAME = "forfait"

    @property
    def lc_ref(self) -> tuple[bytes, int]:
        """An LC drawing's (LC id, presentation index)."""
        return self.ref[: c.id_bytes], self.ref[c.id_bytes]
