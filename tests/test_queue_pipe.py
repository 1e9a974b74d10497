"""interpreters.Queue and interpreters.Pipe: queue.Queue and multiprocessing.Pipe, across
interpreters.

Where the semantics are meant to agree, the same script runs against the stdlib
class and against this package's, and the outcomes are compared.  Code for other
interpreters travels with ``Interpreter.call()`` (functions local to a test are
sent by value, so the subinterpreter never imports this module) or as source for
``run()``.  Ctrl-C and the stress test run in a subprocess (support.run_python):
a broken wait would hang or crash there, failing one test instead of the run.
"""

import gc
import multiprocessing
import pickle
import queue
import sys
import threading
import time

import pytest

from support import (  # noqa: F401 (destroy_leftovers is an autouse fixture)
    PYVER, assert_python_ok, destroy_leftovers, run_output,
)
from support import WAIT, finish, in_thread

import interpreters
from interpreters import ChannelClosedError, Connection, Pipe, Queue



def wait_until(pred, what):
    deadline = time.monotonic() + WAIT
    while not pred():
        assert time.monotonic() < deadline, "timed out waiting until " + what
        time.sleep(0.005)


@pytest.fixture(scope="module")
def sub():
    i = interpreters.create()
    yield i
    i.destroy()


# =================================================================================
# Queue: queue.Queue's semantics

def queue_script(make):
    """Run one sequence of queue operations; return what each one did."""
    log = []
    q = make(2)

    def op(name, *args, **kwargs):
        try:
            log.append((name, args, "->", getattr(q, name)(*args, **kwargs)))
        except (queue.Full, queue.Empty, ValueError) as exc:
            log.append((name, args, "raised", type(exc).__name__))

    op("empty"), op("full"), op("qsize")
    op("put", 1)
    op("put_nowait", (2, "two", (b"three", None)))
    op("empty"), op("full"), op("qsize")
    op("put", 3, timeout=0.05)
    op("put", 3, timeout=0)
    op("put", 3, False)
    op("put", 3, False, 10)                # block=False ignores the timeout
    op("put_nowait", 3)
    op("put", 3, timeout=-1)               # full, so it would wait: ValueError
    op("get")
    op("put", 3, True, 1)
    op("get_nowait")
    op("get", timeout=1)
    op("empty"), op("full"), op("qsize")
    op("get", timeout=0.05)
    op("get", timeout=0)
    op("get", False)
    op("get_nowait")
    op("get", True, -1)
    for _ in range(4):
        op("task_done")                    # 3 puts: the 4th one is one too many
    for x in range(5):
        op("put", x)
        op("get")
    return log


