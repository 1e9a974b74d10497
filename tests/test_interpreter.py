"""Interpreter objects and run(): the API of PEP 554 (issue 2, sections 3-4)."""

import os
import pickle
import sys
import threading

import pytest

from support import (  # noqa: F401 (destroy_leftovers is an autouse fixture)
    assert_python_ok, destroy_leftovers, run_output,
)

import interpreters
from interpreters import Interpreter, InterpreterError, InterpreterNotFoundError


class Gate:
    """A pipe a sub blocks on (``os.read``) until the main interpreter opens it.

    File descriptors are process-wide, so both interpreters can use them;
    ``started`` is written by the sub once it is inside run().
    """

    def __init__(self):
        self.r, self.w = os.pipe()
        self.started_r, self.started_w = os.pipe()

    def wait_code(self):
        """Source that signals "started", then blocks until open() (or close())."""
        return ("import os as _os\n_os.write(%d, b'x')\n_os.read(%d, 1)\n"
                % (self.started_w, self.r))

    def wait_started(self):
        assert os.read(self.started_r, 1) == b"x"

    def open(self):
        os.write(self.w, b"x")

    def close(self):
        for fd in (self.r, self.w, self.started_r, self.started_w):
            try:
                os.close(fd)
            except OSError:
                pass


def run_in_thread(interp, code):
    """Start a thread running *code* in *interp*; its outcome lands in ``thread.result``."""
    def target():
        try:
            interp.run(code)
        except BaseException as exc:
            t.result = exc
        else:
            t.result = "ok"
    t = threading.Thread(target=target)
    t.result = None
    t.start()
    return t


# ---------------------------------------------------------------------------------
# module functions

class TestCreate:
    def test_returns_new_idle_interpreter(self):
        interp = interpreters.create()
        assert isinstance(interp, Interpreter)
        assert interp.id > 0
        assert interp in interpreters.list_all()
        assert not interp.is_running()

    def test_ids_are_distinct_and_never_reused(self):
        a = interpreters.create()
        b = interpreters.create()
        assert a.id != b.id and a != b
        old = a.id
        a.destroy()
        c = interpreters.create()
        assert c.id not in (old, b.id)

    def test_in_thread(self):
        made = []
        t = threading.Thread(target=lambda: made.append(interpreters.create()))
        t.start()
        t.join()
        (interp,) = made
        assert interp in interpreters.list_all()
        assert run_output(interp, "print(6 * 7)") == "42\n"
        interp.destroy()


class TestListAll:
    def test_main_only(self):
        ids = [i.id for i in interpreters.list_all()]
        assert 0 in ids
        assert all(isinstance(i, Interpreter) for i in interpreters.list_all())

    def test_after_create_and_destroy(self):
        before = set(interpreters.list_all())
        a = interpreters.create()
        b = interpreters.create()
        assert set(interpreters.list_all()) == before | {a, b}
        a.destroy()
        assert set(interpreters.list_all()) == before | {b}
        b.destroy()
        assert set(interpreters.list_all()) == before

    def test_id_order_main_first(self):
        # The PEP's list_all() order: main first, then by id (creation order);
        # CPython's own interpreter list is newest first.
        a = interpreters.create()
        b = interpreters.create()
        c = interpreters.create()
        b.destroy()
        ids = [i.id for i in interpreters.list_all()]
        assert ids[0] == 0
        assert ids == sorted(ids)
        assert ids.index(a.id) < ids.index(c.id) and b.id not in ids
        made_elsewhere = []
        t = threading.Thread(target=lambda: made_elsewhere.append(interpreters.create()))
        t.start()
        t.join()
        assert interpreters.list_all()[-1] == made_elsewhere[0]
        for i in (a, c, made_elsewhere[0]):
            i.destroy()


class TestGetCurrentAndMain:
    def test_main(self):
        assert interpreters.get_main().id == 0
        assert interpreters.get_current() == interpreters.get_main()
        assert interpreters.get_current() is interpreters.get_main()

    def test_inside_sub(self):
        interp = interpreters.create()
        out = run_output(interp, """
            import interpreters
            print(interpreters.get_current().id, interpreters.get_main().id)
        """)
        assert out.split() == [str(interp.id), "0"]

    def test_inside_sub_in_thread(self):
        interp = interpreters.create()
        res = []
        t = threading.Thread(target=lambda: res.append(run_output(
            interp, "import interpreters; print(interpreters.get_current().id)")))
        t.start()
        t.join()
        assert res == ["%d\n" % interp.id]


