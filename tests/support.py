"""Helpers shared by the test files.

* ``run_python(code)``: run *code* in a fresh interpreter process, so that a
  crash or a hang fails one test instead of the whole run.
* ``assert_no_crash(stderr)`` / ``assert_python_ok(...)``: the checks every
  subprocess test makes.
* ``run_output(interp, code)``: run *code* in *interp* and return what it printed.
* ``destroy_leftovers``: an autouse pytest fixture (import it into a test module)
  that destroys the interpreters a test created and left behind.
"""

import os
import subprocess
import sys
import threading
import time
from textwrap import dedent

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:        # so the tests import the checkout, not an install
    sys.path.insert(0, REPO_ROOT)

import interpreters  # noqa: E402

PYVER = sys.version_info[:2]
CRASH_MARKERS = ("Fatal Python error", "Segmentation fault", "Aborted", "core dumped")


_SIGINT_PRELUDE = "import signal as _s; _s.signal(_s.SIGINT, _s.default_int_handler); del _s\n"


def run_python(code, timeout=60, env=None):
    """Run *code* in a fresh ``python -X faulthandler`` process; return (rc, stdout, stderr).

    The child runs in the repository root with the root on PYTHONPATH.  A child
    still alive after *timeout* seconds (a hang) is killed and reported as a
    test failure that shows what it printed so far.
    """
    child_env = dict(os.environ if env is None else env)
    path = child_env.get("PYTHONPATH")
    child_env["PYTHONPATH"] = REPO_ROOT + (os.pathsep + path if path else "")
    child_env.pop("PYTHONSTARTUP", None)
    # A parent started with SIGINT ignored (a background job of a non-interactive
    # shell) passes that on, and Python then installs no Ctrl-C handler: give every
    # child the normal one, so the Ctrl-C tests test the package, not the launcher.
    cmd = [sys.executable, "-X", "faulthandler", "-c", _SIGINT_PRELUDE + dedent(code)]
    try:
        p = subprocess.run(cmd, cwd=REPO_ROOT, env=child_env, capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        def text(b):
            return b.decode("utf-8", "replace") if isinstance(b, bytes) else (b or "")
        pytest.fail("child process hung (killed after %ss)\n--- stdout ---\n%s\n"
                    "--- stderr ---\n%s" % (timeout, text(exc.stdout), text(exc.stderr)))
    return p.returncode, p.stdout, p.stderr


def assert_no_crash(stderr):
    """Fail if *stderr* shows a fatal error, a segfault or an abort."""
    for marker in CRASH_MARKERS:
        assert marker not in stderr, "child crashed (%r in stderr):\n%s" % (marker, stderr)


def assert_python_ok(code, rc=0, timeout=60, env=None):
    """Run *code* in a subprocess; check its exit code and that it did not crash.

    Return (stdout, stderr).
    """
    got_rc, out, err = run_python(code, timeout=timeout, env=env)
    assert_no_crash(err)
    assert got_rc == rc, "exit code %s, expected %s\n--- stdout ---\n%s\n--- stderr ---\n%s" % (
        got_rc, rc, out, err)
    return out, err


def run_output(interp, code):
    """Run *code* in *interp* and return what it printed to ``sys.stdout``.

    The sub's ``sys.stdout`` is pointed at a pipe for the duration; exceptions
    raised by *code* propagate as RunFailedError.
    """
    r, w = os.pipe()
    chunks = []
    reader = threading.Thread(target=_drain, args=(r, chunks), daemon=True)
    reader.start()
    wrapper = dedent("""\
        import sys as _sys_
        _saved_stdout_ = _sys_.stdout
        _sys_.stdout = open(%d, "w", closefd=False)
        try:
            exec(%r)
        finally:
            _sys_.stdout.close()
            _sys_.stdout = _saved_stdout_
            del _sys_, _saved_stdout_
        """) % (w, dedent(code))
    try:
        interp.run(wrapper)
    finally:
        os.close(w)
        reader.join()
        os.close(r)
    return b"".join(chunks).decode()


def _drain(fd, chunks):
    while True:
        data = os.read(fd, 65536)
        if not data:
            return
        chunks.append(data)


def _live_ids():
    return {i.id for i in interpreters.list_all()}


def destroy_all_except(keep, timeout=10.0):
    """Destroy every interpreter whose id is not in *keep*; return the ids destroyed.

    An interpreter still running (a test's thread) or with threads of its own is
    retried until *timeout*; what is still left then is reported.
    """
    destroyed = []
    deadline = time.monotonic() + timeout
    while True:
        left = sorted(_live_ids() - set(keep) - {0})
        errors = []
        for iid in left:
            try:
                interpreters.Interpreter(iid).destroy()
                destroyed.append(iid)
            except interpreters.InterpreterNotFoundError:
                pass
            except RuntimeError as exc:
                errors.append("%d: %s" % (iid, exc))
        if not errors:
            return destroyed
        if time.monotonic() > deadline:
            raise AssertionError("could not destroy leftover interpreters: "
                                 + "; ".join(errors))
        time.sleep(0.05)


@pytest.fixture(autouse=True)
def destroy_leftovers():
    """Destroy the interpreters a test created and did not destroy itself."""
    before = _live_ids()
    yield
    destroy_all_except(before)


class TestBase:
    """Base for class-style tests: the same cleanup as ``destroy_leftovers``."""

    def setup_method(self, method):
        self._ids_before = _live_ids()

    def teardown_method(self, method):
        destroy_all_except(self._ids_before)


WAIT = 30          # generous upper bound for things that must happen (never a timing check)


def in_thread(fn, *args, **kwargs):
    """Start a thread calling fn(*args, **kwargs); its outcome lands in ``t.result``."""
    def target():
        try:
            t.result = ("ok", fn(*args, **kwargs))
        except BaseException as exc:
            t.result = ("error", exc)
    t = threading.Thread(target=target, daemon=True)
    t.result = None
    t.start()
    return t


def finish(t):
    """Join *t* and return what its function returned (re-raise what it raised)."""
    t.join(WAIT)
    assert not t.is_alive(), "thread did not finish"
    kind, value = t.result
    if kind == "error":
        raise value
    return value
