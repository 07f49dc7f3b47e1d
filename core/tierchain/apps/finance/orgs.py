"""Organizations, their keys and roles, and committee votes.

* An organization (``fo/<org id>``) has roles (bits of the roles mask, ``codes.ROLES``) and
  one or more keys; each key (``fk/<public key>``) points at its organization.
  Assets are held by organizations, not keys, so rotating a key moves nothing.
* Every finance op starts with ``member(ctx, roles)``: the sender key must be a
  known, unrevoked key of an active organization with one of ``roles``
  (``NOT_A_MEMBER``, ``KEY_REVOKED``, ``ORG_INACTIVE``, ``ROLE_MISSING``).
* Admission and role changes are committee proposals: accounts with the
  ``committee`` account role propose and vote; the vote that reaches
  ``Params.threshold`` executes the action in the same transaction. Every
  propose and vote tx declares the keys the action would write, so the
  executing vote needs no second transaction.
* Key management is the organization's own business: any active key of an
  organization may add a key, revoke one of its other keys, or rotate itself
  (add a new key and revoke the signing key in one tx).
"""

from __future__ import annotations

import dataclasses
import functools
import struct
from collections.abc import Iterable

from tierchain.apps import accounts
from tierchain.apps.finance import codes as c
from tierchain.apps.finance.codes import FinanceReject
from tierchain.crypto import ED25519_BLAKE3, CryptoSuite
from tierchain.crypto import confidential as conf
from tierchain.crypto.keys import is_strong_public_key as is_strong_ed25519_key
from tierchain.engine import apps
from tierchain.engine.execute import OpFailed, TxContext
from tierchain.errors import Reject
from tierchain.wire import tx

# The roles finance checks: the accounts app's (committee) and its own. An organization's
# roles may be any role of the chain's apps (``TxContext.apps.role_mask``).
ROLE_BITS = {**accounts.ROLE_BITS, **{r.name: 1 << r.bit for r in c.ROLES}}
ORG_ACTIVE = 1
OPS = apps.OpTable()  # this module's ops (tierchain.apps.finance.app)


def role_bits(*roles: str) -> int:
    return sum(ROLE_BITS[role] for role in set(roles))


# --- the check every finance op makes ------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MemberCodes:
    """What an app refuses a sender with when the membership check fails: a handler refuses
    only with its own app's codes (``AppSet.may_refuse``), so every app built on these
    organizations (finance, sharing) names its own four."""

    not_member: int  # the sender key belongs to no organization
    key_revoked: int
    org_inactive: int
    role_missing: int


FINANCE_MEMBER_CODES = MemberCodes(
    FinanceReject.NOT_A_MEMBER,
    FinanceReject.KEY_REVOKED,
    FinanceReject.ORG_INACTIVE,
    FinanceReject.ROLE_MISSING,
)


def check_member(ctx: TxContext, roles: int, codes: MemberCodes) -> tuple[bytes, c.OrgRecord]:
    """The sender's organization id and record: the sender key must be an active key of an
    active organization holding one of ``roles`` (0: any role); else a refusal of ``codes``."""
    raw = ctx.get(c.key_key(ctx.sender))
    if raw is None:
        raise OpFailed(codes.not_member)
    key = c.KeyRecord.decode(raw)
    if key.status != c.KeyStatus.ACTIVE:
        raise OpFailed(codes.key_revoked)
    org = load_org(ctx, key.org)
    if org is None or org.status != ORG_ACTIVE:
        raise OpFailed(codes.org_inactive)
    if roles and not org.roles & roles:
        raise OpFailed(codes.role_missing)
    return key.org, org


def member(ctx: TxContext, roles: int = 0) -> tuple[bytes, c.OrgRecord]:
    """The sender's organization id and record; ``roles`` = 0 accepts any role."""
    return check_member(ctx, roles, FINANCE_MEMBER_CODES)


def is_active_key_of(ctx: TxContext, org_id: bytes, public_key: bytes) -> bool:
    """Whether ``public_key`` is an active key of organization ``org_id`` (a recipient)."""
    raw = ctx.get(c.key_key(public_key))
    if raw is None:
        return False
    key = c.KeyRecord.decode(raw)
    return key.org == org_id and key.status == c.KeyStatus.ACTIVE


