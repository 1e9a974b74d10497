"""excinfo as the PEP's surrogate (traceback.TracebackException), and the traceback a
user sees when code in another interpreter fails or is interrupted."""

import os
import pickle
import signal
import subprocess
import sys
import textwrap

import pytest

from support import (  # noqa: F401 (destroy_leftovers is an autouse fixture)
    PYVER, REPO_ROOT, WAIT, assert_no_crash, assert_python_ok, destroy_leftovers,
    run_output, run_python,
)

import interpreters
from interpreters import RunFailedError

MODULE = '''\
def inner(key):
    return {"a": 1}[
        key]

def outer(key):
    try:
        inner(key)
    except KeyError as e:
        raise ValueError("bad key %r" % key) from e
'''

# Runs in the sub: fails, after keeping what the sub's own TracebackException says.
FAILING = '''if 1:
    import traceback, surrogate_mod
    try:
        surrogate_mod.outer("b")
    except ValueError as e:
        te = traceback.TracebackException.from_exception(e)
        ref = repr((list(te.format()), list(te.format(chain=False)),
                    list(te.format_exception_only()),
                    [(f.filename, f.lineno, f.name, f.line) for f in te.stack],
                    list(te.stack.format()), list(te.__cause__.format()),
                    te.__suppress_context__))
        raise
'''


