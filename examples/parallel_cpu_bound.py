"""Split a CPU-bound job across isolated interpreters (own GIL, CPython 3.12+).

Counts the primes below N in two halves, each in its own isolated interpreter
running in its own thread, and compares the wall time with doing both halves
one after the other.  Isolated interpreters each have their own GIL, so on two
free cores the halves really run at the same time.  Below 3.12 the script says
so and uses shared-GIL interpreters, where no speedup is possible.

Each worker writes its count to a pipe: that works in every kind of interpreter
(on 3.12 the package itself, and so channels, cannot be imported inside an
isolated interpreter, because CPython refuses ctypes there).

An extra example: not one of PEP 554's.

Run it from the repository root:  python examples/parallel_cpu_bound.py
"""

import os
import sys
import threading
import time

try:
    import interpreters
except ImportError:   # a checkout that is not installed: use the package next to us
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import interpreters

N = 300_000

WORKER = """
import os

def count_primes(lo, hi):
    found = 0
    for n in range(max(lo, 2), hi):
        for d in range(2, int(n ** 0.5) + 1):
            if n % d == 0:
                break
        else:
            found += 1
    return found

os.write(WFD, b"%d\\n" % count_primes(LO, HI))
"""


def run_half(interp, lo, hi):
    """Run the worker for [lo, hi) in *interp*; return its count (via a pipe)."""
    rfd, wfd = os.pipe()
    try:
        interp.run("WFD, LO, HI = %d, %d, %d\n" % (wfd, lo, hi) + WORKER)
        return int(os.read(rfd, 64))
    finally:
        os.close(rfd)
        os.close(wfd)


def main():
    isolated = sys.version_info >= (3, 12)
    if not isolated:
        print("CPython %d.%d: isolated interpreters need 3.12+; using shared-GIL "
              "interpreters (expect no speedup)" % sys.version_info[:2])
    workers = [interpreters.create(isolated=isolated) for _ in range(2)]
    halves = [(0, N // 2), (N // 2, N)]
    try:
        run_half(workers[0], 0, 1000)                     # warm up both
        run_half(workers[1], 0, 1000)

        start = time.perf_counter()
        serial = [run_half(w, lo, hi) for w, (lo, hi) in zip(workers, halves)]
        one_by_one = time.perf_counter() - start

        results = [None, None]

        def work(i):
            results[i] = run_half(workers[i], *halves[i])

        threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        together = time.perf_counter() - start

        assert results == serial, (results, serial)
        print("primes below %d: %d" % (N, sum(results)))
        print("one after the other: %.2f s; at the same time: %.2f s; speedup %.2fx%s"
              % (one_by_one, together, one_by_one / together,
                 "" if isolated else " (shared GIL)"))
        print("(the speedup needs two idle cores; load average now %.1f)" % os.getloadavg()[0])
    finally:
        for w in workers:
            w.destroy()


if __name__ == "__main__":
    main()
