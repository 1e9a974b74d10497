"""PEP 554 example "Passing objects via marshal": objects become bytes, then objects again.

A channel carries only simple data such as bytes, so the sender serializes each
object with ``marshal.dumps()`` and the receiver rebuilds it with ``marshal.loads()``:
the receiver gets an equal object of its own, never the sender's.  marshal handles the core types (numbers, str, bytes, tuples, lists, dicts, sets, None).
An empty bytes object ends the stream.  ``input`` and ``do_something`` (undefined
in the PEP) are a list of sample objects and a function that collects them.

Changed from the PEP 554 text (its 2020 revision, for Python 3.10):
``shared=dict(reader=r)`` became ``channels={'reader': r}`` (the keyword of the
PEP's API section; ``shared`` is left over from an earlier revision), and it is
passed to both run() calls, so each names the channel it uses; the end of the stream
is ``b''`` rather than ``None`` (both end the ``while data:`` loop; ``b''`` keeps
the stream all bytes); the loop closes its end when done (``reader.close()``), which
the PEP leaves out.

Run it from the repository root:  python examples/pass_objects_via_marshal.py
"""

import collections
import fractions
import marshal
import os
import sys
import textwrap as tw
import threading

try:
    import interpreters
except ImportError:   # a checkout that is not installed: use the package next to us
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import interpreters

input = [1, 2.5, "three", (4, [5, 6]), {"seven": 8}, None]


def main():
    errors = []
    threading.excepthook = lambda args: errors.append(args.exc_value)
    interp = interpreters.create()
    t = None
    try:
        # --- the PEP's example ---
        r, s = interpreters.create_channel()
        interp.run(tw.dedent("""
            import marshal
            received = []
            def do_something(obj):
                print("got", repr(obj))
                received.append(obj)
            """),
            channels={'reader': r})
        def run():
            interp.run(tw.dedent("""
                data = reader.recv()
                while data:
                    obj = marshal.loads(data)
                    do_something(obj)
                    data = reader.recv()
                reader.close()
                """),
                channels={'reader': r})
        t = threading.Thread(target=run)
        t.start()
        for obj in input:
            data = marshal.dumps(obj)
            s.send(data)
        s.send(b'')

        # --- check: the other interpreter rebuilt equal objects, in order ---
        t.join(30)
        assert not t.is_alive() and not errors, errors
        interp.run("assert received == marshal.loads(%r), received" % (marshal.dumps(input),))
        print("ok: %d objects passed to %r via marshal" % (len(input), interp))
    finally:
        if t is not None:
            t.join(10)                 # only waits after an error above
        if t is None or not t.is_alive():
            interp.destroy()


if __name__ == "__main__":
    main()
