# Shard router of tierchain._hot (included by _hot.pyx). API: tierchain/engine/route.py.

# Placement rules (docs/sharding.md "Placement") are data given by the caller: the apps
# of the chain declare them (tierchain.engine.apps.Placement). A key matching no rule routes
# by all its bytes.
cdef enum:
    PREFIX_BYTES_MAX = 8  # tierchain.engine.apps.placement_prefix_bytes_max
    RULES_MAX = 64  # tierchain.engine.apps.placement_rules_max
    PINNED_SHARD_BYTES = 2
    # A replicated rule's tag_bytes in the table, and what a key it matches routes to: no
    # shard of its own (it is on every shard; tierchain.engine.route maps it to the primary).
    REPLICATED_RULE = -1
    REPLICATED_SHARD = 0xFFFF  # tierchain.engine.route.REPLICATED_SHARD; above limits.shards_max

ROUTE_REPLICATED = REPLICATED_SHARD  # what route_keys answers for a replicated key


cdef struct _Rule:
    uint8_t prefix[PREFIX_BYTES_MAX]
    int64_t prefix_len
    int64_t tag_bytes  # 0: pinned (u16 LE shard after the prefix); -1: replicated; else a tag


cdef inline uint16_t _route_one(
    const uint8_t* k, int64_t n, int32_t shards, const _Rule* rules, int64_t n_rules
) noexcept nogil:
    cdef int64_t r, p, need
    for r in range(n_rules):
        p = rules[r].prefix_len
        if rules[r].tag_bytes == REPLICATED_RULE:
            need = 0
        elif rules[r].tag_bytes == 0:
            need = PINNED_SHARD_BYTES
        else:
            need = rules[r].tag_bytes
        # The first byte rules out almost every key before memcmp is called.
        if n < p + need or k[0] != rules[r].prefix[0] or memcmp(k, rules[r].prefix, p) != 0:
            continue
        if rules[r].tag_bytes == REPLICATED_RULE:  # replicated: on every shard
            return REPLICATED_SHARD
        if rules[r].tag_bytes == 0:  # pinned: prefix + u16 LE shard + rest
            return <uint16_t>((<int32_t>k[p] | (<int32_t>k[p + 1] << 8)) % shards)
        # tagged (e.g. a voucher lineage): prefix + tag + rest, routed by the tag alone
        return <uint16_t>_jump_hash(_siphash24(k + p, need, ROUTE_K0, ROUTE_K1), shards)
    return <uint16_t>_jump_hash(_siphash24(k, n, ROUTE_K0, ROUTE_K1), shards)


cdef int64_t _read_rules(rules, _Rule* out) except -1:
    """Copy ``rules`` ((prefix bytes, tag_bytes) pairs, tag_bytes 0 = pinned, -1 = replicated)
    into ``out``."""
    if len(rules) > RULES_MAX:
        raise ValueError(f"at most {RULES_MAX} placement rules, not {len(rules)}")
    cdef int64_t r = 0
    for prefix, tag_bytes in rules:
        prefix = bytes(prefix)
        if not 1 <= len(prefix) <= PREFIX_BYTES_MAX or not REPLICATED_RULE <= tag_bytes <= KEY_BYTES_MAX:
            raise ValueError(f"placement rule {prefix!r}, {tag_bytes}: bad prefix or tag length")
        memcpy(out[r].prefix, <const char*>prefix, len(prefix))
        out[r].prefix_len = len(prefix)
        out[r].tag_bytes = tag_bytes
        r += 1
    return r


def route_keys(buf, key_start, key_len, int64_t n_shards, rules=()):
    """Shard (uint16) of each key buf[key_start[i] : +key_len[i]].

    shard = jump_hash(siphash24(ROUTE_KEY, key), n_shards) after the first placement
    rule of ``rules`` whose prefix the key starts with (``_route_one``; a replicated
    rule's keys answer ``ROUTE_REPLICATED``, 0xFFFF, which is no shard); raises
    ValueError if n_shards is outside 1..shards_max, a rule is malformed or a key
    lies outside ``buf``.
    """
    if not 1 <= n_shards <= SHARDS_MAX:
        raise ValueError(f"n_shards must be in 1..{SHARDS_MAX}, not {n_shards}")
    cdef _Rule rule_v[RULES_MAX]
    cdef int64_t n_rules = _read_rules(rules, rule_v)
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
            out_v[i] = _route_one(base + start_v[i], len_v[i], shards, rule_v, n_rules)
    return out
