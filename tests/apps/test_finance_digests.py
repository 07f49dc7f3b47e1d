"""Finance's ids and digests are the chain's crypto suite's (issue 19).

On an ``sm2-sm3`` chain every finance digest is SM3: organization, proposal, voucher and
piece ids, financing refs and document fingerprints are SM3 domain hashes of the same
inputs, and the registry's blinded fingerprints HMAC-SM3 under an SM3-derived key; on the
default chain they are the BLAKE3 digests every existing chain holds, bit for bit.

Each suite's digests are recomputed here from their definitions with the primitives
themselves (``blake3``; ``tierchain.crypto.sm`` and the standard library's ``hmac`` over
``hashlib``'s SM3), not through the suite object or the finance code, and compared with
what the functions, the handlers (the records in state) and the CLI produce.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from pathlib import Path

import blake3
import pytest
from click.testing import CliRunner

from finance_world import ORGS, SECRET, MemLedger, World, admit_all, config, members
from tierchain import crypto
from tierchain.apps.finance import DocType, PieceState, lineage, registry, views
from tierchain.apps.finance import codes as c
from tierchain.apps.finance.client import Finance
from tierchain.apps.finance.codes import FinanceReject
from tierchain.apps.finance.registry import ConsortiumSecretError
from tierchain.cli.main import main
from tierchain.crypto import ED25519_BLAKE3, SM2_SM3, SUITES, CryptoSuite, sm, suite_for
from tierchain.errors import Reject

ED, SM2 = ED25519_BLAKE3.name, SM2_SM3.name
MATURITY_MS = 2_000_000  # MemLedger's clock starts at 1_000_000


# --- the references: each suite's digests from their definitions -------------------------------


def sm3_domain_openssl(context: str, data: bytes) -> bytes:
    """SM3(pad64(u16be(len(context)) || context) || data) (docs/national-crypto.md), by OpenSSL."""
    prefix = len(context.encode()).to_bytes(2, "big") + context.encode()
    return hashlib.new("sm3", prefix + bytes(-len(prefix) % 64) + data).digest()


def hmac_sm3_rfc2104(key: bytes, data: bytes) -> bytes:
    """HMAC (RFC 2104) spelled out over the native SM3 (block size 64, key <= 64 bytes)."""
    k = key.ljust(64, b"\0")
    inner = sm.sm3(bytes(b ^ 0x36 for b in k) + data)
    return sm.sm3(bytes(b ^ 0x5C for b in k) + inner)


class Reference:
    """A suite's finance digests, from a domain hash and a keyed hash given as functions."""

    def __init__(
        self, domain_hash: Callable[[str, bytes], bytes], keyed: Callable[[bytes, bytes], bytes]
    ) -> None:
        self.hash, self.keyed = domain_hash, keyed

    def _h(self, context: str, *parts: bytes) -> bytes:
        return self.hash(context, b"".join(len(p).to_bytes(4, "little") + p for p in parts))

    def org_id(self, name: str) -> bytes:
        return self._h(c.FIN_ORG_ID, name.encode())[:16]

    def object_id(self, sender: bytes, nonce: int) -> bytes:
        return self._h(c.FIN_OBJECT_ID, sender, nonce.to_bytes(8, "little"))[:16]

    def voucher_id(self, blinded: bytes, sender: bytes, nonce: int) -> bytes:
        return blinded[:8] + self.object_id(sender, nonce)[:8]

    def child_id(self, parent: bytes, index: int) -> bytes:
        return parent[:8] + self._h(c.FIN_PIECE_ID, parent, bytes((index,)))[:8]

    def financing_ref(self, blinded: bytes, bank: bytes, ref: bytes) -> bytes:
        return self._h(c.FIN_FINANCING_REF, blinded, bank, ref)

    def document(self, document: bytes) -> bytes:
        return self.hash(c.FIN_DOCUMENT, document)

    def registry_key(self, secret: bytes) -> bytes:
        return self.hash(c.FIN_REGISTRY_KEY, secret)

    def blind(self, secret: bytes, kind: str, ident: bytes) -> bytes:
        k = kind.encode()
        return self.keyed(self.registry_key(secret), len(k).to_bytes(2, "little") + k + ident)


REF = {
    ED: Reference(
        lambda ctx, data: blake3.blake3(data, derive_key_context=ctx).digest(),
        lambda key, data: blake3.blake3(data, key=key).digest(),
    ),
    SM2: Reference(
        sm.hash, lambda key, data: hmac.new(key, data, lambda d=b"": hashlib.new("sm3", d)).digest()
    ),
}


