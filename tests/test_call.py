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
    assert set(_call.__all__) == {"call", "call_in_thread", "run_in_thread", "CallThread",
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
