"""interpreters._call: call(), call_in_thread(), run_in_thread()."""

import json
import operator
import textwrap
import threading
import time

import pytest

from support import (  # noqa: F401 (destroy_leftovers is an autouse fixture)
    PYVER, assert_python_ok, destroy_leftovers, run_output,
)

import interpreters
from interpreters import _call
from interpreters._call import NotSendableError, call, call_in_thread, run_in_thread


@pytest.fixture(scope="module")
def interp():
    i = interpreters.create()
    yield i
    i.destroy()


def test_all():
    assert set(_call.__all__) == {"call", "call_async", "call_in_thread", "run_in_thread", "CallThread",
                                  "NotSendableError"}


def test_builtins(interp):
    assert call(interp, pow, 2, 100) == 2 ** 100
    assert call(interp, sorted, [3, 1, 2], reverse=True) == [3, 2, 1]
    assert call(interp, dict, a=1, b=[2, 3]) == {"a": 1, "b": [2, 3]}
    assert call(interp, divmod, 7, 2) == (3, 1)


def test_module_level_functions(interp):
    assert call(interp, json.dumps, {"k": [1, 2]}, sort_keys=True) == '{"k": [1, 2]}'
    assert call(interp, textwrap.dedent, "  a\n  b") == "a\nb"
    assert call(interp, operator.itemgetter(1), "xyz") == "y"


def test_runs_in_that_interpreter(interp):
    call(interp, exec, "import sys; sys.modules['__main__'].marker = 'via call'")
    assert run_output(interp, "print(marker)") == "via call\n"
    assert not hasattr(__import__("__main__"), "marker")


def test_lambda_and_closure(interp):
    k = 10
    assert call(interp, lambda a: a * k, 4) == 40

    def outer():
        z = 7

        def inner(q, *, plus=0):
            return q + z + plus
        return inner
    assert call(interp, outer(), 1, plus=100) == 108

    def fact(n):     # a recursive local function: its closure holds itself
        return 1 if n <= 1 else n * fact(n - 1)
    assert call(interp, fact, 10) == 3628800


def test_kwargs_and_defaults(interp):
    def f(a, b=2, *rest, c, d=4, **more):
        return (a, b, rest, c, d, more)
    assert call(interp, f, 1, c=3) == (1, 2, (), 3, 4, {})
    assert call(interp, f, 1, 5, 6, c=3, d=7, e=8) == (1, 5, (6,), 3, 7, {"e": 8})