class TestQueueLikeQueueQueue:
    def test_same_outcomes_as_queue_queue(self):
        expected = queue_script(queue.Queue)
        assert ("task_done", (), "raised", "ValueError") in expected
        assert queue_script(Queue) == expected

    def test_put_timeout_raises_full_after_the_timeout(self):
        q = Queue(1)
        q.put("x")
        t0 = time.monotonic()
        with pytest.raises(queue.Full):
            q.put("y", timeout=0.2)
        assert time.monotonic() - t0 >= 0.19
        assert q.qsize() == 1 and q.get_nowait() == "x"

    def test_get_timeout_raises_empty_after_the_timeout(self):
        q = Queue()
        t0 = time.monotonic()
        with pytest.raises(queue.Empty):
            q.get(timeout=0.2)
        assert time.monotonic() - t0 >= 0.19

    def test_fifo_many(self):
        q = Queue()
        items = [(i, str(i), b"%d" % i) for i in range(500)]
        for x in items:
            q.put(x)
        assert q.qsize() == 500
        assert [q.get_nowait() for _ in range(500)] == items
        assert q.empty()

    def test_maxsize(self):
        assert Queue(3).maxsize == 3
        for unbounded in (0, -5):
            q = Queue(unbounded)
            assert q.maxsize == 0
            for i in range(1000):
                q.put_nowait(i)
            assert not q.full() and q.qsize() == 1000
        assert Queue().maxsize == 0
        for bad in (1.5, "3", None, True):
            with pytest.raises(TypeError):
                Queue(bad)

    def test_blocked_put_proceeds_when_room_is_made(self):
        q = Queue(1)
        q.put("first")
        t = in_thread(q.put, "second")
        time.sleep(0.1)
        assert t.is_alive() and q.qsize() == 1          # still blocked: no room
        assert q.get() == "first"
        finish(t)
        assert q.get_nowait() == "second"

    def test_blocked_get_wakes_on_put(self):
        q = Queue()
        t = in_thread(q.get)
        time.sleep(0.05)
        assert t.is_alive()
        q.put("hello")
        assert finish(t) == "hello"
        assert q.empty()

    def test_blocked_put_from_subinterpreter(self, sub):
        q = Queue(1)
        q.put(0)

        def producer(q):
            for i in range(1, 6):
                q.put(i)                 # blocks until the main interpreter gets
            return "sent"
        t = sub.call_in_thread(producer, q)
        got = [q.get(timeout=WAIT) for _ in range(6)]
        assert t.result(WAIT) == "sent"
        assert got == [0, 1, 2, 3, 4, 5]

    def test_join_timeout_and_task_done(self):
        q = Queue()
        assert q.join() is True and q.join(0) is True      # nothing was put
        q.put(1)
        q.put(2)
        t0 = time.monotonic()
        assert q.join(timeout=0.1) is False
        assert time.monotonic() - t0 >= 0.09
        q.get(), q.get()
        q.task_done()
        assert q.join(0) is False                           # one left unfinished
        q.task_done()
        assert q.join(0) is True
        with pytest.raises(ValueError):
            q.task_done()

    def test_join_waits_for_task_done_in_another_interpreter(self, sub):
        q = Queue()
        log = Queue()
        for i in range(3):
            q.put(i)

        def worker(q, log):
            import time
            for _ in range(3):
                q.get()
            time.sleep(0.2)
            log.put("worked")         # before the last task_done(): join() sees it
            for _ in range(3):
                q.task_done()
        t = sub.call_in_thread(worker, q, log)
        assert q.join(timeout=WAIT) is True
        assert log.get_nowait() == "worked"
        t.result(WAIT)

    def test_join_in_subinterpreter_waits_for_main(self, sub):
        q = Queue()
        q.put("job")

        def joiner(q):
            return q.join(timeout=30)
        t = sub.call_in_thread(joiner, q)
        assert q.get() == "job"
        time.sleep(0.1)
        assert t.is_alive()               # still unfinished
        q.task_done()
        assert t.result(WAIT) is True

    def test_failed_construction_leaves_no_error_behind(self):
        seen = []
        hook, sys.unraisablehook = sys.unraisablehook, seen.append
        try:
            for bad in ("3", 1.5):
                with pytest.raises(TypeError):
                    Queue(bad)
            with pytest.raises(TypeError):
                Connection()
            gc.collect()
        finally:
            sys.unraisablehook = hook
        assert not seen, ["%s: %s" % (u.exc_type.__name__, u.exc_value) for u in seen]

    def test_context_manager_and_close(self):
        with Queue() as q:
            q.put(1)
        with pytest.raises(ValueError):
            q.put(2)
        with pytest.raises(ValueError):
            q.get_nowait()
        q.close()                          # idempotent

    def test_pickles_as_the_same_queue(self):
        q = Queue(3)
        q2 = pickle.loads(pickle.dumps(q))
        assert q2 is q and q2.id == q.id


