"""Queue, Pipe and asyncio benchmarks, all in one run on the running Python.

    python benchmarks/bench_queues.py [--quick] [--rows]

Measures, with the peer in a subinterpreter running in another thread (ours), a
child process (multiprocessing, started with ``fork`` before any subinterpreter
exists) or a plain thread:

1. Round trip (echo), median us, of a 64-byte ``bytes`` and of a small tuple
   ``(1, 2.5, "abc", b"xy", None, True)``: a pair of ``interpreters.Queue`` against
   a pair of ``multiprocessing.Queue``, a pair of ``queue.Queue`` between two
   threads (the lower bound: no copy, no crossing), and CPython's own C module
   where it exists: 3.13 ``_interpqueues`` (interpreter made with
   ``_interpreters.create("legacy")``, one GIL as ours), else the channels of
   3.12 ``_xxinterpchannels`` / 3.8-3.11 ``_xxsubinterpreters`` (interpreter made
   with ``isolated=False`` where the argument exists).  Their get/recv does not
   block, so both sides poll, measured two ways: with ``time.sleep(0)`` between
   tries (as bench_channels.py; the stdlib's own helper sleeps 10 ms), which on
   3.11+ is a real nanosleep stretched to ~55 us by Linux's timer slack, and with
   ``os.sched_yield()``, which lets the GIL go and returns at once: the C
   module's true best case, one core spinning.  Between batches the C peer
   parks on a blocking ``os.read()`` so that its polling does not take the
   shared GIL from the other contenders.  Their channels take no tuples before
   3.13: those cells are skipped with the reason printed.  On 3.13 also an
   isolated pair (own GIL): ours ``create(isolated=True)`` against
   ``_interpqueues`` in an interpreter of the default (isolated) config,
   polled with ``sched_yield()``.
2. Pipe round trip (echo of the same two items with send()/recv()):
   ``interpreters.Pipe()`` against ``multiprocessing.Pipe()`` to a child process.
3. Throughput: 10,000 64-byte items main -> peer through a queue bounded to 64
   (``interpreters.Queue(64)``, ``multiprocessing.Queue(64)``, ``queue.Queue(64)``,
   3.13 ``_interpqueues`` with maxsize 64, polled with ``sched_yield()``; older
   C channels are unbounded and reported as such), timed from the first put
   until the consumer acknowledges the last item; us per item.
4. asyncio: 1,000 64-byte messages sent by a thread running a subinterpreter,
   received in an event loop with ``await recv.recv_async()``, against
   ``await loop.run_in_executor(None, recv.recv)`` on the same channel, and the
   baseline ``asyncio.Queue`` fed by ``loop.call_soon_threadsafe`` from a plain
   thread; plus ``Queue.get_async()`` (sender: ``Queue(64).put``) and
   ``Connection.recv_async()`` (sender: ``Connection.send``).  us per message.

Round trips: batches of every contender are interleaved (one batch each, in
turn, for several rounds) so that a change in machine load hits all alike; the
median is over every trip.  Throughput and asyncio: the median of the repeats,
interleaved the same way.  The garbage collector is off while a batch runs.
Ratios are ours / peer (times: above 1 means ours is slower).  Prints the
1-minute load average before and after.  ``--rows`` also prints the markdown
rows that run_all.sh gathers (lines starting with ``rt|``, ``iso|``, ``pipe|``,
``tp|``, ``aio|``).
"""

import asyncio
import gc
import importlib
import multiprocessing
import os
import queue
import statistics
import sys
import threading
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import interpreters  # noqa: E402

PYVER = sys.version_info[:2]
QUICK = "--quick" in sys.argv
ROWS = "--rows" in sys.argv
RT_ROUNDS = 4 if QUICK else 12
RT_BATCH = 100 if QUICK else 250
TP_N = 10000
TP_MAXSIZE = 64
TP_REPS = 2 if QUICK else 7
AIO_N = 1000
AIO_REPS = 2 if QUICK else 9
MSG = b"x" * 64
TUP = (1, 2.5, "abc", b"xy", None, True)
ITEMS = (("64 B bytes", MSG), ("tuple", TUP))
JOIN_TIMEOUT = 10.0
BATCH_CAP = 0.25                 # seconds at most per round-trip batch
# Two threads that both poll can fall into a convoy where the shared GIL changes
# hands only when the 5 ms switch interval forces it (seen with the C channels on
# 3.8-3.10, whose sleep(0) returns at once): flagged when the C median is this many
# times queue.Queue's.
C_CONVOY = 20