def load_org(ctx: TxContext, org_id: bytes) -> c.OrgRecord | None:
    raw = ctx.get(c.org_key(org_id))
    return None if raw is None else c.OrgRecord.decode(raw)


def active_org_with(ctx: TxContext, org_id: bytes, roles: int) -> c.OrgRecord:
    """A counterparty that must exist, be active, and hold one of ``roles``."""
    org = load_org(ctx, org_id)
    if org is None:
        raise OpFailed(FinanceReject.NO_SUCH_ORG)
    if org.status != ORG_ACTIVE or (roles and not org.roles & roles):
        raise OpFailed(FinanceReject.BAD_COUNTERPARTY)
    return org


def params(ctx: TxContext) -> c.Params:
    return c.Params.decode(ctx.get(c.PARAMS_KEY))


# --- committee proposals -----------------------------------------------------------------

_ADMIT = struct.Struct("<I32sB")  # roles, first key, name length; then the name
_SET_ROLES = struct.Struct("<16sI")
_SET_VALIDATOR = struct.Struct("<32sQ")  # public key, voting power
_PROPOSE_HEAD = struct.Struct("<B")


def admit_body(
    name: str, roles: tuple[str, ...], first_key: bytes, app_set: apps.AppSet | None = None
) -> bytes:
    """Admit organization ``name`` with ``roles``, named by ``app_set``'s roles (the chain's:
    ``app_set_for``; default: the built-in default set's) and its first key."""
    raw = name.encode()
    if not 1 <= len(raw) <= c.org_name_bytes_max:
        raise ValueError(f"organization name of 1..{c.org_name_bytes_max} bytes")
    return _ADMIT.pack(accounts.roles_mask(roles, app_set), first_key, len(raw)) + raw


def set_roles_body(org_id: bytes, roles: tuple[str, ...], app_set: apps.AppSet | None = None) -> bytes:
    """Replace organization ``org_id``'s roles with ``roles`` (named as for ``admit_body``)."""
    return _SET_ROLES.pack(org_id, accounts.roles_mask(roles, app_set))


def app_set_for(roles: Iterable[str], known: apps.AppSet | None = None) -> apps.AppSet:
    """The app set a proposal names ``roles`` by: ``known`` (the chain's, when the client has
    it: an embedded chain's ``apps``) if it declares them all; else the built-in default set
    and, after it, each other built-in app declaring one of ``roles`` (a node does not say
    which apps it runs: an ``abs`` role brings in the abs app). A role no app declares is
    left for ``AppSet.roles_mask`` to refuse."""
    roles = tuple(roles)
    if known is not None and all(r in known.role_bits for r in roles):
        return known
    base = apps.default_set()
    owners = _builtin_role_owners()
    extra = [owners[r] for r in roles if r not in base.role_bits and r in owners]
    return apps.resolve(base.names + tuple(dict.fromkeys(extra))) if extra else base


@functools.cache
def _builtin_role_owners() -> dict[str, str]:
    """Role name -> the first built-in app declaring it."""
    owners: dict[str, str] = {}
    for name in apps.BUILTIN_APPS:
        try:
            app = apps.find(name)
        except apps.AppError:  # a built-in that does not load here declares nothing
            continue
        for role in app.roles:
            owners.setdefault(role.name, name)
    return owners


def set_validator_body(public_key: bytes, power: int) -> bytes:
    """Give the consensus validator ``public_key`` (Ed25519) ``power`` votes; 0 removes it."""
    if len(public_key) != 32 or not 0 <= power <= apps.validator_power_max:
        raise ValueError(f"a 32-byte key and a power in 0..{apps.validator_power_max}")
    return _SET_VALIDATOR.pack(public_key, power)


def set_regulator_key_body(elgamal_public: bytes) -> bytes:
    """Make ``elgamal_public`` the regulator's key every confidential amount is encrypted to."""
    if len(elgamal_public) != 32:
        raise ValueError("an ElGamal public key is 32 bytes")
    return elgamal_public


def _parse_regulator_key(body: bytes) -> bytes:
    if len(body) != 32 or body == bytes(32) or conf.commitment_sum([body]) is None:
        raise OpFailed(Reject.BAD_PAYLOAD, "regulator key: a ristretto255 point other than the identity")
    return body


