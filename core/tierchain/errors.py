"""Named rejection codes and the exceptions that carry them.

A code is a small integer so that native code can return one per transaction
in a numpy column; ``Reject(code).name`` is what a submitter sees. Codes are
part of the protocol: never renumber one, only add.

Ranges: 1-31 wire decoding (``tierchain.wire.tx`` and ``tierchain._hot``),
32-63 admission and signatures, 64-95 execution (op handlers). ``Reject`` holds the
engine's codes only (below ``tierchain.engine.apps.app_reject_codes_min``, 96): an app
declares its own refusal codes, 96 and up, as its ``App.rejects`` (the finance app's
are ``tierchain.apps.finance.codes.FinanceReject``), and ``AppSet.reject_name`` names
a receipt's code whichever owns it.
"""

from __future__ import annotations

import enum


class Reject(enum.IntEnum):
    OK = 0
    # --- wire decoding (docs/wire-format.md) ---
    TRUNCATED = 1  # frame or field runs past the end of the input
    TOO_LARGE = 2  # transaction longer than limits.tx_bytes_max
    TOO_SHORT = 3  # shorter than the smallest possible transaction
    BAD_VERSION = 4
    BAD_OP = 5  # op code 0 is reserved
    TOO_MANY_KEYS = 6
    BAD_KEY_LENGTH = 7  # key of length 0 or above limits.key_bytes_max
    KEYS_NOT_CANONICAL = 8  # a key set not strictly ascending (order or duplicate)
    KEY_IN_BOTH_SETS = 9  # a key declared as read and as write
    PAYLOAD_TOO_LARGE = 10
    TRAILING_BYTES = 11  # bytes after the signature
    # --- admission ---
    BAD_SIGNATURE = 32
    WRONG_CHAIN = 33
    WRONG_SHARD = 34
    DUPLICATE = 35
    NONCE_TOO_LOW = 36
    NONCE_TOO_HIGH = 37
    EXPIRED = 38
    MEMPOOL_FULL = 39
    BATCH_TOO_LARGE = 40
    RESERVED_KEY = 41  # a declared key in the system namespace (first byte 0x00)
    SENDER_LIMIT = 42  # the sender already has config.sender_pending_max txs waiting
    SHUTTING_DOWN = 43
    READ_ONLY = 44  # an observer node: it serves reads and takes no transactions
    BAD_PROOF = 45  # a proof the tx carries does not verify (an app's admission check: App.checks)
    # --- execution (receipts) ---
    UNDECLARED_ACCESS = 64  # the handler touched a key the tx did not declare
    UNKNOWN_OP = 65
    BAD_PAYLOAD = 66
    NONCE_MISMATCH = 67
    INSUFFICIENT_FUNDS = 68
    UNAUTHORIZED = 69  # the sender lacks the role or ownership the op needs
    NO_SUCH_ACCOUNT = 70
    ACCOUNT_EXISTS = 71
    HANDLER_FAILED = 72  # an op handler raised an unexpected exception (a bug, logged)
    WEAK_KEY = 73  # a key to register is small-order, mixed-order or non-canonical
    XSHARD_STATE = 74  # a cross-shard record is not in the state this step needs (docs/sharding.md)
    XSHARD_DEADLINE = 75  # a cross-shard commit after its deadline


class TierChainError(Exception):
    """Base of every error TierChain raises on purpose."""


class RejectedError(TierChainError):
    """Input refused with a named code."""

    def __init__(self, code: enum.IntEnum | int, detail: str = "") -> None:
        # An engine code, or an app's own named code (an ``App.rejects`` member) as given.
        self.code: enum.IntEnum = code if isinstance(code, enum.IntEnum) else Reject(code)
        self.detail = detail
        super().__init__(f"{self.code.name}: {detail}" if detail else self.code.name)


class WireError(RejectedError):
    """A transaction's bytes are not a canonical encoding within the limits."""


class InvariantViolation(TierChainError):
    """A ledger invariant does not hold: a bug in the engine or an op handler, never bad input.

    Bad input gets a named ``Reject`` code (``OpFailed``); this is the other case, raised
    where an ``assert`` would be (asserts vanish under ``python -O``). It is never turned into
    a receipt: it propagates out of execution, block production halts before anything of the
    block is committed, and the node stops (docs/operations.md, "A halt on a broken invariant").
    ``what`` says what broke; ``op`` and ``tx_id`` where (empty for engine-wide checks);
    the executor fills them in, and ``height``, when a handler raised it.
    """

    def __init__(self, what: str, *, op: str = "", tx_id: bytes = b"", height: int | None = None) -> None:
        self.what, self.op, self.tx_id, self.height = what, op, tx_id, height
        super().__init__(what)

    def locate(self, op: str, tx_id: bytes, height: int) -> None:
        """Record where it broke, keeping what the raiser already said."""
        self.op, self.tx_id = self.op or op, self.tx_id or tx_id
        self.height = height if self.height is None else self.height

    def fields(self) -> dict[str, object]:
        """The log fields of the halt: which op, transaction, height and invariant."""
        return {"op": self.op, "tx_id": self.tx_id.hex(), "height": self.height, "invariant": self.what}

    def __str__(self) -> str:
        where = [f"op {self.op}"] if self.op else []
        where += [f"tx {self.tx_id.hex()}"] if self.tx_id else []
        where += [f"height {self.height}"] if self.height is not None else []
        return f"invariant violated: {self.what}" + (f" ({', '.join(where)})" if where else "")