def us(seconds):
    return seconds * 1e6


def ratio(a, b):
    return "%.2fx" % (a / b) if a is not None and b else "n/a"


def fmt(v, spec="%.1f"):
    return spec % v if v is not None else "n/a"


def timed_batch(put, get, item, n, out, _perf=time.perf_counter):
    """Append the seconds of *n* round trips put(item); get() to *out*.

    Stops early once the batch has taken BATCH_CAP seconds, so that a contender
    stuck in a slow mode (see C_CONVOY) cannot blow the time budget.
    """
    gcold = gc.isenabled()
    gc.disable()
    try:
        got = None
        stop = _perf() + BATCH_CAP
        for _ in range(n):
            t0 = _perf()
            put(item)
            got = get()
            t1 = _perf()
            out.append(t1 - t0)
            if t1 > stop:
                break
    finally:
        if gcold:
            gc.enable()
    if got != item:
        raise AssertionError("echo returned %r, not %r" % (got, item))


def timed_once(fn):
    gcold = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0
    finally:
        if gcold:
            gc.enable()


# -- multiprocessing children (forked first: fork with a live subinterpreter is refused) --

def _mpq_echo(q1, q2):
    while True:
        x = q1.get()
        if x is None:
            return
        q2.put(x)


def _mpq_sink(q, ack):
    while True:
        n = q.get()
        if n is None:
            return
        for _ in range(n):
            q.get()
        ack.put(n)


def _pipe_echo(conn):
    while True:
        x = conn.recv()
        if x is None:
            return
        conn.send(x)


class MPPeers:
    def __init__(self):
        ctx = multiprocessing.get_context("fork")
        self.q1, self.q2 = ctx.Queue(), ctx.Queue()
        self.tq, self.tack = ctx.Queue(TP_MAXSIZE), ctx.Queue()
        self.a, b = ctx.Pipe()
        self.procs = [ctx.Process(target=_mpq_echo, args=(self.q1, self.q2)),
                      ctx.Process(target=_mpq_sink, args=(self.tq, self.tack)),
                      ctx.Process(target=_pipe_echo, args=(b,))]
        for p in self.procs:
            p.start()
        b.close()

    def close(self):
        self.q1.put(None)
        self.tq.put(None)
        self.a.send(None)
        for p in self.procs:
            p.join(JOIN_TIMEOUT)
            if p.is_alive():
                p.terminate()
                print("warning: multiprocessing child %d did not stop" % p.pid)


# -- ours -------------------------------------------------------------------------------

_OURS_SRC = {
    "echo": """
q1, q2 = _r.recv()
while True:
    x = q1.get()
    if x is None:
        break
    q2.put(x)
""",
    "pipe": """
c, = _r.recv()
while True:
    x = c.recv()
    if x is None:
        break
    c.send(x)
c.close()
""",
    "sink": """
q, ack = _r.recv()
while True:
    n = q.get()
    if n is None:
        break
    for _ in range(n):
        q.get()
    ack.put(n)
""",
    "chan_sender": """
ctl, s = _r.recv()
ITEM = b"x" * 64
while True:
    n = ctl.get()
    if n is None:
        break
    for _ in range(n):
        s.send(ITEM)
""",
    "queue_sender": """
ctl, q = _r.recv()
ITEM = b"x" * 64
while True:
    n = ctl.get()
    if n is None:
        break
    for _ in range(n):
        q.put(ITEM)
""",
    "pipe_sender": """
ctl, c = _r.recv()
ITEM = b"x" * 64
while True:
    n = ctl.get()
    if n is None:
        break
    for _ in range(n):
        c.send(ITEM)
c.close()
""",
}


