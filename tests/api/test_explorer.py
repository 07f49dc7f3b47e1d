"""The web explorer (tierchain.api.explorer; docs/api.md, "The explorer"), served by the node.

In headless Chromium (Debian's ``chromium`` and ``chromium-driver``, driven by Selenium with
both paths given, so nothing is downloaded): a voucher's lineage page shows every piece of
the chain's voucher with its amount and holder, a verify button proves a piece against the
head's signed header, and the block and transaction pages show the decoded op. Over plain
HTTP: the verify endpoint's transcripts for a state key, a named fact, a transaction and a
header, its refusals, and the same checks failing on every flipped byte of a proof; the
``finance.orgs`` and ``abs.pool`` endpoints the pages read.

Without the browser (``make browser`` installs it) the browser test is skipped, except in CI
(``CI`` set), where it fails.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import shutil
import time
from collections import deque
from pathlib import Path

import pytest

from conftest import small_config
from finance_world import NODE, ORGS, SECRET, World, admit_all, config, issue_voucher, kp, members
from tierchain.api import explorer
from tierchain.api.auth import Authenticator
from tierchain.api.rpc import NodeClient, NodeServer, RpcError
from tierchain.apps.finance import codes as c
from tierchain.apps.finance.client import Finance
from tierchain.apps.finance.views import orgs_page_max
from tierchain.engine.chain import Chain

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT_S = 15  # the longest any one browser wait may take
FACE = 1_000_000


@dataclasses.dataclass
class Scene:
    chain: Chain
    w: World
    voucher: bytes
    split_tx: bytes
    url: str
    port: int

    def org_name(self, org_id: bytes) -> str:
        return c.OrgRecord.decode(self.chain.state_get(c.org_key(org_id))).name.decode()

    def pieces(self) -> dict[bytes, c.Piece]:
        """Every piece of the voucher, walking the chain's index from the root."""
        out, queue = {}, deque([self.voucher])
        while queue:
            pid = queue.popleft()
            p = c.Piece.decode(self.chain.state_get(c.piece_key(pid)))
            out[pid] = p
            queue.extend(c.child_id(pid, i, suite=self.chain.suite) for i in range(p.children))
        return out


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A finance chain with one voucher confirmed, split, transferred down two tiers,
    discounted, pledged and settled; its node on loopback."""
    with Chain(tmp_path_factory.mktemp("explorer") / "chain", config(), NODE) as chain:
        w = admit_all(Finance(chain, SECRET))
        maturity = int(time.time() * 1000) + 1500
        vid, _ = issue_voucher(w, FACE, maturity)
        t1, t2, t3 = w.p["Tier1"], w.p["Tier2"], w.p["Tier3"]
        split = t1.split(vid, [600_000, 400_000]).check()
        keep1, down1 = split.ids
        t1.transfer(down1, w.org("Tier2")).check()
        w.p["Tier2"].accept(down1).check()
        _, down2 = t2.split(down1, [250_000, 150_000]).check().ids
        t2.transfer(down2, w.org("Tier3")).check()
        t3.accept(down2).check()
        t3.discount(down2, w.org("BankA"), 145_000).check()
        w.p["BankA"].accept(down2).check()
        t1.pledge(keep1, w.org("BankB"), 500_000, maturity + 60_000).check()
        w.p["BankB"].accept(keep1).check()
        time.sleep(max(0.0, maturity - time.time() * 1000) / 1000 + 0.05)
        assert [r.code.name for r in w.p["CoreCo"].settle(vid)] == ["OK"]
        srv = NodeServer(chain, "127.0.0.1", 0)
        srv.start()
        try:
            port = srv.address[1]
            yield Scene(chain, w, vid, split.tx_id, f"http://127.0.0.1:{port}", port)
        finally:
            srv.stop()


def get(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request(method, path, body=b"{}" if method == "POST" else None)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def verify(port: int, query: str) -> tuple[int, dict]:
    status, _, body = get(port, f"/explorer/verify?{query}")
    return status, json.loads(body)


def amount_text(n: int) -> str:
    return f"{n:,}"


# --- the browser -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("selenium (the dev extra)")
    if missing:
        why = f"no {', '.join(missing)}: `make browser` installs Debian's chromium and chromium-driver"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)  # Debian's: Selenium Manager is never asked
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1920,1200", "--no-first-run", "--disable-extensions"):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        driver.set_page_load_timeout(WAIT_S)
        driver.set_script_timeout(WAIT_S)
        yield driver
    finally:
        driver.quit()


def open_page(driver, url: str, route: str):
    """Open ``url`` and wait (bounded) until its page has rendered; answer the view."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    view = WebDriverWait(driver, WAIT_S).until(
        lambda d: (
            (v := d.find_element(By.ID, "view")).get_attribute("data-route") == route
            and v.get_attribute("data-state") in ("ready", "error")
            and v
        )
    )
    assert view.get_attribute("data-state") == "ready", view.text
    return view


