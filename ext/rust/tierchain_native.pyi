"""Type stubs for the native TierChain hot path (Rust, built with maturin).

Bad cryptographic input (wrong lengths, undecodable points, bad proofs) gives
``False``; the wrong Python type raises ``TypeError``; inconsistent shapes
(mismatched lengths, out-of-range offsets) raise ``ValueError``. Every call
releases the GIL; parallel work runs on a private pool sized by
``TIERCHAIN_THREADS`` (default: all cores).
"""

from collections.abc import Callable, Sequence

from typing_extensions import Buffer  # collections.abc.Buffer from Python 3.12

THREADS_ENV: str

def verify(public_key: Buffer, message: Buffer, signature: Buffer) -> bool:
    """Ed25519 verification under the ZIP-215 rule (cofactored, non-canonical
    point encodings accepted, ``S < L`` required)."""

def verify_batch(
    public_keys: Sequence[Buffer],
    messages: Sequence[Buffer],
    signatures: Sequence[Buffer],
) -> list[bool]:
    """Element ``i`` equals ``verify(public_keys[i], messages[i], signatures[i])``.
    Raises ``ValueError`` if the three sequences differ in length."""

def verify_batch_packed(public_keys: Buffer, digests: Buffer, signatures: Buffer) -> bytes:
    """Packed ``n*32``-byte keys, ``n*32``-byte digests (the signed messages)
    and ``n*64``-byte signatures; returns ``n`` bytes, each 1 (valid) or 0."""

def hash_many(context: str, buf: Buffer, starts: Buffer | Sequence[int], ends: Buffer | Sequence[int]) -> bytes:
    """Concatenated 32-byte BLAKE3 ``derive_key(context, buf[starts[i]:ends[i]])``.
    ``starts``/``ends`` are int64 buffers (or int sequences); out-of-range
    offsets raise ``ValueError``."""

def hash_one(context: str, data: Buffer) -> bytes:
    """BLAKE3 ``derive_key(context, data)``."""

def merkle_root(leaves: Sequence[Buffer]) -> bytes:
    """RFC 6962-shaped BLAKE3 Merkle root; ``BLAKE3(b"")`` for no leaves."""

def merkle_root_packed(buf: Buffer, leaf_size: int) -> bytes:
    """Merkle root over consecutive ``leaf_size``-byte leaves of ``buf``."""

def merkle_prove(leaves: Sequence[Buffer], index: int) -> list[bytes]:
    """RFC 6962 audit path for ``leaves[index]``, sibling nearest the leaf
    first. Raises ``IndexError`` if ``index`` is not a leaf position."""

def merkle_verify(root: Buffer, leaf: Buffer, index: int, size: int, proof: Sequence[Buffer]) -> bool:
    """RFC 9162 §2.1.3.2 inclusion check of ``leaf`` at ``index`` in a tree of
    ``size`` leaves with root ``root``."""

def thread_count() -> int:
    """Worker threads in the native pool."""

def release_memory() -> None:
    """Return the native allocator's freed memory to the OS now (after a one-off burst)."""

def smt_apply(
    root_hash: Buffer,
    root_version: int,
    version: int,
    keys: Sequence[Buffer],
    values: Sequence[Buffer | None],
    fetch: Callable[[list[bytes]], Sequence[Buffer | None]] | None,
    cache: SmtCache | None = None,
    hash: str = "blake3",
    txn: object | None = None,
    dbi: int = 0,
    overlay: Sequence[SmtRecords] = (),
) -> tuple[bytes, int, SmtRecords, bytes, list[bytes], dict[str, float]]:
    """One batch update of the state tree (``ext/rust/src/smt/``): ``values[i]``
    ``None`` deletes ``keys[i]``. The chunks it needs are read one chunk level (four
    tree levels) at a time: by ``fetch(record_keys)``, which returns each stored
    record (or ``None``) in order, or, with ``fetch`` ``None``, natively from ``txn``
    (a live ``LmdbTxn`` of this thread, table handle ``dbi``) and then ``overlay``
    (the records of earlier batches not committed yet), without the GIL.
    Returns the new root hash, the version of the root chunk, the new records
    (sorted by key, kept natively), the keys of the records replaced that were
    written before ``version`` (packed back to back), and those written at
    ``version`` itself (by an earlier call for it), and what the batch cost
    (``read``, ``overlay``: chunks read, of them from the overlay; ``setup_s``,
    ``read_s``, ``finish_s``, ``total_s``: seconds). A key given twice is
    ``ValueError``; a missing or damaged record is ``RuntimeError``."""