class OursPeer:
    """A subinterpreter running one of _OURS_SRC in a thread; *objs* handed over by channel."""

    def __init__(self, sub, kind, objs):
        self.error = None
        r, s = interpreters.create_channel()
        self.thread = threading.Thread(target=self._run, args=(sub, _OURS_SRC[kind], r))
        self.thread.start()
        s.send(tuple(objs), timeout=JOIN_TIMEOUT)     # until the peer took them
        r.close()
        s.close()

    def _run(self, sub, src, r):
        try:
            sub.run(src, channels={"_r": r})
        except BaseException as exc:   # reported by join()
            self.error = exc

    def join(self):
        self.thread.join(JOIN_TIMEOUT)
        if self.thread.is_alive():
            raise RuntimeError("subinterpreter peer did not stop")
        if self.error is not None:
            raise self.error


# -- CPython's own module -----------------------------------------------------------------

# How a C poller waits between tries.  "sleep": time.sleep(0), the way the stdlib's
# helpers poll (they sleep 10 ms); on 3.11+ sleep(0) is a real nanosleep, which Linux's
# 50 us timer slack stretches to ~55 us.  "yield": os.sched_yield(), which also lets
# the GIL go but returns at once: the C module's true best case (a spinning core).
# Every ESCAPE-th try both sleep 0.5 ms instead: two pollers sharing a GIL can
# otherwise starve one another for good on 3.9-3.12, where a thread of another
# interpreter waiting for the GIL never makes the holder drop it (DESIGN.md fact 8).
POLLS = {"sleep": "time.sleep(0)", "yield": "os.sched_yield()"}
_WAIT = {"sleep": lambda _s=time.sleep: _s(0), "yield": os.sched_yield}
ESCAPE = 500

_C_PEER = """
import os
import time
import %(mod)s as cm
def get(c):
    tries = 0
    while True:
        try:
            return %(get)s
        except Exception as exc:
            if type(exc).__name__ not in ('QueueEmpty', 'ChannelEmptyError'):
                raise
            tries += 1
            if tries %% %(escape)d:
                %(poll)s
            else:
                time.sleep(0.0005)
def put(c, x):
    tries = 0
    while True:
        try:
            return %(put)s
        except Exception as exc:
            if type(exc).__name__ != 'QueueFull':
                raise
            tries += 1
            if tries %% %(escape)d:
                %(poll)s
            else:
                time.sleep(0.0005)
# Parked on a blocking os.read() between batches: a poller left spinning would
# take the shared GIL (and a core) from the other contenders' batches.
while os.read(%(rfd)d, 1) == b'g':
    if MODE == 'echo':
        while True:
            x = get(%(c1)d)
            if x is None:              # end of the batch
                break
            put(%(c2)d, x)
    else:
        n = get(%(c1)d)
        for _ in range(n):
            get(%(c1)d)
        put(%(c2)d, n)
"""