def other(suite: CryptoSuite) -> CryptoSuite:
    return next(s for s in SUITES.values() if s is not suite)


@pytest.fixture(params=sorted(SUITES))
def suite(request) -> CryptoSuite:
    return suite_for(request.param)


def test_the_sm3_references_agree_with_independent_implementations():
    # The SM3 domain hash (native) against OpenSSL's SM3, and stdlib HMAC-SM3 against RFC 2104
    # spelled out over the native SM3: the references below do not rest on one implementation.
    key = REF[SM2].registry_key(SECRET)
    for context in c.DOMAINS:
        for data in (b"", b"abc", bytes(range(256)) * 3):
            assert sm.hash(context, data) == sm3_domain_openssl(context, data)
            assert REF[SM2].keyed(key, data) == hmac_sm3_rfc2104(key, data)
    assert sm.sm3(b"abc").hex().startswith("66c7f0f4")  # GB/T 32905 Annex A


def test_every_finance_digest_is_its_suites_and_the_default_is_unchanged(suite):
    ref, elsewhere = REF[suite.name], REF[other(suite).name]
    sender, parent, blinded, bank = bytes(range(32)), bytes(range(16, 32)), bytes(range(7, 39)), b"B" * 16
    cases = [
        (c.org_id("Tier1 Ltd", suite=suite), ref.org_id("Tier1 Ltd"), elsewhere.org_id("Tier1 Ltd")),
        (c.org_id(b"Tier1 Ltd", suite=suite), ref.org_id("Tier1 Ltd"), elsewhere.org_id("Tier1 Ltd")),
        (c.object_id(sender, 7, suite=suite), ref.object_id(sender, 7), elsewhere.object_id(sender, 7)),
        (
            c.voucher_id(blinded, sender, 7, suite=suite),
            ref.voucher_id(blinded, sender, 7),
            elsewhere.voucher_id(blinded, sender, 7),
        ),
        (c.child_id(parent, 3, suite=suite), ref.child_id(parent, 3), elsewhere.child_id(parent, 3)),
        (
            c.financing_ref_digest(blinded, bank, b"loan 1", suite=suite),
            ref.financing_ref(blinded, bank, b"loan 1"),
            elsewhere.financing_ref(blinded, bank, b"loan 1"),
        ),
        (
            c.document_fingerprint(b"%PDF invoice", suite=suite),
            ref.document(b"%PDF invoice"),
            elsewhere.document(b"%PDF invoice"),
        ),
        (
            registry.registry_key_from_secret(SECRET, suite=suite),
            ref.registry_key(SECRET),
            elsewhere.registry_key(SECRET),
        ),
        (
            registry.blind(SECRET, "purchase order", b"PO-1", suite=suite),
            ref.blind(SECRET, "purchase order", b"PO-1"),
            elsewhere.blind(SECRET, "purchase order", b"PO-1"),
        ),
        (
            registry.blind_invoice(SECRET, bytes(32), suite=suite),
            ref.blind(SECRET, "invoice", bytes(32)),
            elsewhere.blind(SECRET, "invoice", bytes(32)),
        ),
        (suite.keyed_hash(bytes(32), b"data"), ref.keyed(bytes(32), b"data"), None),
    ]
    for got, expected, other_suites in cases:
        assert got == expected
        assert got != other_suites
    # Lineage tags survive: a voucher's and its children's ids start with the fingerprint's tag.
    assert c.voucher_id(blinded, sender, 7, suite=suite)[:8] == blinded[:8]
    assert c.child_id(parent, 3, suite=suite)[:8] == parent[:8]
    # The keyword's default is the default suite, whose digests are BLAKE3's as before.
    assert c.org_id("Tier1 Ltd") == REF[ED].org_id("Tier1 Ltd")
    assert c.child_id(parent, 3) == REF[ED].child_id(parent, 3)
    assert registry.blind_invoice(SECRET, bytes(32)) == REF[ED].blind(SECRET, "invoice", bytes(32))
    # No secret, no blinding, in either suite.
    with pytest.raises(ConsortiumSecretError):
        registry.blind_invoice(b"short secret", bytes(32), suite=suite)