class SmtRecords:
    """The new records of one ``smt_apply`` batch, sorted by key, kept natively;
    written with ``LmdbTxn.put_records``."""

    def __len__(self) -> int: ...
    def get(self, key: bytes) -> bytes | None: ...
    def items(self) -> list[tuple[bytes, bytes]]: ...
    def first_key(self) -> bytes | None: ...
    def bounds(self) -> tuple[int, int, int, int]:
        """(shortest key, longest key, shortest record, longest record); zeros when empty."""

class NonceBook:
    """The mempool's bookkeeping: each sender's committed nonce and pending count (only
    for senders with pending txs) and the pending tx ids; at most ``txs_max`` pending,
    ``sender_pending_max`` per sender. 32-byte sender keys and tx ids, packed."""

    def __init__(self, key_bytes: int, id_bytes: int, txs_max: int, sender_pending_max: int) -> None: ...
    def __len__(self) -> int: ...
    @property
    def senders(self) -> int:
        """Senders with pending txs."""
    def pending(self, sender: bytes) -> tuple[int, int] | None:
        """(committed nonce, pending count) of a sender with pending txs."""
    def contains(self, tx_id: bytes) -> bool: ...
    def unknown(self, senders: Buffer) -> bytes:
        """The distinct senders (packed) without pending txs, first-seen order."""
    def admit(self, senders: Buffer, ids: Buffer, nonces: Buffer, fresh: Buffer, committed: Buffer) -> bytes:
        """A verdict byte per row: 0 accepted, 1 duplicate id, 2 nonce too low, 3 too high,
        4 book full, 5 sender limit. ``committed`` (uint64): the committed nonce of each
        ``fresh`` sender (those ``unknown`` listed)."""
    def done(self, senders: Buffer, ids: Buffer) -> None:
        """A block committed these txs; ``ValueError`` (nothing changed) if one is not pending."""

def smt_constants() -> tuple[bytes, list[str]]:
    """The empty-subtree hash and the five derive-key contexts (key, value,
    leaf, node, empty) of the state tree."""


class SmtCache:
    """Chunks at depth ``< depth_max`` (at most about ``max_bytes`` of them) kept across
    ``smt_apply`` calls; trusted only for the tree whose root it last produced or warmed
    (any other base root empties it)."""

    def __init__(self, depth_max: int, max_bytes: int | None = None) -> None: ...
    def __len__(self) -> int: ...
    def clear(self) -> None: ...
    def warm(
        self, root_hash: Buffer, root_version: int, fetch: Callable[[list[bytes]], Sequence[bytes | None]]
    ) -> int:
        """Fill with the tree of that root, shallow levels first, one ``fetch`` per chunk
        level, each chunk checked against its parent's hash; returns the chunks fetched."""
    @property
    def depth_max(self) -> int: ...
    @property
    def bytes(self) -> int: ...
    @property
    def root(self) -> tuple[bytes, int] | None: ...

class SmtBuilder:
    """A whole state tree at one version, built bottom up (genesis): ``add`` pairs in
    any order, ``finish()`` -> (root hash, root version), then ``emit(max)`` until it
    returns ``[]``: every ``(node_key, node)`` once, ascending by key."""

    def __init__(self, version: int) -> None: ...
    def __len__(self) -> int: ...
    def add(self, keys: Sequence[Buffer], values: Sequence[Buffer]) -> None: ...
    def finish(self) -> tuple[bytes, int]: ...
    def emit(self, max: int) -> list[tuple[bytes, bytes]]: ...

# Confidential amounts (ext/rust/src/crypto/confidential.rs, docs/privacy.md).
# Malformed points or proofs give False (or None where a value is returned);
# sizes over the bounds of ``confidential_constants()``, amounts outside
# 0..2**64, unsupported bit lengths and unusable prover input raise ValueError.

def pedersen_generators() -> tuple[bytes, bytes]:
    """The compressed Pedersen generators ``(G, H)``: the ristretto255 basepoint
    and ``hash_from_bytes::<Sha3_512>(G)``."""

