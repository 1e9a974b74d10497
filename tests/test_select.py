"""interpreters.select(): wait until channel ends, queues or Pipe connections are ready.

Readiness is observed through the public operations (a ready RecvChannel has
something recv_nowait() returns, a ready SendChannel accepts send_nowait()).  A
few checks look inside the arena (``watcher_links``, ``blocks_in_use``) to prove
that a select() that returned, timed out or was interrupted left no watcher
behind; the public symptom of a stale watcher is checked too: send_nowait()
would be accepted with nobody there to receive.  Ctrl-C runs in a subprocess.
"""

import queue
import socket
import threading
import time

import pytest

from support import (  # noqa: F401 (destroy_leftovers is an autouse fixture)
    PYVER, assert_python_ok, destroy_leftovers, run_output,
)
from support import WAIT, finish, in_thread

import interpreters
from interpreters import NotReceivedError, Pipe, Queue, select
from interpreters import _arena, _channels



def watcher_links(cid):
    """How many select()/async watchers hang on channel *cid* (arena internals)."""
    with _channels._locked as R:
        base = (cid % _channels.NCSLOTS) * _channels.CSLOT_WORDS
        if R.T[base + _channels.CID] != cid:
            return 0
        n, link = 0, R.T[base + _channels.WHEAD]
        while link:
            n += 1
            link = R.P[link * _channels.BW + _channels.L_NEXT]
        return n


def blocks_in_use():
    """Pool blocks handed out and not on the free list (arena internals)."""
    with _channels._locked as R:
        free, b = 0, R.H[_arena.FREE_W]
        while b:
            free += 1
            b = R.P[b * _channels.BW]
        return R.H[_arena.USED_W] - 1 - free


def assert_no_recv_watcher(r, s):
    """Nobody waits on (r, s): send_nowait() must be refused, nothing gets queued."""
    assert watcher_links(r.id) == 0
    with pytest.raises(NotReceivedError):
        s.send_nowait(b"nobody is there")
    assert r.recv_nowait("empty") == "empty"


def blocked_send(s, obj):
    """A thread blocked in s.send(obj): the channel's receiving end is ready."""
    return in_thread(s.send, obj)


@pytest.fixture(scope="module")
def sub():
    i = interpreters.create()
    yield i
    i.destroy()


# ---------------------------------------------------------------------------------
# what is ready, in which order