# Known answers: ids on a chain never change. The default suite's are what chains before
# issue 19 hold; the national suite's pin its SM3 construction.
KNOWN = {
    ED: {
        "org": "8b053fb7be698eb49bdd7f6723b1ce38",
        "doc": "3ae7a525ad927f10551dbef4d4faadc82b5c8567d0a90c170480df22fc779add",
        "blind": "ca52a7487b3f6d4c1d78ff4515de776a08450dd8dbe5e54913785bd9a98fe6e2",
    },
    SM2: {
        "org": "b6b6257ad0666abd9251d0e352b940fc",
        "doc": "066db1fc1cdd087d15e78609ff57a45d501f9b88dca24f977d2ff2fdcd6927c5",
        "blind": "8e2b5fd06c84c5a001a94545c60bba5ec93028da11b8acf4188bf5a12a814869",
    },
}


def test_known_answers(suite):
    known = KNOWN[suite.name]
    assert c.org_id("CoreCo", suite=suite).hex() == known["org"]
    assert c.document_fingerprint(b"invoice 1", suite=suite).hex() == known["doc"]
    assert registry.blind_invoice(SECRET, bytes(32), suite=suite).hex() == known["blind"]


def test_the_finance_client_hashes_in_its_ledgers_suite(suite):
    fin = Finance(MemLedger(config(crypto=suite.name)), SECRET)
    assert fin.suite is suite
    ref = REF[suite.name]
    assert fin.org_id("BankA") == ref.org_id("BankA")
    assert fin.document_fingerprint(b"invoice") == ref.document(b"invoice")
    assert fin.blind("warehouse receipt", b"WR-7") == ref.blind(SECRET, "warehouse receipt", b"WR-7")
    assert fin.blind_invoice(bytes(32)) == ref.blind(SECRET, "invoice", bytes(32))


# --- on a ledger: what the handlers store is under the suite's ids -----------------------------


@pytest.fixture
def led(suite) -> MemLedger:
    return MemLedger(config(crypto=suite.name))


@pytest.fixture
def w(led) -> World:
    return admit_all(Finance(led, SECRET))


def test_records_live_under_the_suites_ids(suite, led, w):
    fin, ref, elsewhere = w.fin, REF[suite.name], REF[other(suite).name]
    m = members(suite.name)
    # Organizations: admitted under the suite's id of their name, which their keys point at.
    for name in ORGS:
        assert w.org(name) == ref.org_id(name) != elsewhere.org_id(name)
        assert led.state_get(c.org_key(ref.org_id(name))) is not None
        assert led.state_get(c.org_key(elsewhere.org_id(name))) is None
        assert fin.org_of(m.keys[name].public_key) == ref.org_id(name)
    # A proposal: the id the client reports is the suite's, and the record is there.
    node = fin.party(m.node)
    nonce = led.nonce(m.node.public_key)
    r = node.propose_params(c.Params(threshold=2))
    assert r.ok and r.id == ref.object_id(m.node.public_key, nonce)
    assert fin.proposal(r.id) is not None and fin.params().threshold == 2

    # A document: its fingerprint is the suite's digest of its bytes.
    t1, core, bank = w.p["Tier1"], w.p["CoreCo"], w.p["BankA"]
    inv = t1.anchor(DocType.INVOICE, b"invoice 9")
    assert inv.ok and inv.id == ref.document(b"invoice 9") != elsewhere.document(b"invoice 9")
    assert fin.document(DocType.INVOICE, ref.document(b"invoice 9")) is not None
    assert fin.document(DocType.INVOICE, elsewhere.document(b"invoice 9")) is None

    # The voucher: blinded by the suite's keyed hash, its id the fingerprint's tag and the
    # suite's object id; the registry entry is under that fingerprint only.
    blinded = ref.blind(SECRET, "invoice", inv.id)
    assert blinded != elsewhere.blind(SECRET, "invoice", inv.id)
    nonce = led.nonce(core.pk)
    r = core.confirm(w.org("Tier1"), 1_000_000, MATURITY_MS, [(DocType.INVOICE, inv.id)])
    assert r.ok and r.id == ref.voucher_id(blinded, core.pk, nonce)
    assert fin.voucher(r.id).blinded == blinded == fin.blind_invoice(inv.id)
    assert fin.fits(blinded, 1_000_000) and not fin.fits(elsewhere.blind(SECRET, "invoice", inv.id), 1)
    vid = r.id

    # A split: the children's ids are the suite's, and so are lineage's and views' lists.
    kids = t1.split(vid, [600_000, 400_000]).check().ids
    assert kids == [ref.child_id(vid, 0), ref.child_id(vid, 1)]
    assert all(fin.piece(k).amount for k in kids)
    assert fin.lineage(vid)["piece"]["children"] == [k.hex() for k in kids]
    assert [d["piece"] for d in fin.lineage(vid)["descendants"]] == [k.hex() for k in kids]
    assert views.piece_view(led.state_get, vid, suite=suite)["children"] == [k.hex() for k in kids]
    assert [pid for pid, _ in fin.live_pieces(vid)] == kids
    assert [pid for pid, _ in lineage.live_pieces(led.state_get, vid, suite=suite)] == kids
    kid = kids[0]
    grandkids = t1.split(kid, [300_000, 300_000]).check().ids
    assert grandkids == [ref.child_id(kid, 0), ref.child_id(kid, 1)]
    assert [a["piece"] for a in fin.lineage(grandkids[1])["ancestors"]] == [vid.hex(), kid.hex()]

    # A bank's own financing record: under the suite's digest of (fingerprint, bank, ref).
    ref_bytes = b"loan 1".ljust(32, b"\0")
    assert bank.reg_finance(blinded, 250_000, b"loan 1").ok
    own = ref.financing_ref(blinded, w.org("BankA"), ref_bytes)
    assert led.state_get(c.financing_key(own)) == (250_000).to_bytes(8, "little")
    assert led.state_get(c.financing_key(elsewhere.financing_ref(blinded, w.org("BankA"), ref_bytes))) is None
    assert bank.reg_release(blinded, b"loan 1").ok and led.state_get(c.financing_key(own)) is None

    # Settlement walks the suite's children (live_pieces) and pays every live piece.
    led.timestamp_ms = MATURITY_MS
    assert [x.code for x in core.settle(vid)] == [Reject.OK]
    assert {fin.piece(p).state for p in (kids[1], *grandkids)} == {PieceState.SETTLED}


