"""Inter-institution reconciliation (issue 18, step 4): a day of N record pairs, and T+0 on a chain.

1. Offline, ``--pairs`` record pairs (default 1,000,000 interbank transfers of 5 fields),
   with ``--mismatch`` of them changed on one side (one field) and ``--missing`` of each
   side's records absent on the other:

   * digests per side (setup of the report, measured on its own): each side's posting
     entries (tag, digest, sealed field vector: ``recon_report.entries``), seconds and
     microseconds per record;
   * the report: the public classification of the day's rows as the chain stores them
     (``recon_report.report``: the join by tag is the rows themselves, one per tag with
     both sides; matched / mismatched / missing per side, counts), timed alone; then a
     party's view (``explain`` the mismatches, map tags to its references:
     ``party_report``); and the same join over two tag -> digest mappings
     (``recon_report.join``), which is what a side-by-side reconciliation without a chain
     would do;
   * peak memory of the report: ``tracemalloc``'s peak of a separate run of the same
     report (traced allocations of the report alone, not the rows it reads; tracemalloc
     slows it, so its time is not the one reported), and the process's peak RSS
     (``resource.getrusage``'s ``ru_maxrss``: setup included) at the end.

2. End to end on an embedded ``Chain`` (the sharing app over finance, durable commits
   unless ``--sync none``), ``--e2e-pairs`` records (default 2,000): the committee admits
   two banks, one opens the pair and the other accepts its key (generation 0), each posts
   its day (pre-signed postings of at most ``recon_posts_per_tx_max`` records, submitted
   at once), and the clock runs from the
   commit of the second bank's last posting to each bank's report being in hand
   (``Reconciler.report``: scan, classify, explain, name), and the node endpoint's whole
   public report (``make_endpoint``, page by page: ``fetch_public_report``).

Usage: python bench/recon.py [--pairs 1000000] [--e2e-pairs 2000] [--crypto ed25519-blake3]
       [--sync full|none] [--tiny] [--out bench/out/recon.json]
"""

from __future__ import annotations

import gc
import json
import platform
import random
import resource
import secrets
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import click

from tierchain.apps.finance.client import Finance
from tierchain.apps.sharing import codes as c
from tierchain.apps.sharing import recon
from tierchain.apps.sharing import recon_report as rr
from tierchain.apps.sharing.recon_client import Reconciler, fetch_public_report, make_endpoint
from tierchain.config import ChainConfig, GenesisAccount
from tierchain.crypto import SUITES, suite_for
from tierchain.engine.chain import Chain
from tierchain.errors import Reject

OUT = Path(__file__).resolve().parent / "out"
SHARING_APPS = ("accounts", "xshard", "finance", "sharing")
FIELDS = ("amount", "ccy", "creditor", "debtor", "value_date")


def books(n: int, mismatch: float, missing: float, seed: int = 7):
    """Side A's and side B's records (reference -> fields) and what differs: the references
    changed (-> the field), A's only and B's only."""
    rng = random.Random(seed)
    a: dict[str, dict] = {}
    b: dict[str, dict] = {}
    changed: dict[str, str] = {}
    a_only, b_only = [], []
    for i in range(n):
        ref = f"TX{i:010d}"
        fields = {"amount": 100 + rng.randrange(10**9), "ccy": "CNY", "creditor": "6217-0001-0001",
                  "debtor": f"6222-{i:010d}", "value_date": "2026-03-02"}  # fmt: skip
        r = rng.random()
        if r < missing:
            a[ref] = fields
            a_only.append(ref)
        elif r < 2 * missing:
            b[ref] = fields
            b_only.append(ref)
        else:
            a[ref] = fields
            if r < 2 * missing + mismatch:
                name = rng.choice(FIELDS)
                b[ref] = {**fields, name: str(fields[name]) + "0"}
                changed[ref] = name
            else:
                b[ref] = fields
    return a, b, changed, a_only, b_only


