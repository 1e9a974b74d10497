"""PEP 554 example "Run isolated code": run source code in a new interpreter.

The code runs in the calling thread, in the new interpreter's own ``__main__``;
``run()`` returns when it is done, so "during" prints between "before" and "after".

Changed from the PEP 554 text (its 2020 revision, for Python 3.10): nothing; the
lines after it check that the code ran in the other interpreter.

Run it from the repository root:  python examples/run_isolated_code.py
"""

import os
import sys

try:
    import interpreters
except ImportError:   # a checkout that is not installed: use the package next to us
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import interpreters


def main():
    interp = interpreters.create()
    try:
        # --- the PEP's example ---
        print('before')
        interp.run('print("during")')
        print('after')

        # --- check: the code ran in the other interpreter, which has its own __main__ ---
        interp.run("import interpreters; assert interpreters.get_current().id == %d"
                   % interp.id)
        interp.run("secret = 42")
        assert "secret" not in globals()
        interp.run("assert secret == 42 and 'interp' not in dir()")
        print("ok: ran in %r, whose __main__ is not ours" % (interp,))
    finally:
        interp.destroy()


if __name__ == "__main__":
    main()