def _parse_validator(body: bytes) -> tuple[bytes, int]:
    if len(body) != _SET_VALIDATOR.size:
        raise OpFailed(Reject.BAD_PAYLOAD, "set validator body")
    key, power = _SET_VALIDATOR.unpack(body)
    if power > apps.validator_power_max:
        raise OpFailed(Reject.BAD_PAYLOAD, "validator power")
    # A CometBFT validator's consensus key is Ed25519 whatever the chain's suite
    # (docs/national-crypto.md, "Replication").
    if not is_strong_ed25519_key(key):
        raise OpFailed(Reject.WEAK_KEY)
    return key, power


def _known_roles(role_mask: int | None) -> int:
    """``role_mask`` (the executing chain's roles), or the built-in apps' for a client."""
    return apps.default_set().role_mask if role_mask is None else role_mask


def _parse_admit(body: bytes, role_mask: int | None = None) -> tuple[int, bytes, bytes]:
    if len(body) < _ADMIT.size:
        raise OpFailed(Reject.BAD_PAYLOAD, "admit body")
    roles, key, n = _ADMIT.unpack_from(body)
    name = body[_ADMIT.size :]
    if len(name) != n or not 1 <= n <= c.org_name_bytes_max or roles & ~_known_roles(role_mask):
        raise OpFailed(Reject.BAD_PAYLOAD, "admit name or roles")
    return roles, key, name


def action_writes(
    action: int, body: bytes, role_mask: int | None = None, *, suite: CryptoSuite = ED25519_BLAKE3
) -> tuple[bytes, ...]:
    """The keys an action writes when it executes (client and handler agree on this);
    ``role_mask``: the roles an organization may have (default: the built-in apps');
    ``suite``: the chain's (an admitted organization's id is its hash)."""
    if action == c.Action.ADMIT_ORG:
        _, key, name = _parse_admit(body, role_mask)
        return (c.org_key(c.org_id(name, suite=suite)), c.key_key(key))
    if action == c.Action.SET_ROLES:
        if len(body) != _SET_ROLES.size:
            raise OpFailed(Reject.BAD_PAYLOAD, "set roles body")
        return (c.org_key(body[:16]),)
    if action == c.Action.SET_PARAMS:
        return (c.PARAMS_KEY,)
    if action == c.Action.SET_VALIDATOR:
        return (c.validator_key(_parse_validator(body)[0]),)
    if action == c.Action.SET_REGULATOR_KEY:
        _parse_regulator_key(body)
        return (c.REGULATOR_KEY,)
    raise OpFailed(Reject.BAD_PAYLOAD, f"unknown action {action}")


def _execute(ctx: TxContext, action: int, body: bytes) -> None:
    if action == c.Action.ADMIT_ORG:
        roles, key, name = _parse_admit(body, ctx.apps.role_mask)
        if not ctx.suite.is_strong_public_key(key):
            raise OpFailed(Reject.WEAK_KEY)
        oid = c.org_id(name, suite=ctx.suite)
        if ctx.get(c.org_key(oid)) is not None:
            raise OpFailed(FinanceReject.ORG_EXISTS)
        if ctx.get(c.key_key(key)) is not None:
            raise OpFailed(FinanceReject.KEY_IN_USE)
        ctx.put(c.org_key(oid), c.OrgRecord(roles, ORG_ACTIVE, 1, ctx.height, name).encode())
        ctx.put(c.key_key(key), c.KeyRecord(oid, c.KeyStatus.ACTIVE, ctx.height).encode())
        ctx.emit(b"fin.org.admitted", oid)
    elif action == c.Action.SET_ROLES:
        oid, roles = _SET_ROLES.unpack(body)
        if roles & ~ctx.apps.role_mask:
            raise OpFailed(Reject.BAD_PAYLOAD, "unknown role bits")
        org = load_org(ctx, oid)
        if org is None:
            raise OpFailed(FinanceReject.NO_SUCH_ORG)
        ctx.put(
            c.org_key(oid),
            c.OrgRecord(roles, org.status, org.keys_active, org.admitted_height, org.name).encode(),
        )
        ctx.emit(b"fin.org.roles", oid + roles.to_bytes(4, "little"))
    elif action == c.Action.SET_PARAMS:
        try:
            p = c.Params.decode(body)
        except c.RecordError as exc:
            raise OpFailed(Reject.BAD_PAYLOAD, "params body") from exc
        if not p.valid():
            raise OpFailed(Reject.BAD_PAYLOAD, "params out of range")
        ctx.put(c.PARAMS_KEY, p.encode())
        ctx.emit(b"fin.params", body)
    elif action == c.Action.SET_VALIDATOR:
        key, power = _parse_validator(body)
        if power:
            ctx.put(c.validator_key(key), power.to_bytes(8, "little"))
        else:
            ctx.delete(c.validator_key(key))
        ctx.emit(apps.VALIDATOR_UPDATE_TOPIC, body)  # tierchain.replication makes it a validator update
    elif action == c.Action.SET_REGULATOR_KEY:
        ctx.put(c.REGULATOR_KEY, _parse_regulator_key(body))
        ctx.emit(b"fin.regulator_key", body)


