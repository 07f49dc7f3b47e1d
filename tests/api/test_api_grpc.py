"""The network API over gRPC (tierchain.api: service, grpc_server, client; docs/api.md).

Every method with good and bad input, each refusal with its named code; signed calls (a
required signature, a bad one, a stale one, an unknown key); per-caller rate limits;
proofs verified by the client against the header served with them; streams resumed from
a height. The server runs on loopback with an ephemeral port and is stopped by the fixture.
"""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from conftest import ALICE, BOB, CAROL, NODE, transfer
from tierchain.api import auth, schema
from tierchain.api.client import ApiCallError, ApiClient, ProofError
from tierchain.api.grpc_server import GrpcServer
from tierchain.api.service import NodeService
from tierchain.apps import accounts
from tierchain.crypto import KeyPair


def serve(chain, **auth_kw) -> GrpcServer:
    return GrpcServer(NodeService(chain, auth.Authenticator(chain, **auth_kw)), "127.0.0.1:0").start()


@pytest.fixture
def node(chain):
    srv = serve(chain)
    yield chain, f"127.0.0.1:{srv.port}"
    srv.stop()


def run(coro):
    return asyncio.run(coro)


async def refused(coro, code: str) -> ApiCallError:
    with pytest.raises(ApiCallError) as info:
        await coro
    assert info.value.code == code, (info.value.code, info.value.detail)
    return info.value


def test_submit_await_and_read_back(node):
    chain, target = node

    async def go():
        async with ApiClient(target) as api:
            info = await api.info()
            assert (info.chain_id, info.suite) == (9, "ed25519-blake3") and "finance" in info.apps
            assert not info.auth_required and info.lineage_apps == ["finance"]
            txs = [transfer(ALICE, 0, BOB, 5), transfer(ALICE, 1, CAROL, 7)]
            sub = await api.submit(txs, wait_s=10)
            assert [a.code for a in sub.admissions] == ["OK", "OK"] and not sub.timeout
            assert [r.code for r in sub.receipts] == ["OK", "OK"] and sub.receipts[0].height >= 1
            ids = [a.tx_id for a in sub.admissions]
            got = await api.await_receipts(ids, timeout_s=1)
            assert [r.tx_id for r in got.receipts] == ids and not got.timeout
            # a replay is refused at admission, by name
            again = await api.submit(txs[:1])
            assert again.admissions[0].code == "NONCE_TOO_LOW"
            head = await api.head()
            assert head.height == chain.height and head.encoded == chain.head().encode()
            block = await api.block(sub.receipts[0].height)
            assert ids[0] in block.tx_ids and block.header.height == sub.receipts[0].height
            rec = await api.tx(ids[1])
            assert rec.tx == txs[1] and rec.receipt.code == "OK"
            assert await api.nonce(ALICE.public_key) == 2
            bal = await api.state(accounts.balance_key(BOB.public_key))
            assert int.from_bytes(bal, "little") == 5
            assert await api.state(accounts.balance_key(KeyPair.from_seed(b"n" * 32).public_key)) is None
            pairs = await api.scan(b"bal/", limit=2)
            assert len(pairs) == 2 and all(k.startswith(b"bal/") for k, _ in pairs)
            rest = await api.scan(b"bal/", after=pairs[-1][0])
            assert rest and rest[0][0] > pairs[-1][0]
            # an unconfirmed id: waited for, then reported missing
            missing = bytes(32)
            got = await api.await_receipts([ids[0], missing], timeout_s=0.2)
            assert got.timeout and got.receipts[0].tx_id == ids[0] and got.receipts[1].tx_id == b""

    run(go())


