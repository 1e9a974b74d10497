"""PEP 554 example "Handling an exception": an error raised in another interpreter.

The exception object itself never crosses interpreters: ``run()`` raises a
``RunFailedError`` (a RuntimeError) carrying a surrogate of it and of its traceback,
``excinfo``, which formats like a ``traceback.TracebackException``.  A printed
traceback of the error goes on into the frames of the code in the other interpreter.
When the original is a builtin type, the error is also an instance of that type, so
the PEP's ``except KeyError:`` works as written.

Changed from the PEP 554 text (its 2020 revision, for Python 3.10): this file shows
"Handling an exception" and "Re-raising an exception" in one: the PEP catches
``interpreters.RunFailedError`` and, to get the original type, re-raises
``exc.__cause__``. Here the error *is* a KeyError (the original is a builtin type),
so ``except KeyError`` catches it directly; ``__cause__`` holds the traceback as
formatted there (text, not the original exception), so re-raising it would not give
a KeyError. ``except interpreters.RunFailedError`` works too, as the custom-type
case below shows.

Run it from the repository root:  python examples/handle_an_exception.py
"""

import os
import sys
import textwrap as tw

try:
    import interpreters
except ImportError:   # a checkout that is not installed: use the package next to us
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import interpreters


def main():
    interp = interpreters.create()
    caught = None
    try:
        # --- the PEP's example ---
        try:
            interp.run(tw.dedent("""
                raise KeyError
                """))
        except KeyError as exc:
            print("got the error from the subinterpreter")
            caught = exc

        # --- check: what was caught is a proxy, with a surrogate of the original ---
        assert isinstance(caught, interpreters.RunFailedError)
        assert isinstance(caught, RuntimeError)
        assert caught.excinfo.type_name == "KeyError"
        assert caught.excinfo.exc_type is KeyError
        assert "".join(caught.excinfo.format_exception_only()) == "KeyError\n"
        print("excinfo:", repr(caught.excinfo))
        print("its traceback, as formatted there:")
        print(tw.indent("".join(caught.excinfo.format()).rstrip(), "    "))

        # A non-builtin exception type is caught as RunFailedError (a RuntimeError).
        try:
            interp.run("class AppError(Exception): pass\nraise AppError('bad input')")
        except interpreters.RunFailedError as exc:
            assert exc.excinfo.type_name == "AppError", exc.excinfo
            print("custom type:", exc)
        else:
            raise AssertionError("run() did not raise")
    finally:
        interp.destroy()


if __name__ == "__main__":
    main()
