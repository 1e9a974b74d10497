"""Benchmark: this package against CPython's own low-level interpreters module.

For the running Python, in one process, measures

* ``run('pass')`` in microseconds: ``Interpreter.run('pass')`` against
  ``_xxsubinterpreters.run_string(id, 'pass')`` (3.8-3.12; the interpreter made
  with ``isolated=False`` on 3.9-3.12) or ``_interpreters.exec(id, 'pass')``
  (3.13, interpreter made with ``create('legacy')``);
* create + destroy in milliseconds, the same pairs.

Batches of the two contenders are interleaved (ours, C, ours, C, ...) so that a
change in machine load hits both alike; each number is the median over batches.
The garbage collector is disabled while a batch runs (as ``timeit`` does).

Usage:
    python benchmarks/bench_interp.py            # table for this Python
    python benchmarks/bench_interp.py --row      # one markdown row (run_all.sh)
    python benchmarks/bench_interp.py --json     # the numbers as JSON
Options: --run-batches N --run-batch-size N --cycles N (defaults keep a run
well under a minute on every version).
"""

import argparse
import gc
import json
import os
import statistics
import sys
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import interpreters  # noqa: E402

PYVER = sys.version_info[:2]
TARGET_RUN = 1.5
TARGET_LIFE = 1.2

if PYVER >= (3, 13):
    import _interpreters as _cmod

    C_NAME = "_interpreters"

    def c_create():
        return _cmod.create("legacy")

    def c_runner(iid):
        ex = _cmod.exec
        return lambda: ex(iid, "pass")
else:
    import _xxsubinterpreters as _cmod

    C_NAME = "_xxsubinterpreters"

    if PYVER >= (3, 9):
        def c_create():
            return _cmod.create(isolated=False)
    else:
        def c_create():
            return _cmod.create()

    def c_runner(iid):
        rs = _cmod.run_string
        return lambda: rs(iid, "pass")

c_destroy = _cmod.destroy


def _time_batch(fn, n, _perf=time.perf_counter):
    """Seconds per call of *fn* over a batch of *n* calls."""
    it = range(n)
    gcold = gc.isenabled()
    gc.disable()
    try:
        t0 = _perf()
        for _ in it:
            fn()
        t1 = _perf()
    finally:
        if gcold:
            gc.enable()
    return (t1 - t0) / n


def bench_run(batches, batch_size):
    ours = interpreters.create()
    cid = c_create()
    try:
        ours_run = ours.run
        ours_fn = lambda: ours_run("pass")  # noqa: E731  (same call overhead as c_runner)
        c_fn = c_runner(cid)
        for _ in range(200):          # warm up: thread states, caches, code objects
            ours_fn()
            c_fn()
        o, c = [], []
        for _ in range(batches):
            o.append(_time_batch(ours_fn, batch_size))
            c.append(_time_batch(c_fn, batch_size))
        return statistics.median(o) * 1e6, statistics.median(c) * 1e6, o, c
    finally:
        ours.destroy()
        c_destroy(cid)


def _life_ours():
    interpreters.create().destroy()


def _life_c():
    c_destroy(c_create())


def bench_life(cycles):
    _life_ours()                      # warm up (imports, the arena, the GIL poker)
    _life_c()
    o, c = [], []
    for _ in range(cycles):
        o.append(_time_batch(_life_ours, 1))
        c.append(_time_batch(_life_c, 1))
    return statistics.median(o) * 1e3, statistics.median(c) * 1e3, o, c


def measure(run_batches=31, run_batch_size=2000, cycles=40, budget=45.0):
    t_start = time.monotonic()
    load0 = os.getloadavg()[0]
    run_ours, run_c, _, _ = bench_run(run_batches, run_batch_size)
    # create+destroy is the slow part: probe it, then fit the cycles in the budget.
    _, _, o, c = bench_life(3)
    per_pair = (sum(o) + sum(c)) / len(o)
    left = budget - (time.monotonic() - t_start)
    n = max(5, min(cycles, int(left / max(per_pair, 1e-3) * 0.8)))
    _, _, o2, c2 = bench_life(n)
    o, c = o + o2, c + c2
    life_ours = statistics.median(o) * 1e3
    life_c = statistics.median(c) * 1e3
    load1 = os.getloadavg()[0]
    return {
        "python": "%d.%d.%d" % sys.version_info[:3],
        "c_module": C_NAME,
        "run_ours_us": run_ours,
        "run_c_us": run_c,
        "run_ratio": run_ours / run_c,
        "life_ours_ms": life_ours,
        "life_c_ms": life_c,
        "life_ratio": life_ours / life_c,
        "life_cycles": len(o),
        "run_calls": run_batches * run_batch_size,
        "load1_start": load0,
        "load1_end": load1,
        "seconds": time.monotonic() - t_start,
    }


def _mark(ratio, target):
    return "met" if ratio <= target else "MISSED"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--row", action="store_true", help="print one markdown table row")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--run-batches", type=int, default=31)
    ap.add_argument("--run-batch-size", type=int, default=2000)
    ap.add_argument("--cycles", type=int, default=40)
    args = ap.parse_args(argv)
    r = measure(args.run_batches, args.run_batch_size, args.cycles)
    load = max(r["load1_start"], r["load1_end"])
    if args.json:
        print(json.dumps(r))
    elif args.row:
        print("| %s | %.1f | %.1f | %.2fx | %.1f | %.1f | %.2fx | %.2f |" % (
            r["python"], r["run_ours_us"], r["run_c_us"], r["run_ratio"],
            r["life_ours_ms"], r["life_c_ms"], r["life_ratio"], load))
    else:
        print("CPython %s, C module %s, 1-min load %.2f -> %.2f, %.1f s"
              % (r["python"], r["c_module"], r["load1_start"], r["load1_end"], r["seconds"]))
        print("%-22s %12s %12s %8s %8s" % ("", "interpreters", r["c_module"], "ratio", "target"))
        print("%-22s %12.2f %12.2f %7.2fx  <=%.1fx %s" % (
            "run('pass')  [us]", r["run_ours_us"], r["run_c_us"], r["run_ratio"],
            TARGET_RUN, _mark(r["run_ratio"], TARGET_RUN)))
        print("%-22s %12.2f %12.2f %7.2fx  <=%.1fx %s" % (
            "create+destroy [ms]", r["life_ours_ms"], r["life_c_ms"], r["life_ratio"],
            TARGET_LIFE, _mark(r["life_ratio"], TARGET_LIFE)))
        print("(%d run() calls each in batches; %d create+destroy cycles each)"
              % (r["run_calls"], r["life_cycles"]))


if __name__ == "__main__":
    main()
