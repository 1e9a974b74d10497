"""PEP 554 example "Running a module": ``runpy.run_module()`` in another interpreter.

``mod_name`` (undefined in the PEP) is a small module written to a temporary
directory; it reports which interpreter ran it by writing to a file.

Changed from the PEP 554 text (its 2020 revision, for Python 3.10): nothing;
``mod_name`` is defined above it.

Run it from the repository root:  python examples/run_a_module.py
"""

import os
import shutil
import sys
import tempfile

try:
    import interpreters
except ImportError:   # a checkout that is not installed: use the package next to us
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import interpreters

MODULE = '''\
import interpreters
here = interpreters.get_current().id
print("module %%s running in interpreter %%d" %% (__name__, here))
with open(%(report)r, "w") as f:
    f.write(str(here))
'''


def main():
    tmp = tempfile.mkdtemp(prefix="interpreters-example-")
    report = os.path.join(tmp, "report.txt")
    with open(os.path.join(tmp, "greeter.py"), "w") as f:
        f.write(MODULE % {"report": report})
    sys.path.insert(0, tmp)        # new interpreters start with our sys.path
    mod_name = "greeter"
    interp = None
    try:
        # --- the PEP's example ---
        interp = interpreters.create()
        main_module = mod_name
        interp.run(f'import runpy; runpy.run_module({main_module!r})')

        # --- check: the module ran in that interpreter, not in this one ---
        with open(report) as f:
            assert int(f.read()) == interp.id
        assert mod_name not in sys.modules
        print("ok: %s ran in %r" % (mod_name, interp))
    finally:
        if interp is not None:
            interp.destroy()
        sys.path.remove(tmp)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
