# Shard router of tierchain._hot (included by _hot.pyx). API: tierchain/route.py.

# Placement rules (docs/sharding.md "Placement"); every other key routes by all its bytes.
cdef enum:
    LINEAGE_TAG_BYTES = 8


cdef inline uint16_t _route_one(const uint8_t* k, int64_t n, int32_t shards) noexcept nogil:
    # Pinned key: "@" + u16 LE shard + rest (cross-shard protocol records).
    if n >= 3 and k[0] == 0x40:
        return <uint16_t>((<int32_t>k[1] | (<int32_t>k[2] << 8)) % shards)
    # Lineage key: "fv/", "fx/", "fc/", "fr/" + 8-byte lineage tag + rest: by the tag.
    if (n >= 3 + LINEAGE_TAG_BYTES and k[0] == 0x66 and k[2] == 0x2F
            and (k[1] == 0x76 or k[1] == 0x78 or k[1] == 0x63 or k[1] == 0x72)):
        return <uint16_t>_jump_hash(_siphash24(k + 3, LINEAGE_TAG_BYTES, ROUTE_K0, ROUTE_K1), shards)
    return <uint16_t>_jump_hash(_siphash24(k, n, ROUTE_K0, ROUTE_K1), shards)


def route_keys(buf, key_start, key_len, int64_t n_shards):
    """Shard (uint16) of each key buf[key_start[i] : +key_len[i]].

    shard = jump_hash(siphash24(ROUTE_KEY, key), n_shards) after the placement
    rules of ``_route_one`` (pinned keys, lineage tags); raises ValueError
    if n_shards is outside 1..shards_max or a key lies outside ``buf``.
    """
    if not 1 <= n_shards <= SHARDS_MAX:
        raise ValueError(f"n_shards must be in 1..{SHARDS_MAX}, not {n_shards}")
    cdef const uint8_t[::1] data = buf
    start_a = np.ascontiguousarray(key_start, np.int64)
    len_a = np.ascontiguousarray(key_len, np.int64)
    if start_a.ndim != 1 or start_a.shape != len_a.shape:
        raise ValueError("key_start and key_len must be 1-D and of one length")
    cdef int64_t n = start_a.shape[0]
    out = np.zeros(n, np.uint16)
    if n == 0:
        return out
    cdef int64_t nbuf = data.shape[0]
    if start_a.min() < 0 or len_a.min() < 0 or (start_a + len_a).max() > nbuf:
        raise ValueError("a key lies outside the buffer")
    cdef const int64_t[::1] start_v = start_a
    cdef const int64_t[::1] len_v = len_a
    cdef uint16_t[::1] out_v = out
    # An empty buffer can only hold empty keys; point them at a dummy byte.
    cdef uint8_t dummy = 0
    cdef const uint8_t* base = &data[0] if nbuf else &dummy
    cdef int64_t i
    cdef int32_t shards = <int32_t>n_shards
    with nogil:
        for i in range(n):
            out_v[i] = _route_one(base + start_v[i], len_v[i], shards)
    return out
