"""Never crash, never hang (issue 2, section 6).

Every case runs in a fresh process with a timeout that only a hang reaches, and
checks the exit code and that no fatal error was printed.  The machine these run
on may have 2 cores: interleavings are forced with more threads than cores, a
tiny switch interval and garbage-collector churn.
"""

import os
import sys

import pytest

from support import PYVER, assert_no_crash, assert_python_ok, run_python

C_MODULE = "_interpreters" if PYVER >= (3, 13) else "_xxsubinterpreters"

# Started first in several children: a main-interpreter thread spinning in pure
# Python (the DESIGN.md fact 8 situation) plus gc churn.
SPINNER = """
import gc, sys, threading
sys.setswitchinterval(1e-5)
_stop = threading.Event()
def _spin():
    n = 0
    while not _stop.is_set():
        n += 1
def _churn():
    while not _stop.is_set():
        a = []; a.append(a); b = {"x": [a] * 10}
        del a, b
        gc.collect(0)
for _f in (_spin, _churn):
    threading.Thread(target=_f, daemon=True).start()
"""


# ---------------------------------------------------------------------------------
# contention

def test_threads_each_with_own_interpreter_under_contention():
    out, _ = assert_python_ok(SPINNER + """
import interpreters
N, RUNS = 4, 300
interps = [interpreters.create() for _ in range(N)]
for interp in interps:
    interp.run("me = %d\\nn = 0" % interp.id)
errors = []

def worker(interp):
    try:
        for k in range(RUNS):
            # 'me' catches a run that landed in the wrong interpreter
            interp.run("assert me == %d, me\\nn += 1\\nxs = [str(i) for i in range(30)]"
                       % interp.id)
            if k % 50 == 0:
                gc.collect()
    except BaseException as exc:
        errors.append(repr(exc))

threads = [threading.Thread(target=worker, args=(i,)) for i in interps]
for t in threads:
    t.start()
for t in threads:
    t.join()
_stop.set()
for interp in interps:
    interp.run("print(me, n)")
    interp.destroy()
print("errors", errors)
print("left", [i.id for i in interpreters.list_all()])
""")
    lines = out.splitlines()
    assert lines[-2:] == ["errors []", "left [0]"]
    counts = [line.split() for line in lines[:-2]]
    assert len(counts) == 4 and all(n == "300" for _, n in counts), out


def test_create_and_run_while_main_thread_spins():
    # CPython's own module never returns from create() here on 3.9-3.12.
    out, _ = assert_python_ok(SPINNER + """
import time, interpreters
for k in range(3):
    interp = interpreters.create()
    interp.run("import time; time.sleep(0); x = %d" % k)
    interp.run("time.sleep(0.001); print('run', x)")
    interp.destroy()
_stop.set()
print("done")
""")
    assert out == "run 0\nrun 1\nrun 2\ndone\n"


def test_create_in_threads_concurrently():
    out, _ = assert_python_ok(SPINNER + """
import interpreters
made, errors = [], []
def work():
    try:
        for _ in range(3):
            i = interpreters.create()
            i.run("v = 1")
            made.append(i)
    except BaseException as exc:
        errors.append(repr(exc))
ts = [threading.Thread(target=work) for _ in range(4)]
for t in ts: t.start()
for t in ts: t.join()
_stop.set()
print(len(made), len(set(made)), errors)
for i in made:
    i.destroy()
print([i.id for i in interpreters.list_all()])
""")
    assert out == "12 12 []\n[0]\n"


# ---------------------------------------------------------------------------------
# process exit with live interpreters

def test_exit_with_idle_interpreters():
    out, _ = assert_python_ok("""
        import interpreters
        a = interpreters.create()
        b = interpreters.create()
        a.run("x = 1")
        print("bye")
    """)
    assert out == "bye\n"