class TestQueueItems:
    def test_unshareable_item_is_value_error_and_queue_unchanged(self):
        q = Queue(3)
        q.put("a")
        r, s = interpreters.create_channel()
        for bad in ([1], {"k": 1}, object(), ("ok", [1]), (s, set())):
            with pytest.raises(ValueError) as info:
                q.put(bad)
            assert "not shareable" in str(info.value)
            with pytest.raises(ValueError):
                q.put_nowait(bad)
        assert q.qsize() == 1
        assert q.get_nowait() == "a"
        q.task_done()
        assert q.join(0) is True           # the refused puts left no unfinished work
        with pytest.raises(queue.Empty):
            q.get_nowait()
        # the channel end inside the refused tuple was not counted as in flight
        cid = r.id
        del r, s, bad, info
        gc.collect()
        interpreters.create_channel()      # channel operations process deferred closes
        assert cid not in [c.id for c, _ in interpreters.list_all_channels()]

    def test_items_are_copies(self):
        q = Queue()
        data = b"x" * 1000
        q.put(data)
        got = q.get()
        assert got == data and got is not data

    def test_channel_ends_queues_and_connections_as_items(self):
        q = Queue()
        r, s = interpreters.create_channel()
        q2 = Queue()
        a, b = Pipe()
        q.put((r, s, q2, a))
        got = q.get()
        assert got == (r, s, q2, a)
        assert got[0] is r and got[2] is q2 and got[3] is a


# =================================================================================
# Queue: between interpreters

class TestQueueAcrossInterpreters:
    def test_both_directions_through_call_arguments(self, sub):
        q = Queue()
        q.put(("to sub", 1))

        def echo(q):
            x = q.get(timeout=10)
            q.put(("from sub", x))
            return q.qsize()
        assert sub.call(echo, q) == 1
        assert q.get_nowait() == ("from sub", ("to sub", 1))

    def test_same_queue_passed_to_the_same_interpreter_again(self, sub):
        # The pool pattern: every task gets the same queue; the interpreter drops
        # its Queue object after each call.
        q = Queue()

        def task(q, i):
            import gc
            q.put(i)
            gc.collect()
            return q.qsize()
        for i in range(3):
            assert sub.call(task, q, i) == i + 1
        assert [q.get_nowait() for _ in range(3)] == [0, 1, 2]

    def test_through_run_channels(self, sub):
        q = Queue()
        q.put("in")
        sub.run("q.put(q.get() + ' and out')", channels={"q": q})
        assert q.get_nowait() == "in and out"
        out = run_output(sub, "print(type(q).__name__, q.id, q.maxsize)")
        assert out == "Queue %d 0\n" % q.id

    def test_through_a_channel(self):
        interp = interpreters.create()
        r, s = interpreters.create_channel()
        t = in_thread(interp.run, """if True:
            q = r.recv()
            q.put(('sub got it', q.id))
            del q
        """, channels={"r": r})
        q = Queue()
        s.send(q)
        finish(t)
        assert q.get_nowait() == ("sub got it", q.id)

    def test_through_another_queue(self, sub):
        carrier = Queue()
        inner = Queue(5)
        carrier.put(inner)

        def use(carrier):
            inner = carrier.get()
            inner.put("via carrier")
            return inner.maxsize
        assert sub.call(use, carrier) == 5
        assert inner.get_nowait() == "via carrier"

    def test_received_twice_is_one_object(self, sub):
        q = Queue()

        def same(a, b):
            a.put("x")
            return a is b, b.get_nowait()
        assert sub.call(same, q, q) == (True, "x")

    def test_producers_and_consumers_in_four_subinterpreters_and_main(self):
        N = 1500
        subs = [interpreters.create() for _ in range(4)]
        q = Queue(8)

        def produce(q, pid, n):
            for i in range(n):
                q.put((pid, i))
            return n

        def consume(q):
            got = []
            while True:
                x = q.get()
                if x is None:
                    return tuple(got)
                got.append(x)
        # producers in two subs and in main, consumers in two subs and in main
        producers = [subs[0].call_in_thread(produce, q, 0, N),
                     subs[1].call_in_thread(produce, q, 1, N)]
        consumers = [subs[2].call_in_thread(consume, q), subs[3].call_in_thread(consume, q)]
        main_got = []

        def main_consumer():
            while True:
                x = q.get()
                if x is None:
                    return
                main_got.append(x)
        mc = in_thread(main_consumer)
        produce(q, 2, N)
        assert [p.result(WAIT) for p in producers] == [N, N]
        for _ in range(3):
            q.put(None)
        finish(mc)
        sub_got = [c.result(WAIT) for c in consumers]
        everything = main_got + [x for g in sub_got for x in g]
        assert len(everything) == 3 * N
        assert sorted(everything) == [(p, i) for p in range(3) for i in range(N)]
        for got in [main_got] + [list(g) for g in sub_got]:   # FIFO per producer
            for p in range(3):
                seq = [i for (k, i) in got if k == p]
                assert seq == sorted(seq)
        assert q.empty()


