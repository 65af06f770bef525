#!/usr/bin/env python3
"""make_seeds.py: writes the seed inputs of tests/fuzz/corpus/ (seed-*).

Each seed is a small program for tests/fuzz/fuzz_hak.c that exercises one
area, so that replaying the corpus covers every operation even without a
fuzzer, and libFuzzer starts from inputs that reach deep.  The encoding is
fuzz_hak.c's: an op byte (op % 16), a slot byte, then the op's arguments.
Inputs a fuzzer found failing are kept in the same directory under other
names (crash-*, regress-*); this script never touches them.

    python3 tests/fuzz/make_seeds.py [DIR]     (default: tests/fuzz/corpus)
"""
import os
import struct
import sys

MALLOC, CALLOC, REALLOC, FREE, POSIX_MEMALIGN, ALIGNED_ALLOC = 0, 2, 3, 4, 5, 6
USABLE, HANDOFF, WORKER_ALLOC, SYNC, RESTART, BURST, TRIM = 7, 8, 9, 10, 11, 12, 13
IMPOSSIBLE, MEMALIGN_ETC = 14, 15
MiB = 1 << 20


def size(n):
    """bytes get_size() decodes to n"""
    if n < 32:
        return bytes([n])
    if n < 8192:
        return bytes([0x20 | n >> 8, n & 0xFF])
    if n <= 32768:
        v = n - 1
        return bytes([0x40 | v >> 10]) + struct.pack("<H", v & 1023)
    if n < 32768 + (224 << 10):
        return bytes([0x80]) + struct.pack("<I", n - 32768)
    assert n <= 6 * MiB
    return bytes([0xA0 | 28]) + struct.pack("<I", n)


def align(a):
    """bytes get_align() decodes to a (a power of two up to 1 MiB)"""
    s = a.bit_length() - 1
    assert 1 << s == a and s <= 20
    return bytes([0x80 | s])


def op(code, slot, *args):
    return bytes([code, slot]) + b"".join(args)


def malloc(slot, n):
    return op(MALLOC, slot, size(n))


def seeds():
    out = {}

    sizes = [0, 1, 15, 16, 17, 100, 128, 129, 1000, 1024, 1025, 4096, 8000, 16384,
             32767, 32768, 32769, 40000, 100000, 250000, 2 * MiB - 64, 2 * MiB, 5 * MiB]
    b = b""
    for i, n in enumerate(sizes):
        b += malloc(i, n) + op(USABLE, i)
    for i in range(len(sizes)):
        b += op(FREE, (i * 7) % len(sizes))
    out["seed-sizes"] = b

    b = malloc(0, 10)
    for n in [20, 100, 2000, 30000, 32768, 40000, 300000, 3 * MiB, 5 * MiB, 2 * MiB - 100,
              100000, 33000, 32000, 500, 16, 0]:
        b += op(REALLOC, 0, size(n))
    b += op(REALLOC, 1, size(100))          # realloc(NULL, ...)
    b += op(REALLOC, 1, size(4 * MiB)) + op(REALLOC, 1, size(4 * MiB + 4096))
    out["seed-realloc"] = b

    b = b""
    slot = 0
    for a in [1, 2, 8, 16, 32, 64, 256, 4096, 8192, 65536, MiB]:
        for n in [0, 1, a, 3 * a + 5 if a < MiB else 100, 33000]:
            b += op(POSIX_MEMALIGN, slot % 64, align(a), size(min(n, 6 * MiB)))
            b += op(ALIGNED_ALLOC, (slot + 1) % 64, align(a), size(min(n, 6 * MiB)))
            for kind in range(3):
                b += op(MEMALIGN_ETC, (slot + 2) % 64, bytes([kind]), align(a), size(min(n, 6 * MiB)))
            slot += 3
    out["seed-aligned"] = b

    b = b""
    for i in range(20):
        b += malloc(i, [24, 700, 5000, 40000, 3 * MiB][i % 5]) + op(HANDOFF, i)
    for i in range(20):
        b += op(WORKER_ALLOC, i, bytes([i % 6]), align(64), size([16, 300, 20000, 70000][i % 4]))
    b += op(RESTART, 0, b"\x01")             # the worker exits with its blocks live
    for i in range(0, 20, 2):
        b += op(FREE, i)                      # frees into an exited thread's slabs
    b += op(RESTART, 0, b"\x00")             # no worker for a while
    b += malloc(30, 100) + op(HANDOFF, 30) + op(WORKER_ALLOC, 31, b"\x00", align(16), size(64))
    b += op(RESTART, 0, b"\x01") + op(SYNC, 0)
    for i in range(1, 20, 2):
        b += op(HANDOFF, i)
    b += op(SYNC, 0)
    out["seed-threads"] = b

    b = b""
    for how in range(16):
        b += op(BURST, 0, bytes([255 if how % 3 == 0 else 40]), size([16, 48, 200, 1024][how % 4]),
                bytes([how]))
        if how % 5 == 4:
            b += op(TRIM, 0)
    out["seed-burst"] = b

    b = malloc(3, 1000)
    for what in range(7):
        b += op(IMPOSSIBLE, 3, bytes([what]))
    b += op(USABLE, 3)
    out["seed-impossible"] = b

    # calloc reusing dirty memory: small blocks, large cached mappings
    b = b""
    for n in [100, 3000, 32768, 50000, 3 * MiB]:
        b += malloc(5, n) + op(FREE, 5) + op(CALLOC, 5, b"\x00", size(n))
        b += op(FREE, 5) + op(CALLOC, 6, b"\x03", size(n))
    b += op(CALLOC, 7, b"\x0f", size(0))
    out["seed-calloc"] = b

    # a bit of everything, deterministic
    x = 12345
    b = b""
    for _ in range(600):
        x = (x * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
        b += bytes([(x >> 56) & 0xFF, (x >> 48) & 0xFF, (x >> 40) & 0xFF,
                    (x >> 32) & 0xFF, (x >> 24) & 0xFF])
    out["seed-mixed"] = b
    return out


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
    os.makedirs(d, exist_ok=True)
    for name, data in seeds().items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