def _committee(ctx: TxContext) -> None:
    raw = ctx.get(accounts.account_key(ctx.sender))
    if raw is None or not int.from_bytes(raw[:4], "little") & ROLE_BITS["committee"]:
        raise OpFailed(FinanceReject.NOT_COMMITTEE)


def _params_for_vote(ctx: TxContext, action: int) -> c.Params:
    # SET_PARAMS declares fp/params as a write; others as a read: either way readable.
    return params(ctx)


def _tally(ctx: TxContext, pid: bytes, prop: c.Proposal) -> None:
    threshold = _params_for_vote(ctx, prop.action).threshold
    executed = len(prop.voters) >= threshold
    if executed:
        _execute(ctx, prop.action, prop.body)
    ctx.put(
        c.proposal_key(pid),
        c.Proposal(prop.action, executed, prop.created_height, prop.voters, prop.body).encode(),
    )
    ctx.emit(b"fin.vote", pid + bytes((len(prop.voters), executed)))


@OPS.op(c.OP_PROPOSE, "fin.propose")
def _propose(ctx: TxContext) -> None:
    _committee(ctx)
    if len(ctx.payload) < 1:
        raise OpFailed(Reject.BAD_PAYLOAD)
    action, body = ctx.payload[0], ctx.payload[1:]
    action_writes(action, body, ctx.apps.role_mask, suite=ctx.suite)  # validates the body
    pid = c.object_id(ctx.sender, ctx.nonce, suite=ctx.suite)
    _tally(ctx, pid, c.Proposal(action, False, ctx.height, (ctx.sender,), body))


@OPS.op(c.OP_VOTE, "fin.vote")
def _vote(ctx: TxContext) -> None:
    _committee(ctx)
    if len(ctx.payload) != c.id_bytes:
        raise OpFailed(Reject.BAD_PAYLOAD)
    pid = ctx.payload
    raw = ctx.get(c.proposal_key(pid))
    if raw is None:
        raise OpFailed(FinanceReject.NO_SUCH_PROPOSAL)
    prop = c.Proposal.decode(raw)
    if prop.executed:
        raise OpFailed(FinanceReject.PROPOSAL_CLOSED)
    if ctx.sender in prop.voters:
        raise OpFailed(FinanceReject.ALREADY_VOTED)
    if len(prop.voters) >= c.votes_max:
        raise OpFailed(Reject.BAD_PAYLOAD, "too many votes")
    _tally(
        ctx, pid, c.Proposal(prop.action, False, prop.created_height, (*prop.voters, ctx.sender), prop.body)
    )


# --- keys ------------------------------------------------------------------------------------


def _add_key(ctx: TxContext, oid: bytes, org: c.OrgRecord, new_key: bytes, delta: int) -> None:
    if not ctx.suite.is_strong_public_key(new_key):
        raise OpFailed(Reject.WEAK_KEY)
    if ctx.get(c.key_key(new_key)) is not None:
        raise OpFailed(FinanceReject.KEY_IN_USE)
    ctx.put(c.key_key(new_key), c.KeyRecord(oid, c.KeyStatus.ACTIVE, ctx.height).encode())
    ctx.put(
        c.org_key(oid),
        c.OrgRecord(org.roles, org.status, org.keys_active + delta, org.admitted_height, org.name).encode(),
    )


def _revoke(ctx: TxContext, oid: bytes, key: bytes) -> None:
    raw = ctx.get(c.key_key(key))
    rec = None if raw is None else c.KeyRecord.decode(raw)
    if rec is None or rec.org != oid or rec.status != c.KeyStatus.ACTIVE:
        raise OpFailed(FinanceReject.NO_SUCH_KEY)
    ctx.put(c.key_key(key), c.KeyRecord(oid, c.KeyStatus.REVOKED, rec.added_height, ctx.height).encode())