class TestQueueLifetime:
    def test_queues_are_not_listed_as_channels(self, sub):
        before = interpreters.list_all_channels()
        q = Queue()
        sub.call(lambda q: q.put(1), q)
        assert interpreters.list_all_channels() == before
        assert q.id not in [r.id for r, _ in interpreters.list_all_channels()]

    def test_dropping_every_holder_frees_it(self, sub):
        before = interpreters.list_all_channels()
        q = Queue()
        q.put("kept")
        ref = pickle.dumps(q)               # names the queue; holds nothing

        def keep(q):
            import __main__
            __main__.kept = q
        sub.call(keep, q)
        del q
        gc.collect()
        q = pickle.loads(ref)                # the subinterpreter still holds it
        assert q.get_nowait() == "kept"
        q.put("again")
        del q
        gc.collect()
        sub.run("del kept\nimport gc; gc.collect()")
        Queue()                               # queue operations process deferred closes
        with pytest.raises(ChannelClosedError):
            pickle.loads(ref)
        assert interpreters.list_all_channels() == before

    def test_close_in_one_interpreter_keeps_it_for_the_others(self, sub):
        q = Queue()

        def keep(q):
            import __main__
            __main__.kept = q
        sub.call(keep, q)
        q.close()
        with pytest.raises(ValueError):
            q.put(1)
        sub.run("kept.put('still open')")
        q2 = sub.call(lambda: __import__("__main__").kept)    # received here again
        assert q2 is not q and q2.get_nowait() == "still open"
        sub.run("del kept")

    def test_destroying_the_last_holder_frees_it(self):
        interp = interpreters.create()
        q = Queue()
        ref = pickle.dumps(q)

        def keep(q):
            import __main__
            __main__.kept = q
        interp.call(keep, q)
        q.close()
        del q
        q = pickle.loads(ref)
        q.close()
        del q
        interp.destroy()
        Queue()
        with pytest.raises(ChannelClosedError):
            pickle.loads(ref)


# =================================================================================
# Queue: Ctrl-C (subprocesses)

CTRL_C_PRELUDE = """
import os, queue, signal, sys, threading, time
import interpreters
from interpreters import _channels

def interrupted(fn, *args, **kwargs):
    '''Call fn; a real SIGINT arrives after 0.2 s; return how long it took to raise.'''
    threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
    t0 = time.monotonic()
    try:
        fn(*args, **kwargs)
    except KeyboardInterrupt:
        dt = time.monotonic() - t0
        assert 0.15 < dt < 2.2, dt          # it waited, then raised promptly
        return dt
    raise AssertionError('%s returned' % fn.__name__)

def no_watchers(cid):
    with _channels._locked as R:
        base = (cid % _channels.NCSLOTS) * _channels.CSLOT_WORDS
        return R.T[base + _channels.WHEAD] == 0 and R.T[base + _channels.RWHEAD] == 0
"""

