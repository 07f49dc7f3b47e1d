"""Clients of the shared lists: a member organization's (``ListMember``) and the committee's.

A member holds the consortium's list key(s) off chain and works with raw identities; the
client computes each fingerprint (``lists.fingerprint``) on the member's side, so an
identity never leaves it. Before using a key the client checks it against the chain's
public check value (``sc/listkey`` for the current epoch and the last
``lists.key_history_max`` ones, the epoch's activated ballot for an older one): a member
whose key is not the one the chain expects gets ``ListKeyError`` instead of silently
listing (or looking up) fingerprints nobody else can match.

::

    lists = Lists(chain)                            # a Chain, a NodeClient or a ledger
    lists.vote_list_key(committee_keys, 1, key)     # each committee member; key stays off chain
    bank = ListMember(chain, bank_keys, key)
    bank.add(ListId.FRAUD, IdentityKind.NATIONAL_ID, "11010519491231002X", ListReason.FRAUD_CONFIRMED)
    bank.lookup(ListId.FRAUD, IdentityKind.NATIONAL_ID, "11010519491231002X")   # an EntryView or None
    other.dispute(ListId.FRAUD, IdentityKind.NATIONAL_ID, "11010519491231002X", bank.org, reason)
    other.withdraw_dispute(ListId.FRAUD, IdentityKind.NATIONAL_ID, "11010519491231002X", bank.org)
    # after a rotation to epoch 2 (new_key voted):
    bank.add_list_key(new_key)
    bank.rekey(ListId.FRAUD, IdentityKind.NATIONAL_ID, "11010519491231002X")

Each sending method submits one transaction, waits for its receipt and returns a ``Result``
whose ``code`` is the engine's ``Reject`` or the sharing app's ``SharingReject``
(``codes.reject_of``); ``Result.check()`` raises ``RejectedError`` on a refusal.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tierchain.apps.finance import codes as fc
from tierchain.apps.finance.client import SuiteMismatch
from tierchain.apps.sharing import codes as c
from tierchain.apps.sharing import lists
from tierchain.apps.sharing.ledger import Ledger, Result, check_suite, ledger_of, scan_all, send_signed
from tierchain.crypto import CryptoSuite, KeyPair
from tierchain.errors import TierChainError
from tierchain.wire import tx as txcodec

__all__ = ["ListKeyError", "ListMember", "Lists", "Result", "SuiteMismatch"]


class ListKeyError(TierChainError):
    """The client holds no list key for the epoch an operation needs (or the chain has no
    list key yet): the message names the epoch."""


class Lists:
    """The shared lists of one ledger: reads, and the committee's key votes."""

    def __init__(self, ledger: Any, timeout_s: float = 30.0) -> None:
        self.ledger: Ledger = ledger_of(ledger)
        self.timeout_s = timeout_s

    @property
    def suite(self) -> CryptoSuite:
        return self.ledger.suite

    # --- reads ---------------------------------------------------------------------------
    def key_state(self) -> lists.ListKeyState:
        """The current list key's epoch and check (epoch 0: none voted yet)."""
        return lists.read_key_state(self.ledger.state_get)

    def ballot(self, epoch: int, key_check: bytes) -> lists.Ballot | None:
        """The ballot for ``key_check`` as the key of ``epoch``, if one was opened."""
        return lists.read_ballot(self.ledger.state_get, epoch, key_check)

    def ballots(self, epoch: int) -> list[lists.Ballot]:
        """Every ballot of ``epoch`` (one per key check voted), in key check order."""
        return [lists.Ballot.decode(v) for _, v in scan_all(self.ledger, c.ballot_key(epoch, b""))]

    def entry(self, list_id: int, fp: bytes) -> lists.Entry | None:
        """The entry at ``fp`` whatever its epoch (one awaiting re-key included)."""
        return lists.read_entry(self.ledger.state_get, list_id, fp)

    def disputes(self, list_id: int, fp: bytes, lister: bytes) -> tuple[lists.Dispute, ...]:
        """The open disputes of ``lister``'s listing of ``fp`` (listed or not)."""
        return lists.read_disputes(self.ledger.state_get, list_id, fp, lister)

    def current(self, list_id: int, fp: bytes) -> lists.EntryView | None:
        """The entry at ``fp`` if it is of the current epoch, with its listings' disputes."""
        return lists.current_view(self.ledger.state_get, list_id, fp)

    def key_check_of(self, epoch: int) -> bytes | None:
        """The public check of epoch ``epoch``'s key: ``sc/listkey``'s for the current epoch
        and the last ``lists.key_history_max`` ones, the activated ballot's for an older one
        (None for an epoch not activated)."""
        state = self.key_state()
        check = state.check_of(epoch)
        if check is not None or not 1 <= epoch < state.epoch:
            return check
        return next((b.key_check for b in self.ballots(epoch) if b.activated), None)

    # --- the committee --------------------------------------------------------------------
    def vote_list_key(self, keys: KeyPair, epoch: int, key: bytes) -> Result:
        """Vote ``key`` (its check, never the key) as the list key of ``epoch`` (current + 1);
        ``keys``: an account with the ``committee`` role."""
        if len(key) != lists.list_key_bytes:
            raise ValueError(f"a list key is {lists.list_key_bytes} bytes")
        self._own(keys)
        check = c.key_check(key, suite=self.suite)
        pk = keys.public_key
        tx = lists.list_key_vote(self.ledger.chain_id, pk, self.ledger.nonce(pk), epoch, check)
        return self._send(keys, tx)

    def member(self, keys: KeyPair, list_key: bytes | Iterable[bytes]) -> ListMember:
        return ListMember(self, keys, list_key, timeout_s=self.timeout_s)

    # --- plumbing ---------------------------------------------------------------------------
    def _own(self, keys: KeyPair) -> None:
        check_suite(self.ledger, keys)

    def _send(self, keys: KeyPair, tx: txcodec.Tx, fp: bytes | None = None) -> Result:
        return send_signed(self.ledger, keys, tx, self.timeout_s, fingerprint=fp)


