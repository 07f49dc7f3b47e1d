"""``Abs``: the high-level API of ABS pools. It derives every declared key.

::

    abs_ = Abs(chain)                         # an embedded Chain, a NodeClient, or a ledger
    orig, serv, trust = abs_.party(orig_keys), abs_.party(serv_keys), abs_.party(trust_keys)
    aid = orig.register(AssetKind.LOAN, 120_000_00, 899, start_ms, 36, 1, servicer=serv.org,
                        contract_fp=..., obligor_fp=...).check().id
    serv.repay(aid, installment=1, principal=3_000_00, interest=899_00, value_ms=...).check()
    pid = orig.create_pool(criteria, "AUTO 2026-1").check().id
    orig.select(pid, [aid, ...])              # batches of codes.select_per_tx_max
    orig.close(pid).check(); orig.transfer(pid, trust.org).check(); trust.accept(pid).check()
    abs_.stats(pid)                           # stats.PoolStats, exact
    abs_.penetration(pid)                     # every asset of the pool with its cash flows

Each op method signs one transaction, sends it and waits for its receipt (``timeout_s``); a
``Result`` (the sharing app's) carries the code as a named member: ``codes.AbsReject``,
finance's ``FinanceReject`` (membership, counterparties) or the engine's ``Reject``. A
party's keys must be of the ledger's crypto suite (finance's ``SuiteMismatch`` otherwise).
Committee proposals (``propose_admit``, ``propose_roles``) are finance's, their roles named
by the chain's app set (``orgs.app_set_for``).

Reads are public: any party with the ledger reads every asset and event (see
``penetration``). The chain cannot gate reads by role; what an originator must keep
confidential (the loan file, the obligor's identity) it keeps in the sharing app's
encrypted asset files (``Asset.file_id``), released to the trustee, investors and rating
agencies by grant, and as keyed fingerprints here.
"""

from __future__ import annotations

from typing import Any

from tierchain.apps import accounts
from tierchain.apps.abs import assets, pools, stats
from tierchain.apps.abs import codes as c
from tierchain.apps.abs.codes import Asset, AssetKind, Criteria, Event, EventKind, Member, Pool
from tierchain.apps.finance import codes as fc
from tierchain.apps.finance import orgs
from tierchain.apps.finance.client import ledger_apps
from tierchain.apps.sharing.ledger import Ledger, Result, check_suite, ledger_of, scan_all, send_signed
from tierchain.crypto import CryptoSuite, KeyPair
from tierchain.wire import tx as txcodec

__all__ = ["Abs", "AbsParty", "Result", "roles_mask"]


def roles_mask(roles: tuple[str, ...] | list[str]) -> int:
    """The roles mask of role names of the built-in apps (the abs app's two included)."""
    return accounts.roles_mask(roles, orgs.app_set_for(roles))


def _stats_of(rows: list[tuple[bytes, Asset, Member]]) -> stats.PoolStats:
    """``stats.pool_stats`` of a pool's member rows (``Abs.pool_assets``)."""
    return stats.pool_stats([a for _, a, _ in rows], [m.cutoff_balance for _, _, m in rows])