class CModule:
    """CPython's low-level queues (3.13) or channels (3.8-3.12), driven by polling."""

    def __init__(self):
        self.im = self.cm = None
        self.reason = None
        self.tuples = True
        self.bounded = True
        self.qs = []
        if PYVER >= (3, 13):
            self.im = importlib.import_module("_interpreters")
            self.cm = importlib.import_module("_interpqueues")
            self.name = "_interpqueues"
            cm = self.cm
            self.create = lambda maxsize=0: cm.create(maxsize, 0, 3)   # shared data, UNBOUND
            self.destroy_q = cm.destroy
            self._get = lambda c, _g=cm.get: _g(c)[0]
            self._put = lambda c, x, _p=cm.put: _p(c, x, 0, 3)
            self._get_src, self._put_src = "cm.get(c)[0]", "cm.put(c, x, 0, 3)"
            return
        try:
            self.im = importlib.import_module("_xxsubinterpreters")
        except ImportError as exc:
            self.reason = "no _xxsubinterpreters (%s)" % exc
            return
        try:
            self.cm = importlib.import_module("_xxinterpchannels")
            self.name = "_xxinterpchannels"
            cm = self.cm
            self.create, self._get, self._put = cm.create, cm.recv, cm.send
            self._get_src, self._put_src = "cm.recv(c)", "cm.send(c, x)"
        except ImportError:
            self.cm = self.im
            self.name = "_xxsubinterpreters"
            cm = self.cm
            self.create = cm.channel_create
            self._get, self._put = cm.channel_recv, cm.channel_send
            self._get_src, self._put_src = "cm.channel_recv(c)", "cm.channel_send(c, x)"
        # (_xxsubinterpreters.destroy() destroys an interpreter: not for channels)
        self.destroy_q = cm.destroy if cm is not self.im else cm.channel_destroy
        self.tuples = bool(self.im.is_shareable(TUP))
        self.bounded = False

    def new_interp(self, isolated=False):
        if PYVER >= (3, 13):
            # the default config has its own GIL; "legacy" shares the main one, like ours
            return self.im.create() if isolated else self.im.create("legacy")
        return self.im.create(isolated=False) if PYVER >= (3, 9) else self.im.create()

    def new(self, maxsize=0):
        c = self.create(maxsize) if self.bounded else self.create()
        self.qs.append(c)
        return c

    def get(self, c, wait):
        _get = self._get
        tries = 0
        while True:
            try:
                return _get(c)
            except Exception as exc:
                if type(exc).__name__ not in ("QueueEmpty", "ChannelEmptyError"):
                    raise
                tries += 1
                if tries % ESCAPE:
                    wait()
                else:
                    time.sleep(0.0005)

    def put(self, c, x, wait):
        _put = self._put
        tries = 0
        while True:
            try:
                return _put(c, x)
            except Exception as exc:
                if type(exc).__name__ != "QueueFull":
                    raise
                tries += 1
                if tries % ESCAPE:
                    wait()
                else:
                    time.sleep(0.0005)

    def close(self):
        for c in self.qs:
            try:
                self.destroy_q(c)
            except Exception:
                pass


class CPeer:
    """A thread running _C_PEER in a new interpreter of CPython's module.

    Main's side: put(x) / get() with the same poll; wake() before each batch.
    """

    def __init__(self, cmod, mode, poll, maxsize=0, isolated=False):
        self.cmod = cmod
        self.c1, self.c2 = cmod.new(maxsize), cmod.new()
        self.sid = cmod.new_interp(isolated)
        self.rfd, self.wfd = os.pipe()
        self.wait = _WAIT[poll]
        src = _C_PEER % {"mod": cmod.name, "get": cmod._get_src, "put": cmod._put_src,
                         "c1": int(self.c1), "c2": int(self.c2), "rfd": self.rfd,
                         "poll": POLLS[poll], "escape": ESCAPE}
        src = src.replace("MODE", repr(mode))
        self.box = []

        def run():
            try:
                if PYVER >= (3, 13):
                    err = cmod.im.exec(self.sid, src)
                    if err is not None:
                        self.box.append(RuntimeError("C peer failed: %r" % (err,)))
                else:
                    cmod.im.run_string(self.sid, src)
            except BaseException as exc:
                self.box.append(exc)

        self.thread = threading.Thread(target=run)
        self.thread.start()

    def put(self, x):
        self.cmod.put(self.c1, x, self.wait)

    def get(self):
        return self.cmod.get(self.c2, self.wait)

    def end_batch(self):
        self.put(None)

    def wake(self):
        os.write(self.wfd, b"g")

    def stop(self):
        os.write(self.wfd, b"q")
        self.thread.join(JOIN_TIMEOUT)
        os.close(self.wfd)
        os.close(self.rfd)
        if self.thread.is_alive():
            raise RuntimeError("C peer thread did not stop")
        self.cmod.im.destroy(self.sid)
        if self.box:
            raise self.box[0]


# -- 1 and 2: round trips -------------------------------------------------------------

def _nothing():
    pass


