"""TierChain as a CometBFT application: the ABCI 2.0 methods mapped onto the engine.

==================  ==========================================================================
ABCI                TierChain
==================  ==========================================================================
Info                the last durable height and its header hash: CometBFT replays what is missing
InitChain           checks CometBFT's genesis against the engine's (``app_state``), records the
                    validators; answers the genesis header's hash as the first app hash
CheckTx             admission (``engine.mempool.screen``: decode, bounds, chain, expiry, reserved
                    keys, signatures — one batch per socket read, a signature this node verified
                    before not again) and the nonce sequence against committed state plus the
                    transactions this node already checked; what the node API admitted
                    (``admit_local``) passes at once
PrepareProposal     the block builder: CometBFT's mempool transactions in order, each sender's
                    nonces in sequence, at most ``block_txs_max`` and ``max_tx_bytes``
ProcessProposal     full validation of a proposed block: every transaction decodes, passes
                    admission with its signature, and has the next nonce; else REJECT
FinalizeBlock       the state transition (``ReplicaChain.finalize``): receipts as tx results, the
                    block header's hash as the app hash
Commit              the block's one LMDB write transaction (``ReplicaChain.commit``)
==================  ==========================================================================

The app hash is the engine header's hash, not only the state root: it commits to the
transactions, the receipts and the state, so a node whose receipts differ (a different
refusal code, with the same writes) is caught as surely as one whose state differs.

Roles (``node.toml``): a ``validator`` and a ``full`` node take transactions; an
``observer`` refuses every CheckTx with ``READ_ONLY`` (its mempool stays empty and does not
gossip: ``mempool.broadcast = false``).

Crypto suites: everything the app checks, hashes or signs is the chain's suite's
(``chain.suite``): admission's signatures and tx ids, the header hash (the app hash), the
state tree, this node's header signature, the genesis digest in ``app_state``. CometBFT's
validator keys are Ed25519 in every suite (CometBFT has no SM2): InitChain takes only
those, a header's ``proposer`` on a replicated chain is the proposing validator's
CometBFT key (an identity in the hashed header, never verified as a signer), and a
validator update is handed to CometBFT only for a valid Ed25519 key.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import threading
from collections import OrderedDict
from typing import Any

import numpy as np
import tierchain_native

from tierchain import limits
from tierchain.config import ChainConfig
from tierchain.crypto import DEFAULT_SUITE_NAME, suite_of
from tierchain.crypto.keys import is_strong_public_key as is_strong_ed25519_key
from tierchain.engine.apps import VALIDATOR_UPDATE_TOPIC
from tierchain.engine.mempool import VERDICT_CODES, screen
from tierchain.errors import Reject
from tierchain.replication import abci_pb
from tierchain.replication.abci_server import Application
from tierchain.replication.ledger import ReplicaChain
from tierchain.wire.batch import Batch, decode_batch, split_rows
from tierchain.wire.tx import frame

log = logging.getLogger("tierchain.replication")

ROLES = ("validator", "full", "observer")
APP_VERSION = 1  # the ABCI app protocol version: bumped when the same blocks would give other app hashes
GENESIS_KEY = "tierchain_genesis"  # app_state key: the engine genesis digest, hex
proposals_kept = 4  # ProcessProposal results kept for FinalizeBlock (by block hash)
# Signatures this node verified (tx id + signature), so that a recheck and the
# ProcessProposal of a block made of them do not verify them again; oldest forgotten first.
verified_max = 1 << 18
# Transactions the node API admitted (``admit_local``) whose CheckTx has not come yet;
# beyond this many, the oldest are forgotten (their CheckTx, if it comes, checks in full).
local_max = 1 << 17
CODESPACE = "tierchain"
# The domain of the genesis digest in CometBFT's app_state on a chain not of the default suite
# (the default suite's is plain BLAKE3, as it was before suites existed: kept for its networks).
GENESIS_DIGEST = "tierchain 2026 cometbft genesis app state"
try:
    _VERSION = importlib.metadata.version("tierchain")
except importlib.metadata.PackageNotFoundError:
    _VERSION = "unknown"


class GenesisMismatch(Exception):
    """CometBFT's genesis does not describe this node's TierChain genesis."""


def genesis_digest(config: ChainConfig) -> str:
    """What CometBFT's genesis ``app_state`` records of the engine's genesis (hex): a hash in
    the chain's suite (``ed25519-blake3``: plain BLAKE3; otherwise the suite's domain hash
    ``GENESIS_DIGEST``, e.g. SM3 on an ``sm2-sm3`` chain)."""
    suite = suite_of(config)
    if suite.name == DEFAULT_SUITE_NAME:
        import blake3

        return blake3.blake3(config.genesis_bytes()).hexdigest()
    return suite.hash(GENESIS_DIGEST, config.genesis_bytes()).hex()


def cometbft_chain_id(config: ChainConfig) -> str:
    return f"tierchain-{config.chain_id}"


def validator_address(public_key: bytes) -> bytes:
    """CometBFT's address of an ed25519 validator key: SHA-256, first 20 bytes (CometBFT's
    own hash, in every TierChain suite)."""
    return hashlib.sha256(public_key).digest()[:20]


def _ms(ts: Any) -> int:
    return ts.seconds * 1000 + ts.nanos // 1_000_000


class TierChainApp(Application):
    """The ABCI application over a ``ReplicaChain`` (module docstring)."""

    def __init__(self, chain: ReplicaChain, *, role: str = "validator") -> None:
        if role not in ROLES:
            raise ValueError(f"role: one of {', '.join(ROLES)}, got {role!r}")
        self.chain, self.role = chain, role
        self.suite = chain.suite
        self.config = chain.config
        self.checks = chain.apps.checks  # the apps' batch checks: with the signatures, same rows
        self.fatal = threading.Event()  # set by the node runner when consensus handling failed
        # CheckTx's view: each sender with checked, uncommitted txs -> (committed, next nonce).
        # Reset at Commit; CometBFT then rechecks its whole mempool in order, rebuilding it.
        self._check_nonces = tierchain_native.NonceSequencer(self.config.sender_pending_max)
        self._check_lock = threading.Lock()
        self._proposals: OrderedDict[bytes, Batch] = OrderedDict()
        self._cache_lock = threading.Lock()
        # Keys of tx id + signature (_signature_keys): the ones this node verified, oldest
        # first, and the ones admit_local admitted whose CheckTx has not come yet.
        key_bytes = self.suite.digest_bytes + self.suite.signature_bytes
        self._verified = tierchain_native.SeenSet(key_bytes, verified_max)
        self._local = tierchain_native.SeenSet(key_bytes, local_max)
        self._check_answers: dict[int, Any] = {}  # reject code -> its shared ResponseCheckTx
        self._set_powers(self._load_validators())
        self._next_powers: dict[bytes, int] | None = None  # what the finalized block makes them

    def close(self) -> None:
        self.chain.close()

    # --- validators ----------------------------------------------------------------
    # ``_powers``: every key that was ever a validator -> its power (0: removed; kept so a
    # block it proposed before its removal took effect still names it). Recorded in meta
    # "validators" at InitChain and, when a block changes it, in that block's write txn.

    def _load_validators(self) -> dict[bytes, int]:
        with self.chain.store.read() as r:
            raw = r.get("meta", "validators")
        return {} if raw is None else {bytes.fromhex(k): int(p) for k, p in json.loads(raw).items()}

    @staticmethod
    def _encode_validators(powers: dict[bytes, int]) -> bytes:
        return json.dumps({k.hex(): p for k, p in sorted(powers.items())}).encode()

    def _set_powers(self, powers: dict[bytes, int]) -> None:
        self._powers = powers
        self._addresses = {validator_address(k): k for k in powers}

    @property
    def validators(self) -> dict[bytes, int]:
        """The current validator set as this app knows it: public key -> voting power."""
        return {k: p for k, p in self._powers.items() if p}

    def _validator_updates(self, receipts: list) -> list[tuple[bytes, int]]:
        """The block's validator changes (``apps.VALIDATOR_UPDATE_TOPIC`` events of its
        successful transactions, the last one per key), or none if they would leave no validator.

        A key is a CometBFT validator key, Ed25519 in every suite: one that is not a valid
        Ed25519 key (an SM2 key of an ``sm2-sm3`` chain, say, from an app that does not check
        what finance's SET_VALIDATOR checks) is left out and logged. CometBFT would take
        it, and a validator nobody can sign for counts against the 2/3 every block needs."""
        changes: dict[bytes, int] = {}
        for rc in receipts:
            if rc.code:
                continue
            for ev in rc.events:
                if ev.topic == VALIDATOR_UPDATE_TOPIC and len(ev.data) == 40:
                    key = ev.data[:32]
                    if not is_strong_ed25519_key(key):
                        log.warning(
                            "validator update ignored: not an Ed25519 key (CometBFT's keys are Ed25519)",
                            extra={"fields": {"key": key.hex()}},
                        )
                        continue
                    changes[key] = int.from_bytes(ev.data[32:], "little")
        # Removing a key that is not a validator would make CometBFT refuse the whole update
        # ("failed to find validator to remove") and stop every node at this height: such a
        # removal changes nothing, so it is left out (deterministically: the set is the chain's).
        current = self.validators
        for key in [k for k, p in changes.items() if p == 0 and k not in current]:
            log.warning("validator removal ignored: not a validator", extra={"fields": {"key": key.hex()}})
            del changes[key]
        if not changes:
            return []
        after = {**current, **changes}
        if not any(after.values()):
            log.error("validator updates ignored: they would leave no validator", extra={"fields": {}})
            return []
        return list(changes.items())

    # --- connection: info ----------------------------------------------------------

    def info(self, req: Any) -> Any:
        head = self.chain.head()
        return abci_pb.ResponseInfo(
            data="tierchain",
            version=_VERSION,
            app_version=APP_VERSION,
            last_block_height=head.height,
            last_block_app_hash=head.hash(self.suite),
        )

    def query(self, req: Any) -> Any:
        """``/head``: the head header's bytes. Richer reads: the node's HTTP API (docs/replication.md)."""
        if req.path == "/head":
            head = self.chain.head()
            return abci_pb.ResponseQuery(value=head.encode(), height=head.height)
        return abci_pb.ResponseQuery(code=1, log=f"unknown query path {req.path!r}", codespace=CODESPACE)

    # --- consensus -------------------------------------------------------------------

    def init_chain(self, req: Any) -> Any:
        config = self.config
        if req.chain_id != cometbft_chain_id(config):
            raise GenesisMismatch(
                f"CometBFT chain {req.chain_id!r}, this node's is {cometbft_chain_id(config)!r}"
            )
        if req.initial_height not in (0, 1):
            raise GenesisMismatch(f"initial_height {req.initial_height}: TierChain heights start at 1")
        try:
            digest = json.loads(req.app_state_bytes or b"{}").get(GENESIS_KEY)
        except (ValueError, AttributeError):
            digest = None
        if digest != genesis_digest(config):
            raise GenesisMismatch(
                f"CometBFT genesis app_state.{GENESIS_KEY} is {digest!r}; this node's chain.toml gives "
                f"{genesis_digest(config)!r}: the homes were made for different networks"
            )
        if self.chain.height != 0:
            raise GenesisMismatch(f"InitChain at height {self.chain.height}")
        powers = {}
        for v in req.validators:
            kind = v.pub_key.WhichOneof("sum")
            if kind != "ed25519":
                raise GenesisMismatch(f"validator key of type {kind}: TierChain nodes use ed25519")
            powers[bytes(v.pub_key.ed25519)] = int(v.power)
        with self.chain.store.write() as w:
            w.put("meta", "validators", self._encode_validators(powers))
        self._set_powers(powers)
        log.info("chain initialised", extra={"fields": {"validators": len(powers)}})
        return abci_pb.ResponseInitChain(app_hash=self.chain.head().hash(self.suite))

    def prepare_proposal(self, req: Any) -> Any:
        # CometBFT offers up to max_tx_bytes of its mempool: more than a block, maybe more
        # than one decode takes (limits.batch_txs_max). Stale ones are dropped below, so
        # look at a few blocks' worth.
        txs = list(req.txs[: min(limits.batch_txs_max, 4 * self.config.block_txs_max)])
        if not txs:
            return abci_pb.ResponsePrepareProposal()
        batch = self._decode(txs)
        height = self.chain.height + 1
        # Our own mempool's transactions passed our CheckTx (signatures included); what
        # CometBFT offers may still have gone stale (a nonce another block consumed).
        codes = screen(batch, height, chain_id=self.config.chain_id, suite=self.suite, verify=False)
        keep = self._in_sequence(batch, codes == 0)
        out, size = [], 0
        for i in np.flatnonzero(keep).tolist():
            if len(out) >= self.config.block_txs_max or size + len(txs[i]) > req.max_tx_bytes:
                break
            out.append(txs[i])
            size += len(txs[i])
        return abci_pb.ResponsePrepareProposal(txs=out)

    def process_proposal(self, req: Any) -> Any:
        verdict = self._validate(list(req.txs), req.height, bytes(req.hash))
        if verdict is not None:
            log.warning(
                "proposal rejected",
                extra={
                    "fields": {
                        "height": req.height,
                        "reason": verdict,
                        "proposer": req.proposer_address.hex(),
                    }
                },
            )
            return abci_pb.ResponseProcessProposal(status=abci_pb.ResponseProcessProposal.REJECT)
        return abci_pb.ResponseProcessProposal(status=abci_pb.ResponseProcessProposal.ACCEPT)

    def _validate(self, txs: list[bytes], height: int, block_hash: bytes) -> str | None:
        """Why the block ``txs`` at ``height`` is invalid, or None (its batch is then kept
        for FinalizeBlock, by the CometBFT block's hash)."""
        if len(txs) > self.config.block_txs_max:
            return f"{len(txs)} transactions, block_txs_max is {self.config.block_txs_max}"
        if height != self.chain.height + 1:
            return f"height {height}, the chain is at {self.chain.height}"
        batch = self._decode(txs)
        keys = self._signature_keys(batch)
        with self._cache_lock:  # signatures this node verified at CheckTx are not verified again
            verify = ~np.frombuffer(self._verified.contains(keys), bool)
        codes = screen(
            batch, height, chain_id=self.config.chain_id, suite=self.suite, verify=verify, checks=self.checks
        )
        if (bad := np.flatnonzero(codes)).size:
            return f"transaction {int(bad[0])}: {Reject(int(codes[bad[0]])).name}"
        in_seq = self._in_sequence(batch, np.ones(len(batch), bool))
        if not in_seq.all():
            return f"transaction {int(np.flatnonzero(~in_seq)[0])}: not its sender's next nonce"
        self._proposals[block_hash] = batch
        while len(self._proposals) > proposals_kept:
            self._proposals.popitem(last=False)
        return None

    def finalize_block(self, req: Any) -> Any:
        txs = list(req.txs)
        batch = self._proposals.pop(bytes(req.hash), None)
        self._proposals.clear()  # a height is decided once
        if batch is None:  # not validated here (a full node, or a restart replaying blocks)
            batch = self._decode(txs)
        proposer = self._addresses.get(bytes(req.proposer_address))
        if proposer is None:
            raise GenesisMismatch(
                f"block {req.height}: proposer {req.proposer_address.hex()} is no known validator"
            )
        header, receipts = self.chain.finalize(batch, req.height, _ms(req.time), proposer)
        results = [
            abci_pb.ExecTxResult(code=rc.code, log=self.chain.apps.reject_name(rc.code) if rc.code else "")
            for rc in receipts
        ]
        updates = self._validator_updates(receipts)
        if updates:
            self._next_powers = {**self._powers, **dict(updates)}
            self.chain.commit_meta("validators", self._encode_validators(self._next_powers))
        return abci_pb.ResponseFinalizeBlock(
            tx_results=results,
            app_hash=header.hash(self.suite),
            validator_updates=[
                abci_pb.ValidatorUpdate(pub_key={"ed25519": key}, power=power) for key, power in updates
            ],
        )

    def commit(self, req: Any) -> Any:
        header = self.chain.commit()
        if self._next_powers is not None:  # durable with the block: the app follows
            self._set_powers(self._next_powers)
            self._next_powers = None
        with self._check_lock:
            self._check_nonces.clear()  # CometBFT rechecks what is left in its mempool
        log.debug("block committed", extra={"fields": {"height": header.height, "txs": header.tx_count}})
        return abci_pb.ResponseCommit()

    # --- mempool ---------------------------------------------------------------------

    def check_txs(self, reqs: list[Any]) -> list[Any]:
        if self.role == "observer":
            return [self._check_answer(Reject.READ_ONLY) for _ in reqs]
        batch = self._decode([r.tx for r in reqs])
        keys = self._signature_keys(batch)
        with self._cache_lock:
            # Admitted through this node's API a moment ago (``admit_local``): checked then.
            local = np.frombuffer(self._local.take(keys), bool)
        codes = self._admit(batch, keys, lenient=local)
        return [self._check_answer(int(c)) for c in codes.tolist()]

    def admit_local(self, batch: Batch) -> np.ndarray:
        """CheckTx's checks on a batch the node API received, before it is forwarded to
        CometBFT (``submit.Forwarder``): a code per row; the accepted rows' own CheckTx then
        answers OK at once, without checking them twice."""
        if self.role == "observer":
            return np.full(len(batch), Reject.READ_ONLY, np.uint8)
        keys = self._signature_keys(batch)
        codes = self._admit(batch, keys)
        with self._cache_lock:
            # Bounded, oldest first: one whose CheckTx never came (CometBFT refused it before
            # CheckTx and nobody said so) must not hold a place forever.
            self._local.add(keys, (codes == 0).tobytes())
        return codes

    def forget_local(self, batch: Batch, rows: np.ndarray, absent: np.ndarray | None = None) -> None:
        """CometBFT refused these rows after ``admit_local`` took them (its mempool is full,
        or its cache has them), or never answered: their CheckTx will not come. The
        ``absent`` ones (a mask over ``rows``) are certainly not in its mempool (it was
        full): their nonces are given back, so the sender can resubmit them at once."""
        with self._cache_lock:
            self._local.take(self._signature_keys(batch, rows))
        if absent is None or not absent.any():
            return
        back = rows[absent]
        with self._check_lock:  # and each sender's later ones: a gap must not pass
            self._check_nonces.give_back(batch.sender[back].tobytes(), batch.nonce[back])

    def _admit(self, batch: Batch, keys: bytes, lenient: np.ndarray | None = None) -> np.ndarray:
        """Admission (screen, then each sender's nonce sequence); signatures verified unless
        this node verified them before. ``lenient`` rows were admitted already: they pass,
        and still advance their sender's sequence."""
        with self._cache_lock:
            known = np.frombuffer(self._verified.contains(keys), bool)
        verify = ~known if lenient is None else ~known & ~lenient
        codes = screen(
            batch,
            self.chain.height + 1,
            chain_id=self.config.chain_id,
            suite=self.suite,
            verify=verify,
            checks=self.checks,
        )
        if lenient is not None:
            codes[lenient & (batch.code == 0)] = Reject.OK
        self._check_sequence(batch, codes, lenient)
        self._remember_verified(keys, codes == 0)
        return codes

    @staticmethod
    def _signature_keys(batch: Batch, rows: np.ndarray | None = None) -> bytes:
        """Per row (of ``rows``, default all), its tx id and signature, packed: what a
        verification vouches for (the id alone does not cover the signature)."""
        digest, signature = (
            (batch.digest, batch.signature) if rows is None else (batch.digest[rows], batch.signature[rows])
        )
        return np.concatenate([digest, signature], axis=1).tobytes()

    def _remember_verified(self, keys: bytes, ok: np.ndarray) -> None:
        with self._cache_lock:
            self._verified.add(keys, ok.tobytes())

    def _check_answer(self, code: int) -> Any:
        """The answer for ``code``: one shared message per code (never mutated), which the
        ABCI server frames once per batch."""
        answer = self._check_answers.get(code)
        if answer is None:
            answer = abci_pb.ResponseCheckTx(
                code=code,
                log=self.chain.apps.reject_name(code) if code else "",
                codespace=CODESPACE if code else "",
            )
            self._check_answers[code] = answer
        return answer

    def _check_sequence(self, batch: Batch, codes: np.ndarray, lenient: np.ndarray | None = None) -> None:
        """Nonce order against committed state plus what this node already checked (in
        place). A ``lenient`` row keeps its code whatever its nonce (it was admitted
        already), and advances its sender's sequence if it is the next one."""
        idx = np.flatnonzero(codes == 0)
        if not idx.size:
            return
        with self._check_lock:
            codes[idx] = self._sequence(
                self._check_nonces, batch, idx, None if lenient is None else lenient[idx]
            )

    # --- helpers ---------------------------------------------------------------------

    def _decode(self, txs: list[bytes]) -> Batch:
        return decode_batch(frame(txs), suite=self.suite)

    def _sequence(
        self, seq: Any, batch: Batch, idx: np.ndarray, lenient: np.ndarray | None = None
    ) -> np.ndarray:
        """Admission codes of rows ``idx`` sequenced by ``seq`` (a ``NonceSequencer``), the
        committed nonces of the senders it does not know read in one lookup."""
        senders = batch.sender[idx].tobytes()
        fresh = seq.unknown(senders)
        committed = self.chain.nonces(split_rows(fresh, batch.sender.shape[1])) if fresh else []
        soft = None if lenient is None else lenient.tobytes()
        verdicts = seq.check(senders, batch.nonce[idx], fresh, np.array(committed, np.uint64), soft)
        return VERDICT_CODES[np.frombuffer(verdicts, np.uint8)]

    def _in_sequence(self, batch: Batch, candidates: np.ndarray) -> np.ndarray:
        """Which ``candidates`` rows carry their sender's next nonce, in block order, counting
        only earlier rows that are kept (a gap drops the sender's later rows)."""
        keep = np.zeros(len(batch), bool)
        idx = np.flatnonzero(candidates)
        if idx.size:  # a sequencer of its own, without a limit: a block may hold any run of them
            keep[idx] = (
                self._sequence(tierchain_native.NonceSequencer((1 << 64) - 1), batch, idx) == Reject.OK
            )
        return keep
