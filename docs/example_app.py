"""An embedder's app: a notary that stamps document digests (docs/embedding.md "Adding ops").

It is the model for writing an app and registering it with TierChain without editing
TierChain: one ``App`` value (``APP`` below) declares the ops, their code range, a hash
domain, a role, a genesis hook and a query. A chain runs it when its genesis names it:

    [chain]
    apps = ["accounts", "xshard", "finance", "notary"]

and a process finds it by name through the ``tierchain.apps`` entry-point group of an
installed package (``[project.entry-points."tierchain.apps"] notary = "example_app:APP"``)
or, without installing anything, through the environment (what the tests do):

    PYTHONPATH=docs TIERCHAIN_APPS=example_app:APP tierchain node run NODE_DIR
    PYTHONPATH=docs TIERCHAIN_APPS=example_app:APP tierchain verify NODE_DIR

Run this file to see it embedded: ``python docs/example_app.py``.

State layout: ``ntry/<digest 32>`` -> notary's public key (32) || height u64 LE, and
``ntry/!version`` -> 1 (written at genesis). Only an account holding the ``notary`` role
(bit 16 of the roles mask) may stamp, and a digest is stamped once. Refusals use the
engine's shared codes (``BAD_PAYLOAD``, ``UNAUTHORIZED``) and the app's own
(``NotaryReject.ALREADY_STAMPED``, inside its ``reject_codes``), which receipts keep as a
number and the API and the CLI show by name.
"""

from __future__ import annotations

import enum
import struct
import sys
import tempfile
from collections.abc import Callable, Iterator

import blake3

from tierchain.apps.accounts import account_key, roles_of
from tierchain.engine import apps
from tierchain.engine.execute import OpFailed, TxContext
from tierchain.errors import Reject
from tierchain.wire import tx

OP_STAMP = 4096  # app op codes: 4096..4111 (any range no other app of the chain claims)
STAMP_ID = "tierchain example 2026 notary stamp id"  # the app's own hash domain
NOTARY = apps.Role("notary", 16)
VERSION_KEY = b"ntry/!version"
_STAMP = struct.Struct("<32sQ")
_ops = apps.OpTable()


class NotaryReject(enum.IntEnum):
    """The app's own refusal codes (inside ``APP.reject_codes``), by the names shown."""

    ALREADY_STAMPED = 4096  # the digest has a stamp already


def stamp_key(digest: bytes) -> bytes:
    return b"ntry/" + digest


@_ops.op(OP_STAMP, "notary.stamp")
def _stamp(ctx: TxContext) -> None:
    if len(ctx.payload) != 32:
        raise OpFailed(Reject.BAD_PAYLOAD, "a stamp's payload is a 32-byte digest")
    if not (roles_of(ctx, ctx.sender) or 0) & (1 << NOTARY.bit):
        raise OpFailed(Reject.UNAUTHORIZED, "only a notary stamps")
    key = stamp_key(ctx.payload)
    if ctx.get(key) is not None:
        raise OpFailed(NotaryReject.ALREADY_STAMPED)
    ctx.put(key, _STAMP.pack(ctx.sender, ctx.height))
    ctx.emit(b"notary.stamped", blake3.blake3(ctx.payload + ctx.sender, derive_key_context=STAMP_ID).digest())


def stamp(chain_id: int, sender: bytes, nonce: int, digest: bytes) -> tx.Tx:
    """The client builder: a stamp of ``digest``, its declared keys computed here."""
    return tx.Tx(
        chain_id=chain_id,
        shard_id=0,
        op=OP_STAMP,
        sender=sender,
        nonce=nonce,
        expires_at=0,
        reads=(account_key(sender),),
        writes=(stamp_key(digest),),
        payload=digest,
    )


def stamp_of(state_get: Callable[[bytes], bytes | None], digest: bytes) -> tuple[bytes, int] | None:
    """(notary, height) of ``digest``'s stamp, or None (``Chain.query("notary.stamp_of", d)``)."""
    raw = state_get(stamp_key(digest))
    return None if raw is None else _STAMP.unpack(raw)


def _genesis(config, app_set: apps.AppSet, chunk_items: int) -> Iterator[list[tuple[bytes, bytes]]]:
    yield [(VERSION_KEY, b"\x01")]


APP = apps.App(
    name="notary",
    ops=tuple(_ops.ops),
    op_codes=range(4096, 4112),
    reject_codes=range(4096, 4112),  # no other app of the chain may claim these either
    rejects=NotaryReject,
    domains=(STAMP_ID,),
    roles=(NOTARY,),
    genesis=_genesis,
    queries=(("notary.stamp_of", stamp_of),),
)


def main() -> None:
    from tierchain.config import ChainConfig, GenesisAccount
    from tierchain.crypto import KeyPair
    from tierchain.engine.chain import Chain

    node = KeyPair.from_seed(b"n" * 32)
    config = ChainConfig(
        chain_id=7,
        apps=(*apps.DEFAULT_APPS, APP.name),
        genesis_accounts=(GenesisAccount(node.public_key, ("registrar", "notary")),),
    )
    digest = blake3.blake3(b"bill of lading 42").digest()
    with tempfile.TemporaryDirectory() as tmp, Chain(tmp, config, node, apps=[APP]) as chain:
        receipts = chain.submit([node.sign_tx(stamp(7, node.public_key, 0, digest)).encode()]).wait(30)
        again = chain.submit([node.sign_tx(stamp(7, node.public_key, 1, digest)).encode()]).wait(30)
        name = chain.apps.reject_name  # the app's names, then the engine's
        print("stamp:", name(receipts[0].code), "| again:", name(again[0].code))
        print("stamped by the node at height", chain.query("notary.stamp_of", digest)[1])


if __name__ == "__main__":
    sys.exit(main())