@pytest.fixture
def failed(tmp_path, monkeypatch):
    (tmp_path / "surrogate_mod.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    interp = interpreters.create()
    with pytest.raises(ValueError) as info:
        interp.run(FAILING)
    ref = eval(run_output(interp, "print(ref)"))
    return info.value, ref


def test_formats_like_traceback_exception(failed):
    err, (full, alone, only, frames, stack_lines, cause_full, suppress) = failed
    info = err.excinfo
    assert list(info.format()) == full
    assert list(info.format(chain=True)) == full
    assert list(info.format(chain=False)) == alone
    assert list(info.format_exception_only()) == only == ["ValueError: bad key 'b'\n"]
    assert [(f.filename, f.lineno, f.name, f.line) for f in info.stack] == frames
    assert [f.name for f in info.stack] == ["<module>", "outer"]
    assert list(info.stack.format()) == stack_lines       # source lines, 3.11+ carets
    assert info.__suppress_context__ is suppress is True
    assert list(info.__cause__.format()) == cause_full
    assert info.__cause__.exc_type_str == "KeyError"
    assert [f.name for f in info.__cause__.stack] == ["outer", "inner"]
    assert info.__cause__.__cause__ is None
    assert info.__context__ is None     # it is the cause: TracebackException shows it once
    assert info.formatted == "".join(full)
    assert str(info) == "bad key 'b'" == info.msg


def test_a_print_exception_style_helper_works_unchanged(failed):
    import io
    import traceback

    def print_exception(te, file):          # what formatting code does with one
        for line in te.format():
            print(line, file=file, end="")
    err, (full, *_) = failed
    ours = io.StringIO()
    print_exception(err.excinfo, ours)
    assert ours.getvalue() == "".join(full)
    theirs = io.StringIO()                  # a real TracebackException of the error here
    print_exception(traceback.TracebackException.from_exception(err), theirs)
    assert "surrogate_mod.py" in theirs.getvalue()   # the frames there are shown here too
    printed = io.StringIO()
    err.excinfo.print(file=printed)
    assert printed.getvalue() == "".join(full)


def test_type_fields_and_exc_type(tmp_path, monkeypatch):
    (tmp_path / "spam_mod_q.py").write_text(
        "class SpamError(LookupError):\n    pass\nclass Plain(Exception):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    interp = interpreters.create()
    with pytest.raises(LookupError) as e:
        interp.run("import spam_mod_q\nraise spam_mod_q.SpamError('eggs')")
    info = e.value.excinfo
    assert info.exc_type_str == info.type_display == "spam_mod_q.SpamError"
    assert (info.exc_type_qualname, info.exc_type_module) == ("SpamError", "spam_mod_q")
    cls = info.exc_type                     # a stand-in, not the class (it stays there)
    assert (cls.__name__, cls.__qualname__, cls.__module__) == (
        "SpamError", "SpamError", "spam_mod_q")
    assert cls.__interpreters_stand_in__ is True
    assert issubclass(cls, LookupError) and info.exc_type is cls
    with pytest.raises(RunFailedError) as e:
        interp.run("class Outer:\n  class Inner(Exception): pass\nraise Outer.Inner(1)")
    assert e.value.excinfo.exc_type_str == "Outer.Inner"
    assert e.value.excinfo.exc_type.__qualname__ == "Outer.Inner"
    with pytest.raises(KeyError) as e:
        interp.run("{}[1]")
    assert e.value.excinfo.exc_type is KeyError     # builtin: the class itself


def test_implicit_context_and_chained_errors():
    interp = interpreters.create()
    with pytest.raises(RunFailedError) as e:
        interp.run("try:\n    1/0\nexcept ZeroDivisionError:\n    raise OSError(5, 'io')")
    err = e.value
    info = err.excinfo
    assert info.__cause__ is None and not info.__suppress_context__
    assert info.__context__.type_name == "ZeroDivisionError"
    assert "During handling of the above exception" in info.formatted
    # the error's own chain mirrors it: a RunFailedError per remote exception
    assert isinstance(err.__context__, RunFailedError)
    assert isinstance(err.__context__, ZeroDivisionError)
    assert err.__context__.excinfo == info.__context__


@pytest.mark.skipif(PYVER < (3, 11), reason="exception groups exist from 3.11")
def test_exception_group_members():
    interp = interpreters.create()
    with pytest.raises(RunFailedError) as e:
        interp.run("raise ExceptionGroup('two', [KeyError('k'), ValueError('v')])")
    info = e.value.excinfo
    assert info.exc_type is ExceptionGroup
    assert [m.exc_type_str for m in info.exceptions] == ["KeyError", "ValueError"]
    assert "| KeyError: 'k'" in info.formatted and "ExceptionGroup: two" in info.formatted


def test_pickles_and_reprs():
    interp = interpreters.create()
    with pytest.raises(KeyError) as e:
        interp.run("def f():\n    raise KeyError('p')\nf()")
    err = e.value
    info = err.excinfo
    again = pickle.loads(pickle.dumps(info))
    assert again == info and list(again.format()) == list(info.format())
    copy = pickle.loads(pickle.dumps(err))
    assert isinstance(copy, KeyError) and isinstance(copy, RunFailedError)
    assert copy.excinfo == info and str(copy) == str(err) == "KeyError: 'p'"
    assert repr(err) == "RunFailedError(\"KeyError: 'p'\")"     # names the original type
    assert type(err).__module__ == "interpreters"
    for name in ("RunFailedError", "InterpreterError", "ExceptionInfo", "ChannelClosedError"):
        assert getattr(interpreters, name).__module__ == "interpreters"


def test_traceback_imported_only_after_a_failure():
    interp = interpreters.create()
    interp.run("pass")
    assert run_output(interp, "import sys; print('traceback' in sys.modules)") == "False\n"
    with pytest.raises(RunFailedError):
        interp.run("raise ValueError")
    assert run_output(interp, "import sys; print('ctypes' in sys.modules)") == "False\n"


# ---------------------------------------------------------------------------------
# what a user sees on stderr

INTERNALS = ("_capi", "_interp.py", "_chain", "_deque", "_call.py", "_callrt", "_sub.py",
             "During handling of the above exception")


def assert_one_clean_traceback(err):
    assert err.count("Traceback (most recent call last):") == 1, err
    for word in INTERNALS:
        assert word not in err, (word, err)


def run_script(tmp_path, code):
    """Run *code* as a script file in a child; return (rc, stderr)."""
    path = tmp_path / "child_script.py"
    path.write_text(textwrap.dedent(code))
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    p = subprocess.run([sys.executable, str(path)], cwd=REPO_ROOT, env=env,
                       capture_output=True, text=True, timeout=WAIT)
    assert_no_crash(p.stderr)
    return p.returncode, p.stderr


def test_stderr_of_a_failing_run(tmp_path):
    rc, err = run_script(tmp_path, """
        import interpreters
        interp = interpreters.create()
        interp.run('if 1:\\n def g():\\n  raise ValueError("bad")\\n g()\\n')
    """)
    assert rc == 1
    assert_one_clean_traceback(err)
    lines = err.rstrip().splitlines()
    assert lines[-3:] == ['  File "<string>", line 4, in <module>',
                          '  File "<string>", line 3, in g',
                          "interpreters.RunFailedError: ValueError: bad"], err
    assert "interp.run(" in err        # the caller's line


def test_stderr_of_a_failing_call(tmp_path):
    rc, err = run_script(tmp_path, """
        import interpreters
        def parse(text):
            return int(text)
        interpreters.create().call(parse, "x")
    """)
    assert rc == 1
    assert_one_clean_traceback(err)
    lines = err.rstrip().splitlines()
    assert lines[-3].endswith("line 4, in parse") and "return int(text)" in lines[-2], err
    assert "<module>" not in err.split(".call(parse")[-1]      # no frame of the call runtime
    assert lines[-1].startswith("interpreters.RunFailedError: ValueError: invalid literal")


def interrupted(code):
    """Run *code* in a child; Ctrl-C it once it printed 'ready'; return (rc, stderr)."""
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    p = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO_ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "ready\n"
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=WAIT)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert_no_crash(err)
    return p.returncode, err


def test_stderr_after_ctrl_c():
    rc, err = interrupted("""
        import interpreters
        interp = interpreters.create()
        interp.run('''if 1:
            import sys, time
            def wait_forever():
                print("ready", flush=True)
                while True:
                    time.sleep(0.01)
            wait_forever()
        ''')
    """)
    assert rc == -signal.SIGINT, err
    assert_one_clean_traceback(err)
    lines = err.rstrip().splitlines()
    assert lines[-1] == "KeyboardInterrupt"
    assert any(line.startswith('  File "<string>", line ') and line.endswith(", in wait_forever")
               for line in lines[-3:]), err


def test_cli_run_file_prints_the_traceback_once(tmp_path):
    script = tmp_path / "fails.py"
    script.write_text("def f():\n    raise ValueError('bad input')\nf()\n")
    p = subprocess.run([sys.executable, "-m", "interpreters", "run", str(script)],
                       cwd=REPO_ROOT, capture_output=True, text=True, timeout=WAIT)
    assert p.returncode == 1
    assert_one_clean_traceback(p.stderr)
    assert p.stderr.rstrip().endswith("ValueError: bad input")


def test_cli_run_file_ctrl_c(tmp_path):
    script = tmp_path / "waits.py"
    script.write_text("import time\ndef wait():\n    print('ready', flush=True)\n"
                      "    while True:\n        time.sleep(0.01)\nwait()\n")
    rc, err = interrupted("import sys, runpy; sys.argv = ['interpreters', 'run', %r]; "
                          "runpy.run_module('interpreters', run_name='__main__')" % str(script))
    assert rc == -signal.SIGINT, err
    assert_one_clean_traceback(err)
    assert err.rstrip().splitlines()[-1] == "KeyboardInterrupt"
    assert "in wait" in err and "runpy" not in err
