"""Code that runs while an interpreter ends (destroy() and process exit).

atexit callbacks, ``__del__`` methods, threading's atexit hooks and the
interpreter's own threads all run while an interpreter is being ended; none of
them may crash or hang the process.  Also: os.fork() inside a subinterpreter,
and exceptions a subinterpreter cannot describe.  Everything that could crash
runs in a child process (tests/support.py), checked for its exit code and for
"Fatal Python error".
"""

from textwrap import dedent

import pytest

from support import PYVER, assert_python_ok, destroy_leftovers  # noqa: F401

import interpreters

def child(main, **subs):
    """The code of a child process: *main*, after NAME = source for each of *subs*."""
    return "".join("%s = %r\n" % (k, dedent(v)) for k, v in subs.items()) + dedent(main)


# Deep enough that the old 1 MiB teardown stack overflowed on every version, and
# shallow enough that run() in the main thread (8 MiB stack) reaches the limit
# and raises RecursionError: 3.8-3.10 recurse on the C stack, 3.11+ do not.
RECURSION_LIMIT = 10000 if PYVER < (3, 11) else 50000

DEEP_SUB = """
    import sys, atexit
    sys.setrecursionlimit(%d)
    def deep(n=0):
        return deep(n + 1)
    try:
        deep()
    except RecursionError:
        print("run: RecursionError", flush=True)
    atexit.register(deep)
    class Deep:
        def __del__(self):
            deep()
    keep = Deep()
""" % RECURSION_LIMIT


def _deep_child(ending):
    main = ("import interpreters, threading\n"
            "interp = interpreters.create()\n"
            "interp.run(SUB)\n" + dedent(ending).strip() + "\n"
            "print('ended', flush=True)\n")
    return child(main, SUB=DEEP_SUB)


def _assert_recursion_reported(out, err, callbacks=2):
    assert "run: RecursionError" in out
    assert "ended" in out
    # CPython's own words for an exception in an atexit callback / a __del__
    assert err.count("RecursionError: maximum recursion depth exceeded") == callbacks, err
    assert ("Error in atexit._run_exitfuncs" in err
            or "Exception ignored in atexit callback" in err), err
    assert "Exception ignored in: <function Deep.__del__" in err, err


# ---------------------------------------------------------------------------------
# 1. the teardown stack

def test_deep_recursion_in_atexit_and_del_at_destroy():
    out, err = assert_python_ok(_deep_child("interp.destroy()"))
    _assert_recursion_reported(out, err)


def test_deep_recursion_at_destroy_from_thread_with_small_stack():
    # The thread calling destroy() has a 256 KiB stack: teardown does not use it.
    out, err = assert_python_ok(_deep_child("""
        threading.stack_size(256 * 1024)
        t = threading.Thread(target=interp.destroy)
        t.start(); t.join()
        assert not interpreters.list_all()[1:], "not destroyed"
    """))
    _assert_recursion_reported(out, err)


def test_deep_recursion_in_atexit_at_process_exit():
    out, err = assert_python_ok(_deep_child("pass"))
    _assert_recursion_reported(out, err)


def test_teardown_stack_is_at_least_a_threads_stack():
    import threading
    from interpreters import _capi
    assert _capi.end_stack_size() >= 8 << 20           # pthread's and the main default
    old = threading.stack_size(64 << 20)
    try:
        assert _capi.end_stack_size() >= 64 << 20
    finally:
        threading.stack_size(old)


@pytest.mark.skipif(PYVER >= (3, 11), reason="3.11+ do not recurse on the C stack "
                    "for Python-to-Python calls: the limit is reached first anyway")
def test_teardown_stack_follows_threading_stack_size():
    # A program that gives its threads 64 MiB may recurse that deep at teardown.
    out, err = assert_python_ok(child("""
        import threading
        threading.stack_size(64 << 20)
        import interpreters
        result = []
        def work():
            interp = interpreters.create()
            interp.run(SUB)
            interp.destroy()
            result.append("ended")
        t = threading.Thread(target=work)
        t.start(); t.join()
        print(*result, flush=True)
    """, SUB="""
        import sys, atexit
        sys.setrecursionlimit(60000)
        def deep(n=0):
            return deep(n + 1)
        try:
            deep()
        except RecursionError:
            print("run: RecursionError", flush=True)
        atexit.register(deep)
    """))
    assert "run: RecursionError" in out and "ended" in out
    assert err.count("RecursionError: maximum recursion depth exceeded") == 1, err