def verified_transcript(driver, button) -> object:
    """Click a verify button; wait (bounded) for its transcript; answer the panel."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    button.click()
    panel = WebDriverWait(driver, WAIT_S).until(
        lambda d: (
            (p := d.find_element(By.ID, "transcript")).get_attribute("data-state") in ("done", "error") and p
        )
    )
    return panel


def save_screenshot(driver, tmp_path: Path, name: str) -> Path:
    """The page from its top, saved under the test's tmp dir (and ``TIERCHAIN_ARTIFACTS``)."""
    driver.execute_script("window.scrollTo(0, 0)")
    path = tmp_path / name
    assert driver.save_screenshot(str(path)) and path.stat().st_size > 10_000
    if os.environ.get("TIERCHAIN_ARTIFACTS"):
        target = Path(os.environ["TIERCHAIN_ARTIFACTS"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target / name)
    return path


def test_the_lineage_page_shows_the_chains_voucher_and_verifies_it(scene, browser, tmp_path):
    from selenium.webdriver.common.by import By

    driver = browser
    vid = scene.voucher
    pieces = scene.pieces()
    assert len(pieces) == 5  # the root, two children, and the second tier's two
    view = open_page(driver, f"{scene.url}/explorer/#/voucher/{vid.hex()}", "voucher")

    # the graph: every piece of the chain, with its amount and its holder's name
    nodes = view.find_elements(By.CSS_SELECTOR, "svg.graph g.node.kind-piece")
    shown = {n.get_attribute("data-piece"): n for n in nodes}
    assert set(shown) == {pid.hex() for pid in pieces}
    for pid, p in pieces.items():
        node = shown[pid.hex()]
        assert int(node.get_attribute("data-amount")) == p.amount
        assert node.get_attribute("data-holder") == scene.org_name(p.holder)
        assert amount_text(p.amount) in node.get_attribute("textContent")
    # the same in the pieces table, as a reader sees it
    for pid, p in pieces.items():
        row = view.find_element(By.CSS_SELECTOR, f"table.pieces tr[data-piece='{pid.hex()}']")
        assert row.find_element(By.CSS_SELECTOR, "td.amount").text == amount_text(p.amount)
        assert row.find_element(By.CSS_SELECTOR, "td.holder").text == scene.org_name(p.holder)
    # root confirmation -> pieces -> holders -> financings -> settlement, with the documents
    kinds = lambda k: view.find_elements(By.CSS_SELECTOR, f"svg.graph g.node.kind-{k}")  # noqa: E731
    assert len(kinds("voucher")) == 1 and {n.get_attribute("data-type") for n in kinds("doc")} == {
        "INVOICE",
        "CONTRACT",
    }
    live = {scene.org_name(p.holder) for p in pieces.values() if p.state != c.PieceState.SPLIT}
    assert {n.get_attribute("data-holder") for n in kinds("holder")} == live == {"Tier1", "Tier2", "BankA"}
    assert sorted(n.get_attribute("data-event") for n in kinds("financing")) == ["DISCOUNTED", "PLEDGED"]
    paid = sum(amount for _, _, amount in scene.w.fin.clearing(vid, 0))
    assert sum(int(n.get_attribute("data-amount")) for n in kinds("settlement")) == paid == FACE
    assert len(view.find_elements(By.CSS_SELECTOR, "svg.graph path.edge")) >= len(pieces) + 2

    # select the tier-3 piece in the graph and verify it
    down2 = next(pid for pid, p in pieces.items() if p.amount == 150_000)
    shown[down2.hex()].click()
    details = view.find_element(By.CSS_SELECTOR, f"#selected .details[data-piece='{down2.hex()}']")
    button = details.find_element(By.CSS_SELECTOR, "button.verify[data-verify^='fact=piece']")
    panel = verified_transcript(driver, button)
    assert panel.get_attribute("data-verified") == "true", panel.text
    assert "✓ verified" in panel.text and "NOT verified" not in panel.text and "null" not in panel.text
    assert f"fx/{down2.hex()}" in panel.text
    checks = panel.find_elements(By.CSS_SELECTOR, "ol.checks li")
    assert len(checks) >= 5 and all(li.get_attribute("data-ok") == "true" for li in checks)
    height = scene.chain.height
    header = scene.chain.header(
        int(panel.find_element(By.XPATH, ".//dt[.='height']/following-sibling::dd[1]").text)
    )
    assert header is not None and header.height <= height
    assert header.hash(scene.chain.suite).hex() in panel.text and NODE.public_key.hex() in panel.text
    assert button.get_attribute("data-result") == "verified"
    save_screenshot(driver, tmp_path, "explorer-lineage.png")

    # a block and a transaction: the decoded op, as the chain's apps name it
    found = scene.chain.tx(scene.split_tx)
    assert found is not None
    block_height, _, raw, _ = found
    from tierchain.wire import tx as txcodec

    op_name = scene.chain.apps.ops[txcodec.decode(raw).op].name
    assert op_name == "fin.split"
    view = open_page(driver, f"{scene.url}/explorer/#/block/{block_height}", "block")
    row = view.find_element(By.CSS_SELECTOR, f"table.txs tr[data-tx='{scene.split_tx.hex()}']")
    assert row.find_element(By.CSS_SELECTOR, "td.op").text == op_name
    panel = verified_transcript(
        driver, view.find_element(By.CSS_SELECTOR, "button.verify[data-verify^='height=']")
    )
    assert panel.get_attribute("data-verified") == "true", panel.text
    view = open_page(driver, f"{scene.url}/explorer/#/tx/{scene.split_tx.hex()}", "tx")
    assert view.find_element(By.CSS_SELECTOR, "span.op").text == op_name
    assert view.find_element(By.CSS_SELECTOR, ".receipt .code").text == "OK"
    panel = verified_transcript(
        driver, view.find_element(By.CSS_SELECTOR, "button.verify[data-verify^='tx=']")
    )
    assert panel.get_attribute("data-verified") == "true", panel.text
    assert "OK" in panel.text  # the proven receipt's code
    save_screenshot(driver, tmp_path, "explorer-tx.png")

    # a piece deeper down: the whole voucher, that piece outlined
    view = open_page(driver, f"{scene.url}/explorer/#/voucher/{down2.hex()}", "voucher")
    nodes = view.find_elements(By.CSS_SELECTOR, "svg.graph g.node.kind-piece")
    assert {n.get_attribute("data-piece") for n in nodes} == {pid.hex() for pid in pieces}
    focus = view.find_elements(By.CSS_SELECTOR, "svg.graph g.node.focus")
    assert [n.get_attribute("data-piece") for n in focus] == [down2.hex()]

    # amounts beyond 2^53 are read exactly (the apps' endpoints answer exact JSON integers)
    exact = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "import('./api.js').then((m) => done(String(m.parseExact('{\"a\": 9223372036854775807}').a)),"
        " (e) => done('error ' + e));"
    )
    assert exact == str((1 << 63) - 1)

    # the organizations, with their roles
    view = open_page(driver, f"{scene.url}/explorer/#/orgs", "orgs")
    rows = {
        r.get_attribute("data-name"): r.find_element(By.CSS_SELECTOR, "td.roles").text
        for r in view.find_elements(By.CSS_SELECTOR, "table.orgs tr[data-org]")
    }
    assert rows == {name: ", ".join(roles) for name, roles in ORGS.items()}

    severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe


# --- plain HTTP ------------------------------------------------------------------------------


def test_the_explorer_is_served_with_a_strict_policy(scene):
    status, headers, body = get(scene.port, "/explorer/")
    assert status == 200 and headers["content-type"].startswith("text/html") and b"app.js" in body
    assert "script-src 'self'" in headers["content-security-policy"] and headers["x-request-id"]
    assert (
        get(scene.port, "/explorer")[:2][0] == 308
        and get(scene.port, "/explorer")[1]["location"] == "/explorer/"
    )
    status, headers, body = get(scene.port, "/explorer/graph.js")
    assert status == 200 and headers["content-type"].startswith("text/javascript") and b"export" in body
    for path in (
        "/explorer/nope.js",
        "/explorer/../pyproject.toml",
        "/explorer/%2e%2e/rpc.py",
        "/explorer/a/b.js",
    ):
        status, _, body = get(scene.port, path)
        assert status == 404 and json.loads(body)["error"] == "NOT_FOUND", path
    status, _, body = get(scene.port, "/explorer/verify", "POST")
    assert status == 400 and json.loads(body)["error"] == "METHOD_NOT_ALLOWED"


def test_a_fact_verifies_against_the_signed_head(scene):
    chain, suite = scene.chain, scene.chain.suite
    status, t = verify(scene.port, f"fact=piece&id={scene.voucher.hex()}")
    assert status == 200 and t["verified"] is True and t["found"] is True, t
    assert t["key"] == c.piece_key(scene.voucher).hex() and t["key_text"] == f"fx/{scene.voucher.hex()}"
    assert [x["ok"] for x in t["checks"]] == [True] * 6
    header = chain.header(t["height"])
    assert t["header_hash"] == header.hash(suite).hex() and t["state_root"] == header.state_root.hex()
    assert t["proposer"] == NODE.public_key.hex() and t["recomputed_root"] == t["state_root"]
    value = chain.state_get(c.piece_key(scene.voucher))
    from tierchain import proofs

    assert t["value_digest"] == proofs.value_hash(value, suite=suite.name).hex()
    assert t["decoded"]["amount"] == str(FACE) and t["decoded"]["holder"]["name"] == "Tier1"
    assert t["decoded"]["state"] == "SPLIT"
    # the same record by its raw key; an organization by name and by id; an absent key
    assert verify(scene.port, f"key={t['key']}")[1]["value_digest"] == t["value_digest"]
    by_name = verify(scene.port, "fact=org&name=BankA")[1]
    by_id = verify(scene.port, f"fact=org&id={scene.w.org('BankA').hex()}")[1]
    assert by_name["verified"] and by_name["key"] == by_id["key"] and by_id["decoded"]["roles"] == ["bank"]
    key_t = verify(scene.port, f"fact=orgkey&id={members().keys['BankA'].public_key.hex()}")[1]
    assert key_t["verified"] and key_t["decoded"] == {
        "record": "key",
        "org": {"id": scene.w.org("BankA").hex(), "name": "BankA"},
        "status": "ACTIVE",
    }
    doc = scene.w.fin.voucher(scene.voucher).docs[0]
    doc_t = verify(scene.port, f"fact=doc&type={c.DocType(doc[0]).name}&id={doc[1].hex()}")[1]
    assert doc_t["verified"] and doc_t["found"] and doc_t["decoded"]["anchored_by"]["name"] == "Tier1"
    clearing = verify(scene.port, f"fact=clearing&id={scene.voucher.hex()}&batch=0")[1]
    assert clearing["verified"] and clearing["decoded"]["paid"] == str(FACE)
    absent = verify(scene.port, f"fact=voucher&id={bytes(16).hex()}")[1]
    assert absent["verified"] is True and absent["found"] is False and absent["value_digest"] is None


