"""Output of another interpreter lands where the caller looks.

While run() or call() waits, what the other interpreter writes to ``sys.stdout``
and ``sys.stderr`` (also from its threads) goes to the caller's ``sys.stdout`` /
``sys.stderr`` when those are not the process's own streams (redirect_stdout,
pytest's capture, IDLE, Jupyter); otherwise, and outside run(), it goes to file
descriptors 1 and 2 as always.
"""

import contextlib
import io
import sys

import pytest

from support import (  # noqa: F401 (destroy_leftovers is an autouse fixture)
    PYVER, assert_python_ok, destroy_leftovers,
)

import interpreters


@pytest.fixture
def interp():
    i = interpreters.create()
    yield i
    i.destroy()


class NotebookStream(io.TextIOBase):
    """Like ipykernel's OutStream: a text stream with write() and no file descriptor."""

    def __init__(self):
        self.parts = []

    def writable(self):
        return True

    def write(self, s):
        self.parts.append(s)
        return len(s)

    def value(self):
        return "".join(self.parts)


def test_redirect_stdout_sees_run_output(interp):
    f = io.StringIO()
    with contextlib.redirect_stdout(f):
        interp.run("print('hello from', __import__('interpreters').get_current().id)")
    assert f.getvalue() == "hello from %d\n" % interp.id


def test_redirect_stdout_sees_call_output(interp):
    f = io.StringIO()
    with contextlib.redirect_stdout(f):
        assert interp.call(print, "called", 42) is None
    assert f.getvalue() == "called 42\n"


def test_capsys_sees_run_output(interp, capsys):
    interp.run("import sys; print('out'); print('err', file=sys.stderr)")
    captured = capsys.readouterr()
    assert captured.out == "out\n"
    assert captured.err == "err\n"


def test_notebook_like_streams_get_stdout_and_stderr_in_order(interp):
    out, err = NotebookStream(), NotebookStream()
    both = NotebookStream()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        interp.run("import sys\nfor i in range(3):\n    print('o', i)\n"
                   "    print('e', i, file=sys.stderr)\n")
    assert out.value() == "o 0\no 1\no 2\n"
    assert err.value() == "e 0\ne 1\ne 2\n"
    with contextlib.redirect_stdout(both), contextlib.redirect_stderr(both):
        interp.run("import sys\nfor i in range(3):\n    print('o', i)\n"
                   "    print('e', i, file=sys.stderr)\n")
    assert both.value() == "o 0\ne 0\no 1\ne 1\no 2\ne 2\n"


def test_output_before_an_exception_is_delivered_and_the_error_raised(interp):
    f = io.StringIO()
    with contextlib.redirect_stdout(f):
        with pytest.raises(ZeroDivisionError):
            interp.run("print('before'); 1/0; print('never')")
    assert f.getvalue() == "before\n"


def test_threads_of_the_interpreter_printing_during_run(interp):
    f = io.StringIO()
    with contextlib.redirect_stdout(f):
        interp.run("""if 1:
            import sys, threading
            sys.setswitchinterval(1e-6)
            def work(n):
                for i in range(200):       # one write() per line (print makes two)
                    sys.stdout.write("t%d %d\\n" % (n, i))
            ts = [threading.Thread(target=work, args=(n,)) for n in range(4)]
            for t in ts: t.start()
            for i in range(200):
                sys.stdout.write("main %d\\n" % i)
            for t in ts: t.join()
            sys.setswitchinterval(0.005)
            """)
    lines = f.getvalue().splitlines()
    assert sorted(lines) == sorted(["t%d %d" % (n, i) for n in range(4) for i in range(200)]
                                   + ["main %d" % i for i in range(200)])
    for who in ["main"] + ["t%d" % n for n in range(4)]:     # each writer's order kept
        mine = [ln for ln in lines if ln.split()[0] == who]
        assert mine == ["%s %d" % (who, i) for i in range(200)]


def test_one_megabyte(interp):
    f = io.StringIO()
    with contextlib.redirect_stdout(f):
        interp.run("import sys\nfor i in range(1024):\n    sys.stdout.write('%04d' % i + 'x' * 1019 + '\\n')\n")
    value = f.getvalue()
    assert len(value) == 1024 * 1024
    assert value.splitlines()[1023].startswith("1023x")


