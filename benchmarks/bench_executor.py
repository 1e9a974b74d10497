"""Benchmark: InterpreterPoolExecutor vs ProcessPoolExecutor vs ThreadPoolExecutor.

Two workloads, each timed on an executor that is already warm (its workers
and their interpreters/processes exist: the pool's start-up is timed apart):

* small: 1,000 tiny tasks (``submit(add, i, 1)``), and the same through
  ``map(..., chunksize=50)``;
* cpu:   8 CPU-bound tasks (a pure-Python loop of N iterations) on ``--workers``
  workers.

Contenders: InterpreterPoolExecutor (shared GIL), InterpreterPoolExecutor
(isolated=True, own GIL, 3.12+), ProcessPoolExecutor (default start method),
ThreadPoolExecutor.  Each row is the best of ``--repeat`` runs.  The 1-minute
load average is printed: on a busy machine, parallel numbers suffer first.

Usage:
    python benchmarks/bench_executor.py [--workers 2] [--n 2000000] [--repeat 3]
"""

import argparse
import concurrent.futures
import operator
import os
import sys
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from interpreters._executor import InterpreterPoolExecutor  # noqa: E402

PYVER = sys.version_info[:2]


def spin(n):
    s = 0
    for i in range(n):
        s += i * i
    return s


def best(repeat, fn):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bench(name, make, args):
    t = time.perf_counter()
    ex = make()
    list(ex.map(spin, [10] * args.workers * 4))       # start every worker
    startup = time.perf_counter() - t
    try:
        def small():
            fs = [ex.submit(operator.add, i, 1) for i in range(1000)]
            assert [f.result() for f in fs] == list(range(1, 1001))

        def small_map():
            assert list(ex.map(operator.add, range(1000), range(1000), chunksize=50)) == \
                list(range(0, 2000, 2))

        expect = spin(args.n)

        def cpu():
            assert list(ex.map(spin, [args.n] * 8)) == [expect] * 8

        row = (name, startup, best(args.repeat, small), best(args.repeat, small_map),
               best(args.repeat, cpu))
    finally:
        ex.shutdown()
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()

    contenders = [("InterpreterPool (shared GIL)",
                   lambda: InterpreterPoolExecutor(args.workers))]
    if PYVER >= (3, 12):
        contenders.append(("InterpreterPool (isolated)",
                           lambda: InterpreterPoolExecutor(args.workers, isolated=True)))
    contenders += [
        ("ProcessPoolExecutor", lambda: concurrent.futures.ProcessPoolExecutor(args.workers)),
        ("ThreadPoolExecutor", lambda: concurrent.futures.ThreadPoolExecutor(args.workers)),
    ]
    rows = [bench(name, make, args) for name, make in contenders]
    serial = best(args.repeat, lambda: [spin(args.n) for _ in range(8)])
    load = os.getloadavg()[0]
    print("CPython %s, %d workers, %d CPUs, load average %.2f (1 min); best of %d"
          % (sys.version.split()[0], args.workers, os.cpu_count() or 1, load, args.repeat))
    print("8 CPU-bound tasks one after the other in this thread: %.2f s" % serial)
    print("| executor | start %d workers | 1,000 tasks (submit) | 1,000 tasks (map, "
          "chunksize=50) | 8 CPU-bound tasks (N=%s) |" % (args.workers, format(args.n, ",")))
    print("|---|---:|---:|---:|---:|")
    for name, startup, small, small_map, cpu in rows:
        print("| %s | %.0f ms | %.0f ms (%.0f us/task) | %.1f ms | %.2f s |" % (
            name, startup * 1e3, small * 1e3, small * 1e3, small_map * 1e3, cpu))


if __name__ == "__main__":
    main()
