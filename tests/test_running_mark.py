"""CPython's own interpreters module and ours agree on which interpreter is running.

From 3.12, CPython's ``_xxsubinterpreters`` (3.12) / ``_interpreters`` (3.13) read a
running-main mark of the interpreter: while our run() executes code there, that
module must see the interpreter as running and refuse to run code in it; while
it runs code there, our is_running() says so and our run() refuses.
"""

import os

import pytest

from support import (  # noqa: F401 (destroy_leftovers is an autouse fixture)
    PYVER, WAIT, destroy_leftovers, finish, in_thread, run_output,
)

import interpreters

pytestmark = pytest.mark.skipif(
    PYVER < (3, 12), reason="CPython's module reads a running-main mark only from 3.12 "
                            "(before, it inspects the thread states, and refuses "
                            "interpreters with several of them)")

# Its refusal: RuntimeError on 3.12, its own InterpreterError (an Exception) on 3.13.
if PYVER >= (3, 13):
    import _interpreters as cmod

    def c_exec(iid, src):
        err = cmod.exec(iid, src)
        if err is not None:      # 3.13 returns the uncaught exception as data
            raise RuntimeError("exec failed: %r" % (err,))
elif PYVER >= (3, 12):
    import _xxsubinterpreters as cmod

    def c_exec(iid, src):
        cmod.run_string(iid, src)


def blocked_in(interp, run):
    """Start *run*(interp, code) in a thread, the code blocked in the interpreter.

    Returns (thread, release): release() lets the code finish.  Returns only once
    the code runs there (it wrote to a pipe).
    """
    started_r, started_w = os.pipe()
    go_r, go_w = os.pipe()
    code = ("import os\nos.write(%d, b'x')\nos.read(%d, 1)\nos.close(%d)\nos.close(%d)\n"
            % (started_w, go_r, started_w, go_r))
    t = in_thread(run, interp, code)
    assert os.read(started_r, 1) == b"x"       # it is running there now
    os.close(started_r)

    def release():
        os.write(go_w, b"x")
        os.close(go_w)
        return finish(t)
    return t, release


def test_cpython_module_sees_our_run():
    interp = interpreters.create()
    assert not cmod.is_running(interp.id)
    _, release = blocked_in(interp, lambda i, code: i.run(code))
    try:
        assert interp.is_running()
        assert cmod.is_running(interp.id)
        with pytest.raises(Exception, match="already running"):
            c_exec(interp.id, "ran_by_c = True")
    finally:
        release()
    assert not cmod.is_running(interp.id)
    assert not interp.is_running()
    c_exec(interp.id, "ran_by_c = True")      # free again: it runs
    assert run_output(interp, "print(ran_by_c, 'ran_by_c' in dir())") == "True True\n"


def test_our_run_sees_cpython_module():
    interp = interpreters.create()
    _, release = blocked_in(interp, lambda i, code: c_exec(i.id, code))
    try:
        assert cmod.is_running(interp.id)
        assert interp.is_running()
        with pytest.raises(interpreters.InterpreterError, match="already running"):
            interp.run("ran_by_us = True")
    finally:
        release()
    assert not interp.is_running()
    interp.run("ran_by_us = True")           # free again: it runs
    assert run_output(interp, "print(ran_by_us)") == "True\n"


def test_mark_cleared_after_failure_and_from_threads():
    # The mark is cleared whatever the code did, and set from any calling thread.
    interp = interpreters.create()
    with pytest.raises(interpreters.RunFailedError):
        interp.run("raise ValueError")
    assert not cmod.is_running(interp.id)
    _, release = blocked_in(interp, lambda i, code: i.run(code))
    try:
        assert cmod.is_running(interp.id)
    finally:
        release()
    for _ in range(3):       # the prebuilt (fast) path too
        interp.run("pass")
        assert not cmod.is_running(interp.id)
    c_exec(interp.id, "pass")


def test_isolated_interpreter():
    interp = interpreters.create(isolated=True)
    _, release = blocked_in(interp, lambda i, code: i.run(code))
    try:
        assert cmod.is_running(interp.id)
        with pytest.raises(Exception, match="already running"):
            c_exec(interp.id, "pass")
    finally:
        release()
    assert not cmod.is_running(interp.id)
    interp.run("pass")