def bench_round_trips(mp, subs, cmod, sub_iso):
    contenders = []          # (label, put, get, item names, before batch, after batch)
    stops = []
    both = ("64 B bytes", "tuple")
    skipped = []
    samples = {}
    try:
        q1, q2 = interpreters.Queue(), interpreters.Queue()
        peer = OursPeer(subs[0], "echo", (q1, q2))
        stops.append(lambda: (q1.put(None), peer.join()))
        contenders.append(("ours Queue", q1.put, q2.get, both, _nothing, _nothing))

        a, b = interpreters.Pipe()
        ppeer = OursPeer(subs[1], "pipe", (b,))
        b.close()
        stops.append(lambda: (a.send(None), ppeer.join(), a.close()))
        contenders.append(("ours Pipe", a.send, a.recv, both, _nothing, _nothing))

        contenders.append(("mp.Queue", mp.q1.put, mp.q2.get, both, _nothing, _nothing))
        contenders.append(("mp.Pipe", mp.a.send, mp.a.recv, both, _nothing, _nothing))

        t1, t2 = queue.Queue(), queue.Queue()
        tt = threading.Thread(target=_mpq_echo, args=(t1, t2))
        tt.start()
        stops.append(lambda: (t1.put(None), tt.join()))
        contenders.append(("queue.Queue", t1.put, t2.get, both, _nothing, _nothing))

        if cmod.cm is not None:
            items = both if cmod.tuples else ("64 B bytes",)
            if not cmod.tuples:
                skipped.append("C tuple: %s takes no tuples on %d.%d (is_shareable(tuple) "
                               "is False)" % (cmod.name, PYVER[0], PYVER[1]))
            for poll in ("sleep", "yield"):
                cpeer = CPeer(cmod, "echo", poll)
                stops.append(cpeer.stop)
                contenders.append(("C " + poll, cpeer.put, cpeer.get, items, cpeer.wake,
                                   cpeer.end_batch))
        else:
            skipped.append("C module: %s" % cmod.reason)

        if sub_iso is not None:      # 3.13: both peers in an interpreter with its own GIL
            iq1, iq2 = interpreters.Queue(), interpreters.Queue()
            ipeer = OursPeer(sub_iso, "echo", (iq1, iq2))
            stops.append(lambda: (iq1.put(None), ipeer.join()))
            contenders.append(("ours Queue isolated", iq1.put, iq2.get, both, _nothing,
                               _nothing))
            icpeer = CPeer(cmod, "echo", "yield", isolated=True)
            stops.append(icpeer.stop)
            contenders.append(("C isolated yield", icpeer.put, icpeer.get, both, icpeer.wake,
                               icpeer.end_batch))
        else:
            skipped.append("isolated pair (own GIL): 3.13 only (3.12 refuses ctypes, so "
                           "queues, in isolated interpreters; older versions have no own GIL)")

        for label, put, get, names, begin, end in contenders:      # warm up
            for name, item in ITEMS:
                if name in names:
                    begin()
                    timed_batch(put, get, item, 50, [])
                    end()
                    samples[label, name] = []
        for _ in range(RT_ROUNDS):
            for name, item in ITEMS:
                for label, put, get, names, begin, end in contenders:
                    if name in names:
                        begin()
                        timed_batch(put, get, item, RT_BATCH, samples[label, name])
                        end()
    finally:
        for stop in reversed(stops):
            stop()
    counts = {k: len(v) for k, v in samples.items()}
    return {k: us(statistics.median(v)) for k, v in samples.items()}, skipped, counts


# -- 3: throughput --------------------------------------------------------------------

