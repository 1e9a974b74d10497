"""PEP 554 example "Pre-populate an interpreter": pay the set-up cost once.

Import and set up in an interpreter ahead of time; later ``run()`` calls find
everything in place, because an interpreter's state persists between calls.
``some_lib``, ``an_expensive_module`` and ``wait_for_request()`` are small
stand-ins (the PEP leaves them undefined): two modules written to a temporary
directory, and a function that waits for a request from a client thread.

Changed from the PEP 554 text (its 2020 revision, for Python 3.10): timing lines
around the two run() calls (to show what pre-populating saves) and
``client.start()`` (the thread that makes the request ``wait_for_request()`` waits
for); otherwise as written.

Run it from the repository root:  python examples/prepopulate_interpreter.py
"""

import os
import queue
import shutil
import sys
import tempfile
import textwrap as tw
import threading
import time

try:
    import interpreters
except ImportError:   # a checkout that is not installed: use the package next to us
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import interpreters

SOME_LIB = '''\
"""Stand-in for a library with costly set-up."""
import time
state = None
handled = 0

def set_up():
    global state
    time.sleep(0.2)                      # e.g. load a model or a config
    state = {"greeting": "hello"}

def handle_request():
    global handled
    if state is None:
        raise RuntimeError("set_up() was not called")
    handled += 1
    print("handled request %d: %s" % (handled, state["greeting"]))
'''

AN_EXPENSIVE_MODULE = '''\
"""Stand-in for a module that is slow to import."""
import time
time.sleep(0.2)
TABLE = [i * i for i in range(100000)]
'''

_requests = queue.Queue()


def wait_for_request():
    """Stand-in: block until a client sends a request."""
    return _requests.get(timeout=30)


def main():
    libdir = tempfile.mkdtemp(prefix="interpreters-example-")
    for name, text in (("some_lib", SOME_LIB), ("an_expensive_module", AN_EXPENSIVE_MODULE)):
        with open(os.path.join(libdir, name + ".py"), "w") as f:
            f.write(text)
    sys.path.insert(0, libdir)     # new interpreters start with our sys.path
    client = threading.Timer(0.1, _requests.put, args=("GET /",))
    interp = None
    try:
        # --- the PEP's example ---
        t0 = time.perf_counter()
        interp = interpreters.create()
        interp.run(tw.dedent("""
            import some_lib
            import an_expensive_module
            some_lib.set_up()
            """))
        setup = time.perf_counter() - t0
        client.start()
        wait_for_request()
        t0 = time.perf_counter()
        interp.run(tw.dedent("""
            some_lib.handle_request()
            """))
        handle = time.perf_counter() - t0

        # --- check: the request was handled with the state set up earlier ---
        interp.run("assert some_lib.handled == 1 and some_lib.state is not None")
        assert "some_lib" not in sys.modules      # imported there, not here
        print("ok: set-up took %.0f ms once; the request took %.1f ms" % (setup * 1e3, handle * 1e3))
        assert handle < setup
    finally:
        client.cancel()
        if interp is not None:
            interp.destroy()
        sys.path.remove(libdir)
        shutil.rmtree(libdir, ignore_errors=True)


if __name__ == "__main__":
    main()