class ListMember:
    """One key of a member organization acting on the shared lists.

    ``list_key``: the consortium's list key, or several (one per epoch the member still
    needs, e.g. the previous one until its listings are re-keyed); more can be added with
    ``add_list_key``. Keys are matched to epochs by their check value, never sent."""

    def __init__(
        self, ledger: Any, keys: KeyPair, list_key: bytes | Iterable[bytes], *, timeout_s: float = 30.0
    ) -> None:
        self.lists = ledger if isinstance(ledger, Lists) else Lists(ledger, timeout_s)
        self.lists._own(keys)
        self.keys, self.pk = keys, keys.public_key
        self._ring: dict[bytes, bytes] = {}  # key check -> key
        for key in [list_key] if isinstance(list_key, bytes | bytearray) else list_key:
            self.add_list_key(key)

    @property
    def suite(self) -> CryptoSuite:
        return self.lists.suite

    @property
    def org(self) -> bytes:
        """The key's organization (the zero id if unknown: ops then fail SENDER_NOT_MEMBER)."""
        raw = self.lists.ledger.state_get(fc.key_key(self.pk))
        return fc.ZERO_ID if raw is None else fc.KeyRecord.decode(raw).org

    def add_list_key(self, key: bytes) -> None:
        """Hold ``key`` too (a newly voted one, say)."""
        if not isinstance(key, bytes | bytearray) or len(key) != lists.list_key_bytes:
            raise ValueError(f"a list key is {lists.list_key_bytes} bytes")
        self._ring[c.key_check(bytes(key), suite=self.suite)] = bytes(key)

    def key_for(self, epoch: int) -> bytes:
        """The held key of ``epoch`` (checked against the chain), else ``ListKeyError``."""
        check = self.lists.key_check_of(epoch)
        if check is None:
            raise ListKeyError(f"the chain has no list key of epoch {epoch}")
        key = self._ring.get(check)
        if key is None:
            raise ListKeyError(f"this member holds no list key of epoch {epoch}")
        return key

    def epoch(self) -> int:
        """The chain's current list-key epoch (``ListKeyError`` if there is none yet)."""
        epoch = self.lists.key_state().epoch
        if not epoch:
            raise ListKeyError("no list key has been voted yet")
        return epoch

    def fingerprint(self, kind: int, identity: str | bytes, epoch: int | None = None) -> bytes:
        """``identity``'s fingerprint under the key of ``epoch`` (default: the current one)."""
        epoch = self.epoch() if epoch is None else epoch
        return lists.fingerprint(self.key_for(epoch), kind, identity, suite=self.suite)

    # --- reads ------------------------------------------------------------------------------
    def lookup(self, list_id: int, kind: int, identity: str | bytes) -> lists.EntryView | None:
        """The current-epoch entry of ``identity`` on ``list_id``, each listing with its open
        disputes (direct state reads), or None: not listed, or listed only at an older epoch
        (awaiting re-key)."""
        epoch = self.epoch()
        fp = lists.fingerprint(self.key_for(epoch), kind, identity, suite=self.suite)
        return lists.current_view(self.lists.ledger.state_get, list_id, fp, epoch)

    # --- ops -------------------------------------------------------------------------------
    def _args(self) -> tuple[int, bytes, bytes, int]:
        ledger = self.lists.ledger
        return ledger.chain_id, self.pk, self.org, ledger.nonce(self.pk)

    def add(self, list_id: int, kind: int, identity: str | bytes, reason: int) -> Result:
        """List ``identity`` on ``list_id`` for ``reason`` (``codes.ListReason``)."""
        epoch = self.epoch()
        fp = self.fingerprint(kind, identity, epoch)
        return self.add_fingerprint(list_id, fp, epoch, reason)

    def add_fingerprint(self, list_id: int, fp: bytes, epoch: int, reason: int) -> Result:
        """List a fingerprint the member computed itself (of ``epoch``, the current one)."""
        return self.lists._send(self.keys, lists.list_add(*self._args(), list_id, fp, epoch, reason), fp)

    def remove(
        self, list_id: int, kind: int, identity: str | bytes, reason: int, *, epoch: int | None = None
    ) -> Result:
        """Take this organization's listing of ``identity`` off ``list_id``: the fingerprint of
        ``epoch`` (default: the current one; an older epoch for a listing awaiting re-key)."""
        fp = self.fingerprint(kind, identity, epoch)
        return self.remove_fingerprint(list_id, fp, reason)

    def remove_fingerprint(self, list_id: int, fp: bytes, reason: int) -> Result:
        return self.lists._send(self.keys, lists.list_remove(*self._args(), list_id, fp, reason), fp)

    def dispute(self, list_id: int, kind: int, identity: str | bytes, lister: bytes, reason: int) -> Result:
        """Dispute organization ``lister``'s current listing of ``identity``."""
        fp = self.fingerprint(kind, identity)
        return self.dispute_fingerprint(list_id, fp, lister, reason)

    def dispute_fingerprint(self, list_id: int, fp: bytes, lister: bytes, reason: int) -> Result:
        return self.lists._send(self.keys, lists.list_dispute(*self._args(), list_id, fp, lister, reason), fp)

    def withdraw_dispute(
        self, list_id: int, kind: int, identity: str | bytes, lister: bytes, *, epoch: int | None = None
    ) -> Result:
        """Withdraw this organization's dispute of ``lister``'s listing of ``identity``: the
        fingerprint of ``epoch`` (default: the current one). A dispute outlives its listing,
        so this works whether or not the listing is still there."""
        fp = self.fingerprint(kind, identity, epoch)
        return self.withdraw_dispute_fingerprint(list_id, fp, lister)

    def withdraw_dispute_fingerprint(self, list_id: int, fp: bytes, lister: bytes) -> Result:
        tx = lists.list_withdraw_dispute(*self._args(), list_id, fp, lister)
        return self.lists._send(self.keys, tx, fp)

    def rekey(self, list_id: int, kind: int, identity: str | bytes) -> Result:
        """After a rotation: move this organization's listing of ``identity`` (and its
        disputes) from the previous epoch's fingerprint to the current one's. Needs both keys
        (``add_list_key``) and the identity itself: a keyed fingerprint cannot be re-keyed
        without it."""
        epoch = self.epoch()
        if epoch < 2:
            raise ListKeyError("no previous epoch to re-key from")
        old = self.fingerprint(kind, identity, epoch - 1)
        new = self.fingerprint(kind, identity, epoch)
        return self.lists._send(self.keys, lists.list_rekey(*self._args(), list_id, old, new, epoch), new)
