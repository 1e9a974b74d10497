"""Exceptions raised by code in a subinterpreter (issue 2, section 5)."""

import pytest

from support import (  # noqa: F401 (destroy_leftovers is an autouse fixture)
    assert_python_ok, destroy_leftovers, run_output,
)

import interpreters
from interpreters import InterpreterError, RunFailedError


@pytest.fixture
def interp():
    return interpreters.create()


def run_failed(interp, code):
    """Run *code*, which must raise; return the RunFailedError."""
    with pytest.raises(RunFailedError) as info:
        interp.run(code)
    return info.value


def test_hierarchy():
    assert issubclass(RunFailedError, RuntimeError)
    assert issubclass(RunFailedError, InterpreterError)


def test_pep_example_except_keyerror(interp):
    # The PEP's own example, as written.
    caught = []
    try:
        interp.run("d = {}\nd['spam']")
    except KeyError as exc:
        caught.append(exc)
    (exc,) = caught
    assert isinstance(exc, RunFailedError)
    assert isinstance(exc, LookupError)
    assert exc.excinfo.type_name == "KeyError"


def test_excinfo_fields(interp):
    err = run_failed(interp, """if 1:
        def inner():
            raise ValueError("bad value 42")
        def outer():
            inner()
        outer()
    """)
    info = err.excinfo
    assert info.type_name == "ValueError"
    assert info.type_module == "builtins"
    assert info.msg == "bad value 42"
    formatted = info.formatted
    assert formatted.startswith("Traceback (most recent call last):")
    assert "in outer" in formatted and "in inner" in formatted
    assert formatted.index("in outer") < formatted.index("in inner")
    assert formatted.rstrip().endswith("ValueError: bad value 42")
    assert "_interpreters_sub" not in formatted and "_sub.py" not in formatted
    assert "ValueError" in str(err) and "bad value 42" in str(err)
    assert isinstance(err, ValueError)
    assert not isinstance(err, KeyError)
    # the error's own traceback goes on with the frames of the code there
    import traceback
    names = [f.name for f in traceback.extract_tb(err.__traceback__)]
    assert names[-3:] == ["<module>", "outer", "inner"], names
    assert err.__cause__ is None


def test_message_and_type_survive_as_data(interp):
    err = run_failed(interp, "raise OSError(2, 'No such file', 'x.txt')")
    assert err.excinfo.type_name in ("FileNotFoundError", "OSError")
    assert err.excinfo.msg == str(OSError(2, "No such file", "x.txt"))


def test_user_defined_exception(interp):
    err = run_failed(interp, """if 1:
        class SpamError(Exception):
            pass
        raise SpamError("eggs")
    """)
    assert err.excinfo.type_name == "SpamError"
    assert err.excinfo.type_module == "__main__"
    assert err.excinfo.msg == "eggs"
    assert "SpamError: eggs" in err.excinfo.formatted
    assert "SpamError" in str(err)
    assert type(err) is RunFailedError   # nothing builtin to mix in


def test_user_subclass_of_builtin(interp):
    caught = []
    try:
        interp.run("""if 1:
            class Bad(ValueError):
                pass
            raise Bad("nope")
        """)
    except ValueError as exc:      # the nearest builtin base is mixed in
        caught.append(exc)
    (exc,) = caught
    assert exc.excinfo.type_name == "Bad"
    assert exc.excinfo.type_module == "__main__"


def test_nested_class_qualname(interp):
    err = run_failed(interp, """if 1:
        class Outer:
            class Inner(Exception):
                pass
        raise Outer.Inner()
    """)
    assert err.excinfo.type_name == "Outer.Inner"
    assert err.excinfo.msg == ""