CTRL_C_CASES = {
    "put_on_full_queue": """
q = interpreters.Queue(2)
q.put('a'); q.put(('b', 2))
interrupted(q.put, 'c')
assert no_watchers(q.id)
assert q.qsize() == 2 and q.full()
assert q.get_nowait() == 'a' and q.get_nowait() == ('b', 2)
try:
    q.get_nowait()
except queue.Empty:
    pass
else:
    raise AssertionError('the interrupted item was queued')
q.task_done(); q.task_done()
assert q.join(0)                    # the interrupted put() left no unfinished work
# a put blocked in another thread still works
q.put(1); q.put(2)
t = threading.Thread(target=q.put, args=(3,)); t.start()
time.sleep(0.05)
assert q.get() == 1
t.join(10); assert not t.is_alive()
assert [q.get_nowait(), q.get_nowait()] == [2, 3]
""",
    "get_on_empty_queue": """
q = interpreters.Queue()
interrupted(q.get)
assert no_watchers(q.id)
q.put('x')
assert q.qsize() == 1
assert q.get(timeout=5) == 'x'
assert q.empty()
t = threading.Thread(target=lambda: res.append(q.get(timeout=10))); res = []
t.start(); time.sleep(0.05); q.put('y'); t.join(10)
assert res == ['y'] and q.empty()
""",
    "get_with_subinterpreter_putting_later": """
q = interpreters.Queue()
sub = interpreters.create()
interrupted(q.get)
sub.call(lambda q: q.put('from sub'), q)
assert q.get(timeout=5) == 'from sub'
assert q.empty()
sub.destroy()
""",
    "join": """
q = interpreters.Queue()
q.put('job'); q.get()
interrupted(q.join)
assert no_watchers(q.id)
assert not q.join(0)
q.task_done()
assert q.join(0) and q.join()
""",
    "pipe_recv": """
a, b = interpreters.Pipe()
interrupted(a.recv)
b.send('late')
assert a.recv(timeout=5) == 'late'
assert not a.poll()
""",
}


@pytest.mark.parametrize("case", sorted(CTRL_C_CASES))
def test_ctrl_c(case):
    out, _ = assert_python_ok(CTRL_C_PRELUDE + CTRL_C_CASES[case] + "\nprint('OK')\n",
                              timeout=60)
    assert out.strip() == "OK"


# =================================================================================
# Pipe

def pipe_script(Pipe):
    """The same steps against multiprocessing.Pipe and interpreters.Pipe."""
    log = []

    def op(conn, name, *args):
        try:
            log.append((name, "->", getattr(conn, name)(*args)))
        except (EOFError, OSError) as exc:    # BrokenPipeError is an OSError
            log.append((name, "raised", type(exc).__name__))

    a, b = Pipe()
    op(a, "poll"), op(b, "poll")
    op(a, "send", (1, "one", b"1", None, 1.5, True))
    op(b, "poll"), op(b, "poll", 0.01)
    op(b, "recv"), op(b, "poll")
    op(b, "send", "back")
    op(a, "recv")
    for i in range(3):
        op(a, "send", i)
    op(a, "close")
    op(b, "poll")
    for _ in range(3):
        op(b, "recv")                       # what was sent before close() arrives
    op(b, "poll")                           # EOF: recv() would not wait
    op(b, "recv"), op(b, "recv")            # EOFError, and again
    op(b, "send", "lost")                   # BrokenPipeError
    for name, args in (("send", (1,)), ("recv", ()), ("poll", ())):
        op(a, name, *args)                  # closed handle: OSError
    op(a, "close"), op(b, "close")          # idempotent
    log.append(("closed", a.closed, b.closed))

    r, w = Pipe(duplex=False)
    log.append(("simplex", r.readable, r.writable, w.readable, w.writable))
    op(w, "send", "one way")
    op(r, "send", "wrong way")
    op(w, "recv"), op(w, "poll")
    op(r, "poll"), op(r, "recv")
    op(r, "close")
    op(w, "send", "nobody reads")
    return log