def test_a_duplicate_financing_is_caught_in_each_suite(suite, led, w):
    fin, ref = w.fin, REF[suite.name]
    t1, core = w.p["Tier1"], w.p["CoreCo"]
    inv = t1.anchor(DocType.INVOICE, b"the one invoice").check().id
    vid = core.confirm(w.org("Tier1"), 500_000, MATURITY_MS, [(DocType.INVOICE, inv)]).check().id
    # The same invoice document again: the same fingerprint, already anchored ...
    assert t1.anchor(DocType.INVOICE, b"the one invoice").code == FinanceReject.DOC_EXISTS
    # ... and already backing a voucher: a second confirmation on it is refused by code.
    again = core.confirm(w.org("Tier1"), 500_000, MATURITY_MS, [(DocType.INVOICE, inv)])
    assert again.code == FinanceReject.INVOICE_ALREADY_USED and fin.voucher(again.id) is None
    # Another member, with only the consortium secret and the invoice, blinds it to the same
    # registry entry (the suite's keyed hash), so the asset can be neither registered again
    # nor financed beyond its value; what fits goes through.
    bank = Finance(led, SECRET).party(members(suite.name).keys["BankB"])
    blinded = bank.fin.blind_invoice(inv)
    assert blinded == fin.voucher(vid).blinded == ref.blind(SECRET, "invoice", inv)
    assert core.reg_asset(blinded, 500_000).code == FinanceReject.ASSET_EXISTS
    assert bank.reg_finance(blinded, 500_001, b"factoring").code == FinanceReject.EXCEEDS_ASSET_VALUE
    assert bank.reg_finance(blinded, 500_000, b"factoring").ok
    assert bank.reg_finance(blinded, 1, b"factoring 2").code == FinanceReject.EXCEEDS_ASSET_VALUE
    # A discount of the voucher now exceeds the asset too: refused by code at the bank's accept.
    assert t1.discount(vid, w.org("BankA"), 490_000).ok
    assert w.p["BankA"].accept(vid).code == FinanceReject.EXCEEDS_ASSET_VALUE
    assert fin.piece(vid).state == PieceState.OFFERED


def test_the_pre_signed_workload_uses_the_suites_ids(suite):
    from tierchain.apps.finance.workload import SECRET as BENCH_SECRET
    from tierchain.apps.finance.workload import lifecycle_workload

    ref = REF[suite.name]
    work = lifecycle_workload(4, suppliers=4, banks=2, cores=2, round_vouchers=4, crypto=suite.name)
    ledger = MemLedger(work.config())
    assert {r.code for r in ledger.block(work.setup)} == {Reject.OK}
    assert {r.code for r in ledger.block(work.txs)} == {Reject.OK}
    assert ledger.state_get(c.org_key(ref.org_id("supplier-0"))) is not None
    fp = ref.document(b"bench invoice 11 0")
    doc = c.DocRecord.decode(ledger.state_get(c.doc_key(DocType.INVOICE, fp)))
    v = c.Voucher.decode(ledger.state_get(c.voucher_key(doc.voucher)))
    assert v.blinded == ref.blind(BENCH_SECRET, "invoice", fp)
    assert ledger.state_get(c.piece_key(ref.child_id(doc.voucher, 1))) is not None


