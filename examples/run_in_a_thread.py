"""PEP 554 example "Run in a thread": keep the caller going while code runs elsewhere.

``run()`` blocks the thread that calls it, so to keep going, call it from a
``threading.Thread``.  "after" may print before or after "during".

Changed from the PEP 554 text (its 2020 revision, for Python 3.10): nothing; the
lines after it join the thread and check that the run ended without error.

Run it from the repository root:  python examples/run_in_a_thread.py
"""

import os
import sys
import threading

try:
    import interpreters
except ImportError:   # a checkout that is not installed: use the package next to us
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import interpreters


def main():
    errors = []   # an exception in a thread is only printed: collect it to check below
    threading.excepthook = lambda args: errors.append(args.exc_value)
    interp = interpreters.create()
    try:
        # --- the PEP's example ---
        def run():
            interp.run('print("during")')
        t = threading.Thread(target=run)
        print('before')
        t.start()
        print('after')

        # --- check: the thread finished, without error, and the interpreter is idle ---
        t.join(30)
        assert not t.is_alive(), "run() in the thread did not finish"
        assert not errors, errors
        assert not interp.is_running()
        print("ok: %r ran in thread %r and is idle again" % (interp, t.name))
    finally:
        interp.destroy()


if __name__ == "__main__":
    main()
