"""``Finance``: the high-level API. It derives every declared key for the caller.

Each method looks up, in committed state, whatever decides a transaction's key
set (the sender's organization, a piece's voucher, an offer's kind, the
voucher's registry fingerprint, the next clearing batch), calls the pure
builder in ``orgs`` / ``evidence`` / ``voucher`` / ``registry``, signs, submits
and waits for the receipt. Nobody lists keys by hand.

It runs against an embedded ``Chain`` or a node over HTTP (``RemoteLedger``)::

    fin = Finance(chain, consortium_secret)
    core = fin.party(core_keys)
    r = core.confirm(beneficiary=fin.org_id("Tier1 Ltd"), face=1_000_000, maturity_ms=..., docs=[...])
    r.ok, r.code, r.id      # r.id: the new voucher (and its root piece)

Methods send one transaction and wait for it (``timeout_s``); a ``Result``
carries the code (admission or execution: an engine ``Reject`` or the app's own
``codes.FinanceReject``) and any ids created.

Crypto suites (docs/national-crypto.md): ``Finance.suite`` is the ledger's (an embedded
chain's ``suite``, a node's ``/v1/head`` "suite", the default suite for a ledger that
names none). A party's keys must be of that suite (``fin.party`` refuses others with
``SuiteMismatch``, naming both); tx ids are the suite's, and so is every finance id and
digest the client computes (organization, proposal, voucher and piece ids, document
fingerprints, registry blinding: ``codes``/``registry`` functions given ``suite=``).
Confidential amounts seal each opening to its recipient's key the chain's suite's way
(``camount.seal``: an X25519 sealed box to an Ed25519 key, or SM2 encryption to an SM2
key), and a party opens what was sealed to its own key pair (``camount.unseal``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any, Protocol

from tierchain.apps.finance import (
    camount,
    claims,
    confidential,
    cregistry,
    evidence,
    lineage,
    orgs,
    registry,
    voucher,
)
from tierchain.apps.finance import codes as c
from tierchain.crypto import DEFAULT_SUITE_NAME, ED25519_BLAKE3, CryptoSuite, KeyPair, suite_for
from tierchain.engine import apps
from tierchain.errors import Reject, RejectedError, TierChainError
from tierchain.wire import tx as txcodec


class SuiteMismatch(TierChainError):
    """A key of one crypto suite used with a ledger of another (the message names both)."""


class Ledger(Protocol):
    chain_id: int
    # Optional: the ledger's crypto suite (Finance.suite; the default suite when absent).

    def state_get(self, key: bytes) -> bytes | None: ...
    def nonce(self, public_key: bytes) -> int: ...
    def send(self, tx: bytes, timeout_s: float) -> tuple[c.Code, Any]: ...


class EmbeddedLedger:
    def __init__(self, chain: Any) -> None:
        self.chain, self.chain_id = chain, chain.config.chain_id
        self.suite: CryptoSuite = getattr(chain, "suite", ED25519_BLAKE3)

    def state_get(self, key: bytes) -> bytes | None:
        return self.chain.state_get(key)

    def nonce(self, public_key: bytes) -> int:
        return self.chain.nonce(public_key)

    def send(self, tx: bytes, timeout_s: float) -> tuple[c.Code, Any]:
        sub = self.chain.submit([tx])
        if sub.codes[0]:
            return c.reject_of(int(sub.codes[0])), None
        receipt = sub.wait(timeout_s)[0]
        return c.reject_of(receipt.code), receipt


class RemoteLedger:
    """A node's HTTP endpoint (``tierchain node run``) through ``tierchain.api.rpc.NodeClient``."""

    def __init__(self, client: Any, chain_id: int) -> None:
        self.client, self.chain_id = client, chain_id
        self._suite: CryptoSuite | None = None

    @property
    def suite(self) -> CryptoSuite:
        """The node's suite, asked once (``/v1/head``; a node that names none runs the default)."""
        if self._suite is None:
            self._suite = suite_for(self.client.head().get("suite", DEFAULT_SUITE_NAME))
        return self._suite

    def state_get(self, key: bytes) -> bytes | None:
        return self.client.state(key)

    def nonce(self, public_key: bytes) -> int:
        return self.client.nonce(public_key)

    def send(self, tx: bytes, timeout_s: float) -> tuple[c.Code, Any]:
        reply = self.client.submit(txcodec.frame([tx]), wait_s=timeout_s)
        if reply["codes"][0] != "OK":
            return c.reject_named(reply["codes"][0]), reply
        receipt = (reply.get("receipts") or [None])[0]
        if receipt is None:
            raise TimeoutError("the transaction was not committed in time")
        return c.reject_named(receipt["code"]), reply


