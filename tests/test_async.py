"""asyncio: awaitable channel, queue and pipe operations (issue 6, item 3).

recv_async()/send_async() must wake through the event loop without polling and
without blocking it; cancelling must lose nothing.  The loop-side tests run in
this process; Ctrl-C and the isolated-interpreter variant run in subprocesses.
"""

import asyncio
import os
import selectors
import threading
import time

import pytest

import interpreters
from support import PYVER, destroy_leftovers, run_python  # noqa: F401 (autouse fixture)


class CountingSelector(selectors.DefaultSelector):
    """Counts how often the event loop wakes up."""

    def __init__(self):
        super().__init__()
        self.wakeups = 0

    def select(self, timeout=None):
        self.wakeups += 1
        return super().select(timeout)


def run_loop(coro_fn, selector=None):
    loop = asyncio.SelectorEventLoop(selector or CountingSelector())
    try:
        return loop.run_until_complete(coro_fn())
    finally:
        loop.close()


SERVER_SUB = r"""
import interpreters
inbox = interpreters.RecvChannel(%d)
outbox = interpreters.SendChannel(%d)
client = %d
for n in range(%d):
    requests.send((client, n))         # request ...
    reply = inbox.recv()               # ... and wait for the answer
    assert reply == ("ok", client, n * n), reply
"""


def test_server_loop_1000_messages_from_subinterpreters():
    # An asyncio "server": one coroutine receives requests from 4 clients, each a
    # subinterpreter in its own thread, and answers every one with send_async().
    # A ticker coroutine must keep running: the loop is never blocked.
    nclients, per_client = 4, 250
    requests_r, requests_s = interpreters.create_channel()
    replies = [interpreters.create_channel() for _ in range(nclients)]
    interps = [interpreters.create() for _ in range(nclients)]
    served = []
    ticks = []

    async def server():
        for _ in range(nclients * per_client):
            client, n = await requests_r.recv_async(timeout=60)
            served.append((client, n))
            await replies[client][1].send_async(("ok", client, n * n), timeout=60)

    async def ticker(stop):
        while not stop.is_set():
            ticks.append(time.monotonic())
            await asyncio.sleep(0.005)

    threads = []
    for i, interp in enumerate(interps):
        code = SERVER_SUB % (replies[i][0].id, replies[i][1].id, i, per_client)
        t = threading.Thread(target=interp.run, args=(code,),
                             kwargs={"channels": {"requests": requests_s}})
        threads.append(t)

    async def main():
        stop = asyncio.Event()
        tick_task = asyncio.ensure_future(ticker(stop))
        for t in threads:
            t.start()
        t0 = time.monotonic()
        await server()
        elapsed = time.monotonic() - t0
        stop.set()
        await tick_task
        return elapsed

    elapsed = run_loop(main)
    for t in threads:
        t.join(30)
        assert not t.is_alive()
    for interp in interps:
        interp.destroy()
    assert len(served) == nclients * per_client
    for c in range(nclients):                 # per client: every request once, in order
        assert [n for cl, n in served if cl == c] == list(range(per_client))
    # The ticker ran throughout: never a gap anywhere near the whole run.
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert len(ticks) >= 3
    assert max(gaps) < max(1.0, elapsed / 2), (max(gaps), elapsed)


def test_idle_wait_does_not_poll():
    # While nothing arrives, the loop sleeps in select(): a handful of wake-ups
    # in 0.6 s (a polling implementation would wake every few milliseconds).
    r, s = interpreters.create_channel()
    selector = CountingSelector()

    async def main():
        before = selector.wakeups
        cpu0 = time.process_time()
        task = asyncio.ensure_future(r.recv_async())
        await asyncio.sleep(0.6)
        idle_wakeups = selector.wakeups - before
        cpu = time.process_time() - cpu0
        threading.Timer(0.05, s.send_nowait, args=("late",)).start()
        got = await asyncio.wait_for(task, 10)
        return idle_wakeups, cpu, got

    idle_wakeups, cpu, got = run_loop(main, selector)
    assert got == "late"
    assert idle_wakeups <= 10, idle_wakeups
    assert cpu < 0.3, cpu


