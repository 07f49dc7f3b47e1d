# Batch decoder of tierchain._hot (included by _hot.pyx). Spec: docs/wire-format.md.

cdef struct TxHead:
    uint32_t chain_id
    uint16_t shard_id
    uint16_t op
    uint64_t nonce
    uint64_t expires_at
    uint8_t n_read
    uint8_t n_write
    int64_t payload_start  # relative to the transaction's first byte
    uint32_t payload_len
    int64_t body_end  # relative; the signature follows


cdef inline int _set_ascending(const uint8_t* p, const int64_t* off, const uint8_t* ln,
                               int64_t lo, int64_t hi) noexcept nogil:
    """Whether keys [lo, hi) are strictly ascending (so sorted and without duplicates)."""
    cdef int64_t i
    for i in range(lo + 1, hi):
        if _key_cmp(p + off[i - 1], ln[i - 1], p + off[i], ln[i]) >= 0:
            return 0
    return 1


cdef inline int _sets_disjoint(const uint8_t* p, const int64_t* off, const uint8_t* ln,
                               int64_t n_read, int64_t n_keys) noexcept nogil:
    """Whether the (sorted) read and write sets share no key: one merge, O(k)."""
    cdef int64_t i = 0
    cdef int64_t j = n_read
    cdef int c
    while i < n_read and j < n_keys:
        c = _key_cmp(p + off[i], ln[i], p + off[j], ln[j])
        if c == 0:
            return 0
        if c < 0:
            i += 1
        else:
            j += 1
    return 1


cdef int _parse_tx(const uint8_t* p, int64_t n, const Layout* w, TxHead* h,
                   int64_t* key_off, uint8_t* key_len) noexcept nogil:
    """Parse one transaction of ``n`` bytes; return its reject code (0 = OK).

    Mirrors tierchain.wire.tx.decode check for check, in the same order, so both
    give the same code when several faults are present. ``w`` gives the
    offsets that depend on the suite's key and signature sizes. Keys are written to
    key_off/key_len (offsets relative to p) before the tx is known to be
    valid; the caller keeps them only if the code is 0.
    """
    cdef int64_t pos, end, i, n_read, n_keys
    cdef int64_t length
    cdef uint32_t payload_len
    if n > TX_BYTES_MAX:
        return R_TOO_LARGE
    if n < w.tx_bytes_min:
        return R_TOO_SHORT
    if p[OFF_VERSION] != WIRE_VERSION:
        return R_BAD_VERSION
    if _le16(p + OFF_OP) == 0:
        return R_BAD_OP
    n_read = p[w.off_n_read]
    n_keys = n_read + p[w.off_n_write]
    if n_keys > TX_KEYS_MAX:
        return R_TOO_MANY_KEYS
    pos = w.off_keys
    for i in range(n_keys):
        if pos >= n:
            return R_TRUNCATED
        length = p[pos]
        if length < 1 or length > KEY_BYTES_MAX:
            return R_BAD_KEY_LENGTH
        if pos + 1 + length > n:
            return R_TRUNCATED
        key_off[i] = pos + 1
        key_len[i] = <uint8_t>length
        pos += 1 + length
    if not _set_ascending(p, key_off, key_len, 0, n_read):
        return R_KEYS_NOT_CANONICAL
    if not _set_ascending(p, key_off, key_len, n_read, n_keys):
        return R_KEYS_NOT_CANONICAL
    if not _sets_disjoint(p, key_off, key_len, n_read, n_keys):
        return R_KEY_IN_BOTH_SETS
    if pos + PAYLOAD_LEN_BYTES > n:
        return R_TRUNCATED
    payload_len = _le32(p + pos)
    pos += PAYLOAD_LEN_BYTES
    if payload_len > PAYLOAD_BYTES_MAX:
        return R_PAYLOAD_TOO_LARGE
    end = pos + payload_len + w.signature_bytes
    if end > n:
        return R_TRUNCATED
    if end < n:
        return R_TRAILING_BYTES
    h.chain_id = _le32(p + OFF_CHAIN_ID)
    h.shard_id = _le16(p + OFF_SHARD_ID)
    h.op = _le16(p + OFF_OP)
    h.nonce = _le64(p + w.off_nonce)
    h.expires_at = _le64(p + w.off_expires_at)
    h.n_read = <uint8_t>n_read
    h.n_write = p[w.off_n_write]
    h.payload_start = pos
    h.payload_len = payload_len
    h.body_end = pos + payload_len
    return R_OK