def test_the_national_suite_verifies_too(tmp_path):
    """An SM2/SM3 chain: the transcript hashes and checks signatures in the chain's suite."""
    crypto = "sm2-sm3"
    m = members(crypto)
    with Chain(tmp_path / "chain", config(crypto=crypto), m.node) as chain:
        fin = Finance(chain, SECRET)
        fin.party(m.node).propose_admit("BankA", ("bank",), m.keys["BankA"].public_key).check()
        srv = NodeServer(chain, "127.0.0.1", 0)
        srv.start()
        try:
            t = verify(srv.address[1], "fact=org&name=BankA")[1]
            assert t["verified"] and t["suite"] == crypto and t["decoded"]["name"] == "BankA", t
            assert t["key"] == c.org_key(fin.org_id("BankA")).hex()
            assert t["proposer"] == m.node.public_key.hex()
            assert verify(srv.address[1], f"height={chain.height}")[1]["verified"]
        finally:
            srv.stop()


def test_a_transaction_and_a_header_verify(scene):
    status, t = verify(scene.port, f"tx={scene.split_tx.hex()}")
    assert status == 200 and t["verified"] and t["receipt_code"] == "OK", t
    height = scene.chain.tx(scene.split_tx)[0]
    assert t["height"] == height and t["tx_root"] == scene.chain.header(height).tx_root.hex()
    status, t = verify(scene.port, f"height={height}")
    assert status == 200 and t["verified"] and len(t["checks"]) == 3, t
    assert verify(scene.port, "height=0")[1]["verified"]


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("", 400, "BAD_ARGUMENT"),
        ("key=zz", 400, "BAD_ARGUMENT"),
        ("key=00&tx=00", 400, "BAD_ARGUMENT"),
        ("key=00&key=01", 400, "BAD_ARGUMENT"),
        ("fact=piece&id=00", 400, "BAD_ARGUMENT"),
        ("fact=nothing&id=00", 400, "BAD_ARGUMENT"),
        ("fact=piece&id=" + "00" * 16 + "&batch=1", 400, "BAD_ARGUMENT"),
        ("fact=doc&type=NOPE&id=" + "00" * 32, 400, "BAD_ARGUMENT"),
        ("tx=" + "00" * 32, 404, "NO_SUCH_TX"),
        ("height=99999999", 404, "NO_SUCH_BLOCK"),
        ("height=99999999999999999999", 400, "BAD_ARGUMENT"),
        ("height=-1", 400, "BAD_ARGUMENT"),
        ("key=" + "00" * 65, 400, "BAD_ARGUMENT"),
    ],
)
def test_verify_refuses_what_it_cannot_check(scene, query, status, code):
    got, body = verify(scene.port, query)
    assert (got, body["error"]) == (status, code), body


