"""A producer/consumer pipeline over channels: main -> parser -> summer -> main.

Each stage is a subinterpreter running in its own thread, connected by channels.
Only data crosses (str and tuples here); every stage keeps its own modules and
state.  ``None`` marks the end of the stream, after which each stage closes its
ends.  The script checks the result against a plain in-process computation.

An extra example: not one of PEP 554's.

Run it from the repository root:  python examples/producer_consumer.py
"""

import os
import sys
import textwrap
import threading

try:
    import interpreters
except ImportError:   # a checkout that is not installed: use the package next to us
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import interpreters

LINES = ["%d,%d,%d" % (i, i * i, i % 7) for i in range(2000)]

PARSER = textwrap.dedent("""
    import csv                      # this stage's own copy of the module
    while True:
        line = inbox.recv()
        if line is None:
            outbox.send(None)
            break
        outbox.send(tuple(int(x) for x in next(csv.reader([line]))))
    inbox.close()
    outbox.close()
    """)

SUMMER = textwrap.dedent("""
    totals = [0, 0, 0]
    while True:
        row = inbox.recv()
        if row is None:
            break
        for i, value in enumerate(row):
            totals[i] += value
    outbox.send(tuple(totals))
    inbox.close()
    outbox.close()
    """)


def main():
    parser, summer = interpreters.create(), interpreters.create()
    raw_r, raw_s = interpreters.create_channel()
    rows_r, rows_s = interpreters.create_channel()
    out_r, out_s = interpreters.create_channel()
    errors = []

    def stage(interp, code, inbox, outbox):
        try:
            interp.run(code, channels={"inbox": inbox, "outbox": outbox})
        except Exception as exc:      # reported below; the main thread decides
            errors.append(exc)

    threads = [
        threading.Thread(target=stage, args=(parser, PARSER, raw_r, rows_s)),
        threading.Thread(target=stage, args=(summer, SUMMER, rows_r, out_s)),
    ]
    try:
        for t in threads:
            t.start()
        for line in LINES:
            raw_s.send(line)          # returns once the parser took it
        raw_s.send(None)
        totals = out_r.recv(timeout=60)
        for t in threads:
            t.join()
        assert not errors, errors
        expected = tuple(sum(int(line.split(",")[i]) for line in LINES) for i in range(3))
        print("pipeline totals:", totals)
        print("expected totals:", expected)
        assert totals == expected
    finally:
        for t in threads:
            t.join(10)
        for interp in (parser, summer):
            if not interp.is_running():
                interp.destroy()


if __name__ == "__main__":
    main()