# ---------------------------------------------------------------------------------
# Interpreter objects

class TestInterpreterObject:
    def test_same_object_per_id(self):
        interp = interpreters.create()
        assert Interpreter(interp.id) is interp
        assert [i for i in interpreters.list_all() if i.id == interp.id] == [interp]
        assert any(i is interp for i in interpreters.list_all())
        assert Interpreter(0) is interpreters.get_main()

    def test_eq_and_hash(self):
        a = interpreters.create()
        b = interpreters.create()
        assert a == Interpreter(a.id)
        assert a != b
        assert hash(a) == hash(Interpreter(a.id))
        assert len({a, b, Interpreter(a.id)}) == 2
        assert a != a.id      # an int is not an interpreter
        assert (a == object()) is False

    def test_repr(self):
        interp = interpreters.create()
        text = repr(interp)
        assert str(interp.id) in text
        assert eval(text, {"Interpreter": Interpreter}) is interp

    def test_id_is_read_only(self):
        interp = interpreters.create()
        iid = interp.id
        with pytest.raises(AttributeError):
            interp.id = iid + 1
        with pytest.raises(AttributeError):
            del interp.id
        assert interp.id == iid

    def test_bad_ids(self):
        with pytest.raises(TypeError):
            Interpreter("1")
        with pytest.raises(TypeError):
            Interpreter(1.0)
        with pytest.raises(ValueError):
            Interpreter(-1)

    def test_pickle_round_trip(self):
        interp = interpreters.create()
        assert pickle.loads(pickle.dumps(interp)) is interp


class TestIsRunning:
    def test_idle(self):
        interp = interpreters.create()
        assert interp.is_running() is False
        interp.run("pass")
        assert interp.is_running() is False

    def test_main(self):
        assert interpreters.get_main().is_running() is True

    def test_inside_itself(self):
        interp = interpreters.create()
        out = run_output(interp, """
            import interpreters
            print(interpreters.get_current().is_running())
        """)
        assert out == "True\n"

    def test_while_running_in_another_thread(self):
        interp = interpreters.create()
        gate = Gate()
        try:
            t = run_in_thread(interp, gate.wait_code())
            gate.wait_started()
            assert interp.is_running() is True
            gate.open()
            t.join()
        finally:
            gate.close()
        assert t.result == "ok"
        assert interp.is_running() is False


# ---------------------------------------------------------------------------------
# run()

