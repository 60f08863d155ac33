"""FarmHash Fingerprint64 of every string of an Arrow array at once, in numpy.

BigQuery's ``FARM_FINGERPRINT`` is FarmHash's ``Fingerprint64`` (``farmhashna::Hash64``) of
the string's UTF-8 bytes, read as a signed INT64. This is that function written with numpy
array operations over an Arrow string array's own buffers (offsets and bytes), so a batch of
a million keys is hashed without a Python call per key. It is checked byte for byte against
pyfarmhash (the C++ library) in ``tests/test_splitting.py``, for every length from 0 to 300
bytes and beyond, since each length range takes its own path below.

Why not a C extension: pyfarmhash hashes one Python string per call (0.5 s per million keys
with the conversion to Python strings, measured in the splitting README); this runs the same
arithmetic about ten times faster and needs nothing beyond numpy and pyarrow.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

U64 = np.uint64
K0 = U64(0xC3A5C85C97CB3127)
K1 = U64(0xB492B66FBE98F273)
K2 = U64(0x9AE16A3B2F90404F)
SEED = U64(81)


def _rot(v: np.ndarray, shift: int) -> np.ndarray:
    return (v >> U64(shift)) | (v << U64(64 - shift))


def _shift_mix(v: np.ndarray) -> np.ndarray:
    return v ^ (v >> U64(47))


def _hash_len16(u: np.ndarray, v: np.ndarray, mul: np.ndarray) -> np.ndarray:
    a = (u ^ v) * mul
    a ^= a >> U64(47)
    b = (v ^ a) * mul
    b ^= b >> U64(47)
    return b * mul


class _Bytes:
    """Little-endian 8- and 4-byte loads at arbitrary byte positions of one buffer: two
    aligned 8-byte words gathered and shifted together (numpy has no unaligned gather)."""

    def __init__(self, data: np.ndarray):
        padded = np.zeros((len(data) + 23) // 8 * 8, np.uint8)  # loads may read past the end
        padded[: len(data)] = data
        self.words = padded.view("<u8")
        self.padded = padded

    def fetch64(self, pos: np.ndarray) -> np.ndarray:
        index = (pos >> U64(3)).view(np.int64)  # take() converts any other index type first
        shift = (pos & U64(7)) << U64(3)
        low = self.words.take(index) >> shift
        # x << 64 is undefined in C and 0 in numpy only by luck: shift by 64 - shift in two steps
        high = (self.words.take(index + 1) << U64(1)) << (U64(63) - shift)
        return low | high

    def fetch32(self, pos: np.ndarray) -> np.ndarray:
        return self.fetch64(pos) & U64(0xFFFFFFFF)

    def byte(self, pos: np.ndarray) -> np.ndarray:
        return self.padded.take(pos.view(np.int64)).astype(U64)


def _len0to16(mem: _Bytes, s: np.ndarray, n: np.ndarray) -> np.ndarray:
    out = np.full(len(s), K2, U64)  # length 0
    mul = K2 + n * U64(2)
    big = n >= 8
    if big.any():
        sb, nb, mb = s[big], n[big], mul[big]
        a = mem.fetch64(sb) + K2
        b = mem.fetch64(sb + nb - U64(8))
        c = _rot(b, 37) * mb + a
        d = (_rot(a, 25) + b) * mb
        out[big] = _hash_len16(c, d, mb)
    mid = (n >= 4) & ~big
    if mid.any():
        sm, nm = s[mid], n[mid]
        a = mem.fetch32(sm)
        out[mid] = _hash_len16(nm + (a << U64(3)), mem.fetch32(sm + nm - U64(4)), mul[mid])
    small = (n > 0) & (n < 4)
    if small.any():
        ss, ns = s[small], n[small]
        a, b, c = mem.byte(ss), mem.byte(ss + (ns >> U64(1))), mem.byte(ss + ns - U64(1))
        y = a + (b << U64(8))
        z = ns + (c << U64(2))
        out[small] = _shift_mix(y * K2 ^ z * K0) * K2
    return out


def _len17to32(mem: _Bytes, s: np.ndarray, n: np.ndarray) -> np.ndarray:
    mul = K2 + n * U64(2)
    a = mem.fetch64(s) * K1
    b = mem.fetch64(s + U64(8))
    c = mem.fetch64(s + n - U64(8)) * mul
    d = mem.fetch64(s + n - U64(16)) * K2
    return _hash_len16(_rot(a + b, 43) + _rot(c, 30) + d, a + _rot(b + K2, 18) + c, mul)


def _len33to64(mem: _Bytes, s: np.ndarray, n: np.ndarray) -> np.ndarray:
    mul = K2 + n * U64(2)
    a = mem.fetch64(s) * K2
    b = mem.fetch64(s + U64(8))
    c = mem.fetch64(s + n - U64(8)) * mul
    d = mem.fetch64(s + n - U64(16)) * K2
    y = _rot(a + b, 43) + _rot(c, 30) + d
    z = _hash_len16(y, a + _rot(b + K2, 18) + c, mul)
    e = mem.fetch64(s + U64(16)) * mul
    f = mem.fetch64(s + U64(24))
    g = (y + mem.fetch64(s + n - U64(32))) * mul
    h = (z + mem.fetch64(s + n - U64(24))) * mul
    return _hash_len16(_rot(e + f, 43) + _rot(g, 30) + h, e + _rot(f + a, 18) + g, mul)


def _weak32(mem: _Bytes, p: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, ...]:
    """WeakHashLen32WithSeeds over the 32 bytes at ``p``."""
    w, x, y, z = (mem.fetch64(p + U64(i)) for i in (0, 8, 16, 24))
    a = a + w
    b = _rot(b + a + z, 21)
    c = a
    a = a + x + y
    b = b + _rot(a, 44)
    return a + z, b + c


def _len65plus(mem: _Bytes, s: np.ndarray, n: np.ndarray) -> np.ndarray:
    count = len(s)
    x = np.full(count, SEED, U64)
    y = np.full(count, SEED * K1 + U64(113), U64)
    z = _shift_mix(y * K2 + U64(113)) * K2
    v0, v1, w0, w1 = (np.zeros(count, U64) for _ in range(4))
    x = x * K2 + mem.fetch64(s)
    blocks = (n - U64(1)) // U64(64)  # full 64-byte blocks before the last 64 bytes
    p = s.copy()
    for i in range(int(blocks.max())):
        act = blocks > U64(i)  # rows with a block left; the others keep their state
        pa_, x_, y_, z_ = p[act], x[act], y[act], z[act]
        v0_, v1_, w0_, w1_ = v0[act], v1[act], w0[act], w1[act]
        x_ = _rot(x_ + y_ + v0_ + mem.fetch64(pa_ + U64(8)), 37) * K1
        y_ = _rot(y_ + v1_ + mem.fetch64(pa_ + U64(48)), 42) * K1
        x_ ^= w1_
        y_ = y_ + v0_ + mem.fetch64(pa_ + U64(40))
        z_ = _rot(z_ + w0_, 33) * K1
        v0_, v1_ = _weak32(mem, pa_, v1_ * K1, x_ + w0_)
        w0_, w1_ = _weak32(mem, pa_ + U64(32), z_ + w1_, y_ + mem.fetch64(pa_ + U64(16)))
        x[act], z[act] = z_, x_  # std::swap(z, x)
        y[act], v0[act], v1[act], w0[act], w1[act] = y_, v0_, v1_, w0_, w1_
        p[act] = pa_ + U64(64)
    mul = K1 + ((z & U64(0xFF)) << U64(1))
    last = s + n - U64(64)
    w0 = w0 + ((n - U64(1)) & U64(63))
    v0 = v0 + w0
    w0 = w0 + v0
    x = _rot(x + y + v0 + mem.fetch64(last + U64(8)), 37) * mul
    y = _rot(y + v1 + mem.fetch64(last + U64(48)), 42) * mul
    x ^= w1 * U64(9)
    y = y + v0 * U64(9) + mem.fetch64(last + U64(40))
    z = _rot(z + w0, 33) * mul
    v0, v1 = _weak32(mem, last, v1 * mul, x + w0)
    w0, w1 = _weak32(mem, last + U64(32), z + w1, y + mem.fetch64(last + U64(16)))
    x, z = z, x
    return _hash_len16(
        _hash_len16(v0, w0, mul) + _shift_mix(y) * K0 + z, _hash_len16(v1, w1, mul) + x, mul
    )


# Each length range has its own code path in FarmHash (na::Hash64).
_PATHS = (
    (0, 16, _len0to16),
    (17, 32, _len17to32),
    (33, 64, _len33to64),
    (65, 1 << 62, _len65plus),
)


def fingerprint64(strings: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Signed FarmHash Fingerprint64 (BigQuery's ``FARM_FINGERPRINT``) of every string.

    ``strings``: a string or large_string array without NULLs (NULL has no fingerprint: the
    caller decides what a NULL key means). Returns an int64 array of the same length.
    """
    if isinstance(strings, pa.ChunkedArray):
        parts = [fingerprint64(c) for c in strings.chunks]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)
    if strings.null_count:
        raise ValueError("fingerprint64 takes no NULL strings")
    if pa.types.is_string(strings.type):
        strings = strings.cast(pa.large_string())  # 64-bit offsets: one code path
    if not pa.types.is_large_string(strings.type):
        raise TypeError(f"fingerprint64 takes strings, got {strings.type}")
    _, offsets_buf, data_buf = strings.buffers()
    offsets = np.frombuffer(offsets_buf, np.int64, len(strings) + 1, strings.offset * 8)
    start = offsets[:-1].astype(U64)
    length = (offsets[1:] - offsets[:-1]).astype(U64)
    data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    mem = _Bytes(data)
    out = np.empty(len(strings), U64)
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps, as in C++
        shortest, longest = (int(length.min()), int(length.max())) if len(length) else (0, 0)
        for lo, hi, path in _PATHS:
            if shortest >= lo and longest <= hi:  # every key takes this path (fixed-width ids)
                return path(mem, start, length).view(np.int64)
            rows = (length >= lo) & (length <= hi)
            if rows.any():
                out[rows] = path(mem, start[rows], length[rows])
    return out.view(np.int64)
