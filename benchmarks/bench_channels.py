"""Channel benchmarks (issue 3, section 7), all in one run on the running Python.

    python benchmarks/bench_channels.py [--quick]

Measures, with the peer in another thread (a subinterpreter) or process:

* 64-byte round trip, median us: ours (main <-> subinterpreter in a thread), a
  multiprocessing.Pipe to a child process (send_bytes/recv_bytes), and CPython's
  own channels where present (3.8-3.11 ``_xxsubinterpreters``, 3.12
  ``_xxinterpchannels``, 3.13 ``_interpchannels``).  Their recv() does not block,
  so the peer polls it the way the stdlib's helpers do, but with
  ``time.sleep(0)`` between tries instead of their 10 ms (their best case).
* 1 MiB bytes throughput, MB/s: ours vs the Pipe (and CPython's channels).
* send_buffer() of 64 KiB vs 64 MiB: median us per send (received, released).

Prints the load average before and after, and the ratios the issue sets
targets for: round trip <= 50 us and <= 2.5x the Pipe; throughput >= 2x the
Pipe; send_buffer cost independent of size.
"""

import importlib
import multiprocessing
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

QUICK = "--quick" in sys.argv
RT_N = 500 if QUICK else 3000
TP_N = 50 if QUICK else 300
BUF_N = 200 if QUICK else 1000
MIB = 1 << 20
MSG = b"x" * 64


def median_us(samples):
    return statistics.median(samples) * 1e6


# -- multiprocessing.Pipe (measured first: fork with a live subinterpreter is unsafe)

def _pipe_child(conn, mode):
    if mode == "echo":
        while True:
            b = conn.recv_bytes()
            if not b:
                return
            conn.send_bytes(b)
    else:                                     # sink: read n messages, then ack
        while True:
            n = int(conn.recv_bytes())
            if not n:
                return
            for _ in range(n):
                conn.recv_bytes()
            conn.send_bytes(b"ok")


def bench_pipe():
    ctx = multiprocessing.get_context("fork")
    a, b = ctx.Pipe()
    p = ctx.Process(target=_pipe_child, args=(b, "echo"))
    p.start()
    for _ in range(200):
        a.send_bytes(MSG)
        a.recv_bytes()
    samples = []
    for _ in range(RT_N):
        t0 = time.perf_counter()
        a.send_bytes(MSG)
        a.recv_bytes()
        samples.append(time.perf_counter() - t0)
    a.send_bytes(b"")
    p.join()
    rt = median_us(samples)

    a, b = ctx.Pipe()
    p = ctx.Process(target=_pipe_child, args=(b, "sink"))
    p.start()
    data = b"y" * MIB
    a.send_bytes(b"5")
    for _ in range(5):
        a.send_bytes(data)
    a.recv_bytes()
    a.send_bytes(b"%d" % TP_N)
    t0 = time.perf_counter()
    for _ in range(TP_N):
        a.send_bytes(data)
    a.recv_bytes()
    tp = TP_N * MIB / (time.perf_counter() - t0) / 1e6
    a.send_bytes(b"0")
    p.join()
    return rt, tp


# -- ours ------------------------------------------------------------------------------

def bench_ours():
    import interpreters
    sub = interpreters.create()
    r1, s1 = interpreters.create_channel()
    r2, s2 = interpreters.create_channel()
    t = threading.Thread(target=sub.run, args=("""
while True:
    x = r1.recv()
    if x is None:
        break
    s2.send(x)
""",), kwargs={"channels": {"r1": r1, "s2": s2}})
    t.start()
    for _ in range(200):
        s1.send(MSG)
        r2.recv()
    samples = []
    for _ in range(RT_N):
        t0 = time.perf_counter()
        s1.send(MSG)
        r2.recv()
        samples.append(time.perf_counter() - t0)
    s1.send(None)
    t.join()
    rt = median_us(samples)

    # throughput: the sub receives 1 MiB bytes objects
    t = threading.Thread(target=sub.run, args=("""
while True:
    x = r1.recv()
    if x is None:
        break
""",))
    t.start()
    data = b"y" * MIB
    for _ in range(5):
        s1.send(data)
    t0 = time.perf_counter()
    for _ in range(TP_N):
        s1.send(data)
    tp = TP_N * MIB / (time.perf_counter() - t0) / 1e6
    s1.send(None)
    t.join()

    # send_buffer: the sub receives a view and releases it
    t = threading.Thread(target=sub.run, args=("""
while True:
    v = r1.recv()
    if v is None:
        break
    v.release()
    del v
""",))
    t.start()
    buf = {}
    for size in (64 * 1024, 64 * MIB):
        obj = bytearray(size)
        for _ in range(20):
            s1.send_buffer(obj)
        samples = []
        for _ in range(BUF_N):
            t0 = time.perf_counter()
            s1.send_buffer(obj)
            samples.append(time.perf_counter() - t0)
        buf[size] = median_us(samples)
        del obj
    s1.send(None)
    t.join()
    sub.destroy()
    return rt, tp, buf


