"""Data sharing under control (issue 18, step 6): grant/release ops per second, list queries per second.

One embedded durable ``Chain`` (apps accounts, xshard, finance, sharing; ``--sync full``
unless told otherwise) whose committee admits ``--orgs`` owner organizations (role bank) and
as many reader organizations (role investor), and funds as many plain accounts.

1. Authorized decryption, on the chain. The owners put ``--records`` ABS asset files (1 KiB
   each, sealed inline with a salted commitment as fingerprint: ``access.seal_document``,
   round robin over owners); each owner's data keys are then unwrapped
   once (the key service's cache). Then ``--repeat`` rounds (after an untimed warm-up round)
   of ``--ops`` operations of each kind, every round on fresh (record, reader) pairs:

   * ``grant``: owners grant readers their records (purpose INVESTMENT, 30 days);
   * ``request``: readers ask for version 1's data key, sealed to their own key;
   * ``release``: owners release it: the data key sealed to the reader's key
     (``envelope.rewrap``: an X25519 sealed box, or SM2 encryption) and signed. The
     client-side sealing and signing are timed on their own, before submission;
   * ``transfer``: plain accounts transfers among the funded accounts, as many senders:
     the baseline.

   Every kind is pre-signed with consecutive nonces per sender and driven the same way
   (``--batch`` transactions per ``Chain.submit``, ``--inflight`` submits outstanding); the
   clock runs from the first submit to the last receipt, so ops/s are committed ops per
   second. A round runs ``transfer grant transfer request transfer release transfer``: each
   sharing kind is bracketed by transfer phases and its ratio is against their mean. Figures
   are medians with min..max over the rounds; ``cpu_util`` is the process's CPU seconds per
   second of a phase (all threads: the chain's producer and committer, the submitter).
   After the rounds, every timed release is checked to be on chain (the access log).

2. List queries. The committee votes a list key, owners list ``--entries`` fingerprints on
   the FRAUD list; queries ask about as many listed as unlisted fingerprints, signed by the
   members in turn (``list_query.query_request``, pre-signed before the clock).

   a. ``ListQueryService.answer`` directly, single thread, for queries of 1 and 64
      fingerprints; beside it in the same round (order rotated), the same reads as plain
      ``chain.state_get`` calls (signer's key, its organization, the list key, one entry per
      fingerprint and, for a listed one, its listing's disputes) and bare ``suite.verify``
      of the same signatures; and, for reference, the same keys read with one
      ``chain.state_get_many`` call per query. Every answer is checked: the listed
      fingerprints, and only they, are answered listed.
   b. Through the node API: ``NodeServer`` on 127.0.0.1 (an ephemeral port), ``--clients``
      threads in a separate process (so they do not share the node's interpreter), one
      keep-alive connection each: ``POST /v1/app/sharing.list_query`` (1 and 64
      fingerprints) beside ``GET /v1/state/<entry key>``, order rotated per round, with
      the node's and the client process's CPU utilization (on a small machine the client
      process takes a core of its own: read the ratio, not the absolute rate).

   The service's limits are raised for the bench (rate, burst, replay marks, freshness
   skew) so they never bind: every check still runs. The node's endpoint is the same
   factory (``list_query.make_endpoint``) with those options: the sharing app is passed to
   the chain with that one endpoint's options changed.

Usage: python bench/sharing.py [--ops 16000] [--repeat 5] [--orgs 4] [--queries 8000]
       [--api-requests 3000] [--clients 4] [--crypto ed25519-blake3|sm2-sm3] [--sync full|none]
       [--tiny] [--out bench/out/sharing.json]
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import http.client
import json
import multiprocessing
import platform
import random
import shutil
import tempfile
import threading
import time
from pathlib import Path

import click

from figures import fmt, spread  # bench/figures.py (scripts run from bench/)
from tierchain.api.rpc import NodeServer
from tierchain.apps import accounts as accounts_app
from tierchain.apps.finance import codes as fc
from tierchain.apps.finance.client import Finance
from tierchain.apps.sharing import access, envelope, lists
from tierchain.apps.sharing import codes as c
from tierchain.apps.sharing import list_query as lq
from tierchain.apps.sharing.app import APP as SHARING_APP
from tierchain.apps.sharing.client import Sharing
from tierchain.apps.sharing.codes import ListId, ListReason, Purpose, RecordKind
from tierchain.apps.sharing.list_client import Lists
from tierchain.apps.sharing.lists import IdentityKind
from tierchain.config import ChainConfig, GenesisAccount
from tierchain.crypto import SUITES, KeyPair, suite_for
from tierchain.engine import apps
from tierchain.engine.chain import Chain
from tierchain.errors import Reject

OUT = Path(__file__).resolve().parent / "out"
SHARING_APPS = ("accounts", "xshard", "finance", "sharing")
KINDS = ("grant", "request", "release")
PLAINTEXT_BYTES = 1024
GRANT_MS = 30 * c.day_ms
# The list-query service's limits in this bench: never binding (each check still runs).
QUERY_LIMITS = {"rate_per_s": 1e9, "burst": 10**9, "replay_max": 10**7, "skew_ms": 3_600_000}
QUERY_PATH = "/v1/app/" + lq.ENDPOINT.name


@dataclasses.dataclass
class Org:
    name: str
    keys: KeyPair
    org: bytes = b""

    @property
    def pk(self) -> bytes:
        return self.keys.public_key


@dataclasses.dataclass
class World:
    chain: Chain
    node: KeyPair
    owners: list[Org]
    readers: list[Org]
    payers: list[KeyPair]
    nonces: dict[bytes, int]  # the next nonce of each sender, tracked here (pre-signing)
    records: list[tuple[bytes, int]] = dataclasses.field(default_factory=list)  # (id, owner index)
    data_keys: dict[bytes, bytes] = dataclasses.field(default_factory=dict)  # record -> its data key
    rng: random.Random = dataclasses.field(default_factory=lambda: random.Random(5))

    @property
    def chain_id(self) -> int:
        return self.chain.config.chain_id

    def nonce(self, pk: bytes) -> int:
        n = self.nonces[pk]
        self.nonces[pk] = n + 1
        return n


def bench_sharing_app() -> apps.App:
    """The built-in sharing app with its list-query endpoint made with ``QUERY_LIMITS``."""
    endpoints = tuple(
        apps.Endpoint(e.name, functools.partial(lq.make_endpoint, **QUERY_LIMITS))
        if e.name == lq.ENDPOINT.name
        else e
        for e in SHARING_APP.endpoints
    )
    return dataclasses.replace(SHARING_APP, endpoints=endpoints)


def drive(chain: Chain, txs: list[bytes], batch: int, inflight: int) -> dict:
    """Submit ``txs`` in order (``batch`` per submit, ``inflight`` submits outstanding); the
    committed ops per second from the first submit to the last receipt."""
    pending, ok, failed, rejected = [], 0, 0, 0

    def settle(sub) -> None:
        nonlocal ok, failed, rejected
        rejected += len(sub.rejections())
        for r in sub.wait(300):
            if r is not None:
                ok += r.code == Reject.OK
                failed += r.code != Reject.OK

    t0, cpu0 = time.perf_counter(), time.process_time()
    for i in range(0, len(txs), batch):
        pending.append(chain.submit(txs[i : i + batch]))
        if len(pending) >= inflight:
            settle(pending.pop(0))
    for sub in pending:
        settle(sub)
    seconds, cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
    if failed or rejected or ok != len(txs):
        raise SystemExit(f"{failed} failed, {rejected} rejected of {len(txs)}: the workload is not valid")
    return {"ops": len(txs), "seconds": seconds, "ops_per_s": ok / seconds, "cpu_util": cpu_s / seconds}


# --- set-up -------------------------------------------------------------------------------------


def open_world(directory: Path, crypto: str, sync: str, orgs: int) -> World:
    suite = suite_for(crypto)
    seed = random.Random(17)
    node = suite.keys_from_seed(seed.randbytes(32))
    owners = [Org(f"Owner{i}", suite.keys_from_seed(seed.randbytes(32))) for i in range(orgs)]
    readers = [Org(f"Reader{i}", suite.keys_from_seed(seed.randbytes(32))) for i in range(orgs)]
    payers = [suite.keys_from_seed(seed.randbytes(32)) for _ in range(orgs)]
    cfg = ChainConfig(
        chain_id=78, crypto=crypto, apps=SHARING_APPS, sync=sync, block_interval_ms=20,
        sender_pending_max=1 << 20, mempool_txs_max=1 << 20,
        genesis_accounts=(GenesisAccount(node.public_key, ("registrar", "committee"), 0),
                          *(GenesisAccount(k.public_key, (), 10**12) for k in payers)),
    )  # fmt: skip
    chain = Chain(directory, cfg, node, apps=[bench_sharing_app()])
    try:
        fin = Finance(chain)
        committee = fin.party(node)
        for group, roles in ((owners, ("bank",)), (readers, ("investor",))):
            for o in group:
                assert committee.propose_admit(o.name, roles, o.pk).ok, o.name
                o.org = fin.org_id(o.name)
        senders = [o.pk for o in owners + readers] + [k.public_key for k in payers]
        nonces = dict(zip(senders, chain.nonces(senders), strict=True))
        return World(chain, node, owners, readers, payers, nonces)
    except BaseException:
        chain.close()
        raise


def put_records(w: World, n: int, batch: int, inflight: int) -> dict:
    """``n`` records, round robin over the owners; then each owner's data keys, unwrapped once."""
    suite, kind = w.chain.suite, RecordKind.ABS_ASSET_FILE
    txs, sealed_bytes = [], 0
    t0 = time.perf_counter()
    for i in range(n):
        owner_index = i % len(w.owners)
        o = w.owners[owner_index]
        plaintext = w.rng.randbytes(PLAINTEXT_BYTES)
        nonce = w.nonce(o.pk)
        rid = c.record_id(o.pk, nonce, suite=suite)
        sealed, fp = access.seal_document(suite, kind, plaintext, rid, 1, o.org, o.pk)  # fp: commitment
        sealed_bytes = len(sealed)
        tx = access.put(w.chain_id, o.pk, o.org, nonce, rid, 1, kind, 0, fp, sealed, suite=suite)
        txs.append(o.keys.sign_tx(tx).encode())
        w.records.append((rid, owner_index))
    build_s = time.perf_counter() - t0
    chain = drive(w.chain, txs, batch, inflight)
    sh = Sharing(w.chain)
    parties = [sh.party(o.keys) for o in w.owners]
    t0 = time.perf_counter()
    for rid, owner_index in w.records:
        w.data_keys[rid] = parties[owner_index].data_key(rid, 1)
    unwrap_s = time.perf_counter() - t0
    return {
        "records": n,
        "plaintext_bytes": PLAINTEXT_BYTES,
        "sealed_bytes": sealed_bytes,
        "build_seal_sign_us_per_put": 1e6 * build_s / n,
        "put_chain": chain,
        "owner_unwrap_us_per_record": 1e6 * unwrap_s / n,
    }