class TestRun:
    def test_main_namespace_persists(self):
        interp = interpreters.create()
        interp.run("x = 40")
        interp.run("x += 2\ndef f(): return x")
        assert run_output(interp, "print(__name__, f())") == "__main__ 42\n"

    def test_namespaces_are_separate(self):
        a = interpreters.create()
        b = interpreters.create()
        a.run("spam = 'a'")
        b.run("spam = 'b'")
        assert run_output(a, "print(spam)") == "a\n"
        assert run_output(b, "print(spam)") == "b\n"
        assert "spam" not in globals()

    def test_sys_modules_are_separate(self):
        interp = interpreters.create()
        sys.modules.pop("colorsys", None)
        interp.run("import colorsys")
        assert "colorsys" not in sys.modules
        assert run_output(interp, "import sys; print('colorsys' in sys.modules)") == "True\n"

    def test_in_thread(self):
        interp = interpreters.create()
        res = []

        def target():
            res.append((threading.get_ident(), run_output(
                interp, "import threading; print(threading.get_ident())")))
        t = threading.Thread(target=target)
        t.start()
        t.join()
        (ident, out), = res
        assert out == "%d\n" % ident     # the code ran on the calling OS thread

    def test_in_many_threads_in_turn(self):
        # Threads started one after another often reuse the ident of the last one;
        # this once made run() swap back to a dead thread's state (abort on 3.8).
        out, _ = assert_python_ok("""
            import threading, interpreters
            interp = interpreters.create()
            interp.run("hits = []")
            for n in range(30):
                t = threading.Thread(target=interp.run, args=("hits.append(%d)" % n,))
                t.start()
                t.join()
            interp.run("print(hits == list(range(30)))")
            interp.destroy()
        """)
        assert out == "True\n"

    def test_already_running_in_another_thread(self):
        interp = interpreters.create()
        gate = Gate()
        try:
            t = run_in_thread(interp, gate.wait_code())
            gate.wait_started()
            with pytest.raises(RuntimeError, match="already running"):
                interp.run("pass")
            gate.open()
            t.join()
        finally:
            gate.close()
        assert t.result == "ok"
        interp.run("pass")     # usable again

    def test_run_into_itself(self):
        interp = interpreters.create()
        out = run_output(interp, """
            import interpreters
            try:
                interpreters.get_current().run("pass")
            except RuntimeError as exc:
                print(type(exc).__name__)
        """)
        assert out == "InterpreterError\n"

    def test_main_cannot_be_run(self):
        with pytest.raises(RuntimeError):
            interpreters.get_main().run("pass")

    def test_non_str_source(self):
        interp = interpreters.create()
        for bad in (b"pass", None, 42, compile("pass", "<s>", "exec")):
            with pytest.raises(TypeError):
                interp.run(bad)
        interp.run("pass")

    def test_channels_not_a_channel(self):
        interp = interpreters.create()
        for bad in (1, "chan", object(), None, interp):
            with pytest.raises(ValueError):
                interp.run("pass", channels={"c": bad})
        interp.run("pass", channels={})
        interp.run("pass", channels=None)

    def test_non_ascii_source(self):
        interp = interpreters.create()
        assert run_output(interp, "s = 'h\u00e9llo \u4e16\u754c'; print(len(s), ascii(s))") \
            == "8 'h\\xe9llo \\u4e16\\u754c'\n"

    def test_large_source(self):
        interp = interpreters.create()
        body = "".join("v%d = %d\n" % (n, n) for n in range(20000))   # > the 64 KB io block
        interp.run(body)
        assert run_output(interp, "print(v0 + v19999)") == "19999\n"
        interp.run("pass")

    def test_source_runs_fresh_each_time(self):
        interp = interpreters.create()
        interp.run("n = 0")
        for _ in range(5):
            interp.run("n += 1")     # the same (cached) source, executed every time
        assert run_output(interp, "print(n)") == "5\n"

    def test_sys_path_is_carried(self, tmp_path, monkeypatch):
        (tmp_path / "carried_mod_xyz.py").write_text("VALUE = 'from tmp'\n")
        monkeypatch.syspath_prepend(str(tmp_path))
        interp = interpreters.create()
        assert run_output(interp, "import carried_mod_xyz; print(carried_mod_xyz.VALUE)") \
            == "from tmp\n"

    def test_threads_inside_sub(self):
        interp = interpreters.create()
        out = run_output(interp, """
            import threading
            got = []
            lock = threading.Lock()
            def work(n):
                with lock:
                    got.append(n * n)
            ts = [threading.Thread(target=work, args=(n,)) for n in range(5)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            print(sorted(got), threading.active_count())
        """)
        assert out == "[0, 1, 4, 9, 16] 1\n"
        interp.destroy()
        assert interp not in interpreters.list_all()


class TestOutput:
    def test_print_reaches_process_stdout_in_order(self):
        # stdout is a pipe here (block-buffered): "during" must still land in between.
        out, err = assert_python_ok("""
            import sys, interpreters
            interp = interpreters.create()
            print("before")
            interp.run("print('during')")
            print("after")
            interp.run("import sys; print('to stderr', file=sys.stderr)")
            print("end", file=sys.stderr)
        """)
        assert out == "before\nduring\nafter\n"
        assert err == "to stderr\nend\n"

    def test_print_from_thread_reaches_stdout(self):
        out, _ = assert_python_ok("""
            import threading, interpreters
            interp = interpreters.create()
            print("before")
            t = threading.Thread(target=interp.run, args=("print('in thread')",))
            t.start(); t.join()
            print("after")
            interp.destroy()
        """)
        assert out == "before\nin thread\nafter\n"


# ---------------------------------------------------------------------------------
# destroy() and use after destroy