class TestReady:
    def test_returns_the_ready_ones_in_the_order_given(self):
        r1, s1 = interpreters.create_channel()
        r2, s2 = interpreters.create_channel()
        q1, q2 = Queue(), Queue()
        a1, b1 = Pipe()
        a2, b2 = Pipe()
        objs = [r1, q1, a1, r2, q2, a2]
        assert select(objs, timeout=0) == []
        t = blocked_send(s1, "one")           # r1 becomes ready once it is queued
        assert select([r1], timeout=WAIT) == [r1]
        q2.put("two")
        b2.send("three")
        got = select(objs, timeout=0)
        assert got == [r1, q2, a2]
        assert all(x is y for x, y in zip(got, [r1, q2, a2]))
        assert select(objs[::-1], timeout=0) == [a2, q2, r1]
        # readiness takes nothing
        assert select(objs, timeout=WAIT) == [r1, q2, a2]
        assert (r1.recv(), q2.get_nowait(), a2.recv()) == ("one", "two", "three")
        finish(t)
        assert select(objs, timeout=0) == []

    def test_timeout_returns_empty_list_after_the_timeout(self):
        r, s = interpreters.create_channel()
        q = Queue()
        a, b = Pipe()
        t0 = time.monotonic()
        assert select([r, q, a], timeout=0.2) == []
        assert time.monotonic() - t0 >= 0.19
        assert_no_recv_watcher(r, s)
        assert watcher_links(q.id) == 0

    def test_timeout_zero_only_looks(self):
        r, s = interpreters.create_channel()
        q = Queue()
        t0 = time.monotonic()
        for _ in range(100):
            assert select([r, q], timeout=0) == []
        assert time.monotonic() - t0 < 5
        q.put(1)
        assert select([r, q], timeout=0) == [q]
        assert_no_recv_watcher(r, s)

    def test_already_ready_returns_without_waiting(self):
        q = Queue()
        q.put(1)
        t0 = time.monotonic()
        assert select([q]) == [q]                 # timeout=None: no limit
        assert time.monotonic() - t0 < 5

    def test_full_queue_is_still_ready_for_get(self):
        q = Queue(1)
        q.put("x")
        assert select([q], timeout=0) == [q]

    def test_connection_with_the_peer_gone_is_ready(self):
        a, b = Pipe()
        b.send("last")
        b.close()
        assert select([a], timeout=0) == [a]
        assert a.recv() == "last"
        assert select([a], timeout=0) == [a]       # EOF: recv() raises at once
        with pytest.raises(EOFError):
            a.recv()

    def test_closed_channel_is_ready(self):
        r, s = interpreters.create_channel()
        r2, s2 = interpreters.create_channel()
        r.close(force=True)
        assert select([r2, r, s], timeout=0) == [r, s]
        with pytest.raises(EOFError):
            r.recv()
        with pytest.raises(EOFError):
            s.send(b"x")

    def test_send_channel_ready_when_a_receiver_waits_in_a_thread(self):
        r, s = interpreters.create_channel()
        assert select([s], timeout=0) == []
        t = in_thread(r.recv)
        assert select([s], timeout=WAIT) == [s]
        s.send_nowait("handed over")
        assert finish(t) == "handed over"
        assert select([s], timeout=0) == []        # nobody waits any more

    def test_send_channel_ready_when_a_subinterpreter_receives(self, sub):
        r, s = interpreters.create_channel()
        t = sub.call_in_thread(lambda r: r.recv(), r)
        assert select([s], timeout=WAIT) == [s]
        s.send_nowait(("to", "sub"))
        assert t.result(WAIT) == ("to", "sub")

    def test_send_channel_not_ready_for_a_timed_out_receiver(self):
        r, s = interpreters.create_channel()
        with pytest.raises(TimeoutError):
            r.recv(timeout=0.05)
        assert select([s], timeout=0) == []

    def test_every_waiter_wakes(self):
        q = Queue()
        ts = [in_thread(select, [q], WAIT) for _ in range(3)]
        time.sleep(0.05)
        q.put("one item")
        for t in ts:
            assert finish(t) == [q]               # a hint for all: one will get it
        assert q.get_nowait() == "one item"
        assert watcher_links(q.id) == 0


# ---------------------------------------------------------------------------------
# waking: promptly, without polling

def _wake_latency(sub, obj_kind, pause):
    """select() on one object; a subinterpreter makes it ready after *pause* seconds.

    Return (latency from the sub's send to select() returning, CPU seconds the
    selecting thread used meanwhile).
    """
    if obj_kind == "channel":
        target, peer = interpreters.create_channel()
    elif obj_kind == "queue":
        target = peer = Queue()
    else:
        target, peer = Pipe()

    def later(peer, kind, pause):
        import time
        time.sleep(pause)
        sent_at = time.monotonic()        # CLOCK_MONOTONIC: one clock for the process
        if kind == "queue":
            peer.put(sent_at)
        else:
            peer.send(sent_at)            # a channel's send() returns once received
    if obj_kind == "pipe":
        carrier = Queue()                 # so that closing peer here cannot race
        carrier.put(peer)
        t = sub.call_in_thread(lambda c, k, p: later(c.get(), k, p), carrier, obj_kind, pause)
        peer.close()
    else:
        t = sub.call_in_thread(later, peer, obj_kind, pause)
    cpu0 = time.thread_time()
    assert select([target], timeout=WAIT) == [target]
    woke_at = time.monotonic()
    cpu = time.thread_time() - cpu0
    sent_at = target.get_nowait() if obj_kind == "queue" else target.recv()
    t.result(WAIT)
    return woke_at - sent_at, cpu


@pytest.mark.parametrize("kind", ["channel", "queue", "pipe"])
def test_wakes_promptly_when_a_subinterpreter_sends(sub, kind):
    rounds = [_wake_latency(sub, kind, pause) for pause in (0.2, 0.25, 0.3)]
    latencies = sorted(lat for lat, _ in rounds)
    # Woken by the send itself (measured: well under a millisecond), not by
    # looking again now and then: a poller looking every 0.1 s or less often
    # fails this far more often than not.
    assert latencies[0] >= 0 and latencies[1] < 0.03 and latencies[2] < 0.5, latencies
    # and asleep while it waited (no busy loop)
    assert max(cpu for _, cpu in rounds) < 0.1, rounds