def bench_throughput(mp, subs, cmod):
    contenders = []                  # (label, put, get_ack, before the rep)
    stops = []

    def one(put, get_ack, n):
        put(n)
        for _ in range(n):
            put(MSG)
        if get_ack() != n:
            raise AssertionError("consumer acknowledged the wrong count")

    times = {}
    try:
        q, ack = interpreters.Queue(TP_MAXSIZE), interpreters.Queue()
        peer = OursPeer(subs[0], "sink", (q, ack))
        stops.append(lambda: (q.put(None), peer.join()))
        contenders.append(("ours Queue(64)", q.put, ack.get, _nothing))

        contenders.append(("mp.Queue(64)", mp.tq.put, mp.tack.get, _nothing))

        tq, tack = queue.Queue(TP_MAXSIZE), queue.Queue()
        tt = threading.Thread(target=_mpq_sink, args=(tq, tack))
        tt.start()
        stops.append(lambda: (tq.put(None), tt.join()))
        contenders.append(("queue.Queue(64)", tq.put, tack.get, _nothing))

        if cmod.cm is not None:
            cpeer = CPeer(cmod, "sink", "yield", maxsize=TP_MAXSIZE)
            stops.append(cpeer.stop)
            label = "C " + cmod.name + ("(64)" if cmod.bounded else " (unbounded)")
            contenders.append((label, cpeer.put, cpeer.get, cpeer.wake))

        for label, put, get_ack, begin in contenders:           # warm up
            begin()
            one(put, get_ack, 500)
            times[label] = []
        for _ in range(TP_REPS):
            for label, put, get_ack, begin in contenders:
                begin()
                times[label].append(timed_once(lambda: one(put, get_ack, TP_N)))
    finally:
        for stop in reversed(stops):
            stop()
    return {k: us(statistics.median(v)) / TP_N for k, v in times.items()}, \
        [c[0] for c in contenders]


# -- 4: asyncio -----------------------------------------------------------------------

def bench_asyncio(subs):
    loop = asyncio.new_event_loop()
    stops = []
    contenders = []

    def one(coro_fn, n):
        return timed_once(lambda: loop.run_until_complete(coro_fn(n)))

    times = {}
    try:
        ctl1 = interpreters.Queue()
        r, s = interpreters.create_channel()
        p1 = OursPeer(subs[0], "chan_sender", (ctl1, s))
        s.close()
        stops.append(lambda: (ctl1.put(None), p1.join()))

        async def recv_async(n):
            ctl1.put(n)
            x = None
            for _ in range(n):
                x = await r.recv_async()
            assert x == MSG

        async def in_executor(n):
            ctl1.put(n)
            x = None
            for _ in range(n):
                x = await loop.run_in_executor(None, r.recv)
            assert x == MSG

        contenders.append(("recv_async()", recv_async))
        contenders.append(("run_in_executor(recv)", in_executor))

        async def make_queue():          # bound to this loop (3.8/3.9 bind at creation)
            return asyncio.Queue()

        aq = loop.run_until_complete(make_queue())
        tctl = queue.Queue()

        def feeder():
            while True:
                n = tctl.get()
                if n is None:
                    return
                for _ in range(n):
                    loop.call_soon_threadsafe(aq.put_nowait, MSG)

        ft = threading.Thread(target=feeder)
        ft.start()
        stops.append(lambda: (tctl.put(None), ft.join()))

        async def aqueue(n):
            tctl.put(n)
            x = None
            for _ in range(n):
                x = await aq.get()
            assert x == MSG

        contenders.append(("asyncio.Queue", aqueue))

        ctl2, q = interpreters.Queue(), interpreters.Queue(TP_MAXSIZE)
        p2 = OursPeer(subs[1], "queue_sender", (ctl2, q))
        stops.append(lambda: (ctl2.put(None), p2.join()))

        async def get_async(n):
            ctl2.put(n)
            x = None
            for _ in range(n):
                x = await q.get_async()
            assert x == MSG

        contenders.append(("Queue(64).get_async()", get_async))

        ctl3 = interpreters.Queue()
        ca, cb = interpreters.Pipe()
        p3 = OursPeer(subs[2], "pipe_sender", (ctl3, cb))
        cb.close()
        stops.append(lambda: (ctl3.put(None), p3.join(), ca.close()))

        async def conn_recv_async(n):
            ctl3.put(n)
            x = None
            for _ in range(n):
                x = await ca.recv_async()
            assert x == MSG

        contenders.append(("Connection.recv_async()", conn_recv_async))

        for label, fn in contenders:                        # warm up (executor threads)
            one(fn, 100)
            times[label] = []
        for _ in range(AIO_REPS):
            for label, fn in contenders:
                times[label].append(one(fn, AIO_N))
    finally:
        for stop in reversed(stops):
            stop()
        if hasattr(loop, "shutdown_default_executor"):      # 3.9+
            loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
    return {k: us(statistics.median(v)) / AIO_N for k, v in times.items()}, \
        [label for label, _ in contenders]