def test_a_tampered_proof_or_header_is_reported_not_verified(scene):
    """The transcript's checks are real: flip any one byte of a proof, or of the header, and
    the same function says NOT verified."""
    chain, suite = scene.chain, scene.chain.suite
    key = c.piece_key(scene.voucher)
    height = chain.height
    header = chain.header(height).encode()
    proof = chain.prove_state(key, height).encode(suite=suite.name)
    assert explorer.state_transcript(suite, key, header, proof)["verified"]
    for i in range(len(proof)):
        bad = bytearray(proof)
        bad[i] ^= 0x01
        t = explorer.state_transcript(suite, key, header, bytes(bad))
        assert t["verified"] is False, i
    for i in (0, 40, len(header) - 70, len(header) - 1):  # a header field, the root, the signature
        bad = bytearray(header)
        bad[i] ^= 0x80
        t = explorer.state_transcript(suite, key, bytes(bad), proof)
        assert t["verified"] is False, i
    sig = explorer.state_transcript(suite, key, header[:-1] + bytes([header[-1] ^ 1]), proof)
    assert [x["check"] for x in sig["checks"] if not x["ok"]] == ["the header is signed by its proposer"]
    other = explorer.state_transcript(suite, c.piece_key(bytes(16)), header, proof)
    assert not other["verified"] and not next(x for x in other["checks"] if "this key" in x["check"])["ok"]

    tx_proof = chain.prove_tx(scene.split_tx)
    tx_header = chain.header(tx_proof.height).encode()
    encoded = tx_proof.encode()
    assert explorer.tx_transcript(suite, scene.split_tx, tx_header, encoded)["verified"]
    for i in range(len(encoded)):
        bad = bytearray(encoded)
        bad[i] ^= 0x01
        assert explorer.tx_transcript(suite, scene.split_tx, tx_header, bytes(bad))["verified"] is False, i
    prev = chain.header(tx_proof.height - 1).encode()
    assert explorer.header_transcript(suite, tx_header, prev)["verified"]
    assert not explorer.header_transcript(suite, tx_header, tx_header)["verified"]  # not its parent


def test_verify_is_an_api_call_refused_unsigned_where_calls_must_be_signed(tmp_path):
    with Chain(tmp_path / "chain", small_config(), NODE) as chain:
        srv = NodeServer(chain, "127.0.0.1", 0, authenticator=Authenticator(chain, required=True))
        srv.start()
        try:
            port = srv.address[1]
            assert get(port, "/explorer/")[0] == 200  # the pages are static
            status, body = verify(port, "height=0")
            assert (status, body["error"]) == (401, "UNAUTHENTICATED")
        finally:
            srv.stop()


# --- the endpoints the pages read --------------------------------------------------------------