@pytest.mark.parametrize("body", [
    # CPU-bound: on 3.9-3.12 the main thread gets the GIL back only thanks to the
    # sub's yielder thread (CPython's bug, DESIGN.md fact 8, other direction).
    pytest.param("while True: pass", id="spin"),
    pytest.param("import time\\nwhile True: time.sleep(0.01)", id="sleep"),
])
def test_exit_while_running_in_daemon_thread(body):
    out, _ = assert_python_ok("""
        import os, threading, interpreters
        r, w = os.pipe()
        interp = interpreters.create()
        code = "import os\\nos.write(%%d, b'x')\\n%s" %% w
        threading.Thread(target=interp.run, args=(code,), daemon=True).start()
        assert os.read(r, 1) == b"x"
        assert interp.is_running()
        print("bye")
    """ % body)
    assert out == "bye\n"


def test_exit_with_nondaemon_thread_inside_sub():
    # Like the main interpreter, exit waits for the sub's non-daemon thread.
    out, _ = assert_python_ok("""
        import interpreters
        interp = interpreters.create()
        interp.run('''if 1:
            import threading, time
            def later():
                time.sleep(0.3)
                print("sub thread done", flush=True)
            threading.Thread(target=later).start()
        ''')
        print("main done", flush=True)
    """)
    assert out == "main done\nsub thread done\n"


def test_exit_with_daemon_thread_inside_sub():
    out, _ = assert_python_ok("""
        import os, interpreters
        r, w = os.pipe()
        interp = interpreters.create()
        interp.run('''if 1:
            import os, threading, time
            def forever():
                os.write(%d, b"x")
                while True:
                    time.sleep(0.01)
            threading.Thread(target=forever, daemon=True).start()
        ''' % w)
        assert os.read(r, 1) == b"x"
        print("bye")
    """)
    assert out == "bye\n"


def test_exit_with_spinning_daemon_thread_inside_sub():
    out, _ = assert_python_ok("""
        import os, interpreters
        r, w = os.pipe()
        interp = interpreters.create()
        interp.run('''if 1:
            import os, threading
            def forever():
                os.write(%d, b"x")
                while True:
                    pass
            threading.Thread(target=forever, daemon=True).start()
        ''' % w)
        assert os.read(r, 1) == b"x"
        print("bye")
    """)
    assert out == "bye\n"


def test_sys_exit_code_with_live_interpreter():
    out, _ = assert_python_ok("""
        import sys, interpreters
        interp = interpreters.create()
        interp.run("x = 1")
        print("exiting")
        sys.exit(3)
    """, rc=3)
    assert out == "exiting\n"


def test_uncaught_exception_with_live_interpreter():
    rc, out, err = run_python("""
        import interpreters
        interp = interpreters.create()
        raise ValueError("main fails")
    """)
    assert_no_crash(err)
    assert rc == 1, err
    assert "ValueError: main fails" in err


def test_exit_from_thread_that_created_nothing():
    # The interpreter is created in a worker thread, the process exits from main.
    out, _ = assert_python_ok("""
        import threading, interpreters
        made = []
        t = threading.Thread(target=lambda: made.append(interpreters.create()))
        t.start(); t.join()
        made[0].run("import threading")
        print("bye")
    """)
    assert out == "bye\n"


def test_exit_survives_failing_destroy():
    # Whatever goes wrong in the exit hook, finalization must not find a sub.
    out, err = assert_python_ok("""
        import interpreters, interpreters._interp as core
        interp = interpreters.create()
        def broken(iid, **kwargs):
            raise OSError("simulated failure")
        core.destroy = broken
        print("bye")
    """)
    assert out == "bye\n"
    assert "simulated failure" in err


# ---------------------------------------------------------------------------------
# fork

@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork()")
def test_fork_refused_while_interpreter_alive():
    out, _ = assert_python_ok("""
        import os, interpreters
        interp = interpreters.create()
        me = os.getpid()
        try:
            pid = os.fork()
        except RuntimeError as exc:
            print(type(exc).__name__, isinstance(exc, interpreters.InterpreterError),
                  str(interp.id) in str(exc))
        else:
            if pid == 0:
                os._exit(9)
            print("forked")
        assert os.getpid() == me
        try:
            os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            print("no child")
        interp.destroy()
        pid = os.fork()
        if pid == 0:
            os._exit(7)
        _, status = os.waitpid(pid, 0)
        print("child exit", os.WEXITSTATUS(status))
    """)
    assert out == "InterpreterError True True\nno child\nchild exit 7\n"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork()")
