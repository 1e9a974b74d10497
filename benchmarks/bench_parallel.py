"""Benchmark: 1 vs 2 CPU-bound workers, in isolated interpreters and the alternatives.

Each worker runs the same pure-Python loop (``s += i * i``, N iterations).  For
every contender it times one worker alone, then two at once, and reports

* speedup = 2 x t(1 worker) / t(2 workers): 2.0 is perfect scaling, 1.0 none;
* CPU/wall = CPU-seconds used per wall-second while the two ran: at most 1.0
  means the work was serialized (one GIL); near 2.0 means both cores were
  busy.  This one holds up on a busy machine, where other tenants take cores
  and make wall-clock ratios swing.

Contenders: ``interpreters.create(isolated=True)`` (this package, own GIL, 3.12+),
``interpreters.create()`` (this package, shared GIL), threads in one
interpreter, ``multiprocessing`` (a warm spawn Pool), and CPython's own isolated
interpreters (3.12 ``_xxsubinterpreters.create(isolated=True)``, 3.13
``_interpreters.create()``).  The 1-minute load average is printed with the
results: on a machine with other load, read CPU/wall first.

Usage:
    python benchmarks/bench_parallel.py [--n 2000000] [--repeat 3] [--row]
"""

import argparse
import multiprocessing
import os
import statistics
import sys
import threading
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import interpreters  # noqa: E402

PYVER = sys.version_info[:2]
LOOP = "s = 0\nfor i in range(%d):\n    s += i * i\n"


def _spin(n):
    c0 = time.process_time()
    s = 0
    for i in range(n):
        s += i * i
    return time.process_time() - c0


def _in_threads(targets):
    """Start one thread per callable, wait for all; return (wall, process CPU)."""
    threads = [threading.Thread(target=t) for t in targets]
    c0, w0 = time.process_time(), time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - w0, time.process_time() - c0


class Ours:
    def __init__(self, n, isolated):
        self.name = "interpreters, %s" % ("isolated (own GIL)" if isolated else "shared GIL")
        self.code = LOOP % n
        self.interps = [interpreters.create(isolated=isolated) for _ in range(2)]
        for i in self.interps:
            i.run(LOOP % 10)

    def run(self, k):
        return _in_threads([lambda i=i: i.run(self.code) for i in self.interps[:k]])

    def close(self):
        for i in self.interps:
            i.destroy()


class CModule:
    def __init__(self, n):
        if PYVER >= (3, 13):
            import _interpreters as mod
            self.name = "CPython _interpreters (isolated)"
            self.ids = [mod.create() for _ in range(2)]
            self.call = mod.exec
        else:
            import _xxsubinterpreters as mod
            self.name = "CPython _xxsubinterpreters (isolated)"
            self.ids = [mod.create(isolated=True) for _ in range(2)]
            self.call = mod.run_string
        self.mod = mod
        self.code = LOOP % n
        for i in self.ids:
            self.call(i, LOOP % 10)

    def run(self, k):
        return _in_threads([lambda i=i: self.call(i, self.code) for i in self.ids[:k]])

    def close(self):
        for i in self.ids:
            self.mod.destroy(i)


class Threads:
    name = "threads (one interpreter)"

    def __init__(self, n):
        self.n = n

    def run(self, k):
        return _in_threads([lambda: _spin(self.n)] * k)

    def close(self):
        pass


class Processes:
    name = "multiprocessing (warm spawn Pool)"

    def __init__(self, n):
        self.n = n
        self.pool = multiprocessing.get_context("spawn").Pool(2)
        self.pool.map(_spin, [10, 10])

    def run(self, k):
        w0 = time.perf_counter()
        cpu = sum(self.pool.map(_spin, [self.n] * k, chunksize=1))
        return time.perf_counter() - w0, cpu

    def close(self):
        self.pool.close()
        self.pool.join()


def contenders(n):
    out = [lambda: Processes(n), lambda: Threads(n), lambda: Ours(n, False)]
    if PYVER >= (3, 12):
        out += [lambda: Ours(n, True), lambda: CModule(n)]
    return out


def measure(make, repeat):
    bench = make()
    try:
        rows = []
        for _ in range(repeat):
            w1, _ = bench.run(1)
            w2, c2 = bench.run(2)
            rows.append((2 * w1 / w2, c2 / w2, w1, w2))
        return bench.name, rows
    finally:
        bench.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2000000, help="loop iterations per worker")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--row", action="store_true", help="markdown rows without the header")
    args = ap.parse_args()
    load0 = os.getloadavg()[0]
    results = [measure(make, args.repeat) for make in contenders(args.n)]
    load1 = os.getloadavg()[0]
    ver = sys.version.split()[0]
    if not args.row:
        print("CPython %s, %d CPUs, N=%d, %d repeats; load average %.1f -> %.1f"
              % (ver, os.cpu_count(), args.n, args.repeat, load0, load1))
        print()
        print("| CPython | workers in | speedup 2 vs 1 (median, best) | CPU/wall with 2 "
              "(median, best) | 1 worker s | load |")
        print("|---|---|---:|---:|---:|---:|")
    for name, rows in results:
        sp = [r[0] for r in rows]
        cw = [r[1] for r in rows]
        print("| %s | %s | %.2fx, %.2fx | %.2f, %.2f | %.3f | %.1f |"
              % (ver, name, statistics.median(sp), max(sp), statistics.median(cw), max(cw),
                 statistics.median(r[2] for r in rows), (load0 + load1) / 2))


if __name__ == "__main__":
    main()
