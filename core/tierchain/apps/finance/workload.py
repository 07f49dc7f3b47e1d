"""Deterministic, pre-signed voucher-lifecycle workloads (bench/finance.py).

Every transaction is built from fixed seeds and signed before any clock starts.
A workload has a *setup* part (the committee admits the organizations) and a
*lifecycle* part: per voucher, seven transactions that are each valid given
the ones before them in stream order::

    tier-1 anchors an invoice -> core enterprise confirms a voucher ->
    tier 1 splits it in two -> offers one piece to tier 2 -> tier 2 accepts ->
    tier 2 offers it to a bank at a discount -> the bank accepts

Vouchers are emitted in rounds, stage by stage, so a block holds many
independent vouchers at the same stage (parallel waves) and a sender's nonces
always ascend. Submit the stream in order (one submitter): a tx then lands in
the same block as, or a later block than, everything it depends on.

``crypto`` names the chain's suite: every key is that suite's key of its seed, every
transaction is signed in it, and every finance id and digest (organization, voucher and
piece ids, invoice fingerprints, registry blinding) is its (the same seeds, so the same
plan, in either suite).
"""

from __future__ import annotations

import dataclasses
import random

from tierchain.apps.finance import codes as c
from tierchain.apps.finance import evidence, orgs, registry, voucher
from tierchain.config import ChainConfig, GenesisAccount
from tierchain.crypto import DEFAULT_SUITE_NAME, CryptoSuite, KeyPair, suite_for

TXS_PER_VOUCHER = 7
SECRET = b"tierchain bench consortium secret"


@dataclasses.dataclass
class FinanceWorkload:
    node: KeyPair  # the chain's proposer and the committee
    chain_id: int
    setup: list[bytes]
    txs: list[bytes]
    vouchers: int
    crypto: str = DEFAULT_SUITE_NAME  # the suite of every key and signature

    def config(self, **fields) -> ChainConfig:
        accounts = (GenesisAccount(self.node.public_key, ("registrar", "committee"), 0),)
        return ChainConfig(chain_id=self.chain_id, genesis_accounts=accounts, crypto=self.crypto, **fields)


def lifecycle_workload(
    vouchers: int,
    *,
    suppliers: int = 64,
    banks: int = 4,
    cores: int = 4,
    round_vouchers: int = 512,
    seed: int = 11,
    chain_id: int = 1,
    maturity_ms: int = 1 << 50,
    crypto: str = DEFAULT_SUITE_NAME,
) -> FinanceWorkload:
    suite = suite_for(crypto)  # UnknownCryptoSuite names the known ones
    rng = random.Random(seed)
    node = suite.keys_from_seed(rng.randbytes(32))

    def party(name: str) -> tuple[KeyPair, bytes]:
        return suite.keys_from_seed(rng.randbytes(32)), c.org_id(name, suite=suite)

    core = [party(f"core-{i}") for i in range(cores)]
    sup = [party(f"supplier-{i}") for i in range(suppliers)]
    bank = [party(f"bank-{i}") for i in range(banks)]
    nonces: dict[bytes, int] = {}

    def sign(keys: KeyPair, build) -> bytes:
        n = nonces.get(keys.public_key, 0)
        nonces[keys.public_key] = n + 1
        return keys.sign_tx(build(n)).encode()

    def admit(body: bytes):
        return lambda n: orgs.propose(chain_id, node.public_key, n, c.Action.ADMIT_ORG, body, suite=suite)

    setup = []
    for group, role in ((core, "core_enterprise"), (sup, "supplier"), (bank, "bank")):
        for i, (keys, _) in enumerate(group):
            name = {"core_enterprise": "core", "supplier": "supplier", "bank": "bank"}[role] + f"-{i}"
            setup.append(sign(node, admit(orgs.admit_body(name, (role,), keys.public_key))))

    txs: list[bytes] = []
    for start in range(0, vouchers, round_vouchers):
        plan = []
        for i in range(start, min(vouchers, start + round_vouchers)):
            t2 = sup[(i + 1 + i // suppliers) % suppliers]
            if t2 == sup[i % suppliers]:
                t2 = sup[(i + 1) % suppliers]
            fp = c.document_fingerprint(b"bench invoice %d %d" % (seed, i), suite=suite)
            face = rng.randrange(10_000, 10_000_000)
            plan.append(
                _Voucher(core[i % cores], sup[i % suppliers], t2, bank[i % banks], fp, face,
                         registry.blind_invoice(SECRET, fp, suite=suite))
            )  # fmt: skip
        for stage in _STAGES:  # stage by stage: each block holds many independent vouchers
            for v in plan:
                keys, build = stage(v, chain_id, maturity_ms, suite)
                txs.append(sign(keys, build))
    return FinanceWorkload(node, chain_id, setup, txs, vouchers, crypto)


@dataclasses.dataclass
class _Voucher:
    core: tuple[KeyPair, bytes]
    tier1: tuple[KeyPair, bytes]
    tier2: tuple[KeyPair, bytes]
    bank: tuple[KeyPair, bytes]
    invoice: bytes
    face: int
    blinded: bytes
    vid: bytes = b""
    kids: list[bytes] = dataclasses.field(default_factory=list)


def _anchor(v: _Voucher, chain_id: int, maturity_ms: int, suite: CryptoSuite):
    (k, o) = v.tier1
    return k, lambda n: evidence.anchor(chain_id, k.public_key, o, n, c.DocType.INVOICE, v.invoice)


def _confirm(v: _Voucher, chain_id: int, maturity_ms: int, suite: CryptoSuite):
    (k, o) = v.core

    def build(n: int):
        docs = [(c.DocType.INVOICE, v.invoice)]
        tx, v.vid = voucher.confirm(
            chain_id, k.public_key, o, n, v.tier1[1], v.face, maturity_ms, docs, v.blinded, suite=suite
        )
        return tx

    return k, build


def _split(v: _Voucher, chain_id: int, maturity_ms: int, suite: CryptoSuite):
    (k, o) = v.tier1
    half = v.face // 2

    def build(n: int):
        tx, v.kids = voucher.split(
            chain_id, k.public_key, o, n, v.vid, v.vid, [half, v.face - half], suite=suite
        )
        return tx

    return k, build


def _offer(v: _Voucher, chain_id: int, maturity_ms: int, suite: CryptoSuite):
    (k, o) = v.tier1
    return k, lambda n: voucher.offer(chain_id, k.public_key, o, n, v.vid, v.kids[1], v.tier2[1])


def _accept(v: _Voucher, chain_id: int, maturity_ms: int, suite: CryptoSuite):
    (k, o) = v.tier2
    transfer = c.OfferKind.TRANSFER
    return k, lambda n: voucher.accept(chain_id, k.public_key, o, n, v.vid, v.kids[1], transfer, v.blinded)


def _discount(v: _Voucher, chain_id: int, maturity_ms: int, suite: CryptoSuite):
    (k, o) = v.tier2
    price = (v.face - v.face // 2) * 98 // 100
    kind = c.OfferKind.DISCOUNT
    return k, lambda n: voucher.offer(chain_id, k.public_key, o, n, v.vid, v.kids[1], v.bank[1], kind, price)


def _bank_accept(v: _Voucher, chain_id: int, maturity_ms: int, suite: CryptoSuite):
    (k, o) = v.bank
    kind = c.OfferKind.DISCOUNT
    return k, lambda n: voucher.accept(chain_id, k.public_key, o, n, v.vid, v.kids[1], kind, v.blinded)


_STAGES = (_anchor, _confirm, _split, _offer, _accept, _discount, _bank_accept)
assert len(_STAGES) == TXS_PER_VOUCHER