# ---------------------------------------------------------------------------------
# 2. threads started while the interpreter ends

THREAD_STARTERS = """
    import atexit, os, threading, _thread
    def start_in_atexit():
        threading.Thread(target=print, args=("atexit thread ran",)).start()
    def start_raw_in_atexit():
        _thread.start_new_thread(print, ("raw thread ran",))
    atexit.register(start_in_atexit)
    atexit.register(start_raw_in_atexit)
    class Starter:
        def __del__(self, Thread=threading.Thread, write=os.write):   # 3.8: builtins gone
            Thread(target=write, args=(1, b"del thread ran\\n")).start()
    keep = Starter()
"""


def _assert_threads_refused(out, err):
    assert "ended" in out, err
    assert "thread ran" not in out + err
    # 3.8 empties the builtins before __main__'s objects die: there Thread() itself
    # fails in __del__ (NameError), before it could start anything.
    refused = 2 if PYVER < (3, 9) else 3
    assert err.count("RuntimeError: can't create new thread at interpreter shutdown") == refused, err
    assert "Exception ignored in: <function Starter.__del__" in err, err


def test_threads_started_at_destroy_are_refused():
    out, err = assert_python_ok(child("""
        import interpreters
        interp = interpreters.create()
        interp.run(SUB)
        interp.destroy()
        assert not interpreters.list_all()[1:], "not destroyed"
        print("ended", flush=True)
    """, SUB=THREAD_STARTERS))
    _assert_threads_refused(out, err)


def test_threads_started_at_process_exit_are_refused():
    out, err = assert_python_ok(child("""
        import interpreters
        interp = interpreters.create()
        interp.run(SUB)
        print("ended", flush=True)
    """, SUB=THREAD_STARTERS))
    _assert_threads_refused(out, err)


def test_threads_can_start_again_after_a_refused_destroy():
    # A destroy() that cannot complete (a daemon thread) leaves threads allowed.
    out, err = assert_python_ok(child("""
        import interpreters
        interp = interpreters.create()
        interp.run(SUB)
        try:
            interp.destroy()
        except interpreters.InterpreterError as exc:
            print("refused:", exc, flush=True)
        interp.run(SUB2)
        interp.destroy()
        print("ended", flush=True)
    """, SUB="""
        import threading
        stop = threading.Event()
        daemon = threading.Thread(target=stop.wait, daemon=True)
        daemon.start()
    """, SUB2="""
        stop.set(); daemon.join()
        t = threading.Thread(target=print, args=("thread ran",)); t.start(); t.join()
    """))
    assert "refused: cannot destroy interpreter 1: 1 daemon thread(s)" in out
    assert "thread ran" in out and "ended" in out


# ---------------------------------------------------------------------------------
# 3. threading's atexit hooks (concurrent.futures)

POOL = """
    import time
    from concurrent.futures import ThreadPoolExecutor
    pool = ThreadPoolExecutor(4)
    futures = [pool.submit(time.sleep, 0.01) for _ in range(20)]
    last = pool.submit(print, "last task ran", flush=True)
"""


def test_thread_pool_left_open_at_exit():
    out, err = assert_python_ok(child("""
        import interpreters
        interp = interpreters.create()
        interp.run(SUB)
        print("main done", flush=True)
    """, SUB=POOL))
    assert sorted(out.splitlines()) == ["last task ran", "main done"], out


def test_thread_pool_left_open_at_destroy():
    out, err = assert_python_ok(child("""
        import interpreters
        interp = interpreters.create()
        interp.run(SUB)
        interp.destroy()
        print("destroyed", flush=True)
    """, SUB=POOL))
    # The queued tasks ran to their end before the interpreter ended.
    assert out == "last task ran\ndestroyed\n", out


