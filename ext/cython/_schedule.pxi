# Conflict scheduler of tierchain._hot (included by _hot.pyx). See the module
# docstring for the algorithm and tierchain/engine/schedule.py for the API.

# Namespaces of interned keys: a sender's public key is an implicit write key
# that must never alias a declared state key with the same 32 bytes.
cdef enum:
    KIND_KEY = 0
    KIND_SENDER = 1
    # A tx touches at most 255 reads + 255 writes (u8 counts) + its sender;
    # the decoder bounds this by tx_keys_max, but schedule() may be handed
    # columns from elsewhere, so size the scratch by the wire types.
    TX_SLOTS_MAX = 255 + 255 + 1


cdef struct Slot:
    uint64_t hash
    const uint8_t* ptr  # into the caller's buffer; NULL = empty slot
    int32_t length
    int32_t kind
    int32_t last_write  # wave of the latest writer so far, -1 = none
    int32_t last_read  # latest wave that read it so far, -1 = none


cdef inline Slot* _intern(Slot* table, uint64_t mask, const uint8_t* ptr,
                          int32_t length, int32_t kind) noexcept nogil:
    """Find or insert a key; linear probing, load factor <= 1/2 by construction."""
    # Each namespace gets its own SipHash key, so equal bytes in two
    # namespaces do not even share a probe sequence.
    cdef uint64_t h = _siphash24(ptr, length, SCHED_K0 ^ <uint64_t>kind, SCHED_K1)
    cdef uint64_t i = h & mask
    cdef Slot* s
    while True:
        s = &table[i]
        if s.ptr == NULL:
            s.hash = h
            s.ptr = ptr
            s.length = length
            s.kind = kind
            s.last_write = -1
            s.last_read = -1
            return s
        if (s.hash == h and s.length == length and s.kind == kind
                and memcmp(s.ptr, ptr, <size_t>length) == 0):
            return s
        i = (i + 1) & mask


cdef inline int32_t _wave_of(Slot** slots, int64_t n_read, int64_t n_slots) noexcept nogil:
    """Earliest wave after every conflicting earlier tx; slots[:n_read] are reads."""
    cdef int32_t wave = 0
    cdef int32_t w
    cdef int64_t i
    for i in range(n_read):
        # read after write
        if slots[i].last_write + 1 > wave:
            wave = slots[i].last_write + 1
    for i in range(n_read, n_slots):
        # write after write, write after read
        w = slots[i].last_write
        if slots[i].last_read > w:
            w = slots[i].last_read
        if w + 1 > wave:
            wave = w + 1
    for i in range(n_read):
        if wave > slots[i].last_read:
            slots[i].last_read = wave
    for i in range(n_read, n_slots):
        slots[i].last_write = wave
    return wave


cdef uint64_t _table_size(int64_t entries):
    """Smallest power of two >= 2 * entries (and >= 16): load factor <= 1/2."""
    cdef uint64_t size = 16
    while size < <uint64_t>(2 * entries):
        size <<= 1
    return size