cdef int64_t _count_frames(const uint8_t* buf, int64_t nbuf, const Layout* w,
                           int64_t* keys_bound) noexcept nogil:
    """Pass 1: number of rows decode_frames will produce (stops past BATCH_TXS_MAX).

    Also an upper bound on the keys pass 2 can write: the declared count of
    every complete frame whose count is within the limit (others write none).
    """
    cdef int64_t pos = 0
    cdef int64_t rows = 0
    cdef int64_t length, n_keys
    keys_bound[0] = 0
    while pos < nbuf and rows <= BATCH_TXS_MAX:
        rows += 1
        if nbuf - pos < FRAME_PREFIX_BYTES:
            break
        length = _le32(buf + pos)
        pos += FRAME_PREFIX_BYTES
        if length > nbuf - pos:
            break
        if length >= w.off_keys:
            n_keys = buf[pos + w.off_n_read] + buf[pos + w.off_n_write]
            if n_keys <= TX_KEYS_MAX:
                keys_bound[0] += n_keys
        pos += length
    return rows


def decode_frames(buf, int64_t public_key_bytes=limits.public_key_bytes,
                  int64_t signature_bytes=limits.signature_bytes):
    """Decode every length-prefixed transaction in ``buf`` into numpy columns.

    ``public_key_bytes`` and ``signature_bytes`` are the chain's crypto suite's
    (``tierchain.wire.batch.decode_batch`` passes them; the defaults are the
    ``ed25519-blake3`` sizes); they fix the sender and signature columns' widths
    and the offsets of every field after the sender.

    Returns a dict of columns (see tierchain.wire.batch.Batch for their meaning).
    Each frame gets one row and its own code; a bad frame never changes
    another frame's row. A frame running past the end of ``buf`` gives a
    final TRUNCATED row (its tx_start..tx_end are the bytes present) and ends
    the batch. Raises RejectedError(BATCH_TOO_LARGE) before decoding anything
    if ``buf`` is above batch_bytes_max or holds more than batch_txs_max rows.
    """
    cdef const uint8_t[::1] data = buf
    cdef int64_t nbuf = data.shape[0]
    cdef int64_t keys_bound = 0
    cdef int64_t n = 0
    cdef Layout w = _layout(public_key_bytes, signature_bytes)
    if nbuf > BATCH_BYTES_MAX:
        raise RejectedError(Reject.BATCH_TOO_LARGE, f"{nbuf} bytes")
    if nbuf:
        with nogil:
            n = _count_frames(&data[0], nbuf, &w, &keys_bound)
    if n > BATCH_TXS_MAX:
        raise RejectedError(Reject.BATCH_TOO_LARGE, f"more than {BATCH_TXS_MAX} frames")

    cols = {
        "code": np.zeros(n, np.uint8),
        "tx_start": np.zeros(n, np.int64),
        "tx_end": np.zeros(n, np.int64),
        "body_end": np.zeros(n, np.int64),
        "version": np.zeros(n, np.uint8),
        "chain_id": np.zeros(n, np.uint32),
        "shard_id": np.zeros(n, np.uint16),
        "op": np.zeros(n, np.uint16),
        "sender": np.zeros((n, w.public_key_bytes), np.uint8),
        "nonce": np.zeros(n, np.uint64),
        "expires_at": np.zeros(n, np.uint64),
        "n_read": np.zeros(n, np.uint8),
        "n_write": np.zeros(n, np.uint8),
        "key_first": np.zeros(n, np.int64),
        "key_start": np.zeros(keys_bound, np.int64),
        "key_len": np.zeros(keys_bound, np.uint8),
        "payload_start": np.zeros(n, np.int64),
        "payload_len": np.zeros(n, np.uint32),
        "signature": np.zeros((n, w.signature_bytes), np.uint8),
    }
    if n == 0:
        return cols

    cdef uint8_t[::1] code = cols["code"]
    cdef int64_t[::1] tx_start = cols["tx_start"]
    cdef int64_t[::1] tx_end = cols["tx_end"]
    cdef int64_t[::1] body_end = cols["body_end"]
    cdef uint8_t[::1] version = cols["version"]
    cdef uint32_t[::1] chain_id = cols["chain_id"]
    cdef uint16_t[::1] shard_id = cols["shard_id"]
    cdef uint16_t[::1] op = cols["op"]
    cdef uint8_t[:, ::1] sender = cols["sender"]
    cdef uint64_t[::1] nonce = cols["nonce"]
    cdef uint64_t[::1] expires_at = cols["expires_at"]
    cdef uint8_t[::1] n_read = cols["n_read"]
    cdef uint8_t[::1] n_write = cols["n_write"]
    cdef int64_t[::1] key_first = cols["key_first"]
    cdef int64_t[::1] payload_start = cols["payload_start"]
    cdef uint32_t[::1] payload_len = cols["payload_len"]
    cdef uint8_t[:, ::1] signature = cols["signature"]
    # Key columns may be empty (no keys at all): take raw pointers, which are
    # only dereferenced below the bound pass 1 computed.
    cdef int64_t* key_start = <int64_t*><size_t>cols["key_start"].ctypes.data
    cdef uint8_t* key_len = <uint8_t*><size_t>cols["key_len"].ctypes.data

    cdef const uint8_t* base = &data[0]
    cdef int64_t pos = 0
    cdef int64_t row = 0
    cdef int64_t k = 0  # keys kept so far
    cdef int64_t length, start, j
    cdef int rc
    cdef TxHead h
    with nogil:
        while pos < nbuf:
            key_first[row] = k
            if nbuf - pos < FRAME_PREFIX_BYTES:
                code[row] = R_TRUNCATED
                tx_start[row] = nbuf
                tx_end[row] = nbuf
                row += 1
                break
            length = _le32(base + pos)
            start = pos + FRAME_PREFIX_BYTES
            if length > nbuf - start:
                code[row] = R_TRUNCATED
                tx_start[row] = start
                tx_end[row] = nbuf
                row += 1
                break
            tx_start[row] = start
            tx_end[row] = start + length
            rc = _parse_tx(base + start, length, &w, &h, key_start + k, key_len + k)
            code[row] = <uint8_t>rc
            if rc == R_OK:
                body_end[row] = start + h.body_end
                version[row] = <uint8_t>WIRE_VERSION
                chain_id[row] = h.chain_id
                shard_id[row] = h.shard_id
                op[row] = h.op
                memcpy(&sender[row, 0], base + start + OFF_SENDER, <size_t>w.public_key_bytes)
                nonce[row] = h.nonce
                expires_at[row] = h.expires_at
                n_read[row] = h.n_read
                n_write[row] = h.n_write
                payload_start[row] = start + h.payload_start
                payload_len[row] = h.payload_len
                memcpy(&signature[row, 0], base + start + h.body_end, <size_t>w.signature_bytes)
                for j in range(k, k + h.n_read + h.n_write):
                    key_start[j] += start
                k += h.n_read + h.n_write
            row += 1
            pos = start + length
    # Pass 1 counted exactly these rows; a mismatch is a bug, not bad input.
    assert row == n and k <= keys_bound
    cols["key_start"] = cols["key_start"][:k]
    cols["key_len"] = cols["key_len"][:k]
    return cols