@pytest.mark.skipif(PYVER < (3, 9), reason="threading._register_atexit is 3.9+")
def test_threading_atexit_hook_runs_before_threads_are_waited_for():
    out, err = assert_python_ok(child("""
        import interpreters
        interp = interpreters.create()
        interp.run(SUB)
        interp.destroy()
        print("destroyed", flush=True)
    """, SUB="""
        import atexit, threading
        stop = threading.Event()
        def work():
            stop.wait()
            print("worker ends", flush=True)
        worker = threading.Thread(target=work)
        worker.start()
        threading._register_atexit(lambda: (print("hook", flush=True), stop.set()))
        atexit.register(print, "atexit", flush=True)
    """))
    assert out == "hook\nworker ends\natexit\ndestroyed\n", out


# ---------------------------------------------------------------------------------
# 4. destroy() waits for non-daemon threads; Ctrl-C; daemon threads

WORKER = """
    import os, threading, atexit
    def worker():
        os.read(READ_FD, 1)           # until the main interpreter says so
        print("worker finished", flush=True)
    worker_thread = threading.Thread(target=worker)
    worker_thread.start()
    atexit.register(print, "atexit ran", flush=True)
    # destroy() joins the thread: say so once, through a pipe
    _join = worker_thread.join
    def join(timeout=None, told=[]):
        if not told:
            told.append(os.write(JOINING_FD, b"j"))
        return _join(timeout)
    worker_thread.join = join
"""

# Runs WORKER in a new interpreter; *when_joining* runs in a thread once destroy()
# waits for the worker (read end of the worker's pipe: w).
WORKER_MAIN = """
    import os, signal, threading, interpreters
    r, w = os.pipe()
    joining_r, joining_w = os.pipe()
    interp = interpreters.create()
    interp.run(SUB.replace("READ_FD", str(r)).replace("JOINING_FD", str(joining_w)))
    def when_joining(action):
        def wait_then_act():
            os.read(joining_r, 1)
            action()
        t = threading.Thread(target=wait_then_act)
        t.start()
        return t
"""


def test_destroy_waits_for_non_daemon_threads():
    out, err = assert_python_ok(child(dedent(WORKER_MAIN) + dedent("""
        def release():
            print("releasing", flush=True)
            os.write(w, b"x")
        t = when_joining(release)
        interp.destroy()
        t.join()
        print("destroyed", flush=True)
    """), SUB=WORKER))
    assert out == "releasing\nworker finished\natexit ran\ndestroyed\n", out


def test_ctrl_c_interrupts_destroy_waiting_for_threads():
    out, err = assert_python_ok(child(dedent(WORKER_MAIN) + dedent("""
        t = when_joining(lambda: os.kill(os.getpid(), signal.SIGINT))
        try:
            interp.destroy()
        except KeyboardInterrupt:
            print("interrupted", flush=True)
        t.join()
        # alive and usable, its thread untouched, its atexit callback not run
        assert interp in interpreters.list_all()
        interp.run(SUB2)
        os.write(w, b"x")
        interp.destroy()
        print("destroyed", flush=True)
    """), SUB=WORKER, SUB2="""
        assert worker_thread.is_alive()
        t = threading.Thread(target=print, args=("new thread ran",)); t.start(); t.join()
    """))
    assert out == ("interrupted\nnew thread ran\nworker finished\natexit ran\n"
                   "destroyed\n"), out


def test_destroy_refuses_while_daemon_thread_runs():
    out, err = assert_python_ok(child("""
        import interpreters
        interp = interpreters.create()
        interp.run(SUB)
        try:
            interp.destroy()
        except interpreters.InterpreterError as exc:
            print("refused:", exc, flush=True)
        interp.run('print("still usable", daemon.is_alive(), flush=True)')
        interp.run('stop.set(); daemon.join()')
        interp.destroy()
        print("destroyed", flush=True)
    """, SUB="""
        import threading, atexit
        stop = threading.Event()
        daemon = threading.Thread(target=stop.wait, daemon=True)
        daemon.start()
        atexit.register(print, "atexit ran", flush=True)
    """))
    lines = out.splitlines()
    assert lines[0].startswith("refused: cannot destroy interpreter 1: 1 daemon thread(s) "
                               "started in it are still running"), out
    assert lines[1:] == ["still usable True", "atexit ran", "destroyed"], out


def test_daemon_thread_at_exit_abandons_quietly():
    out, err = assert_python_ok(child("""
        import interpreters
        interp = interpreters.create()
        interp.run(SUB)
        print("main done", flush=True)
    """, SUB="""
        import threading
        threading.Thread(target=threading.Event().wait, daemon=True).start()
    """))
    assert out == "main done\n"