ANY_ROLES = 0xFFFF_FFFF  # a roles mask (u32) that names every role bit


def ledger_apps(ledger: Any) -> apps.AppSet | None:
    """The app set of ``ledger``'s chain when the ledger knows it (its own ``app_set``, or an
    embedded chain's ``apps``); None for a node (its API does not say which apps it runs)."""
    found = getattr(ledger, "app_set", None) or getattr(getattr(ledger, "chain", None), "apps", None)
    return found if isinstance(found, apps.AppSet) else None


@dataclasses.dataclass
class Result:
    code: c.Code  # an engine code or the finance app's; ``code.name`` is what the API shows
    tx_id: bytes
    receipt: Any = None
    id: bytes | None = None  # what the tx created (proposal, voucher)
    ids: list[bytes] = dataclasses.field(default_factory=list)  # split children
    # Confidential ops: the openings of the amounts the tx committed (id's, or ids' in order).
    openings: list[camount.Opening] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.code == Reject.OK

    def check(self) -> Result:
        if not self.ok:
            raise RejectedError(self.code)
        return self


class Finance:
    """Queries and parties over one ledger."""

    def __init__(self, ledger: Any, consortium_secret: bytes | None = None, timeout_s: float = 30.0) -> None:
        """``consortium_secret``: needed only to blind fingerprints (confirm, registry
        queries by asset); without it those raise ``registry.ConsortiumSecretError``."""
        self.ledger: Ledger = ledger if hasattr(ledger, "send") else EmbeddedLedger(ledger)
        self.secret, self.timeout_s = consortium_secret, timeout_s

    @property
    def suite(self) -> CryptoSuite:
        """The ledger's crypto suite: what its keys, signatures and tx ids are."""
        return getattr(self.ledger, "suite", ED25519_BLAKE3)

    @property
    def shard(self) -> int | None:
        """The ledger's shard when it is one shard of a cluster (its ``shard`` attribute):
        where records placed by shard go (a bank's financing record); None on a chain."""
        return getattr(self.ledger, "shard", None)

    def app_set_for(self, roles: Iterable[str]) -> apps.AppSet:
        """The app set whose roles ``roles`` are (``orgs.app_set_for``): the chain's, when the
        ledger knows it (``ledger_apps``) and it declares them all; else the built-in apps'."""
        return orgs.app_set_for(roles, ledger_apps(self.ledger))

    def party(self, keys: KeyPair) -> Party:
        """``keys`` acting on this ledger; ``SuiteMismatch`` if they are another suite's keys."""
        suite = self.suite
        if keys.suite_name != suite.name:
            raise SuiteMismatch(f"a {keys.suite_name} key cannot sign on a chain of the {suite.name} suite")
        return Party(self, keys)

    # --- queries ------------------------------------------------------------------
    def get(self, key: bytes) -> bytes | None:
        return self.ledger.state_get(key)

    def org_of(self, public_key: bytes) -> bytes | None:
        raw = self.get(c.key_key(public_key))
        return None if raw is None else c.KeyRecord.decode(raw).org

    def key(self, public_key: bytes) -> c.KeyRecord | None:
        raw = self.get(c.key_key(public_key))
        return None if raw is None else c.KeyRecord.decode(raw)

    def org(self, org_id: bytes) -> c.OrgRecord | None:
        raw = self.get(c.org_key(org_id))
        return None if raw is None else c.OrgRecord.decode(raw)

    def params(self) -> c.Params:
        return c.Params.decode(self.get(c.PARAMS_KEY))

    def proposal(self, proposal_id: bytes) -> c.Proposal | None:
        raw = self.get(c.proposal_key(proposal_id))
        return None if raw is None else c.Proposal.decode(raw)

    def document(self, doc_type: int, fingerprint: bytes) -> c.DocRecord | None:
        raw = self.get(c.doc_key(doc_type, fingerprint))
        return None if raw is None else c.DocRecord.decode(raw)

    def voucher(self, voucher_id: bytes) -> c.Voucher | None:
        raw = self.get(c.voucher_key(voucher_id))
        return None if raw is None else c.Voucher.decode(raw)

    def piece(self, piece_id: bytes) -> c.Piece | None:
        raw = self.get(c.piece_key(piece_id))
        return None if raw is None else c.Piece.decode(raw)

    def clearing(self, voucher_id: bytes, batch: int) -> list[tuple[bytes, bytes, int]]:
        raw = self.get(c.clearing_key(voucher_id, batch))
        return [] if raw is None else c.decode_clearing(raw)[1]

    def lineage(self, piece_id: bytes) -> dict:
        return lineage.lineage(self.get, piece_id, suite=self.suite)

    def live_pieces(self, voucher_id: bytes) -> list[tuple[bytes, c.Piece]]:
        return lineage.live_pieces(self.get, voucher_id, suite=self.suite)

    # --- ids and digests of this ledger's suite ---------------------------------------------------
    def org_id(self, name: str | bytes) -> bytes:
        """The id of the organization called ``name`` on this ledger."""
        return c.org_id(name, suite=self.suite)

    def document_fingerprint(self, document: bytes) -> bytes:
        """What ``Party.anchor`` anchors for ``document`` on this ledger."""
        return c.document_fingerprint(document, suite=self.suite)

    def blind(self, asset_kind: str, asset_id: bytes) -> bytes:
        return registry.blind(self.secret, asset_kind, asset_id, suite=self.suite)

    def blind_invoice(self, invoice_fingerprint: bytes) -> bytes:
        return registry.blind_invoice(self.secret, invoice_fingerprint, suite=self.suite)

    def fits(self, blinded: bytes, amount: int) -> bool:
        return registry.fits(self.get, blinded, amount)

    # --- confidential amounts ----------------------------------------------------------
    def regulator_key(self) -> bytes | None:
        """The regulator's ElGamal key confidential amounts are encrypted to (committee vote)."""
        return self.get(c.REGULATOR_KEY)

    def centry(self, blinded: bytes) -> cregistry.CRegistryEntry | None:
        """The confidential registry's entry of an asset (commitments only)."""
        raw = self.get(c.cregistry_key(blinded))
        return None if raw is None else cregistry.CRegistryEntry.decode(raw)

    def camount(self, piece_id: bytes) -> camount.Stored | None:
        """A confidential piece's stored amount: commitments, handles, the sealed opening."""
        raw = self.get(c.camount_key(piece_id))
        return None if raw is None else camount.Stored.decode(raw)