class TestPipeLikeMultiprocessing:
    def test_same_outcomes_as_multiprocessing_pipe(self):
        expected = pipe_script(multiprocessing.Pipe)
        assert ("send", "raised", "BrokenPipeError") in expected     # the script is sane
        assert pipe_script(Pipe) == expected

    def test_types_and_repr(self):
        a, b = Pipe()
        assert type(a) is Connection and type(b) is Connection
        assert "Connection" in repr(a) and "closed" not in repr(a)
        a.close()
        assert "closed" in repr(a)
        with pytest.raises(TypeError):
            Connection()

    def test_send_does_not_wait_for_the_receiver(self):
        a, b = Pipe()
        for i in range(1000):
            a.send(i)
        assert [b.recv() for _ in range(1000)] == list(range(1000))

    def test_poll_waits_for_data(self):
        a, b = Pipe()
        t0 = time.monotonic()
        assert a.poll(0.15) is False
        assert time.monotonic() - t0 >= 0.14
        threading.Timer(0.1, b.send, ("late",)).start()
        assert a.poll(WAIT) is True
        assert a.recv() == "late"
        threading.Timer(0.1, b.send, ("later",)).start()
        assert a.poll(None) is True
        assert a.recv() == "later"

    def test_recv_timeout(self):
        a, b = Pipe()
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            a.recv(timeout=0.15)
        assert time.monotonic() - t0 >= 0.14
        b.send("after")                     # nothing was lost by the timeout
        assert a.recv(timeout=WAIT) == "after"

    def test_blocked_recv_gets_eof_when_peer_closes(self):
        a, b = Pipe()
        t = in_thread(a.recv)
        time.sleep(0.05)
        b.close()
        with pytest.raises(EOFError):
            finish(t)

    def test_unshareable_sends_nothing(self):
        a, b = Pipe()
        with pytest.raises(ValueError):
            a.send([1, 2])
        assert not b.poll()
        a.send("ok")
        assert b.recv() == "ok"

    def test_closed_connection_cannot_be_sent(self):
        a, b = Pipe()
        r, s = interpreters.create_channel()
        a.close()
        with pytest.raises(ValueError):
            s.send_nowait(a)
        with pytest.raises(ValueError):
            Queue().put(a)
        with pytest.raises(ValueError):
            pickle.dumps(a)


class TestPipeAcrossInterpreters:
    def test_ping_pong_with_a_subinterpreter(self):
        interp = interpreters.create()
        r, s = interpreters.create_channel()
        t = in_thread(interp.run, """if True:
            conn = r.recv()
            n = 0
            while True:
                try:
                    x = conn.recv()
                except EOFError:
                    break
                conn.send(('pong', x))
                n += 1
            conn.close()
        """, channels={"r": r})
        a, b = Pipe()
        s.send(b)
        b.close()                         # it belongs to the subinterpreter now
        for i in range(200):
            a.send(i)
            assert a.recv() == ("pong", i)
        a.close()                         # the sub's recv() raises EOFError
        finish(t)

    def test_sub_sees_eof_and_replies_before_closing(self):
        interp = interpreters.create()
        a, b = Pipe()
        rd, wr = Pipe(duplex=False)

        def serve(carrier):
            conn, report = carrier.get()
            n = 0
            while True:
                try:
                    conn.recv()
                except EOFError:
                    report.send(("eof after", n))
                    return n
                n += 1
        # Handed over inside a queue (call() arguments work too: tests/test_in_flight.py).
        carrier = Queue()
        carrier.put((b, wr))
        t = interp.call_in_thread(serve, carrier)
        b.close()
        wr.close()
        for i in range(50):
            a.send(i)
        a.close()
        assert t.result(WAIT) == 50
        assert rd.recv() == ("eof after", 50)
        with pytest.raises(EOFError):       # the sub dropped its writer when it returned
            rd.recv(timeout=WAIT)

    def test_peer_kept_open_here_means_no_eof(self, sub):
        # As with os.pipe() and fork: a copy left open here keeps the pipe open.
        a, b = Pipe()
        sub.call(lambda conn: conn.send("hi") or conn.close(), b)
        assert a.recv() == "hi"
        assert a.poll(0.1) is False        # b is still open in this interpreter
        b.close()
        assert a.poll(WAIT) is True
        with pytest.raises(EOFError):
            a.recv()

    def test_broken_pipe_when_the_sub_closes_its_end(self, sub):
        a, b = Pipe()
        carrier = Queue()
        carrier.put(b)
        t = sub.call_in_thread(lambda carrier: carrier.get().recv(), carrier)
        b.close()
        a.send("one")
        assert t.result(WAIT) == "one"      # then the sub dropped its connection
        wait_until(lambda: a.poll(0), "EOF is seen")
        with pytest.raises(EOFError):
            a.recv()
        with pytest.raises(BrokenPipeError):
            a.send("nobody")

    def test_eof_when_the_holding_interpreter_is_destroyed(self):
        interp = interpreters.create()
        a, b = Pipe()

        def keep(conn):
            import __main__
            __main__.kept = conn
            conn.send("kept")
        interp.call(keep, b)
        b.close()
        assert a.recv() == "kept"
        assert not a.poll(0.05)
        t = in_thread(a.recv)
        time.sleep(0.05)
        interp.destroy()
        with pytest.raises(EOFError):
            finish(t)
        with pytest.raises(BrokenPipeError):
            a.send("x")

    def test_simplex_reader_in_sub_writer_here(self, sub):
        r, w = Pipe(duplex=False)

        def read_all(carrier):
            conn = carrier.get()
            out = []
            while True:
                try:
                    out.append(conn.recv())
                except EOFError:
                    return out
        carrier = Queue()
        carrier.put(r)
        t = sub.call_in_thread(read_all, carrier)
        r.close()
        for i in range(100):
            w.send((i, "x" * i))
        w.close()
        assert t.result(WAIT) == [(i, "x" * i) for i in range(100)]

    def test_through_run_channels(self, sub):
        a, b = Pipe()
        sub.run("c.send(('hello from', c.readable, c.writable))", channels={"c": b})
        assert a.recv() == ("hello from", True, True)
        b.close()
        with pytest.raises(OSError):
            sub.run("pass", channels={"c": b})     # a closed connection cannot be passed