def test_wakes_when_the_channel_is_closed_elsewhere(sub):
    r, s = interpreters.create_channel()
    t = in_thread(select, [r], WAIT)
    time.sleep(0.05)
    sub.call(lambda s: s.close(force=True), s)
    assert finish(t) == [r]
    with pytest.raises(EOFError):
        r.recv_nowait()


def test_wakes_when_the_pipe_peer_closes(sub):
    a, b = Pipe()
    t = in_thread(select, [a], WAIT)
    time.sleep(0.05)
    carrier = Queue()
    carrier.put(b)
    b.close()
    sub.call(lambda c: c.get().close(), carrier)
    assert finish(t) == [a]
    with pytest.raises(EOFError):
        a.recv()


def test_select_inside_a_subinterpreter():
    interp = interpreters.create()
    r, s = interpreters.create_channel()
    q = Queue()
    interp.run("pass", channels={"r": r, "q": q})
    t = in_thread(run_output, interp, """if True:
        import interpreters
        ready = interpreters.select([r, q], timeout=30)
        print(ready == [q], q.get_nowait())
        print(interpreters.select([r, q], timeout=0.05))
    """)
    time.sleep(0.1)
    q.put("from main")
    assert finish(t) == "True from main\n[]\n"
    assert_no_recv_watcher(r, s)


def test_many_selects_leak_no_blocks():
    r, s = interpreters.create_channel()
    q = Queue()
    a, b = Pipe()
    select([r, q, a], timeout=0.001)         # this thread's block exists now
    before = blocks_in_use()
    for _ in range(200):
        assert select([r, q, a], timeout=0.0005) == []
    q.put(1)
    for _ in range(200):
        assert select([r, q, a], timeout=0) == [q]
    q.get()
    assert blocks_in_use() <= before         # (ended threads' blocks may be freed meanwhile)


# ---------------------------------------------------------------------------------
# bad arguments

class TestArguments:
    @pytest.mark.parametrize("bad", [1, "r", None, queue.Queue(), object()],
                             ids=lambda b: type(b).__name__)
    def test_type_error_for_other_objects(self, bad):
        r, s = interpreters.create_channel()
        with pytest.raises(TypeError) as info:
            select([r, bad], timeout=0)
        assert type(bad).__name__ in str(info.value)
        assert_no_recv_watcher(r, s)

    def test_type_error_for_a_socket(self):
        a, b = socket.socketpair()
        with a, b:
            with pytest.raises(TypeError):
                select([a])

    def test_a_single_recv_channel_is_not_a_sequence(self):
        # RecvChannel is iterable (it yields received objects): select(r) must not
        # iterate it, which would take the message (or wait forever).
        r, s = interpreters.create_channel()
        t = blocked_send(s, "not for select")
        assert select([r], timeout=WAIT) == [r]
        with pytest.raises(TypeError):
            select(r, timeout=0)
        assert r.recv_nowait("gone") == "not for select"
        finish(t)

    def test_empty_is_value_error(self):
        with pytest.raises(ValueError):
            select([])
        with pytest.raises(ValueError):
            select(iter(()), timeout=0)

    def test_any_iterable(self):
        q = Queue()
        q.put(1)
        assert select((x for x in [q]), timeout=0) == [q]
        assert select((q,), timeout=0) == [q]

    def test_bad_timeout(self):
        r, s = interpreters.create_channel()
        with pytest.raises(ValueError):
            select([r], timeout=-1)
        with pytest.raises(TypeError):
            select([r], timeout="1")
        assert_no_recv_watcher(r, s)

    def test_closed_queue_and_connection(self):
        q = Queue()
        q.close()
        with pytest.raises(ValueError):
            select([q], timeout=0)
        a, b = Pipe()
        a.close()
        with pytest.raises(OSError):
            select([a], timeout=0)
        r, w = Pipe(duplex=False)
        with pytest.raises(OSError):              # write-only: nothing to recv()
            select([w], timeout=0)
        assert select([b], timeout=0) == [b]      # its peer is gone: EOF