# --- 1. grant / request / release beside transfers ---------------------------------------------


def transfer_txs(w: World, k: int) -> tuple[list[bytes], dict]:
    t0 = time.perf_counter()
    out, n = [], len(w.payers)
    for i in range(k):
        s = w.payers[i % n]
        to = w.payers[(i % n + 1 + w.rng.randrange(n - 1)) % n] if n > 1 else w.node
        tx = accounts_app.transfer(w.chain_id, s.public_key, w.nonce(s.public_key), to.public_key, 1)
        out.append(s.sign_tx(tx).encode())
    return out, {"build_sign_us": 1e6 * (time.perf_counter() - t0) / k}


def pair(w: World, p: int) -> tuple[bytes, Org, Org]:
    """Pair ``p``: record ``p // readers`` (its owner) and reader ``p % readers``."""
    rid, owner_index = w.records[p // len(w.readers)]
    return rid, w.owners[owner_index], w.readers[p % len(w.readers)]


def grant_txs(w: World, pairs: range) -> tuple[list[bytes], dict]:
    expiry = w.chain.head().timestamp_ms + GRANT_MS
    t0 = time.perf_counter()
    out = []
    for p in pairs:
        rid, o, r = pair(w, p)
        tx = access.grant(w.chain_id, o.pk, o.org, w.nonce(o.pk), rid, r.org, Purpose.INVESTMENT, expiry)
        out.append(o.keys.sign_tx(tx).encode())
    return out, {"build_sign_us": 1e6 * (time.perf_counter() - t0) / len(pairs)}


def request_txs(w: World, pairs: range) -> tuple[list[bytes], dict]:
    t0 = time.perf_counter()
    out = []
    for p in pairs:
        rid, _, r = pair(w, p)
        tx = access.request(w.chain_id, r.pk, r.org, w.nonce(r.pk), rid, 1, r.pk)
        out.append(r.keys.sign_tx(tx).encode())
    return out, {"build_sign_us": 1e6 * (time.perf_counter() - t0) / len(pairs)}


def release_txs(w: World, pairs: range) -> tuple[list[bytes], dict]:
    """The owner's key service's work: seal each data key to the reader's key (timed alone),
    then build and sign the release."""
    suite = w.chain.suite
    t0 = time.perf_counter()
    wrapped = [envelope.rewrap(suite, w.data_keys[pair(w, p)[0]], pair(w, p)[2].pk) for p in pairs]
    seal_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = []
    for p, wk in zip(pairs, wrapped, strict=True):
        rid, o, r = pair(w, p)
        tx = access.release(w.chain_id, o.pk, o.org, w.nonce(o.pk), rid, 1, r.org, r.pk, wk)
        out.append(o.keys.sign_tx(tx).encode())
    sign_s = time.perf_counter() - t0
    n = len(pairs)
    return out, {"seal_us": 1e6 * seal_s / n, "build_sign_us": 1e6 * sign_s / n}


def grant_release_round(w: World, first_pair: int, k: int, batch: int, inflight: int) -> dict:
    """One round on pairs ``first_pair ..``: T G T Q T R T (all pre-signed first)."""
    pairs = range(first_pair, first_pair + k)
    built = {"grant": grant_txs(w, pairs), "request": request_txs(w, pairs), "release": release_txs(w, pairs)}
    transfers = [transfer_txs(w, k) for _ in range(len(KINDS) + 1)]
    round_: dict = {"transfers": []}
    for i, kind in enumerate(KINDS):
        round_["transfers"].append({**drive(w.chain, transfers[i][0], batch, inflight), **transfers[i][1]})
        round_[kind] = {**drive(w.chain, built[kind][0], batch, inflight), **built[kind][1]}
    round_["transfers"].append({**drive(w.chain, transfers[-1][0], batch, inflight), **transfers[-1][1]})
    for i, kind in enumerate(KINDS):
        bracket = (round_["transfers"][i]["ops_per_s"] + round_["transfers"][i + 1]["ops_per_s"]) / 2
        round_[kind]["transfers_ops_per_s"] = bracket
        round_[kind]["ratio_to_transfers"] = round_[kind]["ops_per_s"] / bracket
    return round_


def check_access_log(w: World, pairs: range) -> int:
    """Every release of the timed pairs is on chain (``sk/``, release 0) with the reader's key."""
    missing = 0
    for p in pairs:
        rid, _, r = pair(w, p)
        raw = w.chain.state_get(c.release_key(rid, 1, r.org, 0))
        missing += raw is None or access.Release.decode(raw, w.chain.suite).recipient != r.pk
    return missing


def grant_release(w: World, k: int, repeat: int, batch: int, inflight: int) -> dict:
    warm = max(8, k // 8)
    grant_release_round(w, 0, warm, batch, inflight)  # warm-up: not reported
    rounds = [grant_release_round(w, warm + i * k, k, batch, inflight) for i in range(repeat)]
    missing = check_access_log(w, range(0, warm + repeat * k))
    assert missing == 0, f"{missing} releases missing from the access log"
    summary: dict = {
        "transfer": {
            "ops_per_s": spread([t["ops_per_s"] for r in rounds for t in r["transfers"]]),
            "cpu_util": spread([t["cpu_util"] for r in rounds for t in r["transfers"]]),
        }
    }
    for kind in KINDS:
        summary[kind] = {
            "ops_per_s": spread([r[kind]["ops_per_s"] for r in rounds]),
            "ratio_to_transfers": spread([r[kind]["ratio_to_transfers"] for r in rounds]),
            "client_build_sign_us": spread([r[kind]["build_sign_us"] for r in rounds]),
            "cpu_util": spread([r[kind]["cpu_util"] for r in rounds]),
        }
    summary["release"]["client_seal_us"] = spread([r["release"]["seal_us"] for r in rounds])
    summary["transfer"]["client_build_sign_us"] = spread(
        [t["build_sign_us"] for r in rounds for t in r["transfers"]]
    )
    return {"ops_per_kind_per_round": k, "warmup_ops": warm, "summary": summary, "rounds": rounds}


# --- 2. list queries ---------------------------------------------------------------------------


@dataclasses.dataclass
class ListSetup:
    listed: dict[bytes, bytes]  # fingerprint -> the organization that listed it
    unlisted: list[bytes]
    pool: list[bytes]  # listed and unlisted, alternating
    askers: list[Org]
    clock_ms: int  # the next query timestamp: one ms apart, so no two requests are alike

    def requests(self, w: World, n_fps: int, count: int) -> list[bytes]:
        suite, out, m = w.chain.suite, [], len(self.pool)
        for i in range(count):
            start = (i * n_fps) % m
            fps = [self.pool[(start + j) % m] for j in range(n_fps)]
            keys = self.askers[i % len(self.askers)].keys
            out.append(lq.query_request(keys, w.chain_id, ListId.FRAUD, fps, self.clock_ms, suite))
            self.clock_ms += 1
        return out


def list_entries(w: World, entries: int, batch: int, inflight: int) -> tuple[ListSetup, dict]:
    suite, key = w.chain.suite, lists.new_list_key()
    Lists(w.chain).vote_list_key(w.node, 1, key).check()
    w.nonces[w.node.public_key] = w.chain.nonce(w.node.public_key)
    kind = IdentityKind.ACCOUNT_NUMBER
    listed = {}
    unlisted = [lists.fingerprint(key, kind, f"6228{i:015d}", suite=suite) for i in range(entries)]
    txs = []
    for i in range(entries):
        o = w.owners[i % len(w.owners)]
        fp = lists.fingerprint(key, kind, f"6222{i:015d}", suite=suite)
        listed[fp] = o.org
        tx = lists.list_add(
            w.chain_id, o.pk, o.org, w.nonce(o.pk), ListId.FRAUD, fp, 1, ListReason.FRAUD_CONFIRMED
        )
        txs.append(o.keys.sign_tx(tx).encode())
    chain = drive(w.chain, txs, batch, inflight)
    pool = [fp for two in zip(listed, unlisted, strict=True) for fp in two]  # dicts keep order
    wall = time.time_ns() // 1_000_000
    setup = ListSetup(listed, unlisted, pool, w.owners + w.readers, wall)
    return setup, {"entries": entries, "list_add_chain": chain}


def _parse(req: bytes, suite) -> tuple[bytes, bytes, bytes, list[bytes]]:
    """(signer, signed digest, signature, fingerprints) of a query request."""
    head = len(lq.QUERY_TAG)
    signer = req[head + 4 : head + 36]
    n = int.from_bytes(req[head + 45 : head + 47], "little")
    body_end = head + 47 + 32 * n
    fps = [req[head + 47 + 32 * i : head + 47 + 32 * (i + 1)] for i in range(n)]
    return signer, suite.hash(lq.SH_LIST_QUERY, req[:body_end]), req[body_end:], fps


def direct_round(
    w: World, ls: ListSetup, service: lq.ListQueryService, n_fps: int, count: int, r: int
) -> dict:
    suite, chain = w.chain.suite, w.chain
    requests = ls.requests(w, n_fps, count)
    parsed = [_parse(q, suite) for q in requests]
    org_of = {o.pk: o.org for o in ls.askers}
    # What answer reads: the signer's key and organization, the list key, each fingerprint's
    # entry, and for a listed one its listing's disputes (one listing each here).
    reads = [
        [fc.key_key(s), fc.org_key(org_of[s]), c.LIST_KEY]
        + [c.entry_key(ListId.FRAUD, fp) for fp in fps]
        + [c.dispute_key(ListId.FRAUD, fp, ls.listed[fp]) for fp in fps if fp in ls.listed]
        for s, _, _, fps in parsed
    ]
    expected = sum(fp in ls.listed for _, _, _, fps in parsed for fp in fps)
    answers: list[dict] = []

    def answer() -> None:
        answers.extend(service.answer(q) for q in requests)

    def state_reads() -> None:
        get = chain.state_get
        for keys in reads:
            for key in keys:
                get(key)

    def state_reads_many() -> None:
        get_many = chain.state_get_many
        for keys in reads:
            get_many(keys)

    def verify() -> None:
        assert all(suite.verify(s, d, sig) for s, d, sig, _ in parsed)

    kinds = {
        "answer": answer,
        "state_reads": state_reads,
        "verify": verify,
        "state_reads_many": state_reads_many,
    }
    order = list(kinds)[r % 4 :] + list(kinds)[: r % 4]
    out: dict = {"order": order}
    for name in order:
        t0 = time.perf_counter()
        kinds[name]()
        out[name] = {"seconds": time.perf_counter() - t0}
    got = sum(x["listed"] for a in answers for x in a["results"])
    assert got == expected, f"{got} fingerprints answered listed, {expected} are"
    for name in kinds:
        out[name]["us_per_query"] = 1e6 * out[name]["seconds"] / count
        out[name]["per_s"] = count / out[name]["seconds"]
    out["answer"]["fps_per_s"] = count * n_fps / out["answer"]["seconds"]
    out["reads_per_query"] = sum(map(len, reads)) / len(reads)
    return out


def sec(x: dict, kind: str) -> float:
    return x[kind]["seconds"]


def list_direct(w: World, ls: ListSetup, counts: dict[int, int], repeat: int) -> dict:
    service = lq.ListQueryService(w.chain, w.chain.suite, fps_per_query_max=64, **QUERY_LIMITS)
    t0 = time.perf_counter()
    ls.requests(w, 1, 200)
    sign_us = 1e6 * (time.perf_counter() - t0) / 200
    out: dict = {"client_request_sign_us_1fp": sign_us, "limits": QUERY_LIMITS}
    for n_fps, count in counts.items():
        direct_round(w, ls, service, n_fps, max(8, count // 8), 0)  # warm-up
        rounds = [direct_round(w, ls, service, n_fps, count, r) for r in range(repeat)]
        out[f"fps_{n_fps}"] = {
            "queries_per_round": count,
            "reads_per_query": rounds[0]["reads_per_query"],
            "answer_queries_per_s": spread([x["answer"]["per_s"] for x in rounds]),
            "answer_fps_per_s": spread([x["answer"]["fps_per_s"] for x in rounds]),
            "answer_us": spread([x["answer"]["us_per_query"] for x in rounds]),
            "state_reads_us": spread([x["state_reads"]["us_per_query"] for x in rounds]),
            "verify_us": spread([x["verify"]["us_per_query"] for x in rounds]),
            "state_get_many_us": spread([x["state_reads_many"]["us_per_query"] for x in rounds]),
            "answer_over_reads": spread([sec(x, "answer") / sec(x, "state_reads") for x in rounds]),
            "answer_over_verify": spread([sec(x, "answer") / sec(x, "verify") for x in rounds]),
            "answer_over_reads_plus_verify": spread(
                [sec(x, "answer") / (sec(x, "state_reads") + sec(x, "verify")) for x in rounds]
            ),
            "rounds": rounds,
        }
    out["service_stats"] = service.stats()
    assert not out["service_stats"]["refused"], f"refused: {out['service_stats']['refused']}"
    return out


# --- 2b. the node API, from another process --------------------------------------------------------


def _send_all(port: int, timeout_s: float, method: str, path: str | None, items: list, gate) -> tuple:
    """One client thread: ``items`` over one keep-alive connection; (statuses, latencies)."""
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    gate.wait()
    try:
        for item in items:
            t0 = time.perf_counter()
            if method == "POST":
                conn.request("POST", path, item, {"Content-Type": "application/json"})
            else:
                conn.request("GET", item)
            resp = conn.getresponse()
            resp.read()
            latencies.append(time.perf_counter() - t0)
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
    except OSError as exc:
        statuses[-1] = statuses.get(-1, 0) + 1
        print(f"client: {exc!r}")
    finally:
        conn.close()
    return statuses, latencies


def _client_worker(pipe, port: int, threads: int, timeout_s: float) -> None:
    """The client process: for each (method, path or None, items) it receives, ``threads``
    threads with a keep-alive connection each send the items (POST bodies to ``path``, or
    GET paths) round robin, released at once; it answers with counts, seconds and its CPU."""
    while (msg := pipe.recv()) is not None:
        method, path, items = msg
        gate = threading.Barrier(threads + 1)
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            futures = [
                pool.submit(_send_all, port, timeout_s, method, path, items[t::threads], gate)
                for t in range(threads)
            ]
            gate.wait()
            t0, cpu0 = time.perf_counter(), time.process_time()
            results = [f.result() for f in futures]
        seconds, cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
        merged: dict[int, int] = {}
        for statuses, _ in results:
            for k, v in statuses.items():
                merged[k] = merged.get(k, 0) + v
        lat = sorted(x for _, per in results for x in per)
        pipe.send(
            {
                "requests": len(items),
                "ok": merged.get(200, 0),
                "statuses": {str(k): v for k, v in merged.items()},
                "seconds": seconds,
                "per_s": merged.get(200, 0) / seconds,
                "client_cpu_util": cpu_s / seconds,
                "latency_ms_p50": 1e3 * lat[len(lat) // 2] if lat else None,
                "latency_ms_p99": 1e3 * lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else None,
            }
        )


def list_api(w: World, ls: ListSetup, counts: dict[int, int], clients: int, repeat: int) -> dict:
    ctx = multiprocessing.get_context("spawn")
    server = NodeServer(w.chain, "127.0.0.1", 0)
    here, there = ctx.Pipe()
    proc = None
    server.start()
    try:
        proc = ctx.Process(target=_client_worker, args=(there, server.address[1], clients, 30.0), daemon=True)
        proc.start()

        def call(method: str, path: str | None, items: list) -> dict:
            cpu0 = time.process_time()
            here.send((method, path, items))
            if not here.poll(300):
                raise SystemExit("the API client process did not answer within 300 s")
            result = here.recv()
            result["node_cpu_util"] = (time.process_time() - cpu0) / result["seconds"]  # ~ the same window
            if result["ok"] != result["requests"]:
                raise SystemExit(f"API requests failed: {result['statuses']}")
            return result

        state_count = counts[1]
        keys = [c.entry_key(ListId.FRAUD, fp) for fp in ls.pool]

        def state_items() -> list[str]:
            return [f"/v1/state/{keys[i % len(keys)].hex()}" for i in range(state_count)]

        def query_items(n_fps: int) -> list[bytes]:
            return [json.dumps({"request": q.hex()}).encode() for q in ls.requests(w, n_fps, counts[n_fps])]

        kinds = ["state", *(f"query_{n}" for n in counts)]
        call("GET", None, state_items()[: max(8, state_count // 8)])  # warm-up
        call("POST", QUERY_PATH, query_items(1)[: max(8, counts[1] // 8)])
        rounds = []
        for r in range(repeat):
            built = {"state": state_items(), **{f"query_{n}": query_items(n) for n in counts}}
            order = kinds[r % len(kinds) :] + kinds[: r % len(kinds)]
            res: dict = {"order": order}
            for kind in order:
                res[kind] = (
                    call("GET", None, built[kind])
                    if kind == "state"
                    else call("POST", QUERY_PATH, built[kind])
                )
            rounds.append(res)
        per_round = {"state": state_count, **{f"query_{n}": counts[n] for n in counts}}
        out: dict = {"clients": clients, "requests_per_round": per_round}
        out["state_per_s"] = spread([x["state"]["per_s"] for x in rounds])
        out["state_node_cpu_util"] = spread([x["state"]["node_cpu_util"] for x in rounds])
        out["state_client_cpu_util"] = spread([x["state"]["client_cpu_util"] for x in rounds])
        for n in counts:
            q = f"query_{n}"
            out[q] = {
                "queries_per_s": spread([x[q]["per_s"] for x in rounds]),
                "fps_per_s": spread([x[q]["per_s"] * n for x in rounds]),
                "ratio_to_state_gets": spread([x[q]["per_s"] / x["state"]["per_s"] for x in rounds]),
                "latency_ms_p50": spread([x[q]["latency_ms_p50"] for x in rounds]),
                "node_cpu_util": spread([x[q]["node_cpu_util"] for x in rounds]),
                "client_cpu_util": spread([x[q]["client_cpu_util"] for x in rounds]),
            }
        out["rounds"] = rounds
        return out
    finally:
        if proc is not None and proc.is_alive():
            here.send(None)
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
        server.stop()


# --- the run --------------------------------------------------------------------------------------


def run(crypto, sync, orgs, ops, repeat, records, batch, inflight, entries, queries, api_requests, clients):
    directory = Path(tempfile.mkdtemp(prefix="tierchain-sharing-bench-"))
    try:
        w = open_world(directory, crypto, sync, orgs)
        try:
            parts, t0 = {}, time.perf_counter()
            needed = -(-(max(8, ops // 8) + repeat * ops) // orgs)  # pairs / readers, rounded up
            setup = put_records(w, max(records, needed), batch, inflight)
            parts["setup_records_s"], t0 = time.perf_counter() - t0, time.perf_counter()
            gr = grant_release(w, ops, repeat, batch, inflight)
            parts["grant_release_s"], t0 = time.perf_counter() - t0, time.perf_counter()
            ls, list_setup = list_entries(w, entries, batch, inflight)
            parts["setup_lists_s"], t0 = time.perf_counter() - t0, time.perf_counter()
            direct = list_direct(w, ls, {1: queries, 64: max(8, queries // 16)}, repeat)
            parts["list_direct_s"], t0 = time.perf_counter() - t0, time.perf_counter()
            api = list_api(w, ls, {1: api_requests, 64: max(8, api_requests // 4)}, clients, repeat)
            parts["list_api_s"] = time.perf_counter() - t0
            return {
                "part_seconds": parts,
                "setup": {**setup, **list_setup, "height_after": w.chain.height},
                "grant_release": gr,
                "list_query_direct": direct,
                "list_query_api": api,
            }
        finally:
            w.chain.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@click.command()
@click.option("--crypto", type=click.Choice(sorted(SUITES)), default="ed25519-blake3", show_default=True)
@click.option("--sync", type=click.Choice(["full", "none"]), default="full", show_default=True)
@click.option("--orgs", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Owner organizations; as many readers and transfer senders.")  # fmt: skip
@click.option(
    "--ops", type=click.IntRange(1), default=16000, show_default=True, help="Ops per kind per round."
)
@click.option("--repeat", type=click.IntRange(1, 50), default=5, show_default=True, help="Rounds.")
@click.option("--records", type=click.IntRange(0), default=0, help="Records (at least what the rounds need).")
@click.option("--batch", type=click.IntRange(1), default=512, show_default=True, help="Txs per submit.")
@click.option("--inflight", type=click.IntRange(1), default=4, show_default=True, help="Submits outstanding.")
@click.option(
    "--entries", type=click.IntRange(64), default=4096, show_default=True, help="Listed fingerprints."
)
@click.option("--queries", type=click.IntRange(1), default=8000, show_default=True,
              help="Direct queries of 1 fingerprint per round (of 64: a sixteenth).")  # fmt: skip
@click.option("--api-requests", type=click.IntRange(1), default=3000, show_default=True,
              help="API requests of each kind per round (64-fingerprint queries: a quarter).")  # fmt: skip
@click.option(
    "--clients", type=click.IntRange(1, 64), default=4, show_default=True, help="API client threads."
)
@click.option("--tiny", is_flag=True, help="Tiny parameters (CI): the script runs; figures mean little.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def main(
    crypto,
    sync,
    orgs,
    ops,
    repeat,
    records,
    batch,
    inflight,
    entries,
    queries,
    api_requests,
    clients,
    tiny,
    out,
):
    if tiny:
        orgs, ops, repeat, batch, entries, queries, api_requests, clients = 2, 64, 2, 32, 64, 64, 32, 2
    out = out or OUT / ("sharing-tiny.json" if tiny else "sharing.json")
    t0 = time.perf_counter()
    report = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "crypto": crypto,
        "sync": sync,
        "durable": sync == "full",
        "params": {"orgs": orgs, "ops": ops, "repeat": repeat, "batch": batch, "inflight": inflight,
                   "entries": entries, "queries": queries, "api_requests": api_requests, "clients": clients},
    }  # fmt: skip
    report.update(
        run(
            crypto, sync, orgs, ops, repeat, records, batch, inflight, entries, queries, api_requests, clients
        )
    )
    report["notes"] = [
        "grant/request/release ratio_to_transfers: against the mean of the transfer phases just "
        "before and after it in the same round (T G T Q T R T); every phase pre-signed, driven alike",
        "release client_seal_us: the data key sealed to the reader's key (envelope.rewrap), timed "
        "apart from building and signing; not part of the chain's ops/s",
        f"list query service limits raised so they never bind: {QUERY_LIMITS}",
        "cpu_util: process CPU seconds per wall second (all threads); API client threads run in a "
        "separate process (client_cpu_util)",
    ]
    report["wall_s"] = time.perf_counter() - t0
    gr, d, a = report["grant_release"]["summary"], report["list_query_direct"], report["list_query_api"]
    note = "" if sync == "full" else " [sync=none: NOT DURABLE]"
    click.echo(
        f"{crypto}, sync={sync}{note}: {repeat} rounds x {ops} ops per kind, {orgs} owners / readers / "
        f"transfer senders; median (min..max)"
    )
    click.echo(f"  transfers (baseline)  {fmt(gr['transfer']['ops_per_s'])} ops/s")
    for kind in KINDS:
        s = gr[kind]
        click.echo(
            f"  {kind:8} {fmt(s['ops_per_s'])} ops/s, "
            f"ratio to transfers {fmt(s['ratio_to_transfers'], '.2f')}; "
            f"client build+sign {s['client_build_sign_us']['median']:.0f} us/op"
            + (f", sealing {s['client_seal_us']['median']:.0f} us/op" if kind == "release" else "")
        )
    for n in (1, 64):
        s = d[f"fps_{n}"]
        click.echo(
            f"  list query answer, {n:2} fp: {fmt(s['answer_queries_per_s'])} queries/s "
            f"({fmt(s['answer_fps_per_s'])} fps/s); {s['answer_us']['median']:.1f} us vs "
            f"{s['reads_per_query']:.3g} state_get {s['state_reads_us']['median']:.1f} us + verify "
            f"{s['verify_us']['median']:.1f} us; answer / (reads + verify) "
            f"{fmt(s['answer_over_reads_plus_verify'], '.2f')}"
        )
    click.echo(f"  node API ({a['clients']} client threads): GET /v1/state {fmt(a['state_per_s'])} req/s")
    for n in (1, 64):
        s = a[f"query_{n}"]
        click.echo(
            f"    list query {n:2} fp: {fmt(s['queries_per_s'])} queries/s ({fmt(s['fps_per_s'])} fps/s), "
            f"ratio to state GETs {fmt(s['ratio_to_state_gets'], '.2f')}"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    click.echo(f"wrote {out} ({report['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