def test_proofs_verify_against_the_served_header_and_a_lie_is_caught(node, monkeypatch):
    chain, target = node

    async def go():
        async with ApiClient(target) as api:
            sub = await api.submit([transfer(ALICE, 0, BOB, 5)], wait_s=10)
            tx_id = sub.admissions[0].tx_id
            key = accounts.balance_key(BOB.public_key)
            p = await api.prove_state(key, trusted=NODE.public_key)
            assert p.found and int.from_bytes(p.value, "little") == 5
            absent = await api.prove_state(b"bal/" + bytes(32))
            assert not absent.found
            t = await api.prove_tx(tx_id, trusted=NODE.public_key)
            assert t.height == sub.receipts[0].height
            with pytest.raises(ProofError):
                await api.prove_state(key, trusted=ALICE.public_key)  # not the proposer
            await refused(api.prove_tx(bytes(32)), "NO_SUCH_TX")

    run(go())
    # a node that serves a value its proof does not prove is caught by the client
    real = NodeService.prove_state

    def lying(self, req, caller):
        out = real(self, req, caller)
        out.value = (999).to_bytes(8, "little")
        return out

    monkeypatch.setattr(NodeService, "prove_state", lying)
    srv = serve(chain)
    try:

        async def lie():
            async with ApiClient(f"127.0.0.1:{srv.port}") as api:
                with pytest.raises(ProofError, match="another value"):
                    await api.prove_state(accounts.balance_key(BOB.public_key))

        run(lie())
    finally:
        srv.stop()


def test_streams_replay_then_follow_and_resume(node):
    chain, target = node

    async def go():
        async with ApiClient(target) as api:
            await api.submit([transfer(ALICE, 0, BOB, 1)], wait_s=10)
            h0 = chain.height
            seen = []
            async for block in api.stream_blocks(from_height=0):
                seen.append(block.header.height)
                if block.header.height == h0:
                    break
            assert seen == list(range(h0 + 1))
            # resume after the last seen height: the next block arrives as it commits
            stream = api.stream_blocks(from_height=h0 + 1)
            nxt = asyncio.ensure_future(stream.__anext__())
            await asyncio.sleep(0.05)
            await api.submit([transfer(ALICE, 1, BOB, 1)])
            block = await asyncio.wait_for(nxt, 10)
            assert block.header.height == h0 + 1
            await stream.aclose()
            events = []
            async for e in api.stream_events(from_height=0, topic_prefix=b"transfer"):
                events.append(e)
                if len(events) == 2:
                    break
            assert [e.event.topic for e in events] == [b"transfer", b"transfer"]
            assert events[0].height < events[1].height
            await refused(anext(api.stream_blocks(from_height=chain.height + 10**6)), "BAD_ARGUMENT")

    run(go())


@pytest.mark.parametrize(
    ("method", "request_fields", "code"),
    [
        ("GetTx", {"tx_id": b"short"}, "BAD_ARGUMENT"),
        ("GetTx", {"tx_id": bytes(32)}, "NO_SUCH_TX"),
        ("GetBlock", {"height": 10**9}, "NO_SUCH_BLOCK"),
        ("GetState", {"key": b""}, "BAD_ARGUMENT"),
        ("GetState", {"key": b"k" * 65}, "BAD_ARGUMENT"),
        ("GetNonce", {"public_key": b"x" * 31}, "BAD_ARGUMENT"),
        ("Scan", {"prefix": b""}, "BAD_ARGUMENT"),
        ("Scan", {"prefix": b"bal/", "limit": 10**6}, "BAD_ARGUMENT"),
        ("Submit", {"txs": []}, "BAD_ARGUMENT"),
        ("Submit", {"txs": [b"garbage"], "wait_s": 61}, "BAD_ARGUMENT"),
        ("Submit", {"txs": [b""]}, "BAD_ARGUMENT"),
        ("AwaitReceipts", {"tx_ids": []}, "BAD_ARGUMENT"),
        ("AwaitReceipts", {"tx_ids": [b"x"]}, "BAD_ARGUMENT"),
        ("AwaitReceipts", {"tx_ids": [bytes(32)], "timeout_s": -1}, "BAD_ARGUMENT"),
        ("ProveState", {"key": b""}, "BAD_ARGUMENT"),
        ("ProveTx", {"tx_id": b"x"}, "BAD_ARGUMENT"),
        ("Lineage", {"app": "finance", "id": b"x"}, "BAD_ARGUMENT"),
        ("Lineage", {"app": "finance", "id": bytes(16)}, "NO_SUCH_RECORD"),
        ("Lineage", {"app": "nope", "id": bytes(16)}, "NO_SUCH_ENDPOINT"),
        ("CallApp", {"endpoint": "nope.x"}, "NO_SUCH_ENDPOINT"),
    ],
)
def test_bad_requests_are_refused_by_name(node, method, request_fields, code):
    chain, target = node
    before = chain.height

    async def go():
        async with ApiClient(target) as api:
            req = schema.message(schema.methods()[method].input_type.full_name)(**request_fields)
            err = await refused(api._unary(method, req), code)
            assert err.status != grpc.StatusCode.INTERNAL

    run(go())
    assert chain.nonce(ALICE.public_key) == 0 and chain.height >= before