# --- the CLI: names, documents and assets hashed in the chain's suite ---------------------------

PASS = "test pass"
SECRET_HEX = SECRET.hex()


def _run(*args: str):
    env = {"TIERCHAIN_PASSPHRASE": PASS, "TIERCHAIN_CONSORTIUM_SECRET": SECRET_HEX}
    return CliRunner(env=env).invoke(main, list(args), input="")


def _ok(*args: str) -> dict:
    r = _run(*args)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


ADMITTED = (("core", "CoreCo", "core_enterprise"), ("t1", "Tier1", "supplier"), ("bank", "BankA", "bank"))


@pytest.mark.usefixtures("fast_kdf")
def test_the_cli_hashes_in_the_chains_suite(tmp_path: Path):
    from tierchain.api.rpc import NodeServer
    from tierchain.config import ChainConfig
    from tierchain.engine.chain import Chain

    ref = REF[SM2]
    chain_dir = tmp_path / "node"
    r = _run("init", str(chain_dir), "--chain-id", "5", "--block-interval-ms", "5", "--crypto", SM2)
    assert r.exit_code == 0, r.output
    pub = {}
    for name in ("core", "t1", "bank"):
        r = _run("keygen", str(tmp_path / f"{name}.key"), "--crypto", SM2)
        assert r.exit_code == 0, r.output
        pub[name] = r.stdout.strip().splitlines()[-1]
    node_keys = crypto.load_key_file(chain_dir / "node.key", PASS)
    chain = Chain(chain_dir, ChainConfig.load(chain_dir / "chain.toml"), node_keys)
    server = NodeServer(chain, "127.0.0.1", 0)
    server.start()
    url = f"http://127.0.0.1:{server.address[1]}"

    def args(key: str, *rest: str) -> list[str]:
        path = chain_dir / "node.key" if key == "node" else tmp_path / f"{key}.key"
        return ["finance", "--node", url, "--chain-id", "5", "--key", str(path), *rest]

    try:
        for key, org, role in ADMITTED:
            admit = args("node", "propose-admit", org, "--role", role, "--org-key", pub[key])
            assert _ok(*admit)["code"] == "OK"
        invoice = tmp_path / "invoice.pdf"
        invoice.write_bytes(b"%PDF national invoice")
        fp = _ok(*args("t1", "anchor", "invoice", str(invoice)))["fingerprint"]
        assert fp == ref.document(invoice.read_bytes()).hex()
        # --to by name: the name's SM3 id (its BLAKE3 id would be no organization: exit 2).
        vid = _ok(*args("core", "confirm", "--to", "Tier1", "--face", "100000", "--maturity-ms", str(1 << 50),
                        "--doc", f"invoice:{fp}"))["id"]  # fmt: skip
        blinded = ref.blind(SECRET, "invoice", bytes.fromhex(fp))
        assert bytes.fromhex(vid) == ref.voucher_id(blinded, bytes.fromhex(pub["core"]), 0)
        kids = _ok(*args("t1", "split", vid, "60000", "40000"))["ids"]
        assert kids == [ref.child_id(bytes.fromhex(vid), i).hex() for i in range(2)]
        # The invoice financed as an asset: blinded by HMAC-SM3 to the voucher's registry entry.
        r = _run(*args("bank", "finance", "invoice", fp, "--amount", "100001", "--ref", "f1"))
        assert r.exit_code == 1 and "EXCEEDS_ASSET_VALUE" in r.stderr, r.output
        r = _run(*args("bank", "finance", "invoice", fp, "--amount", "30000", "--ref", "f1"))
        assert r.exit_code == 0 and json.loads(r.stdout)["code"] == "OK", r.output
    finally:
        server.stop()
        chain.close()
    # Read-only, from the directory: the suite comes from the chain's genesis.
    org = _ok("finance", "show", "org", str(chain_dir), "Tier1")
    assert org["id"] == ref.org_id("Tier1").hex() != REF[ED].org_id("Tier1").hex()
    assert _ok("finance", "fits", str(chain_dir), "invoice", fp, "--amount", "70000") == {"fits": True}
    assert _ok("finance", "fits", str(chain_dir), "invoice", fp, "--amount", "70001") == {"fits": False}
    assert _ok("finance", "lineage", str(chain_dir), vid)["piece"]["children"] == kids
    assert _ok("finance", "show", "piece", str(chain_dir), vid)["children"] == kids