# ---------------------------------------------------------------------------------
# 5. os.fork() inside a subinterpreter

FORKS = {
    "os.fork": "import os\npid = os.fork()\nif pid == 0: os._exit(0)\nos.waitpid(pid, 0)",
    "posix.fork": "import posix\npid = posix.fork()\nif pid == 0: posix._exit(0)",
    "os.forkpty": "import os\npid, fd = os.forkpty()\nif pid == 0: os._exit(0)",
    "multiprocessing fork": (
        "import multiprocessing\n"
        "p = multiprocessing.get_context('fork').Process(target=print)\n"
        "p.start(); p.join()"),
    "subprocess preexec_fn": (
        "import subprocess, sys\n"
        "subprocess.run([sys.executable, '-c', 'pass'], preexec_fn=lambda: None)"),
}


@pytest.mark.parametrize("isolated", [False, True], ids=["shared-gil", "isolated"])
def test_fork_in_subinterpreter_raises(isolated):
    if isolated and PYVER < (3, 12):
        pytest.skip("isolated interpreters are 3.12+")
    out, err = assert_python_ok(child("""
        import os, interpreters
        FORKS = %r
        pid = os.getpid()
        interp = interpreters.create(isolated=%r)
        for name, code in FORKS.items():
            try:
                interp.run(code)
            except interpreters.RunFailedError as exc:
                assert os.getpid() == pid
                assert isinstance(exc, RuntimeError), exc
                print(name, "refused:", exc.excinfo.type_name, exc.excinfo.msg, flush=True)
            else:
                print(name, "NOT refused", flush=True)
        interp.run(SUB)
        interp.destroy()
        print("ended", flush=True)
    """ % (FORKS, isolated), SUB="""
        import subprocess, sys
        out = subprocess.run([sys.executable, "-c", "print('child ok')"], capture_output=True)
        print(out.stdout.decode().strip(), flush=True)
    """))
    lines = out.splitlines()
    assert lines[-2:] == ["child ok", "ended"], out
    refused = lines[:-2]
    assert len(refused) == len(FORKS) and all(" refused: RuntimeError " in l for l in refused), out
    assert "not supported" in lines[0] and "fork" in lines[0], lines[0]
    if not isolated:
        # ours names the interpreter and the rule
        assert "only the main interpreter may fork" in lines[0], lines[0]


# ---------------------------------------------------------------------------------
# 6. exceptions that cannot be described

class TestUndescribableExceptions:
    SETUP = """
class Meta(type):
    def __getattribute__(cls, name):
        if name in ("__qualname__", "__name__", "__module__", "__mro__"):
            raise AttributeError(name)
        return type.__getattribute__(cls, name)
class Odd(KeyError, metaclass=Meta):
    pass
class BadStr(Exception):
    def __str__(self):
        raise ValueError("no str")
class StrSub(str):
    pass
class SubStr(Exception):
    def __str__(self):
        return StrSub("a str subclass")
"""

    def test_every_run_raises_run_failed_error(self):
        interp = interpreters.create()
        interp.run(self.SETUP)
        for _ in range(3):                      # the slow path, then the fast one
            with pytest.raises(interpreters.RunFailedError) as info:
                interp.run("raise Odd('boom')")
            assert info.value.excinfo.type_name == "Odd"
            assert "boom" in info.value.excinfo.msg
            assert isinstance(info.value, KeyError)
        with pytest.raises(interpreters.RunFailedError) as info:
            interp.run("raise BadStr()")
        assert info.value.excinfo.type_name == "BadStr"
        assert "unprintable" in info.value.excinfo.msg
        with pytest.raises(interpreters.RunFailedError) as info:
            interp.run("raise SubStr()")
        assert info.value.excinfo.msg == "a str subclass"
        interp.run("x = 1")                     # still usable
        interp.destroy()

    def test_from_another_thread_too(self):
        from support import finish, in_thread
        interp = interpreters.create()
        interp.run(self.SETUP)

        def twice():
            names = []
            for _ in range(2):
                try:
                    interp.run("raise Odd('boom')")
                except interpreters.RunFailedError as exc:
                    names.append(exc.excinfo.type_name)
            return names
        assert finish(in_thread(twice)) == ["Odd", "Odd"]
        interp.destroy()
