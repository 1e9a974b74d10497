"""A vendored copy of the package: inside a zip, under another name, next to an installed copy.

Each case runs in a fresh process that imports a temporary copy of the package
as ``yourpkg._vendor.interpreters``.
"""

import os
import shutil
import zipfile

import pytest

from support import REPO_ROOT, assert_python_ok

PKG = os.path.join(REPO_ROOT, "interpreters")


@pytest.fixture
def vendored(tmp_path):
    """tmp/yourpkg/_vendor/interpreters, a copy of the package; return tmp."""
    vendor = tmp_path / "yourpkg" / "_vendor"
    vendor.mkdir(parents=True)
    (tmp_path / "yourpkg" / "__init__.py").write_text("")
    (vendor / "__init__.py").write_text("")
    shutil.copytree(PKG, str(vendor / "interpreters"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


USE = """
from yourpkg._vendor import interpreters
assert interpreters.__name__ == "yourpkg._vendor.interpreters"
interp = interpreters.create()
q = interpreters.Queue()
interp.run("q.put('hi from ' + __import__('sys').modules['yourpkg._vendor.interpreters'].__name__)",
           channels={"q": q})
print(q.get())
print(interp.call(sum, [1, 2, 3]))
interp.destroy()
"""


def test_vendored_copy_in_a_zip_works(vendored, tmp_path):
    zpath = tmp_path / "app.zip"
    with zipfile.ZipFile(str(zpath), "w") as z:
        for dirpath, _, files in os.walk(str(vendored / "yourpkg")):
            for f in files:
                full = os.path.join(dirpath, f)
                z.write(full, os.path.relpath(full, str(vendored)))
    shutil.rmtree(str(vendored / "yourpkg"))       # only the zip is left
    out, _ = assert_python_ok("import sys; sys.path.insert(0, %r)\n" % str(zpath) + USE)
    assert out.splitlines() == ["hi from yourpkg._vendor.interpreters", "6"], out
    # the code really came from the zip
    out, _ = assert_python_ok(
        "import sys; sys.path.insert(0, %r)\n"
        "from yourpkg._vendor import interpreters\n"
        "print(type(interpreters.__spec__.loader).__name__)\n" % str(zpath))
    assert out.strip() == "zipimporter", out


def test_vendored_copy_in_a_zipapp_works(vendored, tmp_path):
    import subprocess
    import sys
    (vendored / "__main__.py").write_text(USE)
    target = tmp_path / "app.pyz"
    import zipapp
    zipapp.create_archive(str(vendored), str(target))
    p = subprocess.run([sys.executable, str(target)], capture_output=True, text=True,
                       timeout=60, cwd=str(tmp_path / ".."))
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["hi from yourpkg._vendor.interpreters", "6"], p.stdout


TWO = """
import sys, threading
sys.path.insert(0, %r)
import interpreters as A
from yourpkg._vendor import interpreters as B
assert A is not B
"""


def test_two_copies_do_not_close_each_others_channels(vendored):
    out, _ = assert_python_ok(TWO % str(vendored) + """
ar, as_ = A.create_channel()
br, bs = B.create_channel()
t = threading.Thread(target=as_.send, args=(b"kept",))
t.start()
assert B.list_all_channels()[0][0].id == br.id and len(B.list_all_channels()) == 1
import gc; gc.collect()
print(ar.recv())           # was: ChannelClosedError once B had listed its channels
t.join()
t = threading.Thread(target=bs.send, args=(b"kept too",))
t.start()
assert len(A.list_all_channels()) == 1
gc.collect()
print(br.recv())
t.join()
""")
    assert out.splitlines() == ["b'kept'", "b'kept too'"], out


def test_an_end_of_one_copy_is_refused_by_the_other_with_a_clear_message(vendored):
    out, _ = assert_python_ok(TWO % str(vendored) + """
br, bs = B.create_channel()
ar, as_ = A.create_channel()
interp = A.create()
for what, f in [("run", lambda: interp.run("pass", channels={"x": br})),
                ("send", lambda: as_.send_nowait(bs)),
                ("select", lambda: A.select([br], timeout=0)),
                ("queue", lambda: A.Queue().put(br))]:
    try:
        f()
    except (ValueError, TypeError) as exc:
        print(what, "|", exc)
    else:
        print(what, "| accepted")
try:
    B.Interpreter(interp.id).run("pass")
except B.InterpreterError as exc:
    print("interp |", exc)
interp.destroy()
""")
    lines = out.splitlines()
    assert [ln.split(" |")[0] for ln in lines] == ["run", "send", "select", "queue", "interp"]
    for ln in lines[:4]:
        assert "comes from another copy of the interpreters package " \
               "(yourpkg._vendor.interpreters), not from interpreters" in ln, ln
    assert "another copy" in lines[4] and "yourpkg._vendor.interpreters" in lines[4], lines[4]


def test_exceptions_of_a_vendored_copy_are_named_and_pickled_as_its_own(vendored):
    # The package's exception classes are shown as <package>.X: for a vendored copy
    # that is its own name, so pickle finds the class of that copy (not of another).
    out, _ = assert_python_ok("""
import pickle, sys
sys.path.insert(0, %r)
from yourpkg._vendor import interpreters
interp = interpreters.create()
try:
    interp.run("1 / 0")
except ZeroDivisionError as exc:
    err = exc
interp.destroy()
for exc in (interpreters.InterpreterError("gone"), err):
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc), (type(back), type(exc))
    print(type(exc).__module__, type(exc).__name__)
""" % str(vendored))
    assert out.splitlines() == ["yourpkg._vendor.interpreters InterpreterError",
                                "yourpkg._vendor.interpreters RunFailedError"], out