def test_garbage_bytes_are_a_bad_argument(node):
    _, target = node

    async def go():
        async with ApiClient(target) as api:
            call = api._stub("GetHead")
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await call(b"\xff\xff\xff", timeout=5)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert ("tierchain-error", "BAD_ARGUMENT") in tuple(info.value.trailing_metadata())

    run(go())


def test_signed_calls_when_required(chain):
    srv = serve(chain, required=True)
    target = f"127.0.0.1:{srv.port}"

    async def go():
        async with ApiClient(target) as anonymous:
            await refused(anonymous.head(), "UNAUTHENTICATED")
        async with ApiClient(target, keys=ALICE) as alice:  # a registered account
            assert (await alice.head()).height == chain.height
            info = await alice.info()
            assert info.auth_required
        async with ApiClient(target, keys=KeyPair.from_seed(b"stranger".ljust(32, b"\0"))) as stranger:
            await refused(stranger.head(), "UNKNOWN_KEY")
        async with ApiClient(target, keys=ALICE) as alice:
            # a signature over other bytes than those sent; a stale time
            raw = schema.message("GetHeadRequest")().SerializeToString()
            bad = auth.sign_call(ALICE, alice.suite, f"/{schema.SERVICE}/GetBlock", raw)
            stale = auth.sign_call(
                ALICE, alice.suite, f"/{schema.SERVICE}/GetHead", raw, now_ms=int(time.time() * 1000) - 60_000
            )
            for headers in (bad, stale, {auth.KEY: ALICE.public_key.hex()}):
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await alice._stub("GetHead")(raw, metadata=tuple(headers.items()), timeout=5)
                assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED

    try:
        run(go())
    finally:
        srv.stop()


def test_each_caller_has_its_own_budget(chain):
    srv = serve(chain, limits_=auth.Limits(rate_per_s=0.01, burst=3))
    target = f"127.0.0.1:{srv.port}"

    async def go():
        async with ApiClient(target, keys=ALICE) as alice, ApiClient(target, keys=CAROL) as carol:
            for _ in range(3):
                await alice.head()
            err = await refused(alice.head(), "RATE_LIMITED")
            assert err.status == grpc.StatusCode.RESOURCE_EXHAUSTED and "retry in" in err.detail
            assert (await carol.head()).height >= 0  # another caller, another bucket

    try:
        run(go())
    finally:
        srv.stop()


def test_anonymous_callers_are_budgeted_by_host_not_by_connection(chain):
    srv = serve(chain, limits_=auth.Limits(rate_per_s=0.01, burst=3))
    target = f"127.0.0.1:{srv.port}"

    async def go():
        async with ApiClient(target) as one, ApiClient(target) as two:  # two connections, one host
            await one.head()
            await two.head()
            await one.head()
            await refused(two.head(), "RATE_LIMITED")

    try:
        run(go())
    finally:
        srv.stop()
    assert auth.peer_host("ipv6:[::1]:5000") == "[::1]" and auth.peer_host("ipv4:10.1.2.3:9") == "10.1.2.3"


def test_app_answers_keep_their_integers_exact(chain):
    """CallApp and Lineage answer JSON text: an amount of 2^63 - 1 comes back exact (a
    google.protobuf.Struct would have made it a double)."""
    svc = NodeService(chain)
    svc.endpoints["test.echo"] = lambda body: {"amount": 2**63 - 1, "got": body}
    srv = GrpcServer(svc, "127.0.0.1:0").start()

    async def go():
        async with ApiClient(f"127.0.0.1:{srv.port}") as api:
            answer = await api.call_app("test.echo", {"face": 2**62 + 1})
            assert answer == {"amount": 2**63 - 1, "got": {"face": 2**62 + 1}}

    try:
        run(go())
    finally:
        srv.stop()