def rss_mib() -> float:
    """The process's peak resident set (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def offline(n: int, crypto: str, mismatch: float, missing: float) -> dict:
    suite = suite_for(crypto)
    pair_key = secrets.token_bytes(suite.aead_key_bytes)
    keys, pid, gen, day = recon.derive(pair_key, suite), secrets.token_bytes(16), 0, 20_500
    t0 = time.perf_counter()
    book_a, book_b, changed, a_only, b_only = books(n, mismatch, missing)
    books_s = time.perf_counter() - t0
    digests = {}
    entries = {}
    for side, book in ((0, book_a), (1, book_b)):
        gc.collect()
        t0 = time.perf_counter()
        entries[side] = rr.entries(keys, suite, pid, gen, day, side, book)
        seconds = time.perf_counter() - t0
        digests["AB"[side]] = {
            "records": len(book),
            "seconds": seconds,
            "us_per_record": 1e6 * seconds / len(book),
        }

    # The day's rows as the chain stores them (sy/<pair><generation><day><tag>, both sides), in key order.
    t0 = time.perf_counter()
    sides: dict[bytes, list] = {}
    for side in (0, 1):
        for _, e in entries[side]:
            sides.setdefault(e.tag, [None, None])[side] = recon.Side(e.digest, 1 + side, 0, e.vector)
    prefix = c.posting_key(pid, gen, day, b"")
    rows = sorted((prefix + tag, recon.Row(sa, sb).encode()) for tag, (sa, sb) in sides.items())
    del sides
    refs = {e.tag: ref for ref, e in entries[0]}  # side A's own tag -> reference map (its books)
    names = {e.tag: FIELDS for _, e in entries[0]}
    digest_maps = [{e.tag: e.digest for _, e in entries[s]} for s in (0, 1)]
    del entries
    rows_s = time.perf_counter() - t0

    # The setup's objects (both sides' books, the rows) out of the collector's way: a party's
    # process holds its own books, not a bench's two sides, and a full collection over them
    # would be timed as the report's.
    gc.collect()
    gc.freeze()
    t0 = time.perf_counter()
    public = rr.report(pid, gen, day, rows)
    report_s = time.perf_counter() - t0
    counts = public.counts
    t0 = time.perf_counter()
    explained = rr.explain(public.mismatched, pair_key, suite, names, pair=pid, generation=gen, day=day)
    party = rr.party_report(public, 0, refs, explained)
    party_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    joined = rr.join(*digest_maps)
    join_s = time.perf_counter() - t0

    # Correctness: the report found exactly what was injected.
    found = {m.ref: m.fields for m in party.mismatched}
    assert found == {ref: (name,) for ref, name in changed.items()}, "mismatches not found exactly"
    assert sorted(ref for ref, _ in party.missing_on_them) == sorted(a_only), "B's missing records"
    assert len(party.missing_on_us) == len(b_only), "A's missing records"
    assert {k: len(v) for k, v in joined.items()} == {k: counts[k] for k in joined}

    del public, party, explained, joined
    gc.unfreeze()
    gc.collect()
    tracemalloc.start()
    rr.report(pid, gen, day, rows)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    row_bytes = sum(len(k) + len(v) for k, v in rows)
    return {
        "crypto": crypto,
        "pairs": n,
        "fields": len(FIELDS),
        "injected": {"mismatched": len(changed), "a_only": len(a_only), "b_only": len(b_only)},
        "counts": counts,
        "setup": {"books_s": books_s, "rows_s": rows_s, "row_bytes": row_bytes},
        "digests": digests,
        "report_s": report_s,
        "party_view_s": party_s,
        "join_two_maps_s": join_s,
        "report_peak_traced_mib": peak / (1 << 20),
        "gc_note": "setup objects frozen (gc.freeze) while the report, party view and join are timed",
        "memory_note": "report_peak_traced_mib: tracemalloc peak of a separate run of recon_report.report "
        "(its own allocations, not the rows it reads); process_peak_rss_mib: ru_maxrss, setup included",
    }


def end_to_end(n: int, crypto: str, sync: str, mismatch: float, missing: float) -> dict:
    suite = suite_for(crypto)
    node, bank_a, bank_b = (suite.keys_from_seed(secrets.token_bytes(32)) for _ in range(3))
    cfg = ChainConfig(
        chain_id=77, crypto=crypto, apps=SHARING_APPS, sync=sync, block_interval_ms=20,
        sender_pending_max=1 << 20, mempool_txs_max=1 << 20,  # a bank's day, submitted at once
        genesis_accounts=(GenesisAccount(node.public_key, ("registrar", "committee"), 0),),
    )  # fmt: skip
    directory = Path(tempfile.mkdtemp(prefix="tierchain-recon-"))
    try:
        with Chain(directory, cfg, node) as chain:
            fin = Finance(chain)
            committee = fin.party(node)
            for name, kp in (("BankA", bank_a), ("BankB", bank_b)):
                assert committee.propose_admit(name, ("bank",), kp.public_key).ok, name
            a = Reconciler(chain, bank_a, fin.org_id("BankB"))
            b = Reconciler(chain, bank_b, fin.org_id("BankA"))
            assert a.open_pair(bank_b.public_key).ok and b.accept().ok  # B checks the key, then accepts
            day = chain.head().timestamp_ms // c.day_ms
            book_a, book_b, changed, a_only, b_only = books(n, mismatch, missing, seed=11)
            out: dict = {"crypto": crypto, "sync": sync, "pairs": n}
            for who, rec, book in (("A", a, book_a), ("B", b, book_b)):
                t0 = time.perf_counter()
                txs = rec.signed_posts(day, book)
                built = time.perf_counter() - t0
                t0 = time.perf_counter()
                sub = chain.submit(txs)
                receipts = sub.wait(300)
                committed = time.perf_counter()
                assert not sub.rejections() and all(r.code == Reject.OK for r in receipts), who
                out[f"post_{who}"] = {
                    "txs": len(txs),
                    "build_sign_s": built,
                    "submit_to_commit_s": committed - t0,
                }
            # The clock: from the commit of B's last posting.
            rep_a = a.report(day)
            t_a = time.perf_counter() - committed
            t0 = time.perf_counter()
            rep_b = b.report(day)
            t_b = time.perf_counter() - t0
            t0 = time.perf_counter()
            public = fetch_public_report(make_endpoint(chain), a.pair_id, day)
            t_e = time.perf_counter() - t0
            assert {m.ref: m.fields for m in rep_a.mismatched} == {r: (f,) for r, f in changed.items()}
            assert {m.ref: m.fields for m in rep_b.mismatched} == {r: (f,) for r, f in changed.items()}
            assert sorted(ref for ref, _ in rep_a.missing_on_them) == sorted(a_only)
            assert sorted(ref for ref, _ in rep_b.missing_on_them) == sorted(b_only)
            assert public.counts["rows"] == len(set(book_a) | set(book_b))
            out.update(
                counts=rep_a.counts,
                height=chain.height,
                report_A_after_last_commit_s=t_a,
                report_B_s=t_b,
                endpoint_public_report_s=t_e,
            )
            return out
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@click.command()
@click.option("--pairs", type=int, default=1_000_000, show_default=True, help="Record pairs, offline.")
@click.option("--e2e-pairs", type=int, default=2_000, show_default=True, help="Record pairs on a chain.")
@click.option("--crypto", type=click.Choice(sorted(SUITES)), default="ed25519-blake3", show_default=True)
@click.option("--mismatch", type=float, default=0.001, show_default=True, help="Share changed on one side.")
@click.option("--missing", type=float, default=0.001, show_default=True, help="Share missing, each side.")
@click.option("--sync", type=click.Choice(["full", "none"]), default="full", show_default=True)
@click.option("--tiny", is_flag=True, help="Tiny parameters (CI): the script runs; figures mean little.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def main(pairs, e2e_pairs, crypto, mismatch, missing, sync, tiny, out) -> None:
    if tiny:
        pairs, e2e_pairs = 20_000, 200
    out = out or OUT / ("recon-tiny.json" if tiny else "recon.json")
    report = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "offline": offline(pairs, crypto, mismatch, missing),
        "end_to_end": end_to_end(e2e_pairs, crypto, sync, mismatch * 10, missing * 10),
    }
    report["process_peak_rss_mib"] = rss_mib()
    off, e2e = report["offline"], report["end_to_end"]
    click.echo(
        f"offline {pairs:,} pairs ({crypto}): digests A {off['digests']['A']['seconds']:.1f} s "
        f"({off['digests']['A']['us_per_record']:.1f} us/record), B {off['digests']['B']['seconds']:.1f} s; "
        f"report {off['report_s']:.2f} s (party view +{off['party_view_s']:.2f} s; two-map join "
        f"{off['join_two_maps_s']:.2f} s), report peak {off['report_peak_traced_mib']:.0f} MiB traced, "
        f"process peak RSS {report['process_peak_rss_mib']:.0f} MiB; counts {off['counts']}"
    )
    click.echo(
        f"end to end {e2e_pairs:,} pairs on a chain (sync={sync}): postings A {e2e['post_A']['txs']} txs, "
        f"B {e2e['post_B']['txs']} txs; report in hand "
        f"{e2e['report_A_after_last_commit_s'] * 1e3:.0f} ms after B's last posting committed "
        f"(B's own {e2e['report_B_s'] * 1e3:.0f} ms, endpoint "
        f"{e2e['endpoint_public_report_s'] * 1e3:.0f} ms)"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    click.echo(f"wrote {out}")


if __name__ == "__main__":
    main()
