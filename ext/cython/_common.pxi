# Shared inline helpers of tierchain._hot (included by _hot.pyx).
#
# Loads are assembled byte by byte: the wire format is little-endian whatever
# the host is, and compilers turn these shifts into one load on x86/ARM.


cdef inline uint16_t _le16(const uint8_t* p) noexcept nogil:
    return <uint16_t>(p[0] | (<uint16_t>p[1] << 8))


cdef inline uint32_t _le32(const uint8_t* p) noexcept nogil:
    return (<uint32_t>p[0] | (<uint32_t>p[1] << 8)
            | (<uint32_t>p[2] << 16) | (<uint32_t>p[3] << 24))


cdef inline uint64_t _le64(const uint8_t* p) noexcept nogil:
    return <uint64_t>_le32(p) | (<uint64_t>_le32(p + 4) << 32)


cdef inline int _key_cmp(const uint8_t* a, int64_t la,
                         const uint8_t* b, int64_t lb) noexcept nogil:
    """Bytewise lexicographic order, a proper prefix first: Python's bytes order."""
    cdef int64_t m = la if la < lb else lb
    cdef int c = memcmp(a, b, <size_t>m)
    if c != 0:
        return c
    return <int>(la - lb)


# --- SipHash-2-4 (Aumasson & Bernstein, 2012) --------------------------------
# A keyed PRF: without the key, nobody can choose inputs that collide, which
# is what both the intern table (random key) and the router (fixed, public
# key: only uniformity matters there) need. Checked against the reference
# vectors in tests/vectors/siphash24_reference.json.

cdef inline uint64_t _rotl(uint64_t x, int b) noexcept nogil:
    return (x << b) | (x >> (64 - b))


cdef inline void _sipround(uint64_t* v) noexcept nogil:
    v[0] += v[1]
    v[1] = _rotl(v[1], 13)
    v[1] ^= v[0]
    v[0] = _rotl(v[0], 32)
    v[2] += v[3]
    v[3] = _rotl(v[3], 16)
    v[3] ^= v[2]
    v[0] += v[3]
    v[3] = _rotl(v[3], 21)
    v[3] ^= v[0]
    v[2] += v[1]
    v[1] = _rotl(v[1], 17)
    v[1] ^= v[2]
    v[2] = _rotl(v[2], 32)


cdef inline uint64_t _siphash24(const uint8_t* m, int64_t n,
                                uint64_t k0, uint64_t k1) noexcept nogil:
    cdef uint64_t v[4]
    cdef uint64_t mi
    cdef uint64_t last = (<uint64_t>n) << 56
    cdef int64_t i
    cdef int64_t whole = n - (n & 7)
    # "somepseudorandomlygeneratedbytes", the constants of the specification.
    v[0] = k0 ^ 0x736f6d6570736575ULL
    v[1] = k1 ^ 0x646f72616e646f6dULL
    v[2] = k0 ^ 0x6c7967656e657261ULL
    v[3] = k1 ^ 0x7465646279746573ULL
    i = 0
    while i < whole:
        mi = _le64(m + i)
        v[3] ^= mi
        _sipround(v)
        _sipround(v)
        v[0] ^= mi
        i += 8
    i = whole
    while i < n:
        last |= (<uint64_t>m[i]) << (8 * (i - whole))
        i += 1
    v[3] ^= last
    _sipround(v)
    _sipround(v)
    v[0] ^= last
    v[2] ^= 0xff
    _sipround(v)
    _sipround(v)
    _sipround(v)
    _sipround(v)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


# --- jump consistent hash (Lamping & Veach, 2014, Figure 1) ------------------
# Maps a 64-bit key to a bucket in [0, n) with no table: growing n to n+1
# moves exactly the keys that land in the new bucket, ~1/(n+1) of them. The
# multiplier is the paper's 64-bit LCG; the float division is the paper's too
# (tests compare against a Python transliteration, which uses the same IEEE
# doubles, so results are identical on every machine).

cdef inline int32_t _jump_hash(uint64_t key, int32_t n_buckets) noexcept nogil:
    cdef int64_t b = -1
    cdef int64_t j = 0
    while j < n_buckets:
        b = j
        key = key * 2862933555777941757ULL + 1
        j = <int64_t>((b + 1) * (<double>(1LL << 31) / <double>((key >> 33) + 1)))
    return <int32_t>b


def siphash24(key, data):
    """SipHash-2-4 of ``data`` under a 16-byte ``key`` (k0, k1 little-endian), as an int."""
    cdef const uint8_t[::1] k = key
    cdef const uint8_t[::1] d = data
    if k.shape[0] != 16:
        raise ValueError("SipHash key must be 16 bytes")
    cdef uint64_t k0 = _le64(&k[0])
    cdef uint64_t k1 = _le64(&k[8])
    if d.shape[0] == 0:
        return _siphash24(&k[0], 0, k0, k1)  # any valid pointer; nothing is read
    return _siphash24(&d[0], d.shape[0], k0, k1)


def jump_hash(uint64_t key, int32_t n_buckets):
    """Lamping & Veach jump consistent hash of a 64-bit key into [0, n_buckets)."""
    if n_buckets < 1:
        raise ValueError("n_buckets must be >= 1")
    return _jump_hash(key, n_buckets)
