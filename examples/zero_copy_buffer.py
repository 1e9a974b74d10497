"""Pass a large buffer zero-copy with send_buffer().

The main interpreter sends a 64 MiB bytearray; the subinterpreter receives a
memoryview over the *same* memory (no copy), fills part of it in place, and
releases it.  The sender sees the change.  Sending 64 MiB costs about as much
as sending 64 KiB: only an address and a length cross.

An extra example: not one of PEP 554's.

Run it from the repository root:  python examples/zero_copy_buffer.py
"""

import os
import sys
import threading
import time

try:
    import interpreters
except ImportError:   # a checkout that is not installed: use the package next to us
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import interpreters

CODE = """
view = inbox.recv()                 # a memoryview over the sender's bytearray
view[:5] = b"HELLO"                 # written in place, in the sender's memory
view[-5:] = b"WORLD"
done.send(len(view))
view.release()                      # the sender's buffer is released once no view is left
del view
"""


def timed_send(interp, size):
    r, s = interpreters.create_channel()
    done_r, done_s = interpreters.create_channel()
    data = bytearray(size)
    t = threading.Thread(target=interp.run, args=(CODE,),
                         kwargs={"channels": {"inbox": r, "done": done_s}})
    t.start()
    start = time.perf_counter()
    s.send_buffer(data)             # returns once the subinterpreter holds the view
    elapsed = time.perf_counter() - start
    seen = done_r.recv(timeout=60)
    t.join()
    assert seen == size, (seen, size)
    assert data[:5] == b"HELLO" and data[-5:] == b"WORLD", "writes were not in place"
    return elapsed


def main():
    interp = interpreters.create()
    try:
        small = min(timed_send(interp, 64 * 1024) for _ in range(3))
        big = min(timed_send(interp, 64 * 1024 * 1024) for _ in range(3))
        print("send_buffer(64 KiB): %.0f us" % (small * 1e6))
        print("send_buffer(64 MiB): %.0f us  (a copy would move 1024x more bytes)"
              % (big * 1e6))
        print("the subinterpreter's writes landed in our bytearray: ok")
    finally:
        interp.destroy()


if __name__ == "__main__":
    main()