def test_recv_async_wakes_on_send_from_subinterpreter():
    r, s = interpreters.create_channel()
    interp = interpreters.create()

    async def main():
        task = asyncio.ensure_future(r.recv_async(timeout=30))
        await asyncio.sleep(0.05)
        assert not task.done()
        t = threading.Thread(target=interp.run, args=("s.send(('from', 'sub'))",),
                             kwargs={"channels": {"s": s}})
        t.start()
        got = await task
        await asyncio.get_running_loop().run_in_executor(None, t.join)
        return got

    assert run_loop(main) == ("from", "sub")
    interp.destroy()


def test_cancelled_recv_async_loses_nothing():
    # Receivers are cancelled at random while 1,000 messages flow; every message
    # is received exactly once by some receiver.
    r, s = interpreters.create_channel()
    total = 1000
    got = []

    def producer():
        for i in range(total):
            s.send(i)

    async def main():
        t = threading.Thread(target=producer)
        t.start()
        cancelled = 0
        while len(got) < total:
            task = asyncio.ensure_future(r.recv_async())
            done, _ = await asyncio.wait([task], timeout=0.0005)
            if done:
                got.append(task.result())
                continue
            task.cancel()
            try:
                got.append(await task)          # it completed as we cancelled it
            except asyncio.CancelledError:
                cancelled += 1
        await asyncio.get_running_loop().run_in_executor(None, t.join)
        return cancelled

    run_loop(main)
    assert sorted(got) == list(range(total))
    assert got == list(range(total))              # one sender: order kept
    assert r.recv_nowait("empty") == "empty"


def test_send_async_completes_when_received_and_withdraws_on_cancel():
    r, s = interpreters.create_channel()

    async def main():
        # Completes only once a receiver took it.
        task = asyncio.ensure_future(s.send_async(("x", 1)))
        await asyncio.sleep(0.05)
        assert not task.done()
        assert r.recv_nowait() == ("x", 1)
        await asyncio.wait_for(task, 5)
        # Cancelled before anyone received: withdrawn.
        task = asyncio.ensure_future(s.send_async("withdrawn"))
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert r.recv_nowait("nothing") == "nothing"
        # Timed out: withdrawn too, TimeoutError.
        with pytest.raises(TimeoutError):
            await s.send_async("late", timeout=0.05)
        assert r.recv_nowait("nothing") == "nothing"
        # Closed while waiting: ChannelClosedError (an EOFError).
        task = asyncio.ensure_future(s.send_async("dropped"))
        await asyncio.sleep(0.02)
        r.close(force=True)
        with pytest.raises(interpreters.ChannelClosedError):
            await asyncio.wait_for(task, 5)

    run_loop(main)


def test_send_async_and_recv_async_both_in_the_loop():
    r, s = interpreters.create_channel()

    async def main():
        async def produce():
            for i in range(300):
                await s.send_async(i)

        async def consume():
            return [await r.recv_async() for _ in range(300)]

        _, got = await asyncio.gather(produce(), consume())
        return got

    assert run_loop(main) == list(range(300))


def test_recv_async_timeout_and_closed():
    r, s = interpreters.create_channel()

    async def main():
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            await r.recv_async(timeout=0.1)
        assert time.monotonic() - t0 < 5
        task = asyncio.ensure_future(r.recv_async())
        await asyncio.sleep(0.02)
        s.close(force=True)
        with pytest.raises(interpreters.ChannelClosedError):
            await asyncio.wait_for(task, 5)

    run_loop(main)


def test_queue_and_pipe_async():
    q = interpreters.Queue(maxsize=2)
    a, b = interpreters.Pipe()
    interp = interpreters.create()

    def sub_side():
        interp.run("""if True:
            for i in range(50):
                q.put(i)
            q.put(None)
            while True:
                item = conn.recv()
                if item is None:
                    break
                conn.send(item * 2)
            conn.close()
            """, channels={"q": q, "conn": b})

    async def main():
        t = threading.Thread(target=sub_side)
        t.start()
        got = []
        while True:                             # a bounded queue: the sub waits for room
            item = await q.get_async(timeout=30)
            if item is None:
                break
            got.append(item)
        b.close()     # the sub holds its own end now; like multiprocessing, close ours
        doubled = []
        for i in range(20):
            await a.send_async(i)
            doubled.append(await a.recv_async(timeout=30))
        await a.send_async(None)
        with pytest.raises(EOFError):           # the sub closed its end
            await a.recv_async(timeout=30)
        await asyncio.get_running_loop().run_in_executor(None, t.join)
        return got, doubled

    got, doubled = run_loop(main)
    assert got == list(range(50))
    assert doubled == [2 * i for i in range(20)]
    interp.destroy()