# -- main -------------------------------------------------------------------------------

def main():
    t_start = time.monotonic()
    ver = "%d.%d.%d" % sys.version_info[:3]
    load0 = os.getloadavg()
    mp = MPPeers()                    # fork before any subinterpreter exists
    cmod = None
    subs = []
    sub_iso = None
    try:
        try:
            cmod = CModule()
        except Exception as exc:
            print("C module: %s: %s (skipped)" % (type(exc).__name__, exc))
            cmod = CModule.__new__(CModule)
            cmod.cm, cmod.reason = None, "%s: %s" % (type(exc).__name__, exc)
        subs = [interpreters.create() for _ in range(3)]
        if PYVER >= (3, 13) and cmod.cm is not None:
            sub_iso = interpreters.create(isolated=True)
            subs.append(sub_iso)
        rt, skipped, counts = bench_round_trips(mp, subs, cmod, sub_iso)
        tp, tp_labels = bench_throughput(mp, subs, cmod)
        aio, aio_labels = bench_asyncio(subs)
    finally:
        mp.close()
        for sub in subs:
            sub.destroy()
        if cmod is not None and cmod.cm is not None:
            cmod.close()
    load1 = os.getloadavg()
    seconds = time.monotonic() - t_start
    cname = cmod.name if cmod.cm is not None else "C module"

    def c_cell(key, t):
        """C's median and whether it fell into the polling convoy."""
        c = rt.get(key)
        return c, c is not None and c > C_CONVOY * t

    print("Python %s  load average before %.2f %.2f %.2f, after %.2f %.2f %.2f  (%.1f s)"
          % ((ver,) + load0 + load1 + (seconds,)))
    for line in skipped:
        print("skipped: " + line)
    short = ["%s/%s %d" % (k[0], k[1], v) for k, v in sorted(counts.items())
             if v < RT_ROUNDS * RT_BATCH]
    print("1. Queue round trip, echo (median us over %d trips%s):"
          % (RT_ROUNDS * RT_BATCH, "; cut short by the batch cap: " + ", ".join(short)
             if short else ""))
    convoys = False
    for name, _ in ITEMS:
        o = rt["ours Queue", name]
        m = rt["mp.Queue", name]
        t = rt["queue.Queue", name]
        cs, cs_convoy = c_cell(("C sleep", name), t)
        cy, cy_convoy = c_cell(("C yield", name), t)
        convoys = convoys or cs_convoy or cy_convoy
        print("  %-10s  ours %6.1f | mp.Queue %6.1f | queue.Queue (threads) %6.1f | "
              "%s polled with sleep(0) %s%s, with sched_yield() %s%s"
              % (name, o, m, t, cname, fmt(cs), " (convoy)" if cs_convoy else "",
                 fmt(cy), " (convoy)" if cy_convoy else ""))
        print("  %-10s  ours/mp.Queue %s   ours/queue.Queue %s   ours/C sleep(0) %s   "
              "ours/C sched_yield() %s"
              % ("", ratio(o, m), ratio(o, t), "n/a" if cs_convoy else ratio(o, cs),
                 "n/a" if cy_convoy else ratio(o, cy)))
    if convoys:
        print("  (convoy: both sides poll and the shared GIL changes hands only when the "
              "switch interval forces it; that ratio is meaningless)")
    if ("ours Queue isolated", "64 B bytes") in rt:
        print("  isolated peers (own GIL): ours create(isolated=True), C _interpreters.create()"
              " polled with sched_yield()")
        for name, _ in ITEMS:
            o, c = rt["ours Queue isolated", name], rt["C isolated yield", name]
            print("  %-10s  ours %6.1f | C %6.1f | ours/C %s" % (name, o, c, ratio(o, c)))
    print("2. Pipe round trip, echo (median us):")
    for name, _ in ITEMS:
        o, m = rt["ours Pipe", name], rt["mp.Pipe", name]
        print("  %-10s  ours Pipe %6.1f | mp.Pipe %6.1f | ours/mp.Pipe %s"
              % (name, o, m, ratio(o, m)))
    print("3. Throughput, %s x 64 B through a queue bounded to %d (us per item, median of %d):"
          % (format(TP_N, ","), TP_MAXSIZE, TP_REPS))
    o = tp["ours Queue(64)"]
    print("  " + " | ".join("%s %.2f (%.0f k/s)" % (k, tp[k], 1e3 / tp[k]) for k in tp_labels))
    print("  ours/mp.Queue %s   ours/queue.Queue %s%s"
          % (ratio(o, tp["mp.Queue(64)"]), ratio(o, tp["queue.Queue(64)"]),
             "".join("   ours/%s %s" % (k, ratio(o, tp[k])) for k in tp_labels
                     if k.startswith("C "))))
    print("4. asyncio, %s x 64 B from a sender thread (us per message, median of %d):"
          % (format(AIO_N, ","), AIO_REPS))
    print("  " + " | ".join("%s %.1f" % (k, aio[k]) for k in aio_labels))
    ra = aio["recv_async()"]
    print("  recv_async/run_in_executor %s   recv_async/asyncio.Queue %s   "
          "Queue.get_async/asyncio.Queue %s   Connection.recv_async/asyncio.Queue %s"
          % (ratio(ra, aio["run_in_executor(recv)"]), ratio(ra, aio["asyncio.Queue"]),
             ratio(aio["Queue(64).get_async()"], aio["asyncio.Queue"]),
             ratio(aio["Connection.recv_async()"], aio["asyncio.Queue"])))

    if ROWS:
        load = "%.2f/%.2f" % (load0[0], load1[0])
        cells = []
        for name, _ in ITEMS:
            o, m, t = rt["ours Queue", name], rt["mp.Queue", name], rt["queue.Queue", name]
            cs, cs_convoy = c_cell(("C sleep", name), t)
            cy, cy_convoy = c_cell(("C yield", name), t)
            cells += [fmt(o), fmt(m), fmt(t), fmt(cs) + (" (convoy)" if cs_convoy else ""),
                      fmt(cy) + (" (convoy)" if cy_convoy else ""),
                      ratio(o, m), "n/a" if cy_convoy else ratio(o, cy)]
        print("rt| %s | %s | %s |" % (ver, " | ".join(cells), load))
        if ("ours Queue isolated", "64 B bytes") in rt:
            cells = []
            for name, _ in ITEMS:
                o, c = rt["ours Queue isolated", name], rt["C isolated yield", name]
                cells += [fmt(o), fmt(c), ratio(o, c)]
            print("iso| %s | %s | %s |" % (ver, " | ".join(cells), load))
        cells = []
        for name, _ in ITEMS:
            o, m = rt["ours Pipe", name], rt["mp.Pipe", name]
            cells += [fmt(o), fmt(m), ratio(o, m)]
        print("pipe| %s | %s | %s |" % (ver, " | ".join(cells), load))
        cells = []
        ck = [k for k in tp_labels if k.startswith("C ")]
        c = tp[ck[0]] if ck else None
        o = tp["ours Queue(64)"]
        cells += [fmt(o, "%.2f"), fmt(tp["mp.Queue(64)"], "%.2f"),
                  fmt(tp["queue.Queue(64)"], "%.2f"),
                  fmt(c, "%.2f") + (" (unbounded)" if ck and "unbounded" in ck[0] else ""),
                  ratio(o, tp["mp.Queue(64)"]), ratio(o, c)]
        print("tp| %s | %s | %s |" % (ver, " | ".join(cells), load))
        cells = [fmt(aio[k]) for k in aio_labels]
        cells += [ratio(ra, aio["run_in_executor(recv)"]), ratio(ra, aio["asyncio.Queue"])]
        print("aio| %s | %s | %s |" % (ver, " | ".join(cells), load))


if __name__ == "__main__":
    main()
