"""TLS and mutual TLS on the node's listeners (docs/api.md, "Authentication and limits"):
a CA, a server certificate for 127.0.0.1 and a client certificate made here with
``cryptography``; the gRPC API and the HTTP endpoint answer over TLS, refuse plain text,
and with a client CA refuse a client without a certificate signed by it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import http.client
import ipaddress
import json
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tierchain.api.client import ApiCallError, ApiClient, Tls
from tierchain.api.grpc_server import TlsFiles
from tierchain.api.rpc import NodeServer


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, key, issuer_name: x509.Name, issuer_key, *, ca: bool = False, ip: str | None = None):
    now = dt.datetime.now(dt.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ip:
        b = b.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False
        )
    return b.sign(issuer_key, hashes.SHA256())


def _pem(obj) -> bytes:
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("tierchain test CA", ca_key, _name("tierchain test CA"), ca_key, ca=True)
    server_key, client_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    server = _cert("node", server_key, ca.subject, ca_key, ip="127.0.0.1")
    client = _cert("bank-a", client_key, ca.subject, ca_key)
    files = {
        "ca.pem": _pem(ca), "server.pem": _pem(server), "server.key": _pem(server_key),
        "client.pem": _pem(client), "client.key": _pem(client_key),
    }  # fmt: skip
    for name, data in files.items():
        (d / name).write_bytes(data)
    return d


def _ssl(pki, with_client: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if with_client:
        ctx.load_cert_chain(str(pki / "client.pem"), str(pki / "client.key"))
    return ctx


@pytest.mark.parametrize("mutual", [False, True])
def test_both_listeners_over_tls(chain, pki, mutual):
    files = TlsFiles(pki / "server.pem", pki / "server.key", (pki / "ca.pem") if mutual else None)
    srv = NodeServer(chain, "127.0.0.1", 0, grpc_listen="127.0.0.1:0", grpc_tls=files, http_tls=files)
    srv.start()
    try:
        port, grpc_target = srv.address[1], f"127.0.0.1:{srv.grpc_port}"
        # HTTP over TLS (the network API's JSON face and the operator's /v1 alike)
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=_ssl(pki, with_client=True))
        conn.request("POST", "/api/v1/GetHead", b"{}")
        r = conn.getresponse()
        assert r.status == 200 and int(json.loads(r.read())["height"]) == chain.height
        conn.close()
        plain = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        with pytest.raises((OSError, http.client.HTTPException)):
            plain.request("GET", "/v1/head")
            plain.getresponse().read()
        plain.close()
        if mutual:  # no client certificate: the handshake fails
            bare = http.client.HTTPSConnection(
                "127.0.0.1", port, timeout=5, context=_ssl(pki, with_client=False)
            )
            with pytest.raises((OSError, http.client.HTTPException)):
                bare.request("GET", "/v1/head")
                bare.getresponse().read()
            bare.close()

        async def go():
            ca = (pki / "ca.pem").read_bytes()
            client = Tls(ca, (pki / "client.pem").read_bytes(), (pki / "client.key").read_bytes())
            async with ApiClient(grpc_target, tls=client) as api:
                assert (await api.head()).height == chain.height
            async with ApiClient(grpc_target, timeout_s=3) as plaintext:
                with pytest.raises(ApiCallError):
                    await plaintext.head()
            if mutual:
                async with ApiClient(grpc_target, tls=Tls(ca), timeout_s=3) as no_cert:
                    with pytest.raises(ApiCallError):
                        await no_cert.head()

        asyncio.run(go())
    finally:
        srv.stop()


def test_a_clusters_http_api_over_mutual_tls(chain, pki):
    """``GatewayServer`` (what ``cluster start`` serves at ``api_listen``) with the cluster
    file's TLS files: mutual TLS asked, a client without a certificate refused."""
    from tierchain.api.gateway import GatewayServer
    from tierchain.api.service import NodeService

    files = TlsFiles(pki / "server.pem", pki / "server.key", pki / "ca.pem")
    srv = GatewayServer(NodeService(chain), "127.0.0.1", 0, tls=files).start()
    try:
        port = srv.address[1]
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=_ssl(pki, with_client=True))
        conn.request("POST", "/api/v1/GetInfo", b"{}")
        r = conn.getresponse()
        assert r.status == 200 and json.loads(r.read())["shard_count"] == 1
        conn.close()
        bare = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=_ssl(pki, with_client=False))
        with pytest.raises((OSError, http.client.HTTPException)):
            bare.request("GET", "/health")
            bare.getresponse().read()
        bare.close()
    finally:
        srv.stop()
