"""Driving a ``TierChainApp`` the way CometBFT does, in process: the ABCI requests of
InitChain, CheckTx, ProcessProposal and FinalizeBlock, and a whole block's round
(tests/replication/test_app.py and the tests of apps that replicated nodes run)."""

from __future__ import annotations

import hashlib
import json

from tierchain.crypto import KeyPair
from tierchain.errors import Reject
from tierchain.replication import abci_pb
from tierchain.replication.app import GENESIS_KEY, cometbft_chain_id, genesis_digest, validator_address

# CometBFT's validator keys: Ed25519 in every TierChain crypto suite (CometBFT has no SM2).
VAL1 = KeyPair.from_seed(b"validator-1".ljust(32, b"\0"))
VAL2 = KeyPair.from_seed(b"validator-2".ljust(32, b"\0"))
NEW = abci_pb.enum_value("tendermint.abci.CheckTxType", "NEW")
RECHECK = abci_pb.enum_value("tendermint.abci.CheckTxType", "RECHECK")
ACCEPT = abci_pb.ResponseProcessProposal.ACCEPT
REJECT = abci_pb.ResponseProcessProposal.REJECT
T0_MS = 1_700_000_000_000  # block times: after small_config's genesis time


def init_request(config, validators=(VAL1, VAL2), *, digest=None, **fields):
    """CometBFT's InitChain for ``config``'s network: its chain id, the engine genesis digest
    in app_state, ``validators`` with ed25519 keys."""
    req = abci_pb.RequestInitChain(
        chain_id=cometbft_chain_id(config),
        app_state_bytes=json.dumps({GENESIS_KEY: digest or genesis_digest(config)}).encode(),
        initial_height=1,
    )
    for keys in validators:
        v = req.validators.add()
        v.pub_key.ed25519 = keys.public_key
        v.power = 10
    for name, value in fields.items():
        setattr(req, name, value)
    return req


def set_time(req, ms: int) -> None:
    req.time.seconds, req.time.nanos = divmod(ms, 1000)
    req.time.nanos = req.time.nanos * 1_000_000 + 456_789  # below a millisecond: dropped


def finalize_request(txs, height, *, ms=None, proposer=VAL1, block_hash=None):
    req = abci_pb.RequestFinalizeBlock(
        txs=list(txs),
        height=height,
        hash=block_hash or hashlib.sha256(b"block %d" % height).digest(),
        proposer_address=validator_address(proposer.public_key),
    )
    set_time(req, T0_MS + 1000 * height if ms is None else ms)
    return req


def process_request(txs, height, *, block_hash=None):
    req = abci_pb.RequestProcessProposal(
        txs=list(txs),
        height=height,
        hash=block_hash or hashlib.sha256(b"block %d" % height).digest(),
        proposer_address=validator_address(VAL1.public_key),
    )
    set_time(req, T0_MS + 1000 * height)
    return req


def check(app, txs, kind=NEW) -> list[Reject]:
    answers = app.check_txs([abci_pb.RequestCheckTx(tx=t, type=kind) for t in txs])
    assert len(answers) == len(txs)
    for a in answers:
        if a.code:
            assert a.codespace == "tierchain" and a.log == Reject(a.code).name
    return [Reject(a.code) for a in answers]


def run_block(app, txs, **kwargs):
    """ProcessProposal (ACCEPT), FinalizeBlock, Commit of the next block: FinalizeBlock's answer."""
    height = app.chain.height + 1
    assert app.process_proposal(process_request(txs, height)).status == ACCEPT
    res = app.finalize_block(finalize_request(txs, height, **kwargs))
    app.commit(abci_pb.RequestCommit())
    return res


def bad_signature(tx: bytes) -> bytes:
    raw = bytearray(tx)
    raw[-1] ^= 1  # the signature's last byte
    return bytes(raw)
