"""Benchmark: how soon Ctrl-C interrupts CPU-bound code in a subinterpreter.

For the running Python, the main thread runs a pure-Python busy loop in a
shared-GIL subinterpreter, with ``run("while True: pass")`` and with
``call(spin)``; a timer thread sends SIGINT to the process; the latency is the
time from ``os.kill()`` to the KeyboardInterrupt caught in the main thread.
Also the same while the main thread waits in ``CallThread.join()`` on a
subinterpreter thread that spins.  Prints median and maximum in milliseconds.

Usage:
    python benchmarks/bench_ctrl_c.py [--rounds N]
"""

import argparse
import mmap
import os
import signal
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import interpreters  # noqa: E402


def spin():
    while True:
        pass


def measure(action, rounds):
    out = []
    for _ in range(rounds):
        sent = [0.0]

        def fire():
            sent[0] = time.monotonic()
            os.kill(os.getpid(), signal.SIGINT)
        timer = threading.Timer(0.2, fire)
        timer.start()
        try:
            action()
        except KeyboardInterrupt:
            out.append(time.monotonic() - sent[0])
        timer.join()
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    rounds = parser.parse_args().rounds
    interp = interpreters.create()
    fd = os.memfd_create("flag")
    os.ftruncate(fd, 1)
    flag = mmap.mmap(fd, 1)
    spin_src = "import mmap\nf = mmap.mmap(%d, 1)\nwhile f[0] == 0:\n    pass\n" % fd
    h = interp.run_in_thread(spin_src)
    rows = [("run('while True: pass')", None), ("call(spin)", None), ("join() on a spinning thread", None)]
    results = {}
    other = interpreters.create()
    other.call(sum, [1])                  # warm up call()
    results[rows[0][0]] = measure(lambda: other.run("while True: pass"), rounds)
    results[rows[1][0]] = measure(lambda: other.call(spin), rounds)
    results[rows[2][0]] = measure(h.join, rounds)
    flag[0] = 1
    h.join()
    interp.destroy()
    other.destroy()
    print("CPython %s, %d rounds, SIGINT -> KeyboardInterrupt (ms)" % (sys.version.split()[0], rounds))
    for name, _ in rows:
        lat = results[name]
        print("  %-30s median %6.1f  max %6.1f  (%d/%d interrupted)"
              % (name, statistics.median(lat) * 1e3, max(lat) * 1e3, len(lat), rounds))


if __name__ == "__main__":
    main()