def test_finance_orgs_lists_every_organization_a_page_at_a_time(scene):
    client = NodeClient(scene.url, timeout_s=15)
    seen, after, pages = [], None, 0
    while True:
        page = client.app("finance.orgs", {"limit": 3, **({"after": after} if after else {})})
        assert len(page["orgs"]) <= 3 and page["keys_complete"] is True
        seen += page["orgs"]
        pages += 1
        after = page["next"]
        if after is None:
            break
    assert pages == 3 and len(seen) == len(ORGS)
    assert [o["id"] for o in seen] == sorted(o["id"] for o in seen)  # id order, each once
    keys = members().keys
    for o in seen:
        assert ORGS[o["name"]] == tuple(o["roles"]) and o["status"] == "ACTIVE"
        assert o["id"] == scene.w.org(o["name"]).hex() and o["keys"] == [keys[o["name"]].public_key.hex()]
        assert o["keys_active"] == 1 and o["admitted_height"] > 0
    whole = client.app("finance.orgs", {})
    assert [o["id"] for o in whole["orgs"]] == [o["id"] for o in seen] and whole["next"] is None
    for body in ({"limit": 0}, {"limit": orgs_page_max + 1}, {"limit": True}, {"after": "zz"}, {"other": 1}):
        with pytest.raises(RpcError) as err:
            client.app("finance.orgs", body)
        assert err.value.code == "BAD_ARGUMENT", body


@dataclasses.dataclass
class AppsScene:
    chain: Chain
    bill: bytes
    pool: bytes
    assets: list[bytes]
    url: str