def test_queue_put_async_waits_for_room():
    q = interpreters.Queue(maxsize=1)

    async def main():
        await q.put_async("first")
        task = asyncio.ensure_future(q.put_async("second"))
        await asyncio.sleep(0.05)
        assert not task.done() and q.qsize() == 1
        assert q.get_nowait() == "first"
        await asyncio.wait_for(task, 5)
        assert q.get_nowait() == "second"
        import queue
        await q.put_async("x")
        with pytest.raises(queue.Full):
            await q.put_async("y", timeout=0.05)

    run_loop(main)


def test_select_async():
    r1, s1 = interpreters.create_channel()
    r2, s2 = interpreters.create_channel()

    async def main():
        assert await interpreters.select_async([r1, r2], timeout=0.05) == []
        sender = threading.Timer(0.05, s2.send, args=("two",))   # blocks until received
        sender.start()
        ready = await interpreters.select_async([r1, r2], timeout=10)
        got = r2.recv_nowait()
        sender.join()
        return ready, got

    ready, got = run_loop(main)
    assert got == "two"
    assert ready == [r2]


def test_ctrl_c_during_recv_async_leaves_channel_intact():
    rc, out, err = run_python(r"""
        import asyncio, os, signal, threading
        import interpreters
        r, s = interpreters.create_channel()
        async def main():
            await r.recv_async()
        threading.Timer(0.3, os.kill, args=(os.getpid(), signal.SIGINT)).start()
        try:
            asyncio.run(main())
        except KeyboardInterrupt:
            print("interrupted")
        # The channel works as before: nothing was left waiting on it.
        threading.Timer(0.1, s.send, args=("after",)).start()
        print(r.recv(timeout=10))
        async def again():
            t = asyncio.ensure_future(r.recv_async(timeout=10))
            await asyncio.sleep(0.05)
            s.send_nowait("async-after")
            return await t
        print(asyncio.run(again()))
    """, timeout=60)
    assert rc == 0, err
    assert out.split() == ["interrupted", "after", "async-after"], (out, err)


ASYNC_IN_SUB = r"""
import asyncio, threading
import interpreters

def run_in(interp, r_id, s_id):
    interp.run('''if True:
        import asyncio, interpreters
        r = interpreters.RecvChannel(%d)
        s = interpreters.SendChannel(%d)
        async def main():
            total = 0
            for _ in range(200):
                total += await r.recv_async(timeout=30)
            await s.send_async(total, timeout=30)
        asyncio.run(main())
    ''' % (r_id, s_id))

interp = interpreters.create(isolated=ISOLATED)
to_sub_r, to_sub_s = interpreters.create_channel()
back_r, back_s = interpreters.create_channel()
t = threading.Thread(target=run_in, args=(interp, to_sub_r.id, back_s.id))
t.start()
for i in range(200):
    to_sub_s.send(i)
print(back_r.recv(timeout=30))
t.join()
interp.destroy()
"""


def test_event_loop_inside_a_subinterpreter():
    rc, out, err = run_python(
        "ISOLATED = False\n" + ASYNC_IN_SUB, timeout=120)
    assert rc == 0, err
    assert out.strip() == str(sum(range(200)))


@pytest.mark.skipif(PYVER < (3, 13), reason="isolated interpreters exist from CPython "
                    "3.12, and channels inside them need ctypes there: 3.13+ (3.12 refuses "
                    "_ctypes in isolated subinterpreters)")
def test_event_loop_inside_an_isolated_interpreter():
    rc, out, err = run_python(
        "ISOLATED = True\n" + ASYNC_IN_SUB, timeout=120)
    assert rc == 0, err
    assert out.strip() == str(sum(range(200)))


def test_loop_pipe_closed_with_the_loop():
    # Each event loop gets one wake-up pipe; it goes away with the loop.
    r, s = interpreters.create_channel()

    def fds():
        return len(os.listdir("/proc/self/fd"))

    async def once():
        with pytest.raises(TimeoutError):
            await r.recv_async(timeout=0.01)

    base = fds()
    for _ in range(20):
        loop = asyncio.new_event_loop()
        loop.run_until_complete(once())
        loop.close()
        del loop
    import gc
    gc.collect()
    assert fds() <= base + 2
