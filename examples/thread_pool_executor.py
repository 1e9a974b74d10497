"""PEP 554 example "Running in a thread pool executor": one interpreter per task.

Each ``interp.run`` is submitted to a ``ThreadPoolExecutor``, so the five
interpreters run their code in five threads. These interpreters share the GIL, so
this isolates the tasks; it does not make CPU-bound work parallel. For that, on
CPython 3.12+, use ``create(isolated=True)`` (own GIL, see
``parallel_cpu_bound.py``) or
``interpreters.InterpreterPoolExecutor(isolated=True)``.

Changed from the PEP 554 text (its 2020 revision, for Python 3.10): the closing
parenthesis missing from the PEP's ``pool.submit(...)`` line is added, and the
futures are kept so that the check can see each outcome.

Run it from the repository root:  python examples/thread_pool_executor.py
"""

import concurrent.futures
import os
import sys

try:
    import interpreters
except ImportError:   # a checkout that is not installed: use the package next to us
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import interpreters


def main():
    interps = []
    futures = []
    try:
        # --- the PEP's example (futures kept, so the check can see each outcome) ---
        interps = [interpreters.create() for i in range(5)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(interps)) as pool:
            print('before')
            for interp in interps:
                futures.append(pool.submit(interp.run, 'print("starting"); print("stopping")'))
            print('after')

        # --- check: every run() finished without error, and all are idle ---
        for future in futures:
            assert future.result(timeout=30) is None     # re-raises a RunFailedError
        assert not any(interp.is_running() for interp in interps)
        print("ok: %d interpreters ran in a thread pool" % len(interps))
    finally:
        for interp in interps:
            interp.destroy()


if __name__ == "__main__":
    main()
