"""PEP 734 queues: a 64-byte round trip, woken waits (ours) against 3.14's 10 ms polling.

    python benchmarks/bench_pep734.py [--quick] [--row]

An echo peer runs in a subinterpreter (made by ``interpreters.pep734.create()``) in
its own thread; the main thread puts 64 bytes on one queue and waits for them on
another.  Three contenders, on the same queues of this package:

* ``pep734``: ``Queue.get()`` of interpreters.pep734 on both sides (blocking waits
  that sleep until woken);
* ``10 ms poll``: both sides wait as CPython 3.14's ``concurrent.interpreters``
  does: ``get_nowait()``, and ``time.sleep(0.01)`` after each QueueEmpty;
* ``core Queue``: the package's PEP 554 ``interpreters.Queue`` (what the PEP 734
  layer costs on top of it).

Batches of the contenders are interleaved so that machine load hits all alike;
the median is over every trip (us).  Prints the 1-minute load before and after.
``--row`` prints one markdown row.
"""

import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import interpreters  # noqa: E402
from interpreters import pep734  # noqa: E402

ECHO_BLOCKING = """if True:
    while True:
        item = inq.get()
        if item is None:
            break
        outq.put(item)
"""

ECHO_POLLING = """if True:
    import time
    from interpreters.pep734 import QueueEmpty
    while True:
        while True:
            try:
                item = inq.get_nowait()
                break
            except QueueEmpty:
                time.sleep(0.01)
        if item is None:
            break
        outq.put(item)
"""

ECHO_CORE = """if True:
    while True:
        item = inq.get()
        if item is None:
            break
        outq.put(item)
"""


def poll_get(q):
    while True:
        try:
            return q.get_nowait()
        except pep734.QueueEmpty:
            time.sleep(0.01)


class Peer:
    def __init__(self, kind):
        self.kind = kind
        if kind == "core":
            self.interp = interpreters.create()
            self.inq, self.outq = interpreters.Queue(), interpreters.Queue()
            self.thread = threading.Thread(target=self.interp.run, args=(ECHO_CORE,),
                                           kwargs={"channels": {"inq": self.inq,
                                                                "outq": self.outq}})
            self.get = self.outq.get
        else:
            self.interp = pep734.create()
            self.inq, self.outq = pep734.create_queue(), pep734.create_queue()
            self.interp.prepare_main(inq=self.inq, outq=self.outq)
            src = ECHO_BLOCKING if kind == "pep734" else ECHO_POLLING
            self.thread = threading.Thread(target=self.interp.exec, args=(src,))
            self.get = self.outq.get if kind == "pep734" else (lambda: poll_get(self.outq))
        self.thread.start()

    def batch(self, n, item):
        put, get = self.inq.put, self.get
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            put(item)
            get()
            times.append(time.perf_counter() - t0)
        return times

    def stop(self):
        self.inq.put(None)
        self.thread.join()
        if self.kind == "core":
            self.interp.destroy()
        else:
            self.interp.close()


def main():
    quick = "--quick" in sys.argv
    rounds = 4 if quick else 10
    sizes = {"pep734": 100 if quick else 300, "poll": 10 if quick else 30,
             "core": 100 if quick else 300}
    item = bytes(range(64))
    load0 = os.getloadavg()[0]
    peers = {k: Peer(k) for k in sizes}
    results = {k: [] for k in sizes}
    try:
        for k, p in peers.items():          # warm up
            p.batch(3, item)
        for _ in range(rounds):
            for k, p in peers.items():
                results[k].extend(p.batch(sizes[k], item))
    finally:
        for p in peers.values():
            p.stop()
    load1 = os.getloadavg()[0]
    med = {k: statistics.median(v) * 1e6 for k, v in results.items()}
    version = sys.version.split()[0]
    if "--row" in sys.argv:
        print("| %s | %.1f | %.1f | %.1f | %.0fx | %.2fx | %.2f/%.2f |" % (
            version, med["pep734"], med["poll"], med["core"], med["poll"] / med["pep734"],
            med["pep734"] / med["core"], load0, load1))
        return
    print("CPython %s, 64-byte queue round trip main <-> subinterpreter, median us:" % version)
    print("  pep734 (woken waits)       %8.1f   (%d trips)" % (med["pep734"], len(results["pep734"])))
    print("  10 ms polling (3.14 style) %8.1f   (%d trips)" % (med["poll"], len(results["poll"])))
    print("  core interpreters.Queue    %8.1f   (%d trips)" % (med["core"], len(results["core"])))
    print("  polling / pep734: %.0fx; pep734 / core: %.2fx" % (
        med["poll"] / med["pep734"], med["pep734"] / med["core"]))
    print("  1-minute load before/after: %.2f/%.2f" % (load0, load1))


if __name__ == "__main__":
    main()