@pytest.fixture(scope="module")
def apps_scene(tmp_path_factory):
    """A chain running bills and abs beside finance: a bill issued, endorsed and discounted,
    and an ABS pool of three loans; its node on loopback."""
    from tierchain.apps.abs import codes as ac
    from tierchain.apps.abs.client import Abs
    from tierchain.apps.bills.client import Bills
    from tierchain.apps.bills.codes import BillKind

    apps = ("accounts", "xshard", "finance", "bills", "abs")
    with Chain(tmp_path_factory.mktemp("explorer-apps") / "chain", config(apps=apps), NODE) as chain:
        m = members()
        fin, a, bills = Finance(chain, SECRET), Abs(chain), Bills(chain)
        keys = {**m.keys, "AutoFin": kp("AutoFin"), "ServCo": kp("ServCo")}
        for name in ("CoreCo", "Tier1", "Tier2", "BankA"):
            fin.party(m.node).propose_admit(name, ORGS[name], keys[name].public_key).check()
        for name, roles in {"AutoFin": ("originator", "servicer"), "ServCo": ("servicer",)}.items():
            a.propose_admit(m.node, name, roles, keys[name].public_key).check()

        def p(name):
            return bills.party(keys[name])

        org = fin.org_id
        today = int(time.time() // 86_400)
        bid = p("CoreCo").issue(BillKind.COMMERCIAL, org("CoreCo"), org("Tier1"), FACE, today + 90).check().id
        p("CoreCo").accept(bid).check()
        p("Tier1").sign(bid).check()
        p("Tier1").endorse(bid, org("Tier2")).check()
        p("Tier2").sign(bid).check()
        p("Tier2").discount(bid, org("BankA"), 980_000).check()
        p("BankA").sign(bid).check()
        orig, now = a.party(keys["AutoFin"]), int(time.time() * 1000)
        fp = a.fingerprint
        servicer, start = a.org_id("ServCo"), now - 40 * 86_400_000
        assets = [
            orig.register(
                ac.AssetKind.LOAN, 10_000 * (i + 1), 500, start, 12, 1, servicer=servicer,
                contract_fp=fp(bytes(32), f"LN-{i}"), obligor_fp=fp(bytes(32), f"ID-{i}"),
            ).check().id
            for i in range(3)
        ]  # fmt: skip
        criteria = ac.Criteria(max_principal=10**9, min_rate_bp=0, max_rate_bp=10_000,
                               max_remaining_months=600, kinds=ac.KIND_MASK_ALL, max_assets=100)  # fmt: skip
        pid = orig.create_pool(criteria, "AUTO 2026-1").check().id
        orig.select(pid, assets)[-1].check()
        srv = NodeServer(chain, "127.0.0.1", 0)
        srv.start()
        try:
            yield AppsScene(chain, bid, pid, assets, f"http://127.0.0.1:{srv.address[1]}")
        finally:
            srv.stop()


def test_abs_pool_answers_a_pools_statistics(apps_scene):
    from tierchain.apps.abs import codes as ac
    from tierchain.apps.abs.client import Abs

    client = NodeClient(apps_scene.url, timeout_s=15)
    pid = apps_scene.pool
    view = client.app("abs.pool", {"id": pid.hex()})
    assert (
        view["stats"] == Abs(apps_scene.chain).stats(pid).to_json() and view["stats"]["principal"] == 60_000
    )
    assert view["pool"]["name"] == "AUTO 2026-1" and view["members_total"] == 3
    assert sorted(m["asset"] for m in view["members"]) == sorted(i.hex() for i in apps_scene.assets)
    for body, code in (
        ({"id": bytes(16).hex()}, "NO_SUCH_RECORD"),
        ({"id": "00"}, "BAD_ARGUMENT"),
        ({}, "BAD_ARGUMENT"),
    ):
        with pytest.raises(RpcError) as err:
            client.app("abs.pool", body)
        assert err.value.code == code, body
    port = int(apps_scene.url.rsplit(":", 1)[1])
    t = verify(port, f"fact=pool&id={pid.hex()}")[1]
    assert t["verified"] and t["key"] == ac.pool_key(pid).hex()
    assert t["decoded"] == {
        "record": "pool", "name": "AUTO 2026-1", "status": "OPEN", "assets": 3, "cutoff_balance": "60000"
    }  # fmt: skip
    asset = verify(port, f"fact=asset&id={apps_scene.assets[0].hex()}")[1]
    assert asset["verified"] and asset["decoded"]["principal"] == "10000"
    bill = verify(port, f"fact=bill&id={apps_scene.bill.hex()}")[1]
    assert (
        bill["verified"]
        and bill["decoded"]["holder"]["name"] == "BankA"
        and bill["decoded"]["face"] == str(FACE)
    )


def test_the_bill_and_pool_pages(apps_scene, browser, tmp_path):
    from selenium.webdriver.common.by import By

    from tierchain.apps.abs.client import Abs
    from tierchain.apps.bills.client import Bills

    driver = browser
    lin = Bills(apps_scene.chain).lineage(apps_scene.bill)
    view = open_page(driver, f"{apps_scene.url}/explorer/#/bill/{apps_scene.bill.hex()}", "bill")
    chain_nodes = view.find_elements(By.CSS_SELECTOR, "svg.graph g.node")
    names = [n.get_attribute("data-org") for n in chain_nodes]
    assert names == ["CoreCo"] + [e["to"]["name"] for e in lin["endorsements"]]
    assert names[-2:] == ["Tier2", "BankA"]
    panel = verified_transcript(
        driver, view.find_element(By.CSS_SELECTOR, "button.verify[data-verify^='fact=bill']")
    )
    assert panel.get_attribute("data-verified") == "true" and "BankA" in panel.text, panel.text
    save_screenshot(driver, tmp_path, "explorer-bill.png")

    stats = Abs(apps_scene.chain).stats(apps_scene.pool)
    view = open_page(driver, f"{apps_scene.url}/explorer/#/pool/{apps_scene.pool.hex()}", "pool")
    figures = {
        r.find_elements(By.TAG_NAME, "td")[0].text: r.find_elements(By.TAG_NAME, "td")[1].text
        for r in view.find_elements(By.CSS_SELECTOR, "table.stats tbody tr")
    }
    assert figures["principal"] == amount_text(stats.principal) and figures["assets"] == "3"
    assert figures["pool factor"] == f"{stats.to_json()['pool_factor']['bp'] / 100:.2f}%" == "100.00%"
    assert figures["wa rate bp"] == f"{float(stats.wa_rate_bp):.2f} bp" == "500.00 bp"
    assert len(view.find_elements(By.CSS_SELECTOR, "table.members tbody tr")) == 3
    panel = verified_transcript(
        driver, view.find_element(By.CSS_SELECTOR, "button.verify[data-verify^='fact=pool']")
    )
    assert panel.get_attribute("data-verified") == "true", panel.text
    save_screenshot(driver, tmp_path, "explorer-pool.png")
    severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe


def test_the_assets_ship_with_the_package():
    names = {p.name for p in explorer.ASSETS.iterdir()}
    assert {"index.html", "app.js", "api.js", "dom.js", "graph.js", "lineage.js", "style.css"} <= names
    assert all(explorer._ASSET.fullmatch(n) for n in names)
    for p in explorer.ASSETS.glob("*.js"):
        text = p.read_text()
        assert (
            "innerHTML" not in text
            and "eval(" not in text
            and "http://" not in text.replace("http://www.w3.org/2000/svg", "")
        ), p.name
