"""PEP 734 (Python 3.14 concurrent.interpreters) "Basic usage": run code in an interpreter.

The same script runs on 3.14's concurrent.interpreters and, through this package,
on CPython 3.8-3.13.  Run it from the repository root:  python examples/pep734/exec_code.py
"""

try:
    from concurrent import interpreters
except ImportError:
    from interpreters import pep734 as interpreters

from textwrap import dedent


def main():
    interp = interpreters.create()
    try:
        # Run in the current OS thread.
        interp.exec('print("spam!")')

        interp.exec("""if True:
            print('spam!')
            """)

        interp.exec(dedent("""
            print('spam!')
            """))

        # A function without arguments: its body runs in the interpreter's __main__.
        def script():
            print('spam from a function body!')
        interp.exec(script)

        # Values go into its __main__ first; state persists between calls.
        interp.prepare_main(name='eggs', count=3)
        interp.exec('words = [name] * count')
        interp.exec('print(" ".join(words))')

        # An unhandled exception there becomes ExecutionFailed here.
        try:
            interp.exec('1 / 0')
        except interpreters.ExecutionFailed as exc:
            print('caught:', exc.excinfo.formatted)
            assert exc.excinfo.type.__name__ == 'ZeroDivisionError'
    finally:
        interp.close()


if __name__ == "__main__":
    main()