# -- CPython's own channels ------------------------------------------------------------

def _cpython_modules():
    for interp_mod, chan_mod, style in (("_interpreters", "_interpchannels", "313"),
                                        ("_xxsubinterpreters", "_xxinterpchannels", "312"),
                                        ("_xxsubinterpreters", "_xxsubinterpreters", "38")):
        try:
            im = importlib.import_module(interp_mod)
            cm = importlib.import_module(chan_mod)
        except ImportError:
            continue
        return im, cm, chan_mod, style
    return None


def bench_cpython():
    found = _cpython_modules()
    if found is None:
        return None
    im, cm, chan_mod, style = found
    if style == "38":
        create, send, recv = cm.channel_create, cm.channel_send, cm.channel_recv
        sname, rname = "channel_send", "channel_recv"
    else:
        create, send, recv = cm.create, cm.send, cm.recv
        sname, rname = "send", "recv"
    unwrap = "[0]" if style == "313" else ""
    Empty = getattr(cm, "ChannelEmptyError")
    if style == "313":           # 3.13: create(unboundop); 3 is the stdlib's default (UNBOUND)
        c1, c2 = create(3), create(3)
    else:
        c1, c2 = create(), create()
    i1, i2 = int(c1), int(c2)
    sid = im.create()
    peer = """
import time
import %s as cm
def recv(c):
    while True:
        try:
            return cm.%s(c)%s
        except cm.ChannelEmptyError:
            time.sleep(0)
while True:
    x = recv(%d)
    if x is None or x == b'':
        break
    if MODE == 'echo':
        cm.%s(%d, x)
""" % (chan_mod, rname, unwrap, i1, sname, i2)

    def main_recv(c):
        while True:
            try:
                v = recv(c)
                return v[0] if style == "313" else v
            except Empty:
                time.sleep(0)

    def sub_run(mode):
        src = peer.replace("MODE", repr(mode))
        im.run_string(sid, src)

    # In 3.13 send() blocks until received by default; older versions queue.
    t = threading.Thread(target=sub_run, args=("echo",))
    t.start()
    for _ in range(100):
        send(c1, MSG)
        main_recv(c2)
    samples = []
    for _ in range(RT_N):
        t0 = time.perf_counter()
        send(c1, MSG)
        main_recv(c2)
        samples.append(time.perf_counter() - t0)
    send(c1, b"")
    t.join()
    rt = median_us(samples)

    t = threading.Thread(target=sub_run, args=("sink",))
    t.start()
    data = b"y" * MIB
    t0 = time.perf_counter()
    for _ in range(TP_N):
        send(c1, data)
    send(c1, b"")
    t.join()
    tp = TP_N * MIB / (time.perf_counter() - t0) / 1e6
    im.destroy(sid)
    return rt, tp, chan_mod


def main():
    ver = "%d.%d.%d" % sys.version_info[:3]
    load0 = os.getloadavg()
    pipe_rt, pipe_tp = bench_pipe()
    ours_rt, ours_tp, buf = bench_ours()
    try:
        cp = bench_cpython()
    except Exception as exc:          # report, never fail the whole run
        cp = None
        print("CPython channels: %s: %s" % (type(exc).__name__, exc))
    load1 = os.getloadavg()
    print("Python %s  load average before %.2f %.2f %.2f, after %.2f %.2f %.2f"
          % ((ver,) + load0 + load1))
    print("64 B round trip (median us): ours %.1f | Pipe %.1f | CPython %s"
          % (ours_rt, pipe_rt, "%.1f (%s, polling)" % (cp[0], cp[2]) if cp else "n/a"))
    print("  ratio ours/Pipe %.2fx (target <= 2.5x), ours <= 50 us: %s"
          % (ours_rt / pipe_rt, "met" if ours_rt <= 50 else "MISSED"))
    print("1 MiB throughput (MB/s): ours %.0f | Pipe %.0f | CPython %s"
          % (ours_tp, pipe_tp, "%.0f" % cp[1] if cp else "n/a"))
    print("  ratio ours/Pipe %.2fx (target >= 2x)" % (ours_tp / pipe_tp))
    print("send_buffer (median us): 64 KiB %.1f | 64 MiB %.1f | ratio %.2fx (target ~1x)"
          % (buf[64 * 1024], buf[64 * MIB], buf[64 * MIB] / buf[64 * 1024]))
    print("ROW | %s | %.1f | %.1f | %s | %.2fx | %.0f | %.0f | %s | %.2fx | %.1f | %.1f | %.2f/%.2f"
          % (ver, ours_rt, pipe_rt, "%.1f" % cp[0] if cp else "n/a", ours_rt / pipe_rt,
             ours_tp, pipe_tp, "%.0f" % cp[1] if cp else "n/a", ours_tp / pipe_tp,
             buf[64 * 1024], buf[64 * MIB], load0[0], load1[0]))


if __name__ == "__main__":
    main()