class Abs:
    """Queries and parties over one ledger."""

    def __init__(self, ledger: Any, timeout_s: float = 30.0) -> None:
        self.ledger: Ledger = ledger_of(ledger)
        self.timeout_s = timeout_s

    @property
    def suite(self) -> CryptoSuite:
        return self.ledger.suite

    def party(self, keys: KeyPair) -> AbsParty:
        """``keys`` acting on this ledger; ``SuiteMismatch`` if they are another suite's keys."""
        check_suite(self.ledger, keys)
        return AbsParty(self, keys)

    # --- ids --------------------------------------------------------------------------------
    def org_id(self, name: str | bytes) -> bytes:
        return fc.org_id(name, suite=self.suite)

    def fingerprint(self, key: bytes, reference: str | bytes) -> bytes:
        """The keyed fingerprint of a contract or obligor reference (``codes.reference_fingerprint``)."""
        return c.reference_fingerprint(key, reference, suite=self.suite)

    # --- queries ----------------------------------------------------------------------------
    def get(self, key: bytes) -> bytes | None:
        return self.ledger.state_get(key)

    def org_of(self, public_key: bytes) -> bytes | None:
        raw = self.get(fc.key_key(public_key))
        return None if raw is None else fc.KeyRecord.decode(raw).org

    def org_name(self, org_id: bytes) -> str:
        raw = self.get(fc.org_key(org_id))
        return "" if raw is None else fc.OrgRecord.decode(raw).name.decode(errors="replace")

    def asset(self, asset_id: bytes) -> Asset | None:
        raw = self.get(c.asset_key(asset_id))
        return None if raw is None else Asset.decode(raw)

    def events(self, asset_id: bytes) -> list[Event]:
        """Every cash-flow event of an asset, in order."""
        return [Event.decode(v) for _, v in scan_all(self.ledger, c.events_prefix(asset_id))]

    def pool(self, pool_id: bytes) -> Pool | None:
        raw = self.get(c.pool_key(pool_id))
        return None if raw is None else Pool.decode(raw)

    def members(self, pool_id: bytes) -> list[tuple[bytes, Member]]:
        """The pool's assets (asset id, member record), in asset-id order."""
        prefix = c.members_prefix(pool_id)
        return [(k[len(prefix) :], Member.decode(v)) for k, v in scan_all(self.ledger, prefix)]

    def pool_assets(self, pool_id: bytes) -> list[tuple[bytes, Asset, Member]]:
        out = []
        for aid, member in self.members(pool_id):
            a = self.asset(aid)
            if a is not None:
                out.append((aid, a, member))
        return out

    def assets_of(self, org_id: bytes) -> list[tuple[bytes, Asset]]:
        """Every asset an originator registered."""
        rows = scan_all(self.ledger, c.book_prefix(org_id, b"A"))
        return [(k[-c.id_bytes :], a) for k, v in rows if (a := Asset.decode(v)).originator == org_id]

    def pools_of(self, org_id: bytes) -> list[tuple[bytes, Pool]]:
        rows = scan_all(self.ledger, c.book_prefix(org_id, b"P"))
        return [(k[-c.id_bytes :], p) for k, v in rows if (p := Pool.decode(v)).originator == org_id]

    def stats(self, pool_id: bytes) -> stats.PoolStats:
        return _stats_of(self.pool_assets(pool_id))

    def pool_head(self, pool_id: bytes) -> tuple[dict, list[tuple[bytes, Asset, Member]]] | None:
        """``{"pool": pool_json, "stats": its statistics}`` and the pool's member rows (what
        ``penetration`` and the ``abs.pool`` view start from); None for an unknown pool."""
        pool = self.pool(pool_id)
        if pool is None:
            return None
        rows = self.pool_assets(pool_id)
        return {"pool": self.pool_json(pool_id, pool), "stats": _stats_of(rows).to_json()}, rows

    def performance(self, pool_id: bytes) -> list[stats.Period]:
        return stats.performance([(a, self.events(aid)) for aid, a, _ in self.pool_assets(pool_id)])

    def penetration(self, pool_id: bytes) -> dict:
        """The pool down to every asset and every cash flow, as JSON-able values: what the
        trustee, investors and rating agencies check a servicing report against."""
        found = self.pool_head(pool_id)
        if found is None:
            raise KeyError(f"no pool {pool_id.hex()}")
        head, rows = found
        return {
            **head,
            "assets": [
                {**self.asset_json(aid, a), "cutoff_balance": m.cutoff_balance, "selected_height": m.height,
                 "events": [event_json(i, e) for i, e in enumerate(self.events(aid))]}
                for aid, a, m in rows
            ],
        }  # fmt: skip

    def pool_json(self, pool_id: bytes, pool: Pool) -> dict:
        cr = pool.criteria
        return {
            "id": pool_id.hex(),
            "name": pool.name.decode(errors="replace"),
            "originator": pool.originator.hex(),
            "originator_name": self.org_name(pool.originator),
            "trustee": pool.trustee.hex() if pool.trustee != c.ZERO_ID else None,
            "trustee_name": self.org_name(pool.trustee) if pool.trustee != c.ZERO_ID else None,
            "status": c.PoolStatus(pool.status).name,
            "assets": pool.assets,
            "cutoff_balance": pool.cutoff_balance,
            "created_height": pool.created_height,
            "created_ms": pool.created_ms,
            "closed_ms": pool.closed_ms or None,
            "trust_ms": pool.trust_ms or None,
            "criteria": {
                "max_principal": cr.max_principal,
                "min_rate_bp": cr.min_rate_bp,
                "max_rate_bp": cr.max_rate_bp,
                "max_remaining_months": cr.max_remaining_months,
                "kinds": [k.name for k in AssetKind if cr.allows_kind(k)],
                "max_assets": cr.max_assets,
            },
        }

    def asset_json(self, asset_id: bytes, a: Asset) -> dict:
        return {
            "id": asset_id.hex(),
            "kind": AssetKind(a.kind).name,
            "originator": a.originator.hex(),
            "servicer": a.servicer.hex(),
            "servicer_name": self.org_name(a.servicer),
            "principal": a.principal,
            "rate_bp": a.rate_bp,
            "start_ms": a.start_ms,
            "term_months": a.term_months,
            "freq_months": a.freq_months,
            "installments": a.installments,
            "contract_fp": a.contract_fp.hex(),
            "obligor_fp": a.obligor_fp.hex(),
            "file_id": a.file_id.hex() if a.file_id != c.ZERO_ID else None,
            "registered_height": a.registered_height,
            "status": c.AssetStatus(a.status).name,
            "outstanding": a.outstanding,
            "repaid": a.repaid,
            "interest": a.interest,
            "charged_off": a.defaulted,
            "recovered": a.recovered,
            "loss": a.loss,
            "periods_paid": a.periods_paid,
            "remaining_months": a.remaining_months,
            "days_past_due": a.days_past_due,
            "events": a.events,
            "pool": a.pool.hex() if a.pool != c.ZERO_ID else None,
        }

    # --- committee: organizations with the abs roles -----------------------------------------
    def propose_admit(
        self, committee: KeyPair, name: str, roles: tuple[str, ...], first_key: bytes
    ) -> Result:
        """A committee member proposes admitting an organization whose roles may include
        ``originator`` and ``servicer`` (finance's proposal, named by the chain's app set)."""
        app_set = orgs.app_set_for(roles, ledger_apps(self.ledger))
        body = orgs.admit_body(name, roles, first_key, app_set)
        return self._propose(committee, fc.Action.ADMIT_ORG, body, app_set.role_mask)

    def propose_roles(self, committee: KeyPair, org_id: bytes, roles: tuple[str, ...]) -> Result:
        """A committee member proposes an organization's new roles (abs roles allowed)."""
        app_set = orgs.app_set_for(roles, ledger_apps(self.ledger))
        body = orgs.set_roles_body(org_id, roles, app_set)
        return self._propose(committee, fc.Action.SET_ROLES, body, app_set.role_mask)

    def _propose(self, committee: KeyPair, action: int, body: bytes, role_mask: int) -> Result:
        check_suite(self.ledger, committee)
        pk, nonce = committee.public_key, self.ledger.nonce(committee.public_key)
        t = orgs.propose(self.ledger.chain_id, pk, nonce, action, body, suite=self.suite, role_mask=role_mask)
        return send_signed(
            self.ledger, committee, t, self.timeout_s, id=fc.object_id(pk, nonce, suite=self.suite)
        )


