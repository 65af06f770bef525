# py_churn.py: a python3 workload for hakmem's "real programs" test.
#
# Run by tests/run.sh with LD_PRELOAD=out/VARIANT/libhakmem.so.  Four threads
# build and drop large dicts, lists and strings; every result is compared
# with a value computed by arithmetic, and the totals are printed for the
# runner to compare with tests/py_churn.expected.  Unless
# HAKTEST_ALLOW_SYSTEM=1, the script first makes sure libhakmem is mapped
# into this process.
import os
import sys
import threading

THREADS = 4
ROUNDS = 4
N = 60000


def hakmem_loaded():
    with open("/proc/self/maps") as f:
        return any("libhakmem" in line for line in f)


def work(t, out):
    total = 0
    for r in range(ROUNDS):
        # a large dict of lists and strings, looked up, then dropped
        d = {}
        for i in range(N):
            d["k%d" % i] = [i, str(i * 2), (i, t)]
        s = 0
        for i in range(0, N, 7):
            v = d["k%d" % i]
            s += v[0] + len(v[1]) + v[2][1]
        del d
        # a list of strings of varied sizes, joined into one big string
        parts = ["x" * (i % 300) for i in range(N // 4)]
        big = "".join(parts)
        s += len(big)
        del parts
        # slices and a repeated string, dropped
        chunks = [big[i:i + 4096] for i in range(0, len(big), 4096)]
        s += len(chunks)
        rep = ("ab" * 1000 + str(r)) * 200
        s += len(rep)
        del big, chunks, rep
        # a dict of big bytes objects
        blobs = {i: bytes(1000 + i) for i in range(500)}
        s += sum(len(b) for b in blobs.values())
        del blobs
        total += s
    out[t] = total


def expected(t):
    e = 0
    for r in range(ROUNDS):
        s = 0
        for i in range(0, N, 7):
            s += i + len(str(i * 2)) + t
        biglen = sum(i % 300 for i in range(N // 4))
        s += biglen
        s += (biglen + 4095) // 4096
        s += (2000 + len(str(r))) * 200
        s += sum(1000 + i for i in range(500))
        e += s
    return e


def main():
    if os.environ.get("HAKTEST_ALLOW_SYSTEM") != "1" and not hakmem_loaded():
        sys.stderr.write("py_churn: libhakmem is not mapped in this python process\n")
        return 3
    out = [None] * THREADS
    threads = [threading.Thread(target=work, args=(t, out)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for t in range(THREADS):
        if out[t] != expected(t):
            sys.stderr.write("py_churn: thread %d computed %r, expected %d\n" % (t, out[t], expected(t)))
            return 1
    print("py_churn: threads=%d rounds=%d total=%d" % (THREADS, ROUNDS, sum(out)))
    print("py_churn: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