def test_big_arguments_and_result(interp):
    blob = bytes(range(256)) * (10 * 1024 * 1024 // 256)    # 10 MiB
    assert len(blob) == 10 * 1024 * 1024
    out = call(interp, bytes.swapcase, blob)
    assert len(out) == len(blob) and out == blob.swapcase()


def test_exception_is_runfailederror_and_builtin(interp):
    def boom():
        {}["missing"]
    with pytest.raises(KeyError) as ei:
        call(interp, boom)
    err = ei.value
    assert isinstance(err, interpreters.RunFailedError)
    assert err.excinfo.type_name == "KeyError"
    assert "missing" in err.excinfo.formatted and "boom" in err.excinfo.formatted


def test_unpicklable_argument_clear_error(interp):
    lock = threading.Lock()
    with pytest.raises(NotSendableError) as ei:
        call(interp, len, [1], lock)
    msg = str(ei.value)
    assert isinstance(ei.value, TypeError)
    assert "positional argument 1" in msg and "_thread.lock" in msg and "pickle" in msg
    with pytest.raises(TypeError, match="keyword argument 'key'"):
        call(interp, sorted, [1], key=lock)

    def uses_lock():
        with lock:
            return 1
    with pytest.raises(NotSendableError, match="closure variable 'lock'"):
        call(interp, uses_lock)
    # the interpreter is still usable
    assert call(interp, abs, -3) == 3


def test_unpicklable_result_clear_error(interp):
    with pytest.raises(TypeError) as ei:
        call(interp, lambda: threading.Lock())
    assert isinstance(ei.value, interpreters.RunFailedError)
    assert ei.value.excinfo.type_name == "NotSendableError"
    assert "cannot be sent back" in ei.value.excinfo.msg


def test_not_callable(interp):
    with pytest.raises(TypeError):
        call(interp, 42)


def test_call_in_thread_result_and_reraise(interp):
    h = call_in_thread(interp, sum, range(10))
    assert h.result(timeout=30) == 45
    assert h.join() is None and not h.is_alive()

    h = call_in_thread(interp, int, "not a number")
    with pytest.raises(ValueError) as ei:
        h.join(30)
    assert isinstance(ei.value, interpreters.RunFailedError)
    with pytest.raises(ValueError):
        h.result()
    assert isinstance(h.exception(), ValueError)


def test_call_in_thread_timeout():
    i = interpreters.create()
    h = call_in_thread(i, time.sleep, 0.5)
    h.join(0.01)
    assert h.is_alive()
    with pytest.raises(TimeoutError):
        h.result(timeout=0.01)
    assert h.result(timeout=30) is None
    i.destroy()


def test_run_in_thread():
    a, b = interpreters.create(), interpreters.create()
    ha = run_in_thread(a, "import time; time.sleep(0.2); x = 1")
    hb = run_in_thread(b, "raise OSError('disk on fire')")
    with pytest.raises(OSError, match="disk on fire"):
        hb.join(30)
    ha.join(30)
    assert run_output(a, "print(x)") == "1\n"
    with pytest.raises(TypeError):
        run_in_thread(a, b"bytes")


def test_call_does_not_load_ctypes_in_target():
    i = interpreters.create()
    assert call(i, pow, 3, 3) == 27
    out = run_output(i, "import sys; print('ctypes' in sys.modules, "
                        "'_interpreters_callrt' in sys.modules)")
    assert out == "False True\n"


MAIN_SCRIPT = r"""
import dataclasses, enum, math, sys
import interpreters
from interpreters._call import call, call_in_thread

SCALE = 3

class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y
    def norm(self):
        return math.hypot(self.x, self.y)
    @staticmethod
    def origin():
        return Point(0, 0)
    @property
    def swapped(self):
        return Point(self.y, self.x)

class AppError(LookupError):
    pass

def helper(v):
    return v * SCALE

def work(n, *, extra=0):
    return [helper(i) for i in range(n)] + [extra]

@dataclasses.dataclass
class Rec:
    a: int
    tags: list = dataclasses.field(default_factory=list)

class Color(enum.Enum):
    RED = 1

def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)

def fails(what):
    raise AppError("bad " + what)

def main(isolated):
    i = interpreters.create(isolated=isolated)
    assert call(i, work, 4, extra=9) == [0, 3, 6, 9, 9], call(i, work, 4, extra=9)
    assert call(i, fib, 15) == 610
    assert call(i, lambda p: p.norm(), Point(3, 4)) == 5.0
    p = call(i, lambda: Point.origin().swapped)
    assert type(p) is Point and (p.x, p.y) == (0, 0), p   # the caller's own class
    r = call(i, lambda d: dataclasses.replace(d, a=d.a + 1), Rec(1, ["t"]))
    assert type(r) is Rec and r == Rec(2, ["t"]), r
    try:
        call(i, id, Color.RED)
    except TypeError as e:
        assert "enum class __main__.Color cannot be sent by value" in str(e), e
    else:
        raise AssertionError("enum went through")
    m = 100
    assert call(i, lambda v: v + m + SCALE, 1) == 104
    try:
        call(i, fails, "input")
    except LookupError as e:      # AppError's builtin base
        assert isinstance(e, interpreters.RunFailedError)
        assert e.excinfo.type_name == "AppError", e.excinfo
        assert e.excinfo.type_module == "__main__"
        assert "bad input" in str(e) and "fails" in e.excinfo.formatted
    else:
        raise AssertionError("no exception")
    h = call_in_thread(i, fails, "thread")
    try:
        h.join(30)
    except LookupError as e:
        assert e.excinfo.type_name == "AppError"
    else:
        raise AssertionError("join did not re-raise")
    # functions from __main__ run with the target's __main__ as globals
    i.run("SCALE = 1000; seen = 'sub main'")
    assert call(i, helper, 1) == 3           # the caller's SCALE is copied in first
    assert call(i, lambda: seen) == "sub main"
    i.destroy()
    print("ok", isolated)

main(False)
if sys.version_info >= (3, 12):
    main(True)
"""


def test_main_functions_classes_and_exceptions_by_value():
    out, err = assert_python_ok(MAIN_SCRIPT, timeout=60)
    assert out.splitlines() == ["ok False"] + (["ok True"] if PYVER >= (3, 12) else []), (out, err)


def test_repl_function():
    # a REPL defines functions in __main__ without source: they go by value too
    import subprocess
    import sys
    from support import REPO_ROOT
    src = ("import interpreters\nfrom interpreters._call import call\n"
           "def f(a):\n    return [a] * 2\n\n"
           "i = interpreters.create()\nprint('got', call(i, f, 'r'))\ni.destroy()\n")
    p = subprocess.run([sys.executable, "-i", "-q"], input=src, capture_output=True,
                       text=True, cwd=REPO_ROOT, timeout=60)
    assert "got ['r', 'r']" in p.stdout, (p.stdout, p.stderr)


# ---------------------------------------------------------------------------------
# the fast path: plain pickle.dumps for simple data, memfds kept per thread

SIMPLE = [None, True, 0, -1, 2 ** 100, 1.5, float("inf"), "", "text\u20ac", b"\x00bytes",
          (), [], {}, (1, "a", None), [1, [2, [3]]], {"k": [1, (2.5, b"x")], 3: None}]
NOT_SIMPLE = [bytearray(b"x"), {1, 2}, frozenset(), 1j, Ellipsis, range(3), len,
              [bytearray()], {"k": {1}}, (1, [2, (3, {4: object()})]), list(range(100)),
              type("Int", (int,), {})(3), json.JSONDecodeError("m", "d", 0)]


def test_is_simple():
    rt = _call._rt
    for obj in SIMPLE:
        assert rt.is_simple(obj), obj
    for obj in NOT_SIMPLE:
        assert not rt.is_simple(obj), obj
    loop = []
    loop.append(loop)
    assert not rt.is_simple(loop)           # over the budget, not an endless walk


def test_plain_pickle_gives_the_same_bytes():
    # what makes the fast path invisible: for simple data and functions by reference,
    # plain pickle.dumps writes exactly what the runtime's Pickler writes
    rt = _call._rt
    for obj in SIMPLE + [(operator.add, (1, 2), {}), (json.dumps, ([1],), {"indent": 2}),
                         (dict, (), {"a": 1}), (textwrap.dedent, ("x",), {})]:
        assert b"".join(rt.dumps(obj)) == __import__("pickle").dumps(obj, rt.PROTOCOL), obj


def test_by_reference():
    assert _call._by_reference(len) and _call._by_reference(operator.add)
    assert _call._by_reference(json.dumps) and _call._by_reference(dict)
    assert not _call._by_reference(lambda: 1)
    assert not _call._by_reference(operator.itemgetter(1))
    assert not _call._by_reference([].append)
    import types
    assert _call._by_reference(copy_of)
    twin = types.FunctionType(copy_of.__code__, globals(), "copy_of")   # same name, other object
    twin.__qualname__ = "copy_of"
    assert not _call._by_reference(twin)
    twin.__module__ = "__main__"
    assert not _call._by_reference(twin)


def test_fast_path_results_are_the_same(interp):
    for obj in SIMPLE:
        assert call(interp, operator.pos if isinstance(obj, (int, float)) and
                    not isinstance(obj, bool) else (lambda x: x), obj) == obj
        got = call(interp, copy_of, obj)
        assert got == obj and type(got) is type(obj), (got, obj)
    # shared references inside the arguments stay shared, as with pickle
    shared = [1]
    assert call(interp, operator.is_, shared, shared) is True
    assert call(interp, lambda a, b: a is b, shared, shared) is True
    # results that are not simple data still come back pickled
    assert call(interp, set, [1, 2]) == {1, 2}
    assert call(interp, bytearray, b"ab") == bytearray(b"ab")
    assert call(interp, range, 3) == range(3)
    out = call(interp, dict.fromkeys, "ab")
    assert out == {"a": None, "b": None}


def copy_of(x):
    return x


def test_memfds_reused_and_released():
    import os
    i = interpreters.create()

    def our_memfds():
        found = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                if "interpreters-call" in os.readlink("/proc/self/fd/" + fd):
                    found.append(int(fd))
            except OSError:
                pass
        return sorted(found)
    call(i, abs, 1)
    mine = our_memfds()
    assert len(mine) >= 2
    for n in range(20):
        assert call(i, abs, -n) == n
    assert our_memfds() == mine                 # the same pair, every call
    before = len(os.listdir("/proc/self/fd"))
    for n in range(50):                         # threads: each pair closed with its thread
        h = call_in_thread(i, abs, -n)
        h.join(30)
        assert h.result() == n
    deadline = time.monotonic() + 10
    while len(os.listdir("/proc/self/fd")) > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(os.listdir("/proc/self/fd")) <= before
    big = call(i, bytes, 3 << 20)               # a big frame: the memfds are emptied after
    assert len(big) == 3 << 20
    assert all(os.fstat(fd).st_size == 0 for fd in our_memfds()), our_memfds()
    i.destroy()


def test_call_from_a_signal_handler_during_a_call():
    # a handler that calls into another interpreter while call() is in progress in
    # the same thread gets memfds of its own
    out, err = assert_python_ok("""
        import signal, time
        import interpreters
        a, b = interpreters.create(), interpreters.create()
        got = []
        signal.signal(signal.SIGALRM, lambda *_: got.append(b.call(pow, 3, 3)))
        for _ in range(5):
            signal.setitimer(signal.ITIMER_REAL, 0.05)
            assert a.call(time.sleep, 0.1) is None
            assert a.call(sorted, "cba") == ["a", "b", "c"]
        time.sleep(0.1)
        print(got)
        a.destroy(); b.destroy()
    """)
    assert out == "[27, 27, 27, 27, 27]\n", (out, err)


def test_forked_child_gets_its_own_memfds():
    out, err = assert_python_ok("""
        import os, sys
        import interpreters
        i = interpreters.create()
        assert i.call(abs, -1) == 1          # this thread now keeps a pair of memfds
        i.destroy()                          # (fork is refused while interpreters exist)
        pid = os.fork()
        i = interpreters.create()
        ok = all(i.call(str, n) == str(n) for n in range(3000))
        i.destroy()
        if pid == 0:
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        print(ok, os.WEXITSTATUS(status))
    """)
    assert out == "True 0\n", (out, err)


def test_failed_calls_keep_no_memfds():
    # exceptions kept around (with their tracebacks) must not pin a thread's memfds
    import gc
    import os
    i = interpreters.create()
    call(i, abs, 1)
    before = len(os.listdir("/proc/self/fd"))
    errors = []
    for n in range(30):                       # one at a time: one interpreter
        h = call_in_thread(i, int, "x%d" % n)
        with pytest.raises(ValueError):
            h.join()                          # (the thread has ended too)
        errors.append(h.exception())
    gc.collect()
    assert all(isinstance(e, ValueError) for e in errors)
    assert len(os.listdir("/proc/self/fd")) <= before
    i.destroy()