def test_multiprocessing_fork_refused_while_interpreter_alive():
    out, _ = assert_python_ok("""
        import multiprocessing as mp, os, interpreters

        def child():
            os._exit(0)

        if __name__ == "__main__":
            ctx = mp.get_context("fork")
            interp = interpreters.create()
            p = ctx.Process(target=child)
            try:
                p.start()
            except interpreters.InterpreterError as exc:
                print("refused", "fork" in str(exc))
            else:
                p.join()
                print("started", p.exitcode)
            interp.destroy()
            p = ctx.Process(target=child)
            p.start()
            p.join()
            print("after destroy", p.exitcode)
    """)
    assert out == "refused True\nafter destroy 0\n"


def test_subprocess_works_while_interpreter_alive():
    # subprocess does not go through os.fork(): it must not be refused.
    out, _ = assert_python_ok("""
        import subprocess, sys, interpreters
        interp = interpreters.create()
        r = subprocess.run([sys.executable, "-c", "print('child ok')"],
                           capture_output=True, text=True)
        print(r.returncode, r.stdout.strip())
        interp.run("import subprocess, sys\\n"
                   "subprocess.run([sys.executable, '-c', 'print(1)'], check=True)")
        interp.destroy()
    """)
    assert out == "0 child ok\n1\n"


def test_subprocess_with_preexec_fn_refused_while_interpreter_alive():
    # preexec_fn makes the child run Python after fork(): with a live subinterpreter
    # CPython's child hangs (3.8-3.11) or crashes (3.12+) and the parent waits on it.
    out, _ = assert_python_ok("""
        import subprocess, sys, interpreters
        def noop():
            pass
        assert subprocess.run(["true"], preexec_fn=noop).returncode == 0
        interp = interpreters.create()
        try:
            subprocess.run(["true"], preexec_fn=noop)
        except interpreters.InterpreterError as exc:
            assert "preexec_fn" in str(exc) and str(interp.id) in str(exc), exc
            print("refused")
        print(subprocess.run(["true"]).returncode)      # without preexec_fn: fine
        interp.destroy()
        print(subprocess.run(["true"], preexec_fn=noop).returncode)
    """, timeout=60)
    assert out == "refused\n0\n0\n"


# ---------------------------------------------------------------------------------
# memory

RSS_CODE = """
import gc, os, sys
sys.path.insert(0, os.getcwd())
PAGE = os.sysconf("SC_PAGE_SIZE")
def rss():
    gc.collect()
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE
which = sys.argv[1] if len(sys.argv) > 1 else %r
if which == "ours":
    import interpreters
    def cycle():
        i = interpreters.create()
        i.run("x = 1")
        i.destroy()
else:
    import importlib
    m = importlib.import_module(%r)
    CODE = sys.argv[2] if len(sys.argv) > 2 else %r
    if sys.version_info >= (3, 13):
        def cycle():
            i = m.create("legacy")
            m.run_string(i, CODE)
            m.destroy(i)
    elif sys.version_info >= (3, 9):
        def cycle():
            i = m.create(isolated=False)
            m.run_string(i, CODE)
            m.destroy(i)
    else:
        def cycle():
            i = m.create()
            m.run_string(i, CODE)
            m.destroy(i)
for _ in range(10):
    cycle()
before = rss()
for _ in range(200):
    cycle()
print(rss() - before)
"""


