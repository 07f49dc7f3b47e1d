"""Who may act: the finance app's organizations, checked with the sharing app's codes.

A handler may refuse only with the engine's codes or its own app's
(``AppSet.may_refuse``), so the sharing ops check membership here and answer with
``SharingReject`` codes that mirror finance's (``SENDER_NOT_MEMBER``,
``SENDER_KEY_REVOKED``, ``SENDER_ROLE_MISSING``, ``SENDER_ORG_INACTIVE``: an app set names
each code once).
"""

from __future__ import annotations

from tierchain.apps import accounts
from tierchain.apps.finance import codes as fc
from tierchain.apps.finance import orgs
from tierchain.apps.finance.orgs import ORG_ACTIVE, role_bits
from tierchain.apps.sharing.codes import SharingReject
from tierchain.engine.execute import OpFailed, TxContext

__all__ = ["ORG_ACTIVE", "active_org", "committee", "member", "member_reads", "recipient", "role_bits"]


_CODES = orgs.MemberCodes(
    SharingReject.SENDER_NOT_MEMBER,
    SharingReject.SENDER_KEY_REVOKED,
    SharingReject.SENDER_ORG_INACTIVE,
    SharingReject.SENDER_ROLE_MISSING,
)


def member(ctx: TxContext, roles: int = 0) -> tuple[bytes, fc.OrgRecord]:
    """The sender's organization id and record (``roles`` = 0: any role)."""
    return orgs.check_member(ctx, roles, _CODES)


def active_org(ctx: TxContext, org_id: bytes) -> fc.OrgRecord:
    """A counterparty organization that exists and is active."""
    raw = ctx.get(fc.org_key(org_id))
    if raw is None:
        raise OpFailed(SharingReject.UNKNOWN_ORG)
    org = fc.OrgRecord.decode(raw)
    if org.status != ORG_ACTIVE:
        raise OpFailed(SharingReject.BAD_GRANTEE)
    return org


def recipient(ctx: TxContext, org_id: bytes, public_key: bytes) -> None:
    """``public_key`` must be an active key of ``org_id``: what a key is sealed to."""
    if not orgs.is_active_key_of(ctx, org_id, public_key):
        raise OpFailed(SharingReject.BAD_RECIPIENT_KEY)


def committee(ctx: TxContext) -> None:
    raw = ctx.get(accounts.account_key(ctx.sender))
    if raw is None or not int.from_bytes(raw[:4], "little") & role_bits("committee"):
        raise OpFailed(SharingReject.VOTER_NOT_COMMITTEE)


def member_reads(sender: bytes, org: bytes) -> set[bytes]:
    """What ``member`` reads: every sharing op by an organization declares these."""
    return {fc.key_key(sender), fc.org_key(org)}