@OPS.op(c.OP_KEY_ADD, "fin.key_add")
def _key_add(ctx: TxContext) -> None:
    oid, org = member(ctx)
    if len(ctx.payload) != 32:
        raise OpFailed(Reject.BAD_PAYLOAD)
    _add_key(ctx, oid, org, ctx.payload, +1)
    ctx.emit(b"fin.key.added", oid + ctx.payload)


@OPS.op(c.OP_KEY_REVOKE, "fin.key_revoke")
def _key_revoke(ctx: TxContext) -> None:
    oid, org = member(ctx)
    if len(ctx.payload) != 32:
        raise OpFailed(Reject.BAD_PAYLOAD)
    if org.keys_active <= 1:
        raise OpFailed(FinanceReject.LAST_KEY)
    _revoke(ctx, oid, ctx.payload)
    ctx.put(
        c.org_key(oid),
        c.OrgRecord(org.roles, org.status, org.keys_active - 1, org.admitted_height, org.name).encode(),
    )
    ctx.emit(b"fin.key.revoked", oid + ctx.payload)


@OPS.op(c.OP_KEY_ROTATE, "fin.key_rotate")
def _key_rotate(ctx: TxContext) -> None:
    oid, org = member(ctx)
    if len(ctx.payload) != 32:
        raise OpFailed(Reject.BAD_PAYLOAD)
    _add_key(ctx, oid, org, ctx.payload, 0)
    _revoke(ctx, oid, ctx.sender)
    ctx.emit(b"fin.key.rotated", oid + ctx.sender + ctx.payload)


# --- client-side builders ------------------------------------------------------------------


def member_reads(sender: bytes, org: bytes) -> set[bytes]:
    """What ``member`` reads: every finance op declares these (org: the sender's organization)."""
    return {c.key_key(sender), c.org_key(org)}


make_tx = tx.unsigned  # the finance builders' name for it


def propose(
    chain_id: int,
    sender: bytes,
    nonce: int,
    action: int,
    body: bytes,
    *,
    suite: CryptoSuite = ED25519_BLAKE3,
    role_mask: int | None = None,
) -> tx.Tx:
    """``role_mask``: the roles an admitted organization may have (``action_writes``)."""
    pid = c.object_id(sender, nonce, suite=suite)
    writes = {c.proposal_key(pid), *action_writes(action, body, role_mask, suite=suite)}
    reads = {accounts.account_key(sender), c.PARAMS_KEY}
    return make_tx(chain_id, c.OP_PROPOSE, sender, nonce, reads, writes, bytes((action,)) + body)


def vote(
    chain_id: int,
    sender: bytes,
    nonce: int,
    proposal_id: bytes,
    proposal: c.Proposal,
    *,
    suite: CryptoSuite = ED25519_BLAKE3,
    role_mask: int | None = None,
) -> tx.Tx:
    """``role_mask``: as for ``propose``."""
    writes = {
        c.proposal_key(proposal_id),
        *action_writes(proposal.action, proposal.body, role_mask, suite=suite),
    }
    reads = {accounts.account_key(sender), c.PARAMS_KEY}
    return make_tx(chain_id, c.OP_VOTE, sender, nonce, reads, writes, proposal_id)


def key_add(chain_id: int, sender: bytes, org: bytes, nonce: int, new_key: bytes) -> tx.Tx:
    return make_tx(
        chain_id,
        c.OP_KEY_ADD,
        sender,
        nonce,
        {c.key_key(sender)},
        {c.org_key(org), c.key_key(new_key)},
        new_key,
    )


def key_revoke(chain_id: int, sender: bytes, org: bytes, nonce: int, key: bytes) -> tx.Tx:
    return make_tx(
        chain_id, c.OP_KEY_REVOKE, sender, nonce, {c.key_key(sender)}, {c.org_key(org), c.key_key(key)}, key
    )


def key_rotate(chain_id: int, sender: bytes, org: bytes, nonce: int, new_key: bytes) -> tx.Tx:
    writes = {c.org_key(org), c.key_key(sender), c.key_key(new_key)}
    return make_tx(chain_id, c.OP_KEY_ROTATE, sender, nonce, set(), writes, new_key)
