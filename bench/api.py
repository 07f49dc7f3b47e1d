"""Transactions through the network API vs the embedded API, same run (issue 21, item 6).

One durable solo chain with a node serving the API over gRPC and HTTP/JSON on loopback. Per
round, in turn (the order rotates each round): the same number of fresh pre-signed
transfers submitted in batches of ``--batch`` by ``--clients`` threads

* **embedded**: ``Chain.submit`` of each framed batch, in process;
* **grpc**: ``Submit`` over a gRPC channel (protobuf), one channel a client;
* **http**: ``POST /api/v1/Submit`` (JSON, transactions base64), one connection a client;

then waited for until every transaction is committed (``AwaitReceipts`` in chunks for the
network modes, the submissions' futures for the embedded one). Throughput: transactions /
wall time from the first submit to the last commit. Latency: single-transaction
``Submit`` with ``wait_s`` (submit -> durable commit -> answer), ``--latency`` samples each,
alternated; the figure is what each transport adds to the embedded median.

Every figure is median (min..max) over ``--repeat`` rounds, each mode's ratio to the
embedded one measured in the same round.

Usage: python bench/api.py [--txs 40000] [--batch 500] [--clients 2] [--repeat 5] [--latency 200]
                           [--out bench/out/api.json] [--tiny]
"""

from __future__ import annotations

import base64
import http.client
import json
import statistics
import struct
import tempfile
import threading
import time
from pathlib import Path

import click
import grpc

from figures import fmt, spread
from tierchain.api import schema
from tierchain.api.rpc import NodeServer
from tierchain.apps import accounts
from tierchain.config import ChainConfig, GenesisAccount
from tierchain.crypto import KeyPair
from tierchain.engine.chain import Chain
from tierchain.wire import tx as txcodec

NODE = KeyPair.from_seed(b"api bench node".ljust(32, b"\0"))
CHAIN_ID = 21
MODES = ("embedded", "grpc", "http")


def _keys(i: int) -> KeyPair:
    return KeyPair.from_seed(struct.pack("<Q", i + 1).ljust(32, b"\x15"))


class Signer:
    """Fresh signed transfers: each sender's nonces in order, never reused across rounds."""

    def __init__(self, senders: int) -> None:
        self.keys = [_keys(i) for i in range(senders)]
        self.nonces = [0] * senders
        self.next = 0

    def batch(self, n: int, client: int = 0, clients: int = 1) -> list[bytes]:
        """``n`` transfers from the senders of ``client`` (sender i is client i % clients's:
        clients submitting concurrently never hold one sender's nonces out of order)."""
        mine = self.keys[client::clients]
        out = []
        for _ in range(n):
            i = client + clients * (self.next % len(mine))
            self.next += 1
            k = self.keys[i]
            t = accounts.transfer(CHAIN_ID, k.public_key, self.nonces[i], NODE.public_key, 1)
            self.nonces[i] += 1
            out.append(k.sign_tx(t).encode())
        return out


def _grpc_call(channel: grpc.Channel, name: str):
    m = schema.methods()[name]
    return channel.unary_unary(
        f"/{schema.SERVICE}/{name}",
        request_serializer=lambda msg: msg.SerializeToString(),
        response_deserializer=schema.message(m.output_type.full_name).FromString,
    )


def _post(conn: http.client.HTTPConnection, method: str, body: dict) -> dict:
    conn.request("POST", f"/api/v1/{method}", json.dumps(body).encode(), {"content-type": "application/json"})
    r = conn.getresponse()
    answer = json.loads(r.read())
    if r.status != 200:
        raise RuntimeError(f"{method}: {r.status} {answer}")
    return answer


def throughput(mode: str, chain: Chain, server: NodeServer, batches: list[list[list[bytes]]]) -> float:
    """Transactions a second: ``batches[c]`` are client c's, sent in order, then all awaited."""
    ids: list[list[bytes]] = [[] for _ in batches]
    subs: list[list] = [[] for _ in batches]

    def client(c: int) -> None:
        if mode == "embedded":
            for b in batches[c]:
                subs[c].append(chain.submit(txcodec.frame(b)))
        elif mode == "grpc":
            with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as ch:
                submit = _grpc_call(ch, "Submit")
                for b in batches[c]:
                    out = submit(schema.message("SubmitRequest")(txs=b))
                    assert all(a.code == "OK" for a in out.admissions), out.admissions[0].code
                    ids[c].extend(a.tx_id for a in out.admissions)
                wait = _grpc_call(ch, "AwaitReceipts")
                for i in range(0, len(ids[c]), 1024):
                    got = wait(
                        schema.message("AwaitReceiptsRequest")(tx_ids=ids[c][i : i + 1024], timeout_s=60)
                    )
                    assert not got.timeout
        else:
            conn = http.client.HTTPConnection("127.0.0.1", server.address[1], timeout=120)
            for b in batches[c]:
                out = _post(conn, "Submit", {"txs": [base64.b64encode(t).decode() for t in b]})
                assert all(a["code"] == "OK" for a in out["admissions"]), out["admissions"][0]["code"]
                ids[c].extend(a["tx_id"] for a in out["admissions"])
            for i in range(0, len(ids[c]), 1024):
                got = _post(conn, "AwaitReceipts", {"tx_ids": ids[c][i : i + 1024], "timeout_s": 60})
                assert not got["timeout"]
            conn.close()

    n = sum(len(b) for per in batches for b in per)
    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for per in subs:
        for s in per:
            s.wait(120)
            assert s.accepted == len(s.codes), s.rejections()[:3]
    return n / (time.perf_counter() - t0)