def pedersen_random_opening() -> bytes:
    """A uniformly random 32-byte opening (canonical scalar)."""

def pedersen_commit(amount: int, opening: Buffer) -> bytes:
    """``amount*G + opening*H``, compressed (32 bytes)."""

def pedersen_commitment_sum(adds: Sequence[Buffer], subs: Sequence[Buffer] | None = None) -> bytes | None:
    """``sum(adds) - sum(subs)`` of commitments; ``None`` if one is not a point."""

def pedersen_balance(inputs: Sequence[Buffer], outputs: Sequence[Buffer]) -> bool:
    """Whether ``sum(inputs) == sum(outputs)`` as commitments."""

def pedersen_opening_sum(adds: Sequence[Buffer], subs: Sequence[Buffer] | None = None) -> bytes:
    """``sum(adds) - sum(subs)`` of openings, mod the group order."""

def pedersen_commitment_lincomb(points: Sequence[Buffer], scalars: Sequence[Buffer]) -> bytes | None:
    """``sum(scalars[i]*points[i])`` (one multiscalar multiplication, variable time);
    scalars are canonical 32-byte little-endian. ``None`` if a point does not decode
    or a scalar is not canonical; ``ValueError`` for different lengths or more than
    ``MAX_SUM_TERMS`` terms."""

def pedersen_opening_lincomb(openings: Sequence[Buffer], scalars: Sequence[Buffer]) -> bytes:
    """``sum(scalars[i]*openings[i])`` mod the group order; ``ValueError`` for a
    non-canonical input, different lengths or more than ``MAX_SUM_TERMS`` terms."""

def range_prove(
    amounts: Sequence[int], openings: Sequence[Buffer], context: Buffer, bits: int = 64
) -> tuple[bytes, list[bytes]]:
    """One aggregated Bulletproofs+ range proof that every ``amounts[i] < 2**bits``
    (1..8 amounts; bits 8, 16, 32 or 64), bound to ``context``. Returns the proof
    and the commitments ``amounts[i]*G + openings[i]*H``."""

def range_verify(proof: Buffer, commitments: Sequence[Buffer], context: Buffer, bits: int = 64) -> bool:
    """Verifies one aggregated range proof over ``commitments`` for ``context``."""

def range_verify_batch(
    proofs: Sequence[Buffer],
    commitments: Sequence[Sequence[Buffer]],
    contexts: Sequence[Buffer],
    bits: int = 64,
) -> list[bool]:
    """Element ``i`` equals ``range_verify(proofs[i], commitments[i], contexts[i], bits)``;
    batch-verified in chunks on the native pool (a failing chunk is bisected)."""

def elgamal_keypair(seed: Buffer) -> tuple[bytes, bytes]:
    """The deterministic twisted-ElGamal ``(secret, public)`` of a 32-byte seed."""

def elgamal_grouped_encrypt(amount: int, opening: Buffer, pubkeys: Sequence[Buffer]) -> tuple[bytes, list[bytes]]:
    """``(commitment, handles)``: the Pedersen commitment of ``amount`` with
    ``opening`` and one decrypt handle ``opening*P`` per public key (1..4)."""

def elgamal_decrypt(secret: Buffer, commitment: Buffer, handle: Buffer) -> int | None:
    """The amount, if below ``2**32`` and the handle is for ``secret``; else ``None``."""

def elgamal_decrypts_to(secret: Buffer, commitment: Buffer, handle: Buffer, amount: int) -> bool:
    """Whether the ciphertext decrypts to ``amount`` under ``secret`` (any u64)."""

def validity_prove(amount: int, opening: Buffer, pubkeys: Sequence[Buffer], context: Buffer) -> bytes:
    """``32 * (3 + len(pubkeys))``-byte proof (lox-zkp's batchable form) that
    ``elgamal_grouped_encrypt(amount, opening, pubkeys)`` is well formed, bound to ``context``."""

def validity_verify(
    proof: Buffer, commitment: Buffer, handles: Sequence[Buffer], pubkeys: Sequence[Buffer], context: Buffer
) -> bool:
    """Verifies a grouped-ciphertext validity proof without decrypting."""

