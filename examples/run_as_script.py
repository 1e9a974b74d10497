"""PEP 554 example "Running as script (including zip archives & directories)".

``runpy.run_path()`` in another interpreter runs a script the way ``python PATH``
does: a ``.py`` file, a zip archive with a ``__main__.py``, or a directory with a
``__main__.py``.  ``path_name`` (undefined in the PEP) takes each of the three,
made in a temporary directory; each reports which interpreter ran it in a file.

As written in the PEP, the script's ``__name__`` is ``"<run_path>"``; pass
``run_name="__main__"`` to run its ``if __name__ == "__main__":`` block, as
``python -m interpreters run PATH [ARG ...]`` does from the shell.

Changed from the PEP 554 text (its 2020 revision, for Python 3.10): nothing; it runs
once for each of the three kinds of ``path_name``.

Run it from the repository root:  python examples/run_as_script.py
"""

import os
import shutil
import sys
import tempfile
import zipfile

try:
    import interpreters
except ImportError:   # a checkout that is not installed: use the package next to us
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import interpreters

SCRIPT = '''\
import interpreters
here = interpreters.get_current().id
print("%(kind)s script: __name__ == %%r, in interpreter %%d" %% (__name__, here))
with open(%(report)r, "w") as f:
    f.write("%%s %%d" %% (__name__, here))
'''


def make_scripts(tmp):
    """Return [(kind, path_name, report file)] for a file, a zip and a directory."""
    made = []
    for kind in ("file", "zip", "directory"):
        report = os.path.join(tmp, kind + ".report")
        text = SCRIPT % {"kind": kind, "report": report}
        if kind == "file":
            path = os.path.join(tmp, "script.py")
            with open(path, "w") as f:
                f.write(text)
        elif kind == "zip":
            path = os.path.join(tmp, "app.zip")
            with zipfile.ZipFile(path, "w") as zf:
                zf.writestr("__main__.py", text)
        else:
            path = os.path.join(tmp, "appdir")
            os.mkdir(path)
            with open(os.path.join(path, "__main__.py"), "w") as f:
                f.write(text)
        made.append((kind, path, report))
    return made


def main():
    tmp = tempfile.mkdtemp(prefix="interpreters-example-")
    interps = []
    try:
        for kind, path_name, report in make_scripts(tmp):
            # --- the PEP's example ---
            interp = interpreters.create()
            interps.append(interp)
            main_script = path_name
            interp.run(f"import runpy; runpy.run_path({main_script!r})")

            # --- check: it ran there, as a script's __main__ would ---
            with open(report) as f:
                name, iid = f.read().split()
            assert (name, int(iid)) == ("<run_path>", interp.id), (name, iid)
        print("ok: a file, a zip archive and a directory ran in %r" % (interps,))
    finally:
        for interp in interps:
            interp.destroy()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