def test_exception_from_module(interp, tmp_path, monkeypatch):
    (tmp_path / "raiser_mod_xyz.py").write_text(
        "class ModError(Exception):\n    pass\n\ndef go():\n    raise ModError('from module')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sub = interpreters.create()   # created after the path change: it carries it
    err = run_failed(sub, "import raiser_mod_xyz\nraiser_mod_xyz.go()")
    assert err.excinfo.type_module == "raiser_mod_xyz"
    assert err.excinfo.type_name == "ModError"
    # source lines of a real file appear in the traceback
    assert "raise ModError('from module')" in err.excinfo.formatted


def test_syntax_error(interp):
    err = run_failed(interp, "def broken(:\n    pass")
    assert err.excinfo.type_name == "SyntaxError"
    assert "SyntaxError" in err.excinfo.formatted
    assert isinstance(err, SyntaxError)
    interp.run("ok = 1")     # the interpreter is still usable
    assert run_output(interp, "print(ok)") == "1\n"


def test_chained_exception(interp):
    err = run_failed(interp, """if 1:
        try:
            1 / 0
        except ZeroDivisionError as e:
            raise RuntimeError("wrapped") from e
    """)
    assert err.excinfo.type_name == "RuntimeError"
    assert "ZeroDivisionError" in err.excinfo.formatted
    assert "direct cause" in err.excinfo.formatted


def test_state_kept_after_failure(interp):
    interp.run("x = 1")
    run_failed(interp, "x = 2\nraise KeyError(x)")
    assert run_output(interp, "print(x)") == "2\n"
    interp.run("x += 1")
    assert run_output(interp, "print(x)") == "3\n"


def test_large_message(interp):
    # The report outgrows the io block (and is not a multiple of 8 bytes long).
    err = run_failed(interp, "raise ValueError('m' * 300001)")
    assert err.excinfo.msg == "m" * 300001
    interp.run("pass")
    err = run_failed(interp, "raise KeyError('small')")
    assert err.excinfo.msg == "'small'"


def test_non_ascii_message(interp):
    err = run_failed(interp, "raise ValueError('caf\u00e9 \u2603 \\udcff')")
    assert err.excinfo.msg == "caf\u00e9 \u2603 \udcff"


def test_broken_str(interp):
    err = run_failed(interp, """if 1:
        class Ugly(Exception):
            def __str__(self):
                raise RuntimeError("no str for you")
        raise Ugly()
    """)
    assert err.excinfo.type_name == "Ugly"
    assert "unprintable" in err.excinfo.msg
    assert "Ugly" in str(err)
    repr(err)
    interp.run("pass")


def test_broken_class_attributes(interp):
    # __module__ that is not a str and an exception whose args are unmarshallable
    err = run_failed(interp, """if 1:
        class Odd(Exception):
            pass
        Odd.__module__ = 12
        raise Odd(object())
    """)
    assert err.excinfo.type_name == "Odd"
    assert isinstance(err.excinfo.type_module, str)
    assert err.excinfo.msg.startswith("<object object at")


def test_excinfo_pickles(interp):
    import pickle
    err = run_failed(interp, "raise KeyError('p')")
    assert pickle.loads(pickle.dumps(err.excinfo)) == err.excinfo


# ---------------------------------------------------------------------------------
# BaseException-only types: reported, never raised here as themselves

@pytest.mark.parametrize("code, type_name, msg", [
    ("raise SystemExit(4)", "SystemExit", "4"),
    ("import sys; sys.exit(5)", "SystemExit", "5"),
    ("import sys; sys.exit('bye')", "SystemExit", "bye"),
    ("raise KeyboardInterrupt", "KeyboardInterrupt", ""),
    ("raise GeneratorExit('g')", "GeneratorExit", "g"),
])
def test_base_exceptions_are_reported(interp, code, type_name, msg):
    err = run_failed(interp, code)
    assert err.excinfo.type_name == type_name
    assert err.excinfo.msg == msg
    assert isinstance(err, Exception)
    assert not isinstance(err, (SystemExit, KeyboardInterrupt, GeneratorExit))
    interp.run("pass")


def test_base_exceptions_never_end_the_host():
    # In a fresh process: SystemExit escaping into PyRun_SimpleString would end it
    # with the sub's code, and a stray KeyboardInterrupt makes 3.11 exit by SIGINT.
    out, err = assert_python_ok("""
        import interpreters
        interp = interpreters.create()
        for code in ("raise SystemExit(4)", "import sys; sys.exit(5)", "raise SystemExit",
                     "raise KeyboardInterrupt", "raise GeneratorExit",
                     "import os, signal; os.kill(os.getpid(), 0); raise KeyboardInterrupt"):
            try:
                interp.run(code)
            except interpreters.RunFailedError as exc:
                print(exc.excinfo.type_name, isinstance(exc, (SystemExit, KeyboardInterrupt)))
            else:
                print("no error")
        interp.destroy()
        print("host alive")
    """)
    assert out.splitlines() == [
        "SystemExit False", "SystemExit False", "SystemExit False",
        "KeyboardInterrupt False", "GeneratorExit False", "KeyboardInterrupt False",
        "host alive",
    ]


def test_sys_exit_in_thread_of_sub_does_not_end_host():
    out, _ = assert_python_ok("""
        import interpreters
        interp = interpreters.create()
        interp.run('''if 1:
            import sys, threading
            t = threading.Thread(target=sys.exit, args=(7,))
            t.start()
            t.join()
        ''')
        interp.destroy()
        print("host alive")
    """)
    assert out == "host alive\n"
