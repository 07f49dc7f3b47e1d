"""SM2 header signatures checked without TierChain: the gmssl recipe of docs/proofs.md ("Suites").

A light client of an ``sm2-sm3`` chain that copied ``proofs.py`` alone passes
``gmssl_verify`` as ``verify_signature``. It imports the standard library and
``gmssl`` (pure Python, PyPI) only — nothing from TierChain — so it can be
copied along with ``proofs.py`` (tests/proofs/test_proofs_suites.py does).

The proposer field of a header is the 32-byte ``x`` of an SM2 public key whose
``y`` is even (the point ``02 || x``). gmssl wants the uncompressed key
``x || y``: since SM2's prime ``p`` is 3 mod 4, a square root of
``c = x^3 + a*x + b`` (if ``c`` is a square) is ``c^((p+1)/4) mod p``; check
it squares back to ``c`` (else ``x`` is no point: refuse), take ``p - y`` if it
is odd. gmssl does not check that ``r`` and ``s`` lie in ``[1, n-1]`` (TierChain
does), so that is checked first, and gmssl's constructor mangles a key whose
hex starts with ``04`` (``str.lstrip("04")``), so the key is set after it.
"""

from __future__ import annotations

from gmssl import sm2

# The SM2 recommended curve (GB/T 32918.5), y^2 = x^3 + a*x + b over GF(p), order n.
P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
assert P % 4 == 3


def y_from_x(x: bytes) -> bytes | None:
    """The even ``y`` (32 bytes, big-endian) of the curve point with this ``x``; ``None`` if none."""
    if len(x) != 32:
        return None
    xi = int.from_bytes(x, "big")
    if xi >= P:
        return None
    c = (xi * xi * xi + A * xi + B) % P
    y = pow(c, (P + 1) // 4, P)
    if y * y % P != c:
        return None  # c is not a square: no point has this x
    if y & 1:
        y = P - y
    return y.to_bytes(32, "big")


def gmssl_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """SM2 (default user ID ``1234567812345678``) by the x-only key ``public_key``: a bool, never raises."""
    try:
        y = y_from_x(bytes(public_key))
        if y is None or len(signature) != 64:
            return False
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        if not (1 <= r < N and 1 <= s < N):
            return False
        verifier = sm2.CryptSM2(private_key="", public_key="")
        verifier.public_key = (bytes(public_key) + y).hex()  # x || y hex, set past the constructor
        return bool(verifier.verify_with_sm3(bytes(signature).hex(), bytes(message)))
    except Exception:  # gmssl raises assorted errors on malformed input
        return False