def validity_verify_batch(
    proofs: Sequence[Buffer],
    commitments: Sequence[Buffer],
    handles: Sequence[Sequence[Buffer]],
    pubkeys: Sequence[Sequence[Buffer]],
    contexts: Sequence[Buffer],
) -> list[bool]:
    """Element ``i`` equals ``validity_verify`` of the ``i``-th row: batch verified per
    chunk in parallel, failing chunks bisected."""

def confidential_constants() -> dict[str, bytes | int | list[int]]:
    """Transcript labels and size bounds of the confidential-amount primitives."""

# --- national cryptography (ext/rust/src/py/sm.rs; wrapped by tierchain.crypto.sm) ---

def sm3(data: Buffer) -> bytes:
    """Plain SM3 (GB/T 32905)."""

def sm3_hash_one(context: str, data: Buffer) -> bytes:
    """``SM3(pad64(u16be(len(context)) || context) || data)``; ``ValueError`` for a context over 65535 bytes."""

def sm3_hash_many(context: str, buf: Buffer, starts: Buffer | Sequence[int], ends: Buffer | Sequence[int]) -> bytes:
    """Concatenated ``sm3_hash_one(context, buf[starts[i]:ends[i]])``; bad offsets raise ``ValueError``."""

def sm3_merkle_leaf_hash(leaf: Buffer) -> bytes:
    """``SM3(0x00 || leaf)``."""

def sm3_merkle_node_hash(left: Buffer, right: Buffer) -> bytes:
    """``SM3(0x01 || left || right)``; ``ValueError`` unless both are 32 bytes."""

def sm3_merkle_root(leaves: Sequence[Buffer]) -> bytes:
    """RFC 6962 root with SM3 (``SM3("")`` for no leaves)."""

def sm3_merkle_root_packed(buf: Buffer, leaf_size: int = 32) -> bytes:
    """RFC 6962 root with SM3 over consecutive ``leaf_size``-byte leaves."""

def sm2_keypair_from_seed(seed: Buffer) -> tuple[bytes, bytes]:
    """``(secret_key d, 33-byte compressed public key)`` of a 32-byte seed."""

def sm2_public_key(secret_key: Buffer) -> bytes | None:
    """Compressed public key of ``d``; ``None`` unless ``1 <= d <= n-2``."""

def sm2_public_key_uncompressed(public_key: Buffer) -> bytes | None:
    """``04 || x || y`` of a compressed key; ``None`` if not a point."""

def sm2_sign(secret_key: Buffer, message: Buffer, user_id: str = "1234567812345678") -> bytes:
    """Deterministic SM2 signature ``r || s`` (RFC 6979 nonce); ``ValueError`` for a bad key or ID."""

def sm2_verify(public_key: Buffer, message: Buffer, signature: Buffer, user_id: str = "1234567812345678") -> bool:
    """SM2 verification with ``e = SM3(ZA || message)``; malformed input is ``False``."""

def sm2_verify_batch(
    public_keys: Sequence[Buffer],
    messages: Sequence[Buffer],
    signatures: Sequence[Buffer],
    user_id: str = "1234567812345678",
) -> list[bool]:
    """Element ``i`` equals ``sm2_verify`` of item ``i`` (parallel on the pool)."""

def sm2_verify_batch_packed(public_keys: Buffer, digests: Buffer, signatures: Buffer) -> bytes:
    """Packed ``n*33`` keys, ``n*32`` digests, ``n*64`` signatures; ``n`` bytes of 0/1."""

def sm4_encrypt_ecb(key: Buffer, data: Buffer) -> bytes:
    """SM4 over whole 16-byte blocks (vectors only); ``ValueError`` for bad sizes."""

def sm4_gcm_seal(key: Buffer, nonce: Buffer, plaintext: Buffer, aad: Buffer | None = None) -> bytes:
    """SM4-GCM, 16-byte key and 12-byte nonce: ``ciphertext || tag``."""

def sm4_gcm_open(key: Buffer, nonce: Buffer, sealed: Buffer, aad: Buffer | None = None) -> bytes | None:
    """Plaintext, or ``None`` if it does not authenticate."""

def pbkdf2_hmac_sm3(password: Buffer, salt: Buffer, iterations: int, length: int) -> bytes:
    """PBKDF2-HMAC-SM3; ``ValueError`` unless ``iterations >= 1`` and ``1 <= length <= 1024``."""

def sm_constants() -> dict[str, int | str | bytes]:
    """Sizes, the default SM2 user ID and limits."""