class TestDestroy:
    def test_idle(self):
        interp = interpreters.create()
        interp.run("x = 1")
        interp.destroy()
        assert interp not in interpreters.list_all()

    def test_after_use_from_threads(self):
        interp = interpreters.create()
        threads = [threading.Thread(target=interp.run, args=("pass",)) for _ in range(4)]
        for t in threads:
            t.start()
            t.join()
        interp.destroy()       # drops the thread states those threads used
        assert interp not in interpreters.list_all()

    def test_from_another_thread(self):
        interp = interpreters.create()
        interp.run("import threading")
        errors = []

        def target():
            try:
                interp.destroy()
            except BaseException as exc:
                errors.append(exc)
        t = threading.Thread(target=target)
        t.start()
        t.join()
        assert errors == []
        assert interp not in interpreters.list_all()

    def test_while_running_in_another_thread(self):
        interp = interpreters.create()
        gate = Gate()
        try:
            t = run_in_thread(interp, gate.wait_code())
            gate.wait_started()
            with pytest.raises(RuntimeError, match="running"):
                interp.destroy()
            assert interp in interpreters.list_all()
            gate.open()
            t.join()
        finally:
            gate.close()
        assert t.result == "ok"
        interp.destroy()
        assert interp not in interpreters.list_all()

    def test_from_inside_itself(self):
        interp = interpreters.create()
        out = run_output(interp, """
            import interpreters
            try:
                interpreters.get_current().destroy()
            except RuntimeError as exc:
                print(type(exc).__name__)
        """)
        assert out == "InterpreterError\n"
        assert interp in interpreters.list_all()

    def test_main(self):
        with pytest.raises(RuntimeError):
            interpreters.get_main().destroy()
        assert interpreters.get_main() in interpreters.list_all()

    def test_use_after_destroy(self):
        interp = interpreters.create()
        interp.destroy()
        for call in (lambda: interp.run("pass"), interp.destroy, interp.is_running):
            with pytest.raises(InterpreterNotFoundError, match=str(interp.id)):
                call()
        assert issubclass(InterpreterNotFoundError, RuntimeError)
        assert interp.id > 0       # the object itself stays usable as a value

    def test_unknown_id(self):
        ghost = Interpreter(99999)
        with pytest.raises(InterpreterNotFoundError, match="99999"):
            ghost.run("pass")
        with pytest.raises(InterpreterNotFoundError, match="99999"):
            ghost.destroy()
        with pytest.raises(InterpreterNotFoundError, match="99999"):
            ghost.is_running()
        assert ghost not in interpreters.list_all()

    def test_refused_while_sub_daemon_thread_alive(self):
        # destroy() waits for non-daemon threads (tests/test_teardown.py), not for
        # daemon threads: CPython cannot end an interpreter while one runs.
        interp = interpreters.create()
        r, w = os.pipe()
        try:
            interp.run("""if 1:
                import os, threading
                t = threading.Thread(target=os.read, args=(%d, 1), daemon=True)
                t.start()
            """ % r)
            with pytest.raises(RuntimeError, match="daemon thread"):
                interp.destroy()
            assert interp in interpreters.list_all()
            interp.run("pass")         # still usable after the refusal
            os.write(w, b"x")
            interp.run("t.join()")
            interp.destroy()
        finally:
            os.close(w)    # unblocks the sub's thread if an assertion failed
            os.close(r)
        assert interp not in interpreters.list_all()

    def test_destroy_in_thread_while_other_interpreters_run(self):
        keep = interpreters.create()
        keep.run("n = 0")
        victims = [interpreters.create() for _ in range(3)]
        stop = threading.Event()
        errors = []
        count = [0]

        def runner():
            try:
                while True:
                    keep.run("n += 1")
                    count[0] += 1
                    if stop.is_set():
                        break
            except BaseException as exc:
                errors.append(exc)
        t = threading.Thread(target=runner)
        t.start()
        try:
            for v in victims:
                v.run("x = [1] * 100")
                v.destroy()
        finally:
            stop.set()
            t.join()
        assert errors == []
        assert not set(victims) & set(interpreters.list_all())
        assert run_output(keep, "print(n)") == "%d\n" % count[0]


class TestInterpreterError:
    def test_hierarchy(self):
        assert issubclass(InterpreterError, RuntimeError)
        assert issubclass(InterpreterNotFoundError, InterpreterError)
