"""``python -m interpreters``: the demo, --help, and ``run FILE [ARG ...]``.

Each case runs in a fresh process from the repository root without PYTHONPATH, as
after a fresh clone (the package is found in the current directory).
"""

import os
import subprocess
import sys
import textwrap
import zipfile

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRASH_MARKERS = ("Fatal Python error", "Segmentation fault", "Aborted", "core dumped")


def run_main(*args, timeout=60):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    p = subprocess.run([sys.executable, "-X", "faulthandler", "-m", "interpreters"] + list(args),
                       cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    for marker in CRASH_MARKERS:
        assert marker not in p.stderr, p.stderr
    return p


@pytest.fixture
def script(tmp_path):
    """Write a script; return its path."""
    def write(source, name="script.py"):
        path = tmp_path / name
        path.write_text(textwrap.dedent(source))
        return str(path)
    return write


def test_demo():
    p = run_main()
    assert p.returncode == 0, p.stderr
    assert "CPython %s" % sys.version.split()[0] in p.stdout, p.stdout
    assert "features ([x] available" in p.stdout
    assert "hello from interpreter 1" in p.stdout
    assert "counter = 42" in p.stdout
    assert "KeyError" in p.stdout
    assert "us per call" in p.stdout
    assert p.stdout.rstrip().endswith("list_all() = [Interpreter(0)]"), p.stdout


def test_features_say_why_not():
    p = run_main("features")
    assert p.returncode == 0, p.stderr
    assert sys.version.split()[0] in p.stdout
    line = [ln for ln in p.stdout.splitlines() if "own GIL" in ln][0]
    if sys.version_info < (3, 12):
        assert "needs CPython 3.12+" in line, line
    assert "channels" in p.stdout


def test_help():
    for flag in ("--help", "-h"):
        p = run_main(flag)
        assert p.returncode == 0, p.stderr
        assert p.stdout.startswith("usage: python -m interpreters")
        assert "run FILE" in p.stdout


def test_unknown_arguments():
    p = run_main("frobnicate")
    assert p.returncode == 2
    assert "usage:" in p.stderr


def test_run_success_and_argv(script):
    path = script("""
        import sys
        import interpreters
        print("argv", sys.argv)
        print("name", __name__)
        print("interp", interpreters.get_current().id)
    """)
    p = run_main("run", path, "a", "--flag", "-x")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert "argv %r" % ([path, "a", "--flag", "-x"],) in lines
    assert "name __main__" in lines
    assert "interp 0" not in lines and any(ln.startswith("interp ") for ln in lines)


def test_run_sys_exit_code(script):
    p = run_main("run", script("import sys; sys.exit(7)"))
    assert p.returncode == 7, p.stderr


def test_run_sys_exit_message(script):
    p = run_main("run", script("raise SystemExit('giving up')"))
    assert p.returncode == 1
    assert "giving up" in p.stderr


def test_run_uncaught_exception(script):
    path = script("""
        def f():
            raise ValueError("bad input")
        f()
    """)
    p = run_main("run", path)
    assert p.returncode == 1
    assert "Traceback (most recent call last)" in p.stderr
    assert "ValueError: bad input" in p.stderr
    assert 'File "%s", line 3, in f' % path in p.stderr
    assert "runpy" not in p.stderr, "the runner's own frames are hidden"


def test_run_zip_and_directory(tmp_path):
    src = "import sys; print('main of', sys.argv); sys.exit(3)\n"
    zpath = str(tmp_path / "app.zip")
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("__main__.py", src)
    dpath = tmp_path / "appdir"
    dpath.mkdir()
    (dpath / "__main__.py").write_text(src)
    for path in (zpath, str(dpath)):
        p = run_main("run", path, "x")
        assert p.returncode == 3, p.stderr
        assert "main of %r" % ([path, "x"],) in p.stdout


def test_run_joins_threads(script):
    path = script("""
        import threading, time
        def late():
            time.sleep(0.1)
            print("thread done")
        threading.Thread(target=late).start()
    """)
    p = run_main("run", path)
    assert p.returncode == 0, p.stderr
    assert "thread done" in p.stdout


def test_run_missing_file(tmp_path):
    p = run_main("run", str(tmp_path / "nope.py"))
    assert p.returncode == 2
    assert "can't open file" in p.stderr


def test_run_without_file():
    p = run_main("run")
    assert p.returncode == 2
    assert "missing FILE" in p.stderr


def test_demo_channel_round_trip():
    p = run_main()
    assert p.returncode == 0, p.stderr
    if "[x] channels" in p.stdout:
        assert "64-byte round trip:" in p.stdout, p.stdout
    else:
        assert "skipped:" in p.stdout, p.stdout


def _interrupted_run(path, use_pty, ready="ready\n"):
    """Start ``run FILE``, send SIGINT once it printed *ready*, return (rc, stderr)."""
    import signal
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    stdin = subprocess.DEVNULL
    if use_pty:
        import pty
        master, slave = pty.openpty()
        stdin = slave
    p = subprocess.Popen([sys.executable, "-X", "faulthandler", "-m", "interpreters", "run",
                          path], cwd=REPO_ROOT, env=env, stdin=stdin,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.read(len(ready)) == ready
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)   # only a hang reaches this
    finally:
        if use_pty:
            os.close(master)
            os.close(slave)
        if p.poll() is None:
            p.kill()
    for marker in CRASH_MARKERS:
        assert marker not in err, err
    return p.returncode, err


def test_run_file_ctrl_c_stops_a_cpu_bound_script(script):
    # On 3.9-3.12 the loop would hold the GIL for good without the yielder.
    path = script("""\
        print("ready", flush=True)
        def spin():
            while True:
                pass
        spin()
    """)
    rc, err = _interrupted_run(path, use_pty=False)
    assert rc != 0
    # (the signal may land on the print() line, just before the loop)
    assert "KeyboardInterrupt" in err and "script.py" in err, err


def test_run_file_ctrl_c_interrupts_input_from_a_terminal(script):
    # input() from a terminal waits in short select() slices, so Ctrl-C lands
    # without a line being typed (a read() blocked in C would wait for Enter).
    path = script("""\
        import os
        assert os.isatty(0)
        name = input("name? ")
        print("never", name)
    """)
    rc, err = _interrupted_run(path, use_pty=True, ready="name? ")
    assert rc != 0
    assert "KeyboardInterrupt" in err and "input(" in err, err


def test_version():
    p = run_main("--version")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "interpreters 0.1.0 on CPython %s\n" % sys.version.split()[0], p.stdout


def test_feature_checkboxes_have_a_legend():
    p = run_main("features")
    assert "[x] available in this Python, [ ] not available" in p.stdout, p.stdout


def test_demo_piped_into_head_ends_quietly():
    # ``python -m interpreters | head -3``: the reader goes away early; no traceback,
    # no "Exception ignored" message about the closed pipe.
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    proc = subprocess.Popen([sys.executable, "-m", "interpreters"], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()            # like head after its lines
    err = proc.stderr.read().decode()
    rc = proc.wait(timeout=60)
    assert first.startswith(b"interpreters "), first
    assert err == "", err
    assert rc in (0, 1), rc


def test_vendored_copy_runs_with_dash_m(tmp_path):
    # ``python -m yourpkg._vendor.interpreters`` runs that copy, not an installed one.
    import shutil
    vendor = tmp_path / "yourpkg" / "_vendor"
    vendor.mkdir(parents=True)
    (tmp_path / "yourpkg" / "__init__.py").write_text("")
    (vendor / "__init__.py").write_text("")
    shutil.copytree(os.path.join(REPO_ROOT, "interpreters"), str(vendor / "interpreters"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "interpreters").mkdir()          # a decoy that must not be used
    (tmp_path / "interpreters" / "__init__.py").write_text("raise ImportError('decoy')\n")
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    p = subprocess.run([sys.executable, "-m", "yourpkg._vendor.interpreters", "features"],
                       cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "channels" in p.stdout, p.stdout
