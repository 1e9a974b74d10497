"""PEP 554 example "Synchronize using a channel": make a subinterpreter wait for us.

The code in the thread blocks in ``reader.recv()`` until the main interpreter sends;
channels are unbuffered, so ``s.send()`` returns only once the object was received.
"during" therefore always prints after "after".

Changed from the PEP 554 text (its 2020 revision, for Python 3.10):
``shared=dict(reader=r)`` became ``channels={'reader': r}``: the same PEP's API
section names the keyword ``channels`` (``shared`` is left over from an earlier
revision), and that is what this package implements. The code also closes both ends
when done (``reader.close()`` there, ``s.close()`` here), which the PEP leaves out,
so the channel is released.

Run it from the repository root:  python examples/synchronize_using_a_channel.py
"""

import os
import sys
import textwrap as tw
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
    t = None
    try:
        # --- the PEP's example ---
        r, s = interpreters.create_channel()
        def run():
            interp.run(tw.dedent("""
                reader.recv()
                print("during")
                reader.close()
                """),
                channels={'reader': r})
        t = threading.Thread(target=run)
        print('before')
        t.start()
        print('after')
        s.send(b'')
        s.close()

        # --- check: the thread got the message and finished cleanly ---
        t.join(30)
        assert not t.is_alive() and not errors, errors
        print("ok: %r waited on the channel until we sent" % (interp,))
    finally:
        if t is not None:
            t.join(10)                 # only waits after an error above
        if t is None or not t.is_alive():
            interp.destroy()


if __name__ == "__main__":
    main()
