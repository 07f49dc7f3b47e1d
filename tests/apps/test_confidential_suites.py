"""Confidential amounts in each crypto suite (docs/privacy.md, docs/national-crypto.md
"Confidential amounts"): openings sealed to their recipients the suite's way — an X25519
sealed box to an Ed25519 key (+48 bytes) on ``ed25519-blake3``, SM2 public-key encryption
to an SM2 key (+65 bytes) on ``sm2-sm3`` — with the same commitments, proofs and regulator
see-through in both.

The same consortium (the same seeds) runs the confidential lifecycle on a chain of each
suite: issue, split, transfer, discount, pledge, the confidential registry, the
regulator's reads, a disclosure, settlement; openings open for their recipient only; a
payload whose sealed openings have the other suite's size is refused by the handler
(``BAD_PAYLOAD``), one of no suite's size at admission (``BAD_PROOF``); the payloads' sizes.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from click.testing import CliRunner

from finance_world import SECRET, MemLedger, World, admit_all, config, members
from tierchain.apps.finance import DocType, cregistry
from tierchain.apps.finance import camount as ca
from tierchain.apps.finance import codes as c
from tierchain.apps.finance import confidential as cf
from tierchain.apps.finance import disclosure as dz
from tierchain.apps.finance.client import Finance
from tierchain.apps.finance.codes import RecordError
from tierchain.cli.main import main
from tierchain.crypto import ED25519_BLAKE3, SM2_SM3, SUITES, CryptoSuite, sm, suite_for
from tierchain.crypto import confidential as conf
from tierchain.engine.chain import Chain
from tierchain.engine.verify import verify_chain
from tierchain.errors import Reject
from tierchain.wire import tx as txcodec
from tierchain.wire.batch import decode_batch

REGULATOR_SEED = b"regulator seed for tests".ljust(32, b"\0")
REGULATOR = conf.elgamal_keypair(REGULATOR_SEED)
FACE = 0x0123_4567_89AB  # above 2**32: both limbs matter
PIECES = [0x0023_4567_0000, FACE - 0x0023_4567_0000]
MATURITY = 4_000_000_000_000
SEALED = {ED25519_BLAKE3.name: 72 + 48, SM2_SM3.name: 72 + 65}  # the opening is 72 bytes


@pytest.fixture(params=sorted(SUITES))
def suite(request) -> CryptoSuite:
    return suite_for(request.param)


def other_suite(suite: CryptoSuite) -> CryptoSuite:
    return next(s for s in SUITES.values() if s is not suite)


def _world(fin: Finance) -> World:
    w = admit_all(fin)
    assert fin.party(members(fin.suite.name).node).propose_regulator_key(REGULATOR.public).ok
    return w


@pytest.fixture
def chain(tmp_path, suite):
    with Chain(tmp_path / "chain", config(crypto=suite.name), members(suite.name).node) as ch:
        yield ch


@pytest.fixture
def world(chain) -> World:
    return _world(Finance(chain, SECRET))


def _docs(w: World, tag: bytes) -> list[tuple[int, bytes]]:
    t1 = w.p["Tier1"]
    inv, con = t1.anchor(DocType.INVOICE, b"invoice " + tag), t1.anchor(DocType.CONTRACT, b"contract " + tag)
    assert inv.ok and con.ok
    return [(DocType.INVOICE, inv.id), (DocType.CONTRACT, con.id)]


def _key(w: World, name: str) -> bytes:
    return w.p[name].pk


def _submit(chain: Chain, keys, tx: txcodec.Tx) -> int:
    """Admission's code, or the receipt's."""
    sub = chain.submit([keys.sign_tx(tx).encode()])
    return int(sub.codes[0]) or sub.wait(10)[0].code


def _payload(chain: Chain, result) -> bytes:
    found = chain.tx(result.tx_id)
    assert found is not None
    return txcodec.decode(found[2]).payload


# --- the sealing, per suite ---------------------------------------------------------------


def test_each_suite_seals_openings_its_own_way_for_its_recipient_only(suite):
    keys = members(suite.name).keys
    t1, t2 = keys["Tier1"], keys["Tier2"]
    assert ca.sealed_bytes(suite) == SEALED[suite.name] and ca.SEALED_BYTES == SEALED[ED25519_BLAKE3.name]
    opening = ca.fresh_opening(FACE)
    sealed = ca.seal(opening, t1.public_key, suite)
    assert len(sealed) == SEALED[suite.name]
    assert ca.unseal(sealed, t1) == opening
    assert ca.unseal(ca.seal(opening, t1.public_key, suite), t1) == opening  # fresh randomness each time
    assert ca.seal(opening, t1.public_key, suite) != sealed
    assert ca.unseal(sealed, t2) is None  # another recipient opens nothing
    assert ca.unseal(sealed, members(other_suite(suite).name).keys["Tier1"]) is None  # the other suite's key
    for i in (0, 40, len(sealed) - 1):  # damaged anywhere
        damaged = bytearray(sealed)
        damaged[i] ^= 1
        assert ca.unseal(bytes(damaged), t1) is None
    if suite is SM2_SM3:
        # SM2 public-key encryption (C1 compressed || C3 || C2) to the x-only key, which the
        # SM2 secret of the key pair's seed decrypts; no sealed box.
        assert sealed[0] in (2, 3)
        secret, public = sm.keypair_from_seed(t1.seed, x_only=True)
        assert public == t1.public_key and sm.decrypt(secret, sealed) == opening.encode()
        assert ca.sealing(suite).open(sealed, t1.seed) == opening.encode()
        not_a_point = next(
            x for i in range(1000) if not suite.is_strong_public_key(x := i.to_bytes(32, "big"))
        )
        with pytest.raises(ValueError, match="not an SM2 public key"):
            ca.seal(opening, not_a_point, suite)
    else:
        assert ca.unseal(sealed, t1.seed) == opening  # a signing seed opens it, as before


def test_every_suite_has_a_sealing_and_record_lengths_name_the_sealed_size():
    sizes = {name: ca.sealed_bytes(suite_for(name)) for name in SUITES}
    assert sizes == SEALED and ca.SEALED_SIZES == tuple(sorted(set(sizes.values())))
    with pytest.raises(ValueError, match="no sealing"):
        ca.sealing("rsa-md5")
    # Records are decoded by length: per record kind, no two sealed sizes give one length.
    lengths: dict[str, dict[int, int]] = {"stored": {}, "offer": {}, "centry": {}}
    for n in ca.SEALED_SIZES:
        for kind, length in (
            ("stored", ca.STORED_BYTES + n),
            ("offer", n),
            ("offer", 2 * n + ca.STORED_BYTES),
            ("centry", 97 + n),
        ):
            assert lengths[kind].setdefault(length, n) == n, (kind, length)
    assert 97 not in lengths["centry"]  # an entry without a sealed opening
    for n in ca.SEALED_SIZES:
        stored = ca.Stored.decode(bytes(range(128)) + b"\x01" * n)
        assert stored.sealed == b"\x01" * n and stored.lo == bytes(range(32))
        offer = ca.Offer.decode(b"\x01" * n + b"\x02" * ca.STORED_BYTES + b"\x03" * n)
        assert (offer.sealed_piece, offer.price, offer.sealed_price) == (
            b"\x01" * n,
            b"\x02" * ca.STORED_BYTES,
            b"\x03" * n,
        )
        assert ca.Offer.decode(b"\x01" * n) == ca.Offer(b"\x01" * n)
        entry = cregistry.CRegistryEntry.decode(bytes(96) + b"\x01" + b"\x04" * n)
        assert entry.closed and entry.sealed == b"\x04" * n
    for bad in (ca.STORED_BYTES + 121, ca.STORED_BYTES):
        with pytest.raises(RecordError):
            ca.Stored.decode(bytes(bad))
    for bad in (121, 2 * 120 + ca.STORED_BYTES + 17):
        with pytest.raises(RecordError):
            ca.Offer.decode(bytes(bad))
    with pytest.raises(RecordError):
        cregistry.CRegistryEntry.decode(bytes(97 + 100))


def test_payload_sizes_grow_by_the_suites_overhead_per_sealed_opening():
    """The same operations built for each suite: identical but for the sealed openings, +65
    bytes each on sm2-sm3 against +48 (17 more per opening); the parsers take the size."""
    regulator, blinded = REGULATOR.public, bytes(range(32))
    built: dict[str, dict[str, bytes]] = {}
    for name in SUITES:
        suite, keys = suite_for(name), members(name).keys
        t1, t2, bank = keys["Tier1"].public_key, keys["Tier2"].public_key, keys["BankA"].public_key
        org, vid, docs = bytes(16), bytes(range(16)), [(DocType.INVOICE, bytes(32))]
        tx, _, parent = cf.cconfirm(
            9, bank, org, 0, org, FACE, MATURITY, docs, blinded, regulator, t1, suite=suite
        )
        split, _, _ = cf.csplit(9, t1, org, 1, vid, vid, parent, [1, 2, FACE - 3], regulator, suite=suite)
        transfer, _ = cf.coffer(9, t1, org, 2, vid, vid, parent, org, t2, regulator, suite=suite)
        discount, _ = cf.coffer(
            9, t1, org, 3, vid, vid, parent, org, bank, regulator, c.OfferKind.DISCOUNT, 5, suite=suite
        )
        asset, _ = cregistry.creg_asset(9, bank, org, 4, blinded, 1000, regulator, t1, suite=suite)
        built[name] = dict(
            cconfirm=tx.payload, csplit=split.payload, transfer=transfer.payload,
            discount=discount.payload, asset=asset.payload,
        )  # fmt: skip
        n = SEALED[name]
        assert len(cf.parse_cconfirm(tx.payload, n).sealed) == n
        assert [len(s) for s in cf.parse_csplit(split.payload, n).sealed] == [n] * 3
        parsed = cf.parse_coffer(discount.payload, n)
        assert len(parsed.sealed_piece) == len(parsed.sealed_price) == n and parsed.price is not None
        assert len(cf.parse_coffer(transfer.payload, n).sealed_piece) == n
        assert len(cregistry.parse_asset(asset.payload, n).sealed) == n
        # Read with the other suite's size, none of them parses.
        m = SEALED[other_suite(suite).name]
        for parse, payload in (
            (cf.parse_cconfirm, tx.payload),
            (cf.parse_csplit, split.payload),
            (cf.parse_coffer, transfer.payload),
            (cf.parse_coffer, discount.payload),
            (cregistry.parse_asset, asset.payload),
        ):
            with pytest.raises(ValueError):
                parse(payload, m)
    ed, sm2 = built[ED25519_BLAKE3.name], built[SM2_SM3.name]
    per_opening = {"cconfirm": 1, "csplit": 3, "transfer": 1, "discount": 2, "asset": 1}
    for op, n in per_opening.items():
        assert len(sm2[op]) - len(ed[op]) == n * (65 - 48), op
    assert len(sm2["transfer"]) == cf._COFFER.size + 137 and len(ed["transfer"]) == cf._COFFER.size + 120


# --- the lifecycle on a chain of each suite -------------------------------------------------


def test_the_confidential_lifecycle_works_in_each_suite(chain, world, suite, tmp_path):
    fin = world.fin
    core, t1, t2, t3, bank = (world.p[n] for n in ("CoreCo", "Tier1", "Tier2", "Tier3", "BankA"))
    n = SEALED[suite.name]
    # Issue: the face's opening sealed to Tier1's key, in the suite's way.
    r = core.cconfirm(world.org("Tier1"), FACE, MATURITY, _docs(world, b"c1"), _key(world, "Tier1"))
    assert r.ok, r.code
    vid = r.id
    stored = fin.camount(vid)
    assert len(stored.sealed) == n and len(cf.parse_cconfirm(_payload(chain, r), n).sealed) == n
    assert t1.opening(vid).amount == FACE == r.openings[0].amount
    assert bank.opening(vid) is None and core.opening(vid) is None and t2.opening(vid) is None
    assert ca.regulator_read(stored.amount, REGULATOR.secret) == FACE
    # Split, and a split of a piece from the opening the chain keeps for its holder.
    s = t1.csplit(vid, PIECES)
    assert s.ok, s.code
    a, b = s.ids
    assert [t1.opening(k).amount for k in s.ids] == PIECES
    assert [len(fin.camount(k).sealed) for k in s.ids] == [n, n]
    s2 = t1.csplit(b, [PIECES[1] - 1000, 1000])
    assert s2.ok, s2.code
    b1, b2 = s2.ids
    # A transfer: Tier2 gets the opening sealed to its key; Tier3 (not the recipient) cannot open it.
    assert t1.coffer(a, world.org("Tier2"), _key(world, "Tier2")).ok
    offer = ca.Offer.decode(fin.get(c.coffer_key(a)))
    assert len(offer.sealed_piece) == n and not offer.price
    assert ca.unseal(offer.sealed_piece, t2.keys).amount == PIECES[0]
    assert ca.unseal(offer.sealed_piece, t3.keys) is None and ca.unseal(offer.sealed_piece, t1.keys) is None
    with pytest.raises(ValueError, match="not sealed to this key"):
        t3.offer_openings(a)
    assert t2.accept(a).ok and t2.opening(a).amount == PIECES[0] and t1.opening(a) is None
    # A discount at a hidden price: the bank checks both openings, the regulator reads the price.
    price = PIECES[0] - 500
    r = t2.coffer(a, world.org("BankA"), _key(world, "BankA"), c.OfferKind.DISCOUNT, price)
    assert r.ok, r.code
    offer = ca.Offer.decode(fin.get(c.coffer_key(a)))
    assert len(offer.sealed_piece) == len(offer.sealed_price) == n
    assert [o.amount for o in bank.offer_openings(a)] == [PIECES[0], price]
    assert ca.regulator_read(offer.price, REGULATOR.secret) == price
    assert bank.accept(a).ok and bank.opening(a).amount == PIECES[0]
    blinded = fin.voucher(vid).blinded
    counted = fin.centry(blinded).financed
    assert counted == conf.commitment_lincomb([fin.camount(a).lo, fin.camount(a).hi], [1, 1 << 32])
    # A pledge, then its release: counted, then given back; the pledgor keeps its opening.
    assert t1.coffer(b1, world.org("BankA"), _key(world, "BankA"), c.OfferKind.PLEDGE, 10, MATURITY - 1).ok
    assert bank.accept(b1).ok and t1.opening(b1).amount == PIECES[1] - 1000
    assert bank.release(b1).ok and fin.centry(blinded).financed == counted
    # An offer made with a wrong opening is refused by the offeree's client; returned.
    wrong = dataclasses.replace(t1.opening(b2), amount=999)
    assert t1.coffer(b2, world.org("Tier3"), _key(world, "Tier3"), opening=wrong).ok
    with pytest.raises(ValueError, match="does not open the piece"):
        t3.accept(b2)
    assert t3.return_offer(b2).ok and fin.get(c.coffer_key(b2)) is None
    # The confidential registry: register, finance within the value (the owner's proofs), release.
    order = fin.blind("purchase order", b"PO-" + suite.name.encode())
    assert world.p["Depot"].creg_asset(order, 10 * FACE, _key(world, "Tier1")).ok
    assert len(fin.centry(order).sealed) == n
    book = cregistry.OwnerBook(t1.asset_opening(order))
    assert book.value.amount == 10 * FACE and bank.asset_opening(order) is None
    package, loan = t1.finance_package(_key(world, "BankA"), order, b"loan", 4 * FACE, book)
    assert bank.creg_finance(package).ok
    book.financings[b"loan"] = loan
    with pytest.raises(ValueError, match="does not fit"):
        t1.finance_package(_key(world, "BankB"), order, b"more", 6 * FACE + 1, book)
    ref = c.financing_key(
        c.financing_ref_digest(order, world.org("BankA"), b"loan".ljust(32, b"\0"), suite=suite)
    )
    assert ca.regulator_read(fin.get(ref), REGULATOR.secret) == 4 * FACE
    assert bank.creg_release(order, b"loan").ok and fin.get(ref) is None
    # A disclosure: Tier1 proves the total of its live pieces from the openings it unseals.
    mine = [b1, b2]
    openings = [t1.opening(k) for k in mine]
    total = dz.disclose_total([o.amount for o in openings], [o.opening for o in openings])
    commitments = [
        conf.commitment_lincomb([fin.camount(k).lo, fin.camount(k).hi], [1, 1 << 32]) for k in mine
    ]
    assert total.total == PIECES[1] and dz.verify_total(commitments, total)
    # The regulator's lineage reads every amount; another key none.
    seen = cf.regulator_lineage(fin.get, vid, REGULATOR.secret, suite=suite)
    assert seen["voucher"]["face"] == FACE
    assert [d["amount"] for d in seen["descendants"]] == [*PIECES, PIECES[1] - 1000, 1000]
    other_key = conf.elgamal_keypair(b"not the regulator".ljust(32, b"\0")).secret
    assert cf.regulator_lineage(fin.get, vid, other_key, suite=suite)["voucher"]["face"] is None
    # Re-execution from genesis re-checks every proof in the chain's suite; the CLI reads it.
    chain.close()
    report = verify_chain(tmp_path / "chain")
    assert report.ok, report.problems
    out = CliRunner(env={"REG_SEED": REGULATOR_SEED.hex()}).invoke(
        main, ["finance", "lineage", str(tmp_path / "chain"), b1.hex(), "--regulator-seed-env", "REG_SEED"]
    )
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["piece"]["amount"] == PIECES[1] - 1000


def test_settlement_and_a_defaulted_pledge_in_each_suite(suite):
    ledger = MemLedger(config(crypto=suite.name))
    fin = Finance(ledger, SECRET)
    w = _world(fin)
    core, t1, t2, bank = w.p["CoreCo"], w.p["Tier1"], w.p["Tier2"], w.p["BankA"]
    vid = core.cconfirm(w.org("Tier1"), FACE, MATURITY, _docs(w, b"s"), _key(w, "Tier1")).check().id
    a, b = t1.csplit(vid, PIECES).check().ids
    assert t1.coffer(a, w.org("Tier2"), _key(w, "Tier2")).ok and t2.accept(a).ok
    due = ledger.timestamp_ms + 1000
    assert t1.coffer(b, w.org("BankA"), _key(w, "BankA"), c.OfferKind.PLEDGE, 10, due).ok
    assert bank.accept(b).ok
    ledger.timestamp_ms = due
    assert bank.default_transfer(b).ok  # the lender takes the piece, and its opening
    assert bank.opening(b).amount == PIECES[1] and t1.opening(b) is None
    ledger.timestamp_ms = MATURITY + 1
    (r,) = core.settle(vid)
    assert r.ok, r.code
    assert fin.voucher(vid).status == c.VoucherStatus.SETTLED
    _, _, rows = ca.decode_cclearing(fin.get(c.clearing_key(vid, 0)))
    holders = {a: t2, b: bank}
    assert {pid for pid, _, _ in rows} == set(holders)
    for pid, org, amount in rows:
        assert org == fin.piece(pid).holder
        opening = holders[pid].opening(pid)
        assert opening.matches((amount[:32], amount[32:64]))
        assert ca.regulator_read(amount, REGULATOR.secret) == opening.amount
    assert cregistry.CRegistryEntry.decode(fin.get(c.cregistry_key(fin.voucher(vid).blinded))).closed


# --- sealed openings of the wrong size ---------------------------------------------------------


def _resealed(payload: bytes, starts: list[int], old: int, new: int) -> bytes:
    """``payload`` with its sealed openings at ``starts`` (of ``old`` bytes) replaced by
    ``new`` bytes of garbage each."""
    out, at = b"", 0
    for start in starts:
        out += payload[at:start] + b"\x5a" * new
        at = start + old
    return out + payload[at:]


def test_a_sealed_opening_of_the_wrong_size_is_refused_and_changes_nothing(chain, world, suite):
    """Sealed openings of the other suite's size or of no suite's: admission reads the payload
    with its chain's sealed size only, the payload does not parse so, and it is refused
    (BAD_PROOF) before anything executes."""
    fin, t1, core, depot = world.fin, world.p["Tier1"], world.p["CoreCo"], world.p["Depot"]
    n, m = SEALED[suite.name], SEALED[other_suite(suite).name]
    chain_id, regulator = chain.config.chain_id, REGULATOR.public
    vid = (
        core.cconfirm(world.org("Tier1"), FACE, MATURITY, _docs(world, b"w"), _key(world, "Tier1")).check().id
    )
    parent = t1.opening(vid)
    watched = (
        c.piece_key(vid),
        c.camount_key(vid),
        c.coffer_key(vid),
        c.piece_key(c.child_id(vid, 0, suite=suite)),
    )
    before = [fin.get(k) for k in watched]
    docs = _docs(world, b"w2")
    blinded, order = fin.blind_invoice(docs[0][1]), fin.blind("purchase order", b"wrong size")

    def attempt(party, build, starts_of, size: int) -> int:
        """Build the tx at the party's nonce (its proofs are bound to it), give its sealed
        openings ``size`` bytes, submit."""
        tx = build(chain.nonce(party.pk))
        bad = dataclasses.replace(tx, payload=_resealed(tx.payload, starts_of(tx.payload), n, size))
        return _submit(chain, party.keys, bad)

    def cconfirm(nonce):
        return cf.cconfirm(
            chain_id, core.pk, world.org("CoreCo"), nonce, world.org("Tier1"), FACE, MATURITY, docs,
            blinded, regulator, _key(world, "Tier1"), suite=suite,
        )[0]  # fmt: skip

    def csplit(nonce):
        return cf.csplit(
            chain_id, t1.pk, world.org("Tier1"), nonce, vid, vid, parent, PIECES, regulator, suite=suite
        )[0]

    def discount(nonce):
        return cf.coffer(
            chain_id, t1.pk, world.org("Tier1"), nonce, vid, vid, parent, world.org("BankA"),
            _key(world, "BankA"), regulator, c.OfferKind.DISCOUNT, 1000, suite=suite,
        )[0]  # fmt: skip

    def creg_asset(nonce):
        return cregistry.creg_asset(
            chain_id,
            depot.pk,
            world.org("Depot"),
            nonce,
            order,
            1000,
            regulator,
            _key(world, "Tier1"),
            suite=suite,
        )[0]

    def at_end(k: int):
        return lambda payload: [len(payload) - (k - i) * n for i in range(k)]

    cases = (  # the sealed openings: at the end, or (a discount) one before the price and its proofs
        (core, cconfirm, at_end(1)),
        (t1, csplit, at_end(2)),
        (t1, discount, lambda payload: [cf._COFFER.size, len(payload) - n]),
        (depot, creg_asset, at_end(1)),
    )
    for party, build, starts_of in cases:
        for size in (m, n - 1, n + 1, 0):
            assert attempt(party, build, starts_of, size) == Reject.BAD_PROOF
    assert [fin.get(k) for k in watched] == before
    assert fin.centry(blinded) is None and fin.centry(order) is None
    # A damaged proof in the chain's own layout is refused at admission too.
    tx = discount(chain.nonce(t1.pk))
    damaged = bytearray(tx.payload)
    damaged[len(tx.payload) - n - 40] ^= 1  # inside the "price <= amount" proof
    assert _submit(chain, t1.keys, dataclasses.replace(tx, payload=bytes(damaged))) == Reject.BAD_PROOF
    # The right size goes through (an offer at the right size: the lifecycle test).
    for party, build, _ in (cases[0], cases[1], cases[3]):
        assert _submit(chain, party.keys, build(chain.nonce(party.pk))) == Reject.OK
    assert fin.piece(c.child_id(vid, 0, suite=suite)) is not None and fin.centry(order) is not None


def test_admission_reads_the_payload_with_the_chains_sealed_size():
    """The admission check is given the chain's suite (``BatchCheck``): it reads a payload
    with that suite's sealed size only, so an offer made for one suite passes on a chain of
    that suite and is refused (``BAD_PROOF``: it does not parse) on the other's; a damaged
    proof is refused in either; a payload without a sealed opening reads alike in both."""
    opening = ca.fresh_opening(FACE)
    for name in SUITES:
        suite, other = suite_for(name), next(suite_for(n) for n in SUITES if n != name)
        k = members(name).keys
        tier1, t1, bank = k["Tier1"], k["Tier1"].public_key, k["BankA"].public_key
        vid = bytes(range(16))
        offer, _ = cf.coffer(
            9, t1, bytes(16), 5, vid, vid, opening, bytes(16), bank, REGULATOR.public,
            c.OfferKind.DISCOUNT, 1000, suite=suite,
        )  # fmt: skip
        flipped = bytearray(offer.payload)
        flipped[len(flipped) - ca.sealed_bytes(suite) - 40] ^= 1  # inside the "price <= amount" proof
        damaged = dataclasses.replace(offer, payload=bytes(flipped))
        batch = decode_batch(
            txcodec.frame([tier1.sign_tx(t).encode() for t in (offer, damaged)]), suite=suite
        )
        rows = np.array([0, 1])
        assert cf._check(batch, rows, suite) == [0, Reject.BAD_PROOF]
        assert cf._check(batch, rows, other) == [Reject.BAD_PROOF] * 2
        assert cf.proof_row(c.OP_COFFER, offer.payload, 9, t1, 5, ca.sealed_bytes(other)) is None
        book = cregistry.OwnerBook(opening)
        entry = cregistry.CRegistryEntry(
            *[conf.commit(v, r) for v, r in zip(opening.limbs, (opening.r_lo, opening.r_hi), strict=True)]
        )
        package, _ = cregistry.finance_package(9, bank, bytes(32), b"ref", 10, book, entry, REGULATOR.public)
        rows_alike = [
            cf.proof_row(c.OP_CREG_FINANCE, package, 9, bank, 0, ca.sealed_bytes(s)) for s in (suite, other)
        ]
        assert rows_alike[0] is not None and rows_alike[0] == rows_alike[1]
        assert ca.verify_rows(rows_alike) == [True, True]
