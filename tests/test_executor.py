"""interpreters._executor: InterpreterPoolExecutor."""

import concurrent.futures
import math
import operator
import sys
import time

import pytest

from support import (  # noqa: F401 (destroy_leftovers is an autouse fixture)
    PYVER, assert_python_ok, destroy_leftovers,
)

import interpreters
from interpreters._executor import BrokenInterpreterPool, InterpreterPoolExecutor


def live_subs():
    return {i.id for i in interpreters.list_all()} - {0}


def test_all():
    import interpreters._executor as mod
    assert set(mod.__all__) == {"InterpreterPoolExecutor", "BrokenInterpreterPool"}
    assert issubclass(InterpreterPoolExecutor, concurrent.futures.Executor)


def test_submit_map_chunksize_and_context_manager():
    before = live_subs()
    with InterpreterPoolExecutor(2) as ex:
        assert ex.submit(pow, 3, 4).result(30) == 81
        assert ex.submit(sorted, [2, 1], reverse=True).result(30) == [2, 1]
        assert list(ex.map(operator.mul, range(10), range(10))) == [i * i for i in range(10)]
        for cs in (2, 3, 7, 100):
            assert list(ex.map(operator.add, range(23), range(23), chunksize=cs)) == \
                [2 * i for i in range(23)]
        with pytest.raises(ValueError):
            ex.map(abs, [1], chunksize=0)
        created = ex.interpreter_ids
        assert 1 <= len(created) <= 2 and created <= live_subs()
    assert live_subs() == before          # destroyed on exit of the with block
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(abs, 1)


def test_exception_reraised_from_future():
    with InterpreterPoolExecutor(1) as ex:
        f = ex.submit(math.sqrt, -1)
        with pytest.raises(ValueError) as ei:
            f.result(30)
        assert isinstance(ei.value, interpreters.RunFailedError)
        assert ei.value.excinfo.type_name == "ValueError"
        assert isinstance(f.exception(), ValueError)
        it = ex.map(int, ["1", "x", "3"])
        assert next(it) == 1
        with pytest.raises(ValueError):
            next(it)
        it = ex.map(int, ["1", "x", "3"], chunksize=2)   # a chunk fails as a whole
        with pytest.raises(ValueError):
            next(it)
        # the worker and its interpreter survive a failed task
        assert ex.submit(abs, -5).result(30) == 5
        assert len(ex.interpreter_ids) == 1


def test_shutdown_cancel_futures():
    ex = InterpreterPoolExecutor(1)
    first = ex.submit(time.sleep, 0.3)
    rest = [ex.submit(pow, 2, i) for i in range(20)]
    while not first.running():
        time.sleep(0.005)
    ex.shutdown(wait=True, cancel_futures=True)
    assert first.done() and first.result() is None
    assert all(f.cancelled() for f in rest)
    assert not ex.interpreter_ids & live_subs()


def test_shutdown_without_wait_runs_pending():
    ex = InterpreterPoolExecutor(2)
    fs = [ex.submit(pow, 2, i) for i in range(50)]
    ex.shutdown(wait=False)
    assert [f.result(30) for f in fs] == [2 ** i for i in range(50)]
    deadline = time.monotonic() + 20
    while ex.interpreter_ids & live_subs() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not ex.interpreter_ids & live_subs()


def test_many_small_tasks_reuse_few_interpreters():
    # 1,000 tasks, served by the same (at most max_workers) interpreters
    with InterpreterPoolExecutor(3) as ex:
        fs = [ex.submit(operator.add, i, 1) for i in range(1000)]
        assert [f.result(60) for f in fs] == list(range(1, 1001))
        ids = ex.interpreter_ids
        assert 1 <= len(ids) <= 3
        # a second batch: every task runs in one of those interpreters (each
        # reports the identity of its interpreter's sys.modules)
        seen = {f.result(60) for f in [ex.submit(eval, "id(__import__('sys').modules)")
                                        for _ in range(300)]}
        assert 1 <= len(seen) <= len(ids)
        assert id(sys.modules) not in seen
        assert ex.interpreter_ids == ids
        assert len(live_subs() & ids) == len(ids)
    assert not live_subs() & ids


def test_initializer_runs_in_each_interpreter_and_failure_breaks_pool():
    init = "import sys; sys.modules['__main__'].ready = 'yes'"
    with InterpreterPoolExecutor(2, initializer=exec, initargs=(init,)) as ex:
        got = list(ex.map(eval, ["__import__('sys').modules['__main__'].ready"] * 8))
        assert got == ["yes"] * 8
    ex = InterpreterPoolExecutor(1, initializer=int, initargs=("bad",))
    f = ex.submit(abs, 1)
    with pytest.raises(BrokenInterpreterPool):
        f.result(30)
    with pytest.raises(BrokenInterpreterPool):
        ex.submit(abs, 1)
    ex.shutdown()