# =================================================================================
# isolated interpreters (3.13+: channels need ctypes inside, 3.12 refuses it)

@pytest.mark.skipif(PYVER < (3, 13),
                    reason="queues and pipes inside isolated interpreters need ctypes there: "
                           "CPython 3.13+ (3.12 refuses _ctypes in isolated subs, older "
                           "versions have no isolated interpreters)")
def test_queue_and_pipe_inside_isolated_interpreters():
    out, _ = assert_python_ok("""
        import interpreters
        subs = [interpreters.create(isolated=True) for _ in range(2)]
        q = interpreters.Queue(4)
        a, b = interpreters.Pipe()
        def produce(q, n):
            for i in range(n):
                q.put(i)
            q.put(None)
        def consume(q, carrier):
            conn = carrier.get()
            total = 0
            while (x := q.get()) is not None:
                total += x
            conn.send(total)
        tp = subs[0].call_in_thread(produce, q, 2000)
        carrier = interpreters.Queue()
        carrier.put(b)
        tc = subs[1].call_in_thread(consume, q, carrier)
        b.close()
        print(a.recv(timeout=60))
        tp.result(60); tc.result(60)
        for s in subs:
            s.destroy()
        """, timeout=120)
    assert out.split() == [str(sum(range(2000)))]


@pytest.mark.skipif(PYVER != (3, 12), reason="only CPython 3.12 refuses ctypes in isolated subs")
def test_queue_into_isolated_interpreter_refused_on_312():
    interp = interpreters.create(isolated=True)
    q = Queue()
    with pytest.raises(interpreters.InterpreterError) as info:
        interp.run("pass", channels={"q": q})
    assert "3.12" in str(info.value) and "ctypes" in str(info.value)
    with pytest.raises(interpreters.RunFailedError) as info:
        interp.call(lambda q: q, q)            # the queue cannot be rebuilt there
    assert "3.12" in str(info.value) and "ctypes" in str(info.value)
    q.put("unharmed")
    assert q.get_nowait() == "unharmed"


# =================================================================================
# stress (subprocess): one small queue hammered from three interpreters