def schedule(buf, code, key_first, key_start, key_len, n_read, n_write, sender,
             bint sender_is_write=True):
    """Wave (int32) of every row; -1 for rows with a nonzero code.

    Columns as produced by decode_frames; key bytes are buf[key_start:+key_len].
    """
    cdef const uint8_t[::1] data = buf
    cdef const uint8_t[::1] code_v = np.ascontiguousarray(code, np.uint8)
    cdef const int64_t[::1] first_v = np.ascontiguousarray(key_first, np.int64)
    cdef const int64_t[::1] kstart_v = np.ascontiguousarray(key_start, np.int64)
    cdef const uint8_t[::1] klen_v = np.ascontiguousarray(key_len, np.uint8)
    cdef const uint8_t[::1] nr_v = np.ascontiguousarray(n_read, np.uint8)
    cdef const uint8_t[::1] nw_v = np.ascontiguousarray(n_write, np.uint8)
    sender_a = np.ascontiguousarray(sender, np.uint8)
    cdef int64_t n = code_v.shape[0]
    cdef int64_t k = kstart_v.shape[0]
    cdef int64_t nbuf = data.shape[0]
    if not (first_v.shape[0] == nr_v.shape[0] == nw_v.shape[0] == n and klen_v.shape[0] == k):
        raise ValueError("column lengths differ")
    # The sender's width is the chain's public key size (its crypto suite's).
    if sender_a.ndim != 2 or sender_a.shape[0] != n or sender_a.shape[1] < 1:
        raise ValueError("sender must be uint8[n, public_key_bytes]")
    cdef int64_t sender_bytes = sender_a.shape[1]
    cdef const uint8_t[:, ::1] sender_v = sender_a
    waves = np.full(n, -1, np.int32)
    if n == 0:
        return waves
    cdef int32_t[::1] wave_v = waves

    # Validate every reference before the nogil loop trusts it: bad columns
    # raise here instead of reading out of bounds.
    cdef int64_t t, i, f, m, bad = -1
    with nogil:
        for t in range(n):
            if code_v[t] != R_OK:
                continue
            f = first_v[t]
            m = nr_v[t] + nw_v[t]
            if f < 0 or f + m > k:
                bad = t
                break
            for i in range(f, f + m):
                if kstart_v[i] < 0 or klen_v[i] == 0 or kstart_v[i] + klen_v[i] > nbuf:
                    bad = t
                    break
            if bad >= 0:
                break
    if bad >= 0:
        raise ValueError(f"row {bad} refers to keys outside the buffer or key columns")

    cdef uint64_t size = _table_size(k + n)
    cdef Slot* table = <Slot*>calloc(size, sizeof(Slot))
    if table == NULL:
        raise MemoryError()
    cdef Slot* slots[TX_SLOTS_MAX]
    cdef const uint8_t* base = &data[0] if nbuf else NULL
    cdef int64_t nr, ns
    try:
        with nogil:
            for t in range(n):
                if code_v[t] != R_OK:
                    continue
                f = first_v[t]
                nr = nr_v[t]
                ns = nr + nw_v[t]
                for i in range(ns):
                    slots[i] = _intern(table, size - 1, base + kstart_v[f + i],
                                       klen_v[f + i], KIND_KEY)
                if sender_is_write:
                    slots[ns] = _intern(table, size - 1, &sender_v[t, 0],
                                        sender_bytes, KIND_SENDER)
                    ns += 1
                wave_v[t] = _wave_of(slots, nr, ns)
    finally:
        free(table)
    return waves


def schedule_ids(key_ids, key_first, n_read, n_write):
    """Waves (int32) for pre-interned key ids (int64 >= 0); every row is valid.

    Row t reads key_ids[key_first[t] : +n_read[t]] and writes the next
    n_write[t] ids. Same rule as schedule(); used by the property tests.
    """
    cdef const int64_t[::1] ids_v = np.ascontiguousarray(key_ids, np.int64)
    cdef const int64_t[::1] first_v = np.ascontiguousarray(key_first, np.int64)
    cdef const uint8_t[::1] nr_v = np.ascontiguousarray(n_read, np.uint8)
    cdef const uint8_t[::1] nw_v = np.ascontiguousarray(n_write, np.uint8)
    cdef int64_t n = first_v.shape[0]
    cdef int64_t k = ids_v.shape[0]
    if not nr_v.shape[0] == nw_v.shape[0] == n:
        raise ValueError("column lengths differ")
    waves = np.zeros(n, np.int32)
    if n == 0:
        return waves
    ids_a = np.asarray(ids_v)
    if k and ids_a.min() < 0:
        raise ValueError("key ids must be >= 0")
    first_a = np.asarray(first_v)
    ends = first_a + np.asarray(nr_v, np.int64) + np.asarray(nw_v, np.int64)
    if first_a.min() < 0 or ends.max() > k:
        raise ValueError("key_first/n_read/n_write point outside key_ids")
    cdef int64_t n_ids = int(ids_a.max()) + 1 if k else 1
    cdef Slot* table = <Slot*>calloc(n_ids, sizeof(Slot))
    if table == NULL:
        raise MemoryError()
    cdef int32_t[::1] wave_v = waves
    cdef Slot* slots[TX_SLOTS_MAX]
    cdef int64_t t, i, f, nr, ns
    try:
        with nogil:
            for i in range(n_ids):
                table[i].last_write = -1
                table[i].last_read = -1
            for t in range(n):
                f = first_v[t]
                nr = nr_v[t]
                ns = nr + nw_v[t]
                for i in range(ns):
                    slots[i] = &table[ids_v[f + i]]
                wave_v[t] = _wave_of(slots, nr, ns)
    finally:
        free(table)
    return waves