class Party:
    """One key acting for its organization."""

    def __init__(self, fin: Finance, keys: KeyPair) -> None:
        self.fin, self.keys, self.pk = fin, keys, keys.public_key

    @property
    def suite(self) -> CryptoSuite:
        """The ledger's crypto suite (``Finance.suite``): every id a builder derives is its."""
        return self.fin.suite

    @property
    def org(self) -> bytes:
        """The sender's organization (the zero id if the key is unknown: the op then
        fails with NOT_A_MEMBER, as it should)."""
        return self.fin.org_of(self.pk) or c.ZERO_ID

    def _args(self) -> tuple[int, bytes, bytes, int]:
        return self.fin.ledger.chain_id, self.pk, self.org, self.fin.ledger.nonce(self.pk)

    def _nonce(self) -> tuple[int, bytes, int]:
        return self.fin.ledger.chain_id, self.pk, self.fin.ledger.nonce(self.pk)

    def send(self, tx: txcodec.Tx, **extra: Any) -> Result:
        signed = self.keys.sign_tx(tx)
        code, receipt = self.fin.ledger.send(signed.encode(), self.fin.timeout_s)
        return Result(code, signed.tx_id(suite_for(self.keys.suite_name)), receipt, **extra)

    def _piece(self, piece_id: bytes) -> c.Piece:
        p = self.fin.piece(piece_id)
        if p is None:
            # Still build a valid tx: the handler answers NO_SUCH_PIECE with a receipt.
            return c.Piece(
                c.ZERO_ID, c.ZERO_ID, c.ZERO_ID, 0, 0, 0, c.ZERO_ID, 0, 0, c.ZERO_ID, 0, 0, 0, 0, ()
            )
        return p

    def _blinded(self, voucher_id: bytes) -> bytes:
        v = self.fin.voucher(voucher_id)
        return v.blinded if v is not None else bytes(32)

    # --- committee ---------------------------------------------------------------
    def propose_admit(self, name: str, roles: tuple[str, ...], first_key: bytes) -> Result:
        """Propose admitting organization ``name`` with ``roles``: any role of the chain's apps
        (``Finance.app_set_for``), e.g. the abs app's ``originator``."""
        app_set = self.fin.app_set_for(roles)
        body = orgs.admit_body(name, roles, first_key, app_set)
        return self._propose(c.Action.ADMIT_ORG, body, app_set.role_mask)

    def propose_roles(self, org_id: bytes, roles: tuple[str, ...]) -> Result:
        """Propose replacing organization ``org_id``'s roles with ``roles`` (as for ``propose_admit``)."""
        app_set = self.fin.app_set_for(roles)
        return self._propose(
            c.Action.SET_ROLES, orgs.set_roles_body(org_id, roles, app_set), app_set.role_mask
        )

    def propose_params(self, params: c.Params) -> Result:
        return self._propose(c.Action.SET_PARAMS, params.encode())

    def propose_validator(self, public_key: bytes, power: int) -> Result:
        """Propose giving consensus validator ``public_key`` ``power`` votes (0 removes it)."""
        return self._propose(c.Action.SET_VALIDATOR, orgs.set_validator_body(public_key, power))

    def propose_regulator_key(self, elgamal_public: bytes) -> Result:
        """Propose the regulator's ElGamal key (``camount``: every confidential amount's envelope)."""
        return self._propose(c.Action.SET_REGULATOR_KEY, orgs.set_regulator_key_body(elgamal_public))

    def _propose(self, action: int, body: bytes, role_mask: int | None = None) -> Result:
        chain_id, pk, nonce = self._nonce()
        tx = orgs.propose(chain_id, pk, nonce, action, body, suite=self.suite, role_mask=role_mask)
        return self.send(tx, id=c.object_id(pk, nonce, suite=self.suite))

    def vote(self, proposal_id: bytes) -> Result:
        prop = self.fin.proposal(proposal_id) or c.Proposal(
            c.Action.SET_PARAMS, False, 0, (), c.Params().encode()
        )
        # The chain checked a stored proposal's roles against its apps' when it was made.
        known = ledger_apps(self.fin.ledger)
        mask = known.role_mask if known is not None else ANY_ROLES
        return self.send(orgs.vote(*self._nonce(), proposal_id, prop, suite=self.suite, role_mask=mask))

    # --- keys -------------------------------------------------------------------------
    def add_key(self, new_key: bytes) -> Result:
        return self.send(orgs.key_add(*self._args(), new_key))

    def revoke_key(self, key: bytes) -> Result:
        chain_id, pk, org, nonce = self._args()
        return self.send(orgs.key_revoke(chain_id, pk, org, nonce, key))

    def rotate_key(self, new_key: bytes) -> Result:
        chain_id, pk, org, nonce = self._args()
        return self.send(orgs.key_rotate(chain_id, pk, org, nonce, new_key))

    # --- evidence -----------------------------------------------------------------------
    def anchor(
        self, doc_type: int, document: bytes | None = None, *, fingerprint: bytes | None = None
    ) -> Result:
        fp = fingerprint if fingerprint is not None else self.fin.document_fingerprint(document or b"")
        chain_id, pk, org, nonce = self._args()
        return self.send(evidence.anchor(chain_id, pk, org, nonce, doc_type, fp), id=fp)

    # --- vouchers ----------------------------------------------------------------------------
    def confirm(
        self,
        beneficiary: bytes,
        face: int,
        maturity_ms: int,
        docs: list[tuple[int, bytes]],
        claimed: Iterable[tuple[int, bytes]] = (),
    ) -> Result:
        """Confirm a payable to ``beneficiary`` (an org id) backed by anchored ``docs``
        ((type, fingerprint) pairs, at least one invoice; invoices and contracts anchored by
        the sender's org or the beneficiary); the voucher's registry asset is its first
        invoice, blinded under the consortium secret (``ConsortiumSecretError`` without one,
        raised before anything is signed). On a cluster, ``claimed``: the documents
        anchored on other shards, claimed for this voucher (``claim``) and carried here."""
        chain_id, pk, org, nonce = self._args()
        blinded = self.voucher_asset(docs)
        tx, vid = voucher.confirm(
            chain_id,
            pk,
            org,
            nonce,
            beneficiary,
            face,
            maturity_ms,
            docs,
            blinded,
            suite=self.suite,
            claimed=claimed,
        )
        return self.send(tx, id=vid)

    def voucher_asset(self, docs: list[tuple[int, bytes]]) -> bytes:
        """The registry fingerprint a confirmation of ``docs`` registers: its first invoice's,
        blinded (its first 8 bytes are the voucher's lineage tag)."""
        return self.fin.blind_invoice(next((fp for t, fp in docs if t == c.DocType.INVOICE), bytes(32)))

    def claim(
        self,
        beneficiary: bytes,
        docs: list[tuple[int, bytes]],
        *,
        asset: bytes | None = None,
        tag: bytes | None = None,
    ) -> Result:
        """On a cluster, where ``docs`` are anchored (all on this ledger's shard): claim them
        for a lineage on another shard (docs/sharding.md "Documents across shards"). For a
        voucher, ``asset`` = ``voucher_asset(all its docs)``: its invoices are bound to it;
        else ``tag`` names the lineage (a bill's id tag) and the documents are only cited."""
        if (asset is None) == (tag is None):
            raise ValueError("claim for a voucher's asset or for a lineage tag, one of the two")
        blinded = c.ZERO_BLINDED if asset is None else asset
        lineage = tag if asset is None else asset[: c.lineage_tag_bytes]
        return self.send(claims.claim(*self._args(), lineage, beneficiary, docs, blinded))

    def cconfirm(
        self,
        beneficiary: bytes,
        face: int,
        maturity_ms: int,
        docs: list[tuple[int, bytes]],
        recipient: bytes,
        claimed: Iterable[tuple[int, bytes]] = (),
    ) -> Result:
        """``confirm`` with the face hidden: a confidential voucher (docs/privacy.md). The
        face's opening is sealed to ``recipient`` (a key of the beneficiary's organization)
        and returned in ``Result.openings``; ``claimed`` as ``confirm``'s."""
        chain_id, pk, org, nonce = self._args()
        tx, vid, opening = confidential.cconfirm(
            chain_id, pk, org, nonce, beneficiary, face, maturity_ms, docs, self.voucher_asset(docs),
            self._regulator(), recipient, suite=self.suite, claimed=claimed,
        )  # fmt: skip
        return self.send(tx, id=vid, openings=[opening])

    def csplit(self, piece_id: bytes, amounts: list[int], parent: camount.Opening | None = None) -> Result:
        """Split a confidential piece into ``amounts`` (summing to its hidden amount);
        ``parent``: its opening, else read from the chain (sealed to this key)."""
        p = self._piece(piece_id)
        parent = parent or self.opening(piece_id)
        if parent is None:
            raise ValueError("no opening of this piece for this key: pass it as parent")
        chain_id, pk, org, nonce = self._args()
        tx, kids, openings = confidential.csplit(
            chain_id,
            pk,
            org,
            nonce,
            p.voucher,
            piece_id,
            parent,
            amounts,
            self._regulator(),
            suite=self.suite,
        )
        return self.send(tx, ids=kids, openings=openings)

    def creg_asset(self, blinded: bytes, value: int, owner: bytes) -> Result:
        """Attester: register an asset of hidden ``value`` in the confidential registry, its
        opening sealed to the ``owner`` key (``Result.openings``)."""
        chain_id, pk, org, nonce = self._args()
        tx, opening = cregistry.creg_asset(
            chain_id, pk, org, nonce, blinded, value, self._regulator(), owner, suite=self.suite
        )
        return self.send(tx, id=blinded, openings=[opening])

    def asset_opening(self, blinded: bytes) -> camount.Opening | None:
        """This key's opening of an asset's value in the confidential registry (checked)."""
        entry = self.fin.centry(blinded)
        if entry is None or not entry.sealed:
            return None
        opening = camount.unseal(entry.sealed, self.keys)
        return opening if opening is not None and opening.matches((entry.value_lo, entry.value_hi)) else None

    def finance_package(
        self, bank_key: bytes, blinded: bytes, ref: bytes, amount: int, book: cregistry.OwnerBook
    ) -> tuple[bytes, camount.Opening]:
        """Owner (borrower): the proofs that financing ``amount`` from the bank whose key is
        ``bank_key`` fits its asset, as the bank's payload (``creg_finance``); ValueError if
        it does not fit."""
        entry = self.fin.centry(blinded)
        if entry is None:
            raise ValueError("no such asset in the confidential registry")
        chain_id = self.fin.ledger.chain_id
        return cregistry.finance_package(
            chain_id, bank_key, blinded, ref, amount, book, entry, self._regulator()
        )

    def creg_finance(self, package: bytes) -> Result:
        """Bank: record the financing the owner's ``package`` proves fits."""
        shard = self.fin.shard
        return self.send(cregistry.creg_finance(*self._args(), package, suite=self.suite, shard=shard))

    def creg_release(self, blinded: bytes, ref: bytes) -> Result:
        """Bank: release its financing ``ref`` of the asset."""
        shard = self._record_shard(blinded, ref)
        return self.send(cregistry.creg_release(*self._args(), blinded, ref, suite=self.suite, shard=shard))

    def opening(self, piece_id: bytes) -> camount.Opening | None:
        """This key's opening of a confidential piece: unsealed from the chain and checked
        against the piece's commitments (None if not sealed to this key, or wrong)."""
        stored = self.fin.camount(piece_id)
        if stored is None:
            return None
        opening = camount.unseal(stored.sealed, self.keys)
        return opening if opening is not None and opening.matches((stored.lo, stored.hi)) else None

    def _regulator(self) -> bytes:
        key = self.fin.regulator_key()
        if key is None:
            raise ValueError("the chain has no regulator key yet (committee: propose_regulator_key)")
        return key

    def split(self, piece_id: bytes, amounts: list[int]) -> Result:
        p = self._piece(piece_id)
        chain_id, pk, org, nonce = self._args()
        tx, kids = voucher.split(chain_id, pk, org, nonce, p.voucher, piece_id, amounts, suite=self.suite)
        return self.send(tx, ids=kids)

    def _offer(self, piece_id: bytes, to: bytes, kind: int, price: int = 0, due_ms: int = 0) -> Result:
        p = self._piece(piece_id)
        chain_id, pk, org, nonce = self._args()
        return self.send(
            voucher.offer(chain_id, pk, org, nonce, p.voucher, piece_id, to, kind, price, due_ms)
        )

    def transfer(self, piece_id: bytes, to: bytes) -> Result:
        """Offer the piece to the next-tier supplier ``to``; it moves when they accept."""
        return self._offer(piece_id, to, c.OfferKind.TRANSFER)

    def discount(self, piece_id: bytes, bank: bytes, price: int) -> Result:
        """Offer the piece to ``bank`` for ``price``; on acceptance the bank holds it, locked."""
        return self._offer(piece_id, bank, c.OfferKind.DISCOUNT, price)

    def pledge(self, piece_id: bytes, bank: bytes, loan: int, due_ms: int) -> Result:
        return self._offer(piece_id, bank, c.OfferKind.PLEDGE, loan, due_ms)

    def _confidential(self, piece_id: bytes) -> bool:
        p = self.fin.piece(piece_id)
        return p is not None and p.amount == 0

    def offer_openings(self, piece_id: bytes) -> tuple[camount.Opening, camount.Opening | None]:
        """An offered confidential piece's opening and its price's (None for a transfer), as
        sealed to this key, each checked against its commitments; ValueError if either is
        missing or does not open what it should (then return the offer, do not accept it)."""
        raw, stored = self.fin.get(c.coffer_key(piece_id)), self.fin.camount(piece_id)
        if raw is None or stored is None:
            raise ValueError("no confidential offer of this piece")
        offer = camount.Offer.decode(raw)
        piece = camount.unseal(offer.sealed_piece, self.keys)
        if piece is None or not piece.matches((stored.lo, stored.hi)):
            raise ValueError("the offer's opening is not sealed to this key or does not open the piece")
        if not offer.price:
            return piece, None
        price = camount.unseal(offer.sealed_price, self.keys)
        if price is None or not price.matches((offer.price[:32], offer.price[32:64])):
            raise ValueError("the offer's price opening is not sealed to this key or does not open the price")
        return piece, price

    def accept(self, piece_id: bytes) -> Result:
        """Accept an offer. Of a confidential piece, only once its openings check out for this
        key (``offer_openings``): a holder must be able to open what it takes."""
        p = self._piece(piece_id)
        if self._confidential(piece_id) and p.state == c.PieceState.OFFERED:
            self.offer_openings(piece_id)
        chain_id, pk, org, nonce = self._args()
        kind = p.offer_kind or c.OfferKind.TRANSFER
        blinded, hidden = self._blinded(p.voucher), self._confidential(piece_id)
        return self.send(voucher.accept(chain_id, pk, org, nonce, p.voucher, piece_id, kind, blinded, hidden))

    def return_offer(self, piece_id: bytes) -> Result:
        return self.send(voucher.return_offer(*self._args(), piece_id, self._confidential(piece_id)))

    def release(self, piece_id: bytes) -> Result:
        p = self._piece(piece_id)
        chain_id, pk, org, nonce = self._args()
        blinded, hidden = self._blinded(p.voucher), self._confidential(piece_id)
        return self.send(
            voucher.pledge_release(chain_id, pk, org, nonce, p.voucher, piece_id, blinded, hidden)
        )

    def default_transfer(self, piece_id: bytes) -> Result:
        p = self._piece(piece_id)
        hidden = self._confidential(piece_id)
        return self.send(voucher.pledge_default(*self._args(), p.voucher, piece_id, hidden))

    def coffer(
        self,
        piece_id: bytes,
        to: bytes,
        recipient: bytes,
        kind: int = c.OfferKind.TRANSFER,
        price: int = 0,
        due_ms: int = 0,
        opening: camount.Opening | None = None,
    ) -> Result:
        """Offer a confidential piece to organization ``to`` (transfer, discount or pledge):
        its opening sealed to ``to``'s key ``recipient``, and a hidden ``price`` (discount
        price or loan) whose opening is returned in ``Result.openings``."""
        p = self._piece(piece_id)
        opening = opening or self.opening(piece_id)
        if opening is None:
            raise ValueError("no opening of this piece for this key: pass it as opening")
        chain_id, pk, org, nonce = self._args()
        tx, price_opening = confidential.coffer(
            chain_id, pk, org, nonce, p.voucher, piece_id, opening, to, recipient, self._regulator(),
            kind, price, due_ms, suite=self.suite,
        )  # fmt: skip
        return self.send(tx, openings=[price_opening] if price_opening else [])

    def settle(self, voucher_id: bytes, pieces: list[bytes] | None = None) -> list[Result]:
        """Settle every live piece (or ``pieces``), in batches of
        ``codes.settle_pieces_per_tx_max`` (``csettle_pieces_per_tx_max`` for a confidential
        voucher): one clearing list per batch."""
        v = self.fin.voucher(voucher_id)
        batch, blinded = (v.settle_batches, v.blinded) if v else (0, bytes(32))
        if pieces is None:
            pieces = [pid for pid, _ in self.fin.live_pieces(voucher_id)] if v else []
            pieces = pieces or [voucher_id]  # nothing live: let the ledger name the refusal
        hidden = v is not None and v.face == 0  # a confidential voucher
        step = c.csettle_pieces_per_tx_max if hidden else c.settle_pieces_per_tx_max
        results = []
        for i in range(0, len(pieces), step):
            part = pieces[i : i + step]
            chain_id, pk, org, nonce = self._args()
            r = self.send(voucher.settle(chain_id, pk, org, nonce, voucher_id, part, batch, blinded, hidden))
            results.append(r)
            if not r.ok:
                break
            batch += 1
        return results

    def mark_overdue(self, voucher_id: bytes) -> Result:
        return self.send(voucher.mark_overdue(*self._args(), voucher_id))

    def mark_default(self, voucher_id: bytes) -> Result:
        return self.send(voucher.mark_default(*self._args(), voucher_id))

    # --- registry ---------------------------------------------------------------------------
    def reg_asset(self, blinded: bytes, value: int) -> Result:
        return self.send(registry.reg_asset(*self._args(), blinded, value))

    def reg_finance(self, blinded: bytes, amount: int, ref: bytes) -> Result:
        """Record financing ``amount`` against the asset (on a cluster's shard, the bank's
        record is placed there: ``fm/``)."""
        shard = self.fin.shard
        return self.send(
            registry.reg_finance(*self._args(), blinded, amount, ref, suite=self.suite, shard=shard)
        )

    def reg_release(self, blinded: bytes, ref: bytes) -> Result:
        shard = self._record_shard(blinded, ref)
        return self.send(registry.reg_release(*self._args(), blinded, ref, suite=self.suite, shard=shard))

    def _record_shard(self, blinded: bytes, ref: bytes) -> int | None:
        """Where this bank's financing record is: placed on this shard (``fm/``), or not."""
        shard = self.fin.shard
        if shard is None:
            return None
        key = registry.record_key(blinded, self.org, ref.ljust(32, b"\0")[:32], shard, suite=self.suite)
        return shard if self.fin.get(key) is not None else None