STRESS = r"""
import faulthandler, gc, os, queue, signal, sys, threading, time
import interpreters

faulthandler.dump_traceback_later(100, exit=True)   # a hang shows every thread's stack
sys.setswitchinterval(1e-6)
signal.signal(signal.SIGALRM, lambda *a: None)      # signals keep arriving in the main thread
signal.setitimer(signal.ITIMER_REAL, 0.002, 0.002)

N = 300                   # items per producer thread (1,800 in all)
q = interpreters.Queue(maxsize=4)
stop_gc = threading.Event()

def gc_churn():
    while not stop_gc.is_set():
        junk = [[] for _ in range(100)]
        for j in junk:
            j.append(j)
        del junk
        gc.collect()
        time.sleep(0.0005)

def producer(q, pid, n):
    for i in range(n):
        while True:
            try:
                q.put((pid, i), timeout=0.001)
                break
            except queue.Full:
                pass

def getter(q, got):
    while True:
        try:
            x = q.get(timeout=0.001)
        except queue.Empty:
            continue
        q.task_done()
        if x is None:
            return
        got.append(x)

def selector(q, got):
    while True:
        if not interpreters.select([q], timeout=0.002):
            continue
        try:
            x = q.get_nowait()
        except queue.Empty:
            continue           # another consumer was faster: readiness is a hint
        q.task_done()
        if x is None:
            return
        got.append(x)

def sub_worker(q, ctl, first_pid, n):
    # In a subinterpreter: 2 producers, 1 getter, 1 select() consumer, GC churn.
    import gc, queue, threading, time
    import interpreters
    got, errors = [], []
    stop = threading.Event()
    def guard(fn, *args):
        try:
            fn(*args)
        except BaseException as exc:
            errors.append(repr(exc))
    def churn():
        while not stop.is_set():
            gc.collect()
            time.sleep(0.001)
    producers = [threading.Thread(target=guard, args=(producer, q, first_pid + k, n))
                 for k in range(2)]
    consumers = [threading.Thread(target=guard, args=(getter, q, got)),
                 threading.Thread(target=guard, args=(selector, q, got))]
    c = threading.Thread(target=churn)
    for t in producers + consumers + [c]:
        t.start()
    for t in producers:
        t.join()
    ctl.put('produced')
    for t in consumers:
        t.join()
    stop.set()
    c.join()
    return tuple(got), tuple(errors)

ctl = interpreters.Queue()
main_got, main_errors = [], []

def main_guard(fn, *args):
    try:
        fn(*args)
    except BaseException as exc:
        main_errors.append(repr(exc))

subs = [interpreters.create() for _ in range(2)]
calls = [subs[k].call_in_thread(sub_worker, q, ctl, 10 * (k + 1), N) for k in range(2)]
main_producers = [threading.Thread(target=main_guard, args=(producer, q, pid, N))
                  for pid in (0, 1)]
main_consumers = [threading.Thread(target=main_guard, args=(getter, q, main_got))
                  for _ in range(2)]
main_consumers.append(threading.Thread(target=main_guard, args=(selector, q, main_got)))
churn = threading.Thread(target=gc_churn)
for t in [churn] + main_producers + main_consumers:
    t.start()
for t in main_producers:
    t.join(90); assert not t.is_alive(), 'a producer hung'
for _ in subs:
    assert ctl.get(timeout=90) == 'produced'
for _ in range(len(main_consumers) + 2 * len(subs)):
    q.put(None)             # one per consumer thread: each stops at the first it gets
for t in main_consumers:
    t.join(90); assert not t.is_alive(), 'a consumer hung'
results = [c.result(90) for c in calls]
stop_gc.set(); churn.join()
signal.setitimer(signal.ITIMER_REAL, 0)
errors = main_errors + [e for _, errs in results for e in errs]
assert not errors, errors
everything = main_got + [x for got, _ in results for x in got]
pids = [0, 1, 10, 11, 20, 21]
expected = sorted((p, i) for p in pids for i in range(N))
assert len(everything) == len(expected), (len(everything), len(expected))
assert len(set(everything)) == len(everything), 'an item was received twice'
assert sorted(everything) == expected, 'an item was lost'
assert q.empty() and q.join(0), (q.qsize(), 'unfinished work left')
for s in subs:
    s.destroy()
print('OK', len(main_got), [len(got) for got, _ in results])
"""


def test_stress_one_small_queue_three_interpreters():
    out, _ = assert_python_ok(STRESS, timeout=120)
    assert out.startswith("OK"), out
