"""Interpreter.call_async() and InterpreterPoolExecutor under asyncio."""

import asyncio
import concurrent.futures
import inspect
import operator
import os
import threading
import time

import pytest

from support import (  # noqa: F401 (destroy_leftovers is an autouse fixture)
    assert_python_ok, destroy_leftovers,
)

import interpreters
from interpreters import _call


def wait_idle(interp, timeout=30):
    deadline = time.monotonic() + timeout
    while interp.is_running():
        assert time.monotonic() < deadline, "interpreter %d still busy" % interp.id
        time.sleep(0.01)


@pytest.fixture
def interp():
    it = interpreters.create()
    yield it
    wait_idle(it)
    it.destroy()


def test_is_a_coroutine_function():
    assert inspect.iscoroutinefunction(interpreters.Interpreter.call_async)
    assert inspect.iscoroutinefunction(_call.call_async)


def test_result_exceptions_and_not_sendable(interp):
    async def main():
        assert await interp.call_async(pow, 2, 10) == 1024
        assert await interp.call_async(sorted, [3, 1, 2], reverse=True) == [3, 2, 1]
        k = 7
        assert await interp.call_async(lambda a, *, b: a * b + k, 3, b=5) == 22
        with pytest.raises(ValueError) as ei:             # what call() raises
            await interp.call_async(int, "not a number")
        assert isinstance(ei.value, interpreters.RunFailedError)
        assert ei.value.excinfo.type_name == "ValueError"
        with pytest.raises(interpreters.NotSendableError, match="positional argument 0"):
            await interp.call_async(len, threading.Lock())
        with pytest.raises(TypeError, match="callable"):
            await interp.call_async(42)
        # StopIteration cannot cross an await: it arrives as a RuntimeError's cause
        with pytest.raises(RuntimeError, match="StopIteration") as ei:
            await interp.call_async(next, iter([]))
        assert isinstance(ei.value.__cause__, StopIteration)
        assert isinstance(ei.value.__cause__, interpreters.RunFailedError)
        return await interp.call_async(abs, -1)           # still usable
    assert asyncio.run(main()) == 1


def test_arguments_are_pickled_when_the_await_starts(interp):
    async def main():
        values = [1, 2]
        task = asyncio.ensure_future(interp.call_async(sum, values))
        await asyncio.sleep(0)          # the coroutine has started: values are pickled
        values.append(100)
        return await task
    assert asyncio.run(main()) == 3


def test_loop_is_not_blocked(interp):
    r, w = os.pipe()

    async def main():
        ticks = 0
        call = asyncio.ensure_future(interp.call_async(os.read, r, 1))

        async def ticker():
            nonlocal ticks
            while not call.done():
                ticks += 1
                if ticks == 5:
                    os.write(w, b"x")   # the call ends only once the loop has run
                await asyncio.sleep(0.01)
        await asyncio.gather(ticker(), call)
        return call.result(), ticks
    try:
        got, ticks = asyncio.run(main())
    finally:
        os.close(r)
        os.close(w)
    assert got == b"x" and ticks >= 5


def test_gather_200_calls_over_a_pool_of_three():
    async def main():
        interps = [interpreters.create() for _ in range(3)]
        idle = asyncio.Queue()
        for it in interps:
            idle.put_nowait(it)

        async def one(n):
            it = await idle.get()
            try:
                if n % 3 == 0:
                    value = await it.call_async(operator.mul, n, n)       # by reference
                elif n % 3 == 1:
                    value = await it.call_async(lambda m: m * m, n)       # by value
                else:
                    value = await it.call_async(pow, n, 2)
                where = await it.call_async(eval, "id(__import__('sys').modules)")
                return value, where
            finally:
                idle.put_nowait(it)
        try:
            return await asyncio.gather(*(one(n) for n in range(200))), interps
        finally:
            for it in interps:
                wait_idle(it)
                it.destroy()
    results, interps = asyncio.run(main())
    assert [v for v, _ in results] == [n * n for n in range(200)]
    assert len({w for _, w in results}) == 3     # each of the three did its share
    assert not set(interps) & set(interpreters.list_all())


def test_cancelled_await_leaves_the_call_running(interp):
    r, w = os.pipe()

    async def main():
        task = asyncio.ensure_future(interp.call_async(os.read, r, 1))
        while not interp.is_running():
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert interp.is_running()                 # the call goes on
        with pytest.raises(interpreters.InterpreterError, match="already running"):
            interp.call(abs, -1)
        os.write(w, b"x")                          # let it end; its result is dropped
        while interp.is_running():
            await asyncio.sleep(0.005)
        return await interp.call_async(abs, -2)
    try:
        assert asyncio.run(main()) == 2
    finally:
        os.close(r)
        os.close(w)