def event_json(seq: int, e: Event) -> dict:
    return {
        "seq": seq,
        "kind": EventKind(e.kind).name,
        "value_ms": e.value_ms,
        "principal": e.principal,
        "interest": e.interest,
        "aux": e.aux,
        "outstanding_after": e.outstanding_after,
        "height": e.height,
        "tx_id": e.tx_id.hex(),
    }


class AbsParty:
    """One key acting for its organization (originator, servicer or trustee)."""

    def __init__(self, abs_: Abs, keys: KeyPair) -> None:
        self.abs, self.keys, self.pk = abs_, keys, keys.public_key

    @property
    def suite(self) -> CryptoSuite:
        return self.abs.suite

    @property
    def org(self) -> bytes:
        """The sender's organization (the zero id if the key is unknown: ops then fail with
        finance's NOT_A_MEMBER)."""
        return self.abs.org_of(self.pk) or fc.ZERO_ID

    def _args(self) -> tuple[int, bytes, bytes, int]:
        return self.abs.ledger.chain_id, self.pk, self.org, self.abs.ledger.nonce(self.pk)

    def send(self, t: txcodec.Tx, **extra: Any) -> Result:
        return send_signed(self.abs.ledger, self.keys, t, self.abs.timeout_s, **extra)

    # --- originator: assets --------------------------------------------------------------------
    def register(
        self,
        kind: int,
        principal: int,
        rate_bp: int,
        start_ms: int,
        term_months: int,
        freq_months: int,
        *,
        servicer: bytes,
        contract_fp: bytes,
        obligor_fp: bytes,
        file_id: bytes = c.ZERO_ID,
    ) -> Result:
        """Register an underlying asset; ``Result.id`` is its id. ``servicer``: an org id;
        the fingerprints: ``Abs.fingerprint(originator's key, reference)``; ``file_id``: the
        sharing app's record id of its encrypted asset file."""
        t, aid = assets.register(
            *self._args(), kind, principal, rate_bp, start_ms, term_months, freq_months, servicer,
            contract_fp, obligor_fp, file_id, suite=self.suite,
        )  # fmt: skip
        return self.send(t, id=aid)

    def set_servicer(self, asset_ids: list[bytes], servicer: bytes) -> Result:
        """Appoint ``servicer`` (an org id) for assets of one pool (or of none): the pool is
        the first asset's."""
        first = self.abs.asset(asset_ids[0]) if asset_ids else None
        pool = first.pool if first is not None else c.ZERO_ID
        return self.send(assets.set_servicer(*self._args(), pool, servicer, list(asset_ids)), id=pool)

    # --- servicer: cash flows ------------------------------------------------------------------
    def event(
        self,
        asset_id: bytes,
        kind: int,
        value_ms: int,
        principal: int = 0,
        interest: int = 0,
        aux: int = 0,
        seq: int | None = None,
    ) -> Result:
        """Record one cash-flow event; ``seq`` defaults to the asset's next sequence number."""
        if seq is None:
            a = self.abs.asset(asset_id)
            seq = a.events if a is not None else 0
        t = assets.cashflow(*self._args(), asset_id, seq, kind, value_ms, principal, interest, aux)
        return self.send(t, id=asset_id)

    def repay(
        self, asset_id: bytes, installment: int, principal: int, interest: int, *, value_ms: int
    ) -> Result:
        return self.event(asset_id, EventKind.REPAYMENT, value_ms, principal, interest, installment)

    def prepay(self, asset_id: bytes, principal: int, interest: int = 0, *, value_ms: int) -> Result:
        return self.event(asset_id, EventKind.PREPAYMENT, value_ms, principal, interest)

    def overdue(self, asset_id: bytes, arrears: int, days_past_due: int, *, value_ms: int) -> Result:
        return self.event(asset_id, EventKind.OVERDUE, value_ms, arrears, 0, days_past_due)

    def default(self, asset_id: bytes, *, value_ms: int) -> Result:
        """Charge off the asset's whole outstanding principal (read from the chain)."""
        a = self.abs.asset(asset_id)
        return self.event(asset_id, EventKind.DEFAULT, value_ms, a.outstanding if a else 0)

    def recover(self, asset_id: bytes, amount: int, *, value_ms: int) -> Result:
        return self.event(asset_id, EventKind.RECOVERY, value_ms, amount)

    # --- originator: pools ------------------------------------------------------------------------
    def create_pool(self, criteria: Criteria, name: str) -> Result:
        t, pid = pools.create(*self._args(), criteria, name, suite=self.suite)
        return self.send(t, id=pid)

    def select(self, pool_id: bytes, asset_ids: list[bytes]) -> list[Result]:
        """Select assets into the pool in batches of ``select_per_tx_max`` (stops at a refusal)."""
        return self._batches(pools.select, pool_id, asset_ids)

    def remove(self, pool_id: bytes, asset_ids: list[bytes]) -> list[Result]:
        return self._batches(pools.remove, pool_id, asset_ids)

    def _batches(self, build: Any, pool_id: bytes, asset_ids: list[bytes]) -> list[Result]:
        results = []
        step = c.select_per_tx_max
        for i in range(0, max(len(asset_ids), 1), step):
            r = self.send(build(*self._args(), pool_id, asset_ids[i : i + step]), id=pool_id)
            results.append(r)
            if not r.ok:
                break
        return results

    def close(self, pool_id: bytes) -> Result:
        return self.send(pools.close(*self._args(), pool_id), id=pool_id)

    def transfer(self, pool_id: bytes, trustee: bytes) -> Result:
        """Offer the closed pool to ``trustee`` (an org id with the trustee role)."""
        return self.send(pools.transfer(*self._args(), pool_id, trustee), id=pool_id)

    # --- trustee ---------------------------------------------------------------------------------
    def accept(self, pool_id: bytes) -> Result:
        return self.send(pools.accept(*self._args(), pool_id), id=pool_id)