def latency(mode: str, chain: Chain, server: NodeServer, txs: list[bytes]) -> list[float]:
    """Seconds from sending each transaction to its durable commit's answer, one at a time."""
    out = []
    if mode == "embedded":
        for t in txs:
            t0 = time.perf_counter()
            chain.submit(txcodec.frame([t])).wait(30)
            out.append(time.perf_counter() - t0)
    elif mode == "grpc":
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as ch:
            submit = _grpc_call(ch, "Submit")
            for t in txs:
                t0 = time.perf_counter()
                r = submit(schema.message("SubmitRequest")(txs=[t], wait_s=30))
                out.append(time.perf_counter() - t0)
                assert r.receipts and r.receipts[0].code == "OK"
    else:
        conn = http.client.HTTPConnection("127.0.0.1", server.address[1], timeout=60)
        for t in txs:
            t0 = time.perf_counter()
            r = _post(conn, "Submit", {"txs": [base64.b64encode(t).decode()], "wait_s": 30})
            out.append(time.perf_counter() - t0)
            assert r["receipts"][0]["code"] == "OK"
        conn.close()
    return out


@click.command()
@click.option("--txs", default=40_000, show_default=True, help="Transactions a mode a round.")
@click.option("--batch", default=500, show_default=True, help="Transactions a Submit.")
@click.option("--clients", default=2, show_default=True)
@click.option("--senders", default=1024, show_default=True)
@click.option("--repeat", default=5, show_default=True, help="Rounds (each runs every mode).")
@click.option(
    "--latency", "samples", default=200, show_default=True, help="Single-tx commits a mode a round."
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--tiny", is_flag=True, help="A few transactions: checks the script runs.")
def main(
    txs: int, batch: int, clients: int, senders: int, repeat: int, samples: int, out: Path | None, tiny: bool
) -> None:
    if tiny:
        txs, batch, clients, senders, repeat, samples = 200, 50, 2, 32, 1, 5
    signer = Signer(senders)
    config = ChainConfig(
        chain_id=CHAIN_ID,
        block_interval_ms=5,
        genesis_accounts=(
            GenesisAccount(NODE.public_key, ("registrar",), 0),
            *(GenesisAccount(k.public_key, (), 10**12) for k in signer.keys),
        ),
    )
    tps: dict[str, list[float]] = {m: [] for m in MODES}
    ratios: dict[str, list[float]] = {m: [] for m in MODES[1:]}
    lat: dict[str, list[float]] = {m: [] for m in MODES}
    added: dict[str, list[float]] = {m: [] for m in MODES[1:]}
    with tempfile.TemporaryDirectory() as tmp, Chain(Path(tmp) / "chain", config, NODE) as chain:
        server = NodeServer(chain, "127.0.0.1", 0, grpc_listen="127.0.0.1:0")
        server.start()
        try:
            for r in range(repeat):
                order = MODES[r % 3 :] + MODES[: r % 3]
                got, med = {}, {}
                for mode in order:
                    per_client = txs // clients
                    batches = [
                        [signer.batch(batch, c, clients) for _ in range(per_client // batch)]
                        for c in range(clients)
                    ]
                    got[mode] = throughput(mode, chain, server, batches)
                for mode in order:
                    med[mode] = statistics.median(latency(mode, chain, server, signer.batch(samples)))
                for m in MODES:
                    tps[m].append(got[m])
                    lat[m].append(med[m])
                for m in MODES[1:]:
                    ratios[m].append(got[m] / got["embedded"])
                    added[m].append(med[m] - med["embedded"])
                line = ", ".join(f"{m} {got[m]:,.0f} tx/s" for m in MODES)
                click.echo(
                    f"round {r + 1}: {line}; commit latency "
                    + ", ".join(f"{m} {med[m] * 1e3:.1f} ms" for m in MODES)
                )
        finally:
            server.stop()
    report = {
        "config": {
            "txs": txs,
            "batch": batch,
            "clients": clients,
            "senders": senders,
            "repeat": repeat,
            "latency_samples": samples,
        },
        "tps": {m: spread(v) for m, v in tps.items()},
        "ratio_to_embedded": {m: spread(v) for m, v in ratios.items()},
        "commit_latency_ms": {m: spread([x * 1e3 for x in v]) for m, v in lat.items()},
        "latency_added_ms": {m: spread([x * 1e3 for x in v]) for m, v in added.items()},
    }
    for m in MODES:
        extra = ""
        if m != "embedded":
            ratio, adds = (
                fmt(report["ratio_to_embedded"][m], ".2f"),
                fmt(report["latency_added_ms"][m], ".2f"),
            )
            extra = f"; ratio {ratio}; adds {adds} ms"
        click.echo(
            f"{m:>8}: {fmt(report['tps'][m])} tx/s; "
            f"commit latency {fmt(report['commit_latency_ms'][m], '.1f')} ms{extra}"
        )
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