def test_wait_for_times_out_promptly(interp):
    r, w = os.pipe()

    async def main():
        t = time.monotonic()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(interp.call_async(os.read, r, 1), 0.2)
        return time.monotonic() - t
    try:
        elapsed = asyncio.run(main())
        assert elapsed < 5
        assert interp.is_running()
        os.write(w, b"x")
        wait_idle(interp)
        assert interp.call(abs, -3) == 3
    finally:
        os.close(r)
        os.close(w)


def test_loop_closed_before_the_call_ends():
    # asyncio.run() returns while a call it started still runs: the thread then
    # finds the loop closed and drops the outcome quietly; at exit Python waits.
    out, err = assert_python_ok("""
        import asyncio, os, time
        import interpreters
        interp = interpreters.create()
        r, w = os.pipe()

        async def main():
            task = asyncio.ensure_future(interp.call_async(os.read, r, 1))
            while not interp.is_running():
                await asyncio.sleep(0.005)
            task.cancel()
        asyncio.run(main())
        os.write(w, b"x")
        while interp.is_running():
            time.sleep(0.01)
        time.sleep(0.1)
        print(interp.call(abs, -4))
        interp.destroy()
        print(interpreters.list_all())
    """)
    assert out == "4\n[Interpreter(0)]\n"
    assert err == ""


def test_run_in_executor_with_interpreter_pool():
    async def main():
        loop = asyncio.get_running_loop()
        with interpreters.InterpreterPoolExecutor(max_workers=2) as pool:
            futs = [loop.run_in_executor(pool, operator.add, i, 1) for i in range(100)]
            futs.append(loop.run_in_executor(pool, lambda s: s.upper(), "lam"))
            results = await asyncio.gather(*futs)
            with pytest.raises(KeyError):
                await loop.run_in_executor(pool, operator.getitem, {}, "k")
            ids = pool.interpreter_ids
        return results, ids
    results, ids = asyncio.run(main())
    assert results == list(range(1, 101)) + ["LAM"]
    assert 1 <= len(ids) <= 2
    assert not ids & {i.id for i in interpreters.list_all()}


def test_run_in_executor_wait_for_times_out():
    r, w = os.pipe()

    async def main(pool):
        loop = asyncio.get_running_loop()
        t = time.monotonic()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(loop.run_in_executor(pool, os.read, r, 1), 0.2)
        return time.monotonic() - t
    pool = interpreters.InterpreterPoolExecutor(max_workers=1)
    try:
        assert asyncio.run(main(pool)) < 5
        os.write(w, b"x")
        assert pool.submit(abs, -5).result(timeout=30) == 5
    finally:
        pool.shutdown()
        os.close(r)
        os.close(w)


def test_future_result_timeout():
    r, w = os.pipe()
    with interpreters.InterpreterPoolExecutor(max_workers=1) as pool:
        fut = pool.submit(os.read, r, 1)
        t = time.monotonic()
        with pytest.raises(concurrent.futures.TimeoutError):
            fut.result(timeout=0.2)
        assert time.monotonic() - t < 5
        os.write(w, b"x")
        assert fut.result(timeout=30) == b"x"
    os.close(r)
    os.close(w)


def test_exit_waits_for_a_call_whose_await_was_cancelled():
    out, err = assert_python_ok("""
        import asyncio
        import interpreters
        interp = interpreters.create()

        async def main():
            work = "import time; time.sleep(0.5); print('call finished', flush=True)"
            try:
                await asyncio.wait_for(interp.call_async(exec, work), 0.05)
            except asyncio.TimeoutError:
                print("timed out", flush=True)
        asyncio.run(main())
        print("leaving", flush=True)
    """)
    assert out == "timed out\nleaving\ncall finished\n", (out, err)



@pytest.mark.skipif(__import__("sys").version_info < (3, 12),
                    reason="isolated (own-GIL) interpreters need CPython 3.12+")
def test_call_and_call_async_in_isolated_interpreters():
    # Own-GIL variant: call() and call_async() need nothing of this package inside
    # the interpreter (stdlib-only runtime), so they work on 3.12 too.  (Functions
    # of this test module would import it, and with it this package, there: on
    # 3.12 that fails, so the calls use stdlib functions.)
    import math
    pair = [interpreters.create(isolated=True) for _ in range(2)]
    try:
        assert pair[0].call(math.factorial, 30) == math.factorial(30)

        async def main():
            return await asyncio.gather(*(i.call_async(math.factorial, 3000) for i in pair))

        assert asyncio.run(main()) == [math.factorial(3000)] * 2
        with pytest.raises(ZeroDivisionError):
            asyncio.run(pair[1].call_async(operator.truediv, 1, 0))
    finally:
        for i in pair:
            wait_idle(i)
            i.destroy()
