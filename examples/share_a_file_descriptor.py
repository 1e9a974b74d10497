"""PEP 554 example "Sharing a file descriptor": pass an fd number through a channel.

File objects cannot cross interpreters, but the process's file descriptors are
shared by all of them: send the number, and the other side opens its own file
object over it (``closefd=False``, so the sender keeps ownership).  The PEP's
'spamspamspam' file is written to a temporary directory.

Changed from the PEP 554 text (its 2020 revision, for Python 3.10): ``shared=``
became ``channels=`` (the keyword of the PEP's API section; ``shared`` is left over
from an earlier revision); the names the PEP uses without defining them are the ones
it defines (``reader=r1`` for ``reader=r``, ``s1.send(fd)`` for ``s.send(fd)``,
``r2.recv()`` for ``r.recv()``); the code there imports ``os`` (nothing is imported
in a new interpreter) and opens the fd with ``closefd=False`` (else the file object
there would close our fd when collected); it keeps the lines for the check.

Run it from the repository root:  python examples/share_a_file_descriptor.py
"""

import os
import shutil
import sys
import tempfile
import textwrap as tw
import threading

try:
    import interpreters
except ImportError:   # a checkout that is not installed: use the package next to us
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import interpreters


def main():
    errors = []
    threading.excepthook = lambda args: errors.append(args.exc_value)
    tmp = tempfile.mkdtemp(prefix="interpreters-example-")
    spam = os.path.join(tmp, 'spamspamspam')
    with open(spam, 'w') as f:
        f.write("spam\nspam\nspam\n")
    interp = interpreters.create()
    t = None
    try:
        # --- the PEP's example ---
        r1, s1 = interpreters.create_channel()
        r2, s2 = interpreters.create_channel()
        def run():
            interp.run(tw.dedent("""
                import os
                fd = int.from_bytes(
                        reader.recv(), 'big')
                lines = []
                for line in os.fdopen(fd, closefd=False):
                    print(line)
                    lines.append(line)
                writer.send(b'')
                """),
                channels={'reader': r1, 'writer': s2})
        t = threading.Thread(target=run)
        t.start()
        with open(spam) as infile:
            fd = infile.fileno().to_bytes(1, 'big')
            s1.send(fd)
            r2.recv()

        # --- check: the other interpreter read the whole file through our fd ---
        t.join(30)
        assert not t.is_alive() and not errors, errors
        interp.run("assert lines == ['spam\\n'] * 3, lines")
        print("ok: %r read the file through fd %d" % (interp, int.from_bytes(fd, 'big')))
    finally:
        if t is not None:
            t.join(10)                 # only waits after an error above
        if t is None or not t.is_alive():
            interp.destroy()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