def test_arguments_validated():
    with pytest.raises(ValueError):
        InterpreterPoolExecutor(0)
    with pytest.raises(TypeError):
        InterpreterPoolExecutor(1, initializer=42)


@pytest.mark.skipif(PYVER >= (3, 12), reason="isolated interpreters exist on 3.12+")
def test_isolated_needs_312():
    with pytest.raises(interpreters.InterpreterError, match="3.12"):
        InterpreterPoolExecutor(2, isolated=True)


DROP_IN = r"""
import concurrent.futures, sys
from interpreters._executor import InterpreterPoolExecutor

BASE = 10

class Acc:
    def __init__(self, v):
        self.v = v

def square_plus(x):
    return Acc(x * x + BASE)

def fails(x):
    raise KeyError(x)

def run(executor_class, **kw):
    with executor_class(max_workers=2, **kw) as ex:
        a = [r.v for r in ex.map(square_plus, range(20), chunksize=4)]
        b = ex.submit(square_plus, 3).result().v
        c = ex.submit(lambda s: s.upper(), "lam").result()
        try:
            ex.submit(fails, "k").result()
        except KeyError as e:
            d = repr(e.args[0]) if executor_class is not InterpreterPoolExecutor else e.excinfo.msg
    return a, b, c, d

if __name__ == "__main__":
    ref = run(concurrent.futures.ThreadPoolExecutor)
    got = run(InterpreterPoolExecutor)
    assert got == ref, (got, ref)
    print("shared ok")
    if sys.version_info >= (3, 12):
        assert run(InterpreterPoolExecutor, isolated=True) == ref
        print("isolated ok")
    # left running at exit without shutdown(): the process still ends cleanly
    ex = InterpreterPoolExecutor(2)
    ex.submit(square_plus, 1)
"""


def test_drop_in_with_main_functions():
    out, err = assert_python_ok(DROP_IN, timeout=60)
    assert out.split() == ["shared", "ok"] + (["isolated", "ok"] if PYVER >= (3, 12) else [])


CPU_PAIR = r"""
import os, subprocess, sys, time
from interpreters._executor import InterpreterPoolExecutor

def spin(n):
    s = 0
    for i in range(n):
        s += i * i
    return s

def two_processes(n):
    # what the machine offers right now: the same loop in two plain processes
    c0, w0 = os.times(), time.perf_counter()
    code = "s = 0\nfor i in range(%d): s += i * i" % n
    for p in [subprocess.Popen([sys.executable, "-c", code]) for _ in range(2)]:
        p.wait()
    c1 = os.times()
    return (c1.children_user + c1.children_system - c0.children_user
            - c0.children_system) / (time.perf_counter() - w0)

N = 2_000_000
with InterpreterPoolExecutor(2, isolated=True) as ex:
    list(ex.map(spin, [10, 10]))            # both interpreters created and warm
    expect = sum(i * i for i in range(N))
    best, procs = (0.0, 0.0), 0.0
    for attempt in range(4):
        t = time.perf_counter()
        assert ex.submit(spin, N).result() == expect
        assert ex.submit(spin, N).result() == expect
        serial = time.perf_counter() - t
        c0, t = time.process_time(), time.perf_counter()
        assert list(ex.map(spin, [N, N])) == [expect] * 2
        wall = time.perf_counter() - t
        best = max(best, ((time.process_time() - c0) / wall, serial / wall))
        if max(best) > 1.5:
            break
        procs = max(procs, two_processes(N))
print("cpu_per_wall %.2f speedup %.2f processes %.2f load %.1f"
      % (best + (procs, os.getloadavg()[0])))
"""


@pytest.mark.skipif(PYVER < (3, 12), reason="isolated interpreters need 3.12+")
def test_isolated_cpu_bound_pair_runs_in_parallel():
    import os
    out, err = assert_python_ok(CPU_PAIR, timeout=120)
    f = out.split()
    cpu_per_wall, speedup, procs, load = float(f[1]), float(f[3]), float(f[5]), float(f[7])
    # Under one GIL both figures stay near 1.0.  On a shared 2-core machine other
    # tenants take cores: judge against two plain processes measured in the same
    # minute, and skip when even they did not scale (as test_isolated does).
    if max(cpu_per_wall, speedup) <= 1.5 and (procs <= 1.5 or max(cpu_per_wall, speedup)
                                               >= 0.8 * procs):
        pytest.skip("the machine gives no two free cores right now (two plain processes: "
                    "CPU/wall %.2f; load %.1f on %d cores); isolated pool: CPU/wall %.2f, "
                    "speedup %.2f" % (procs, load, os.cpu_count() or 1, cpu_per_wall, speedup))
    assert max(cpu_per_wall, speedup) > 1.5, out