def test_rss_growth_matches_cpython_module():
    """RSS growth of 200 create/run/destroy cycles against CPython's own module.

    Every interpreter of ours imports threading at creation (DESIGN.md fact 5:
    without it destroy hangs on 3.9/3.10/3.12), and on 3.12/3.13 CPython itself
    leaks ~33 KB per interpreter that imports threading.  The C module's cycle
    therefore runs ``import threading`` too, so both pay CPython's leak and the
    comparison measures what this package adds (the bare C module, without that
    import, grows ~7 MB less on 3.12 and 3.13: CPython's leak, not ours).
    """
    def measure(which, code=""):
        out, _ = assert_python_ok(RSS_CODE % (which if which == "ours" else "c", C_MODULE,
                                              code), timeout=120)
        return int(out.split()[-1])

    ours = measure("ours")
    theirs = measure("cmodule", "import threading\nx = 1")
    limit = theirs * 1.25 + 2 * 2**20
    if ours > limit:
        # RSS also moves with what the rest of the machine does to this process's
        # pages; a real leak shows in every run, so one outlier gets one re-measure.
        ours = min(ours, measure("ours"))
    sys.stdout.write("\nRSS growth over 200 create/destroy cycles: ours %.2f MB, %s %.2f MB "
                     "(with import threading)\n" % (ours / 2**20, C_MODULE, theirs / 2**20))
    assert ours <= limit, (ours, theirs)


# ---------------------------------------------------------------------------------
# signals

def test_sigint_to_main_while_thread_runs_sub():
    out, _ = assert_python_ok("""
        import os, signal, threading, time, interpreters
        r, w = os.pipe()
        started_r, started_w = os.pipe()
        interp = interpreters.create()
        code = ("import os, time\\nos.write(%d, b'x')\\n"
                "while True:\\n"
                "    time.sleep(0.001)\\n"
                "    try:\\n"
                "        if os.read(%d, 1): break\\n"
                "    except BlockingIOError:\\n"
                "        pass\\n") % (started_w, r)
        os.set_blocking(r, False)
        t = threading.Thread(target=interp.run, args=(code,))
        t.start()
        assert os.read(started_r, 1) == b"x"
        try:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):
                time.sleep(0.01)
        except KeyboardInterrupt:
            print("KeyboardInterrupt in main")
        os.write(w, b"x")
        t.join()
        interp.run("x = 1")
        interp.destroy()
        print("done")
    """)
    assert out == "KeyboardInterrupt in main\ndone\n"


def test_sigint_while_main_thread_waits_on_busy_interpreter():
    # Ctrl-C lands while the main thread blocks in join(); the sub keeps going.
    out, _ = assert_python_ok("""
        import os, signal, threading, interpreters
        interp = interpreters.create()
        interp.run("n = 0")
        stop = threading.Event()
        def worker():
            while True:
                interp.run("n += 1")
                if stop.is_set():
                    break
        done = threading.Event()
        t = threading.Thread(target=lambda: (worker(), done.set()))
        t.start()
        try:
            threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()
            done.wait(30)
        except KeyboardInterrupt:
            print("interrupted")
        stop.set()
        # not t.join(): on 3.9-3.12 a join() cut short by Ctrl-C marks the
        # still-running thread as stopped (CPython bpo-45274 follow-up)
        done.wait()
        interp.run("print(n > 0)")
        interp.destroy()
    """)
    assert out == "interrupted\nTrue\n"


def test_a_new_interpreter_never_gets_a_slot_whose_busy_lock_is_held():
    # destroy() frees the slot just before it releases the slot's BUSY lock: an
    # interpreter created in between (another thread) must not land there, or it
    # looks running and refuses to run until the release.
    import interpreters
    from interpreters import _arena, _capi, _interp
    old = interpreters.create()
    slot = _interp.slot_of(old.id)
    busy = _interp._A.word(slot, _arena.BUSY)
    old.destroy()
    assert _capi.lock_try(busy)             # as the destroyer still holding it
    try:
        new = interpreters.create()
        assert _interp.slot_of(new.id) != slot
        assert not new.is_running()
        new.run("pass")
    finally:
        _capi.lock_release(busy)
    new.destroy()