def test_code_that_replaces_sys_stdout_itself_keeps_its_choice(interp):
    f = io.StringIO()
    with contextlib.redirect_stdout(f):
        interp.run("import sys, io\nmine = io.StringIO()\nsaved = sys.stdout\n"
                   "sys.stdout = mine\nprint('private')\nsys.stdout = saved\nprint('public')")
    assert f.getvalue() == "public\n"


@pytest.mark.skipif(PYVER < (3, 12), reason="isolated interpreters need CPython 3.12+")
def test_isolated_interpreter_output_is_captured_too():
    i = interpreters.create(isolated=True)
    try:
        f = io.StringIO()
        with contextlib.redirect_stdout(f):
            i.run("print('own GIL')")
        assert f.getvalue() == "own GIL\n"
    finally:
        i.destroy()


def test_fd_output_unchanged_and_in_order_when_streams_are_the_process_ones():
    out, err = assert_python_ok("""
        import sys, interpreters
        i = interpreters.create()
        print("host 1")
        i.run("print('sub 1'); import sys; print('sub err', file=sys.stderr)")
        print("host 2")
        i.run("import os; os.write(1, b'raw fd\\\\n')")
        print("host 3")
        i.destroy()
        """)
    assert out == "host 1\nsub 1\nhost 2\nraw fd\nhost 3\n", out
    assert "sub err\n" in err


def test_redirected_output_stays_off_the_file_descriptors():
    out, err = assert_python_ok("""
        import contextlib, io, sys, interpreters
        i = interpreters.create()
        f = io.StringIO()
        with contextlib.redirect_stdout(f):
            i.run("print('captured')")
        print("got", repr(f.getvalue()))
        i.destroy()
        """)
    assert out == "got 'captured\\n'\n", out


def test_output_after_run_returned_goes_to_the_file_descriptors():
    # A thread of the interpreter that prints after run() returned writes to fd 1,
    # as without redirection: nothing is lost, nothing is written to a stale target.
    out, err = assert_python_ok("""
        import contextlib, io, os, sys, interpreters
        i = interpreters.create()
        r, w = os.pipe()
        f = io.StringIO()
        with contextlib.redirect_stdout(f):
            i.run('''if 1:
                import os, sys, threading
                def later():
                    os.read(%d, 1)
                    print("late line")
                    sys.stdout.flush()
                t = threading.Thread(target=later)
                t.start()
                print("during run")
                ''' % r)
        os.write(w, b"x")
        i.run("t.join()")
        print("captured", repr(f.getvalue()))
        sys.stdout.flush()
        i.destroy()
        """)
    assert out == "late line\ncaptured 'during run\\n'\n", out


def test_ctrl_c_during_a_captured_run_still_delivers_the_output():
    out, err = assert_python_ok("""
        import contextlib, io, os, signal, threading, interpreters
        i = interpreters.create()
        r, w = os.pipe()
        def interrupt():
            os.read(r, 1)                     # the code printed and is now waiting
            os.kill(os.getpid(), signal.SIGINT)
        threading.Thread(target=interrupt).start()
        f = io.StringIO()
        try:
            with contextlib.redirect_stdout(f):
                i.run("import os, time\\nprint('before')\\nos.write(%d, b'x')\\n"
                      "while True:\\n    time.sleep(0.01)\\n" % w)
        except KeyboardInterrupt:
            print("KeyboardInterrupt", repr(f.getvalue()))
        i.run("print('usable')")
        i.destroy()
        """)
    assert out == "KeyboardInterrupt 'before\\n'\nusable\n", out


def test_bytes_written_to_sys_stdout_buffer_are_captured_in_order(interp):
    f = io.StringIO()
    with contextlib.redirect_stdout(f):
        interp.run("import sys\nprint('text', flush=True)\n"
                   "sys.stdout.buffer.write('caf\\u00e9\\n'.encode()[:4])\n"
                   "sys.stdout.buffer.write('caf\\u00e9\\n'.encode()[4:])\n"
                   "sys.stdout.buffer.flush()\nprint('more')")
    assert f.getvalue() == "text\ncaf\u00e9\nmore\n"