# ---------------------------------------------------------------------------------
# Ctrl-C (subprocesses)

CTRL_C = """
import os, queue, signal, threading, time
import interpreters
from interpreters import _channels

def watcher_links(cid):
    with _channels._locked as R:
        base = (cid % _channels.NCSLOTS) * _channels.CSLOT_WORDS
        return R.T[base + _channels.WHEAD]

r, s = interpreters.create_channel()
q = interpreters.Queue(1)
a, b = interpreters.Pipe()
objs = OBJS
threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
t0 = time.monotonic()
try:
    interpreters.select(objs)
except KeyboardInterrupt:
    dt = time.monotonic() - t0
    assert 0.15 < dt < 2.2, dt
else:
    raise AssertionError('select() returned')
for cid in (r.id, q.id, a._rid):
    assert watcher_links(cid) == 0, 'a watcher was left behind'
# no stale receiver: send_nowait() is refused, nothing is queued
try:
    s.send_nowait(b'x')
except interpreters.NotReceivedError:
    pass
else:
    raise AssertionError('send_nowait() accepted with nobody receiving')
assert r.recv_nowait('empty') == 'empty'
# everything works normally afterwards
t = threading.Thread(target=s.send, args=(b'after',), daemon=True)
t.start()
assert interpreters.select([r, q, a], timeout=30) == [r]
assert r.recv() == b'after'
t.join(30)
got = []
t = threading.Thread(target=lambda: got.append(r.recv()), daemon=True)
t.start()
assert interpreters.select([s], timeout=30) == [s]
s.send_nowait(b'handed over')
t.join(30)
assert got == [b'handed over']
q.put('q'); b.send('pipe')
assert interpreters.select([q, a], timeout=0) == [q, a]
assert (q.get_nowait(), a.recv()) == ('q', 'pipe')
later = threading.Timer(0.1, q.put, ('later',))
later.start()
assert interpreters.select([r, q, a], timeout=30) == [q]
assert q.get_nowait() == 'later'
print('OK')
"""


@pytest.mark.parametrize("objs", ["[r, q, a]", "[s]", "[r, s, q, a]"])
def test_ctrl_c_interrupts_select_and_leaves_nothing_behind(objs):
    out, _ = assert_python_ok(CTRL_C.replace("OBJS", objs), timeout=60)
    assert out.strip() == "OK"


def test_ctrl_c_with_a_subinterpreter_selecting_too():
    out, _ = assert_python_ok("""
        import os, signal, threading, time
        import interpreters
        r, s = interpreters.create_channel()
        sub = interpreters.create()
        t = sub.call_in_thread(
            lambda r: (interpreters.select([r], timeout=30) == [r], r.recv_nowait()), r)
        time.sleep(0.1)
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
        try:
            interpreters.select([r])
        except KeyboardInterrupt:
            pass
        # the subinterpreter's select() was not disturbed: it still wakes
        threading.Thread(target=s.send, args=('for the sub',)).start()
        print(t.result(30))
        sub.destroy()
        """, timeout=60)
    assert out.strip() == "(True, 'for the sub')"


# ---------------------------------------------------------------------------------
# isolated interpreters (3.13+)

@pytest.mark.skipif(PYVER < (3, 13),
                    reason="select() inside isolated interpreters needs ctypes there: CPython "
                           "3.13+ (3.12 refuses _ctypes in isolated subs, older versions have "
                           "no isolated interpreters)")
def test_select_inside_an_isolated_interpreter():
    out, _ = assert_python_ok("""
        import time, interpreters
        sub = interpreters.create(isolated=True)
        q = interpreters.Queue()
        r, s = interpreters.create_channel()
        def waiter(q, r):
            import time, interpreters
            ready = interpreters.select([r, q], timeout=60)
            return ready == [q], time.monotonic(), q.get_nowait()
        t = sub.call_in_thread(waiter, q, r)
        time.sleep(0.3)
        sent = time.monotonic()
        q.put('wake up')
        ok, woke, item = t.result(60)
        print(ok, item, woke - sent < 0.15)
        sub.destroy()
        """, timeout=120)
    assert out.split() == ["True", "wake", "up", "True"]
