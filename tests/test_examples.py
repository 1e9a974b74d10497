"""Every script in examples/ runs to completion, each in a fresh process on this Python.

The scripts check their own outcome (assert), so rc 0 means the example did what it
says.  All are started at once and then waited for, to keep this file fast.
"""

import glob
import os
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = sorted(glob.glob(os.path.join(REPO_ROOT, "examples", "*.py")))
CRASH_MARKERS = ("Fatal Python error", "Segmentation fault", "Aborted", "core dumped")
TIMEOUT = 60

PEP_EXAMPLES = [   # one script per example in the PEP's "Examples" section
    "run_isolated_code", "run_in_a_thread", "prepopulate_interpreter", "handle_an_exception",
    "synchronize_using_a_channel", "share_a_file_descriptor", "pass_objects_via_marshal",
    "pass_objects_via_pickle", "run_a_module", "run_as_script", "thread_pool_executor",
]


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO_ROOT + (os.pathsep + env["PYTHONPATH"]
                                     if env.get("PYTHONPATH") else "")
    return env


_started = {}


def _start(path):
    return subprocess.Popen([sys.executable, "-X", "faulthandler", path], cwd=REPO_ROOT,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _result(path):
    """Return (rc, stdout, stderr) of *path*, starting every example on first use."""
    if not _started:
        for p in EXAMPLES:
            _started[p] = _start(p)
    proc = _started[path]
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail("%s hung (killed after %ss)\n--- stdout ---\n%s--- stderr ---\n%s"
                    % (os.path.basename(path), TIMEOUT, out, err))
    return proc.returncode, out, err


def teardown_module(module):
    for proc in _started.values():
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_every_pep_example_is_here():
    names = {os.path.splitext(os.path.basename(p))[0] for p in EXAMPLES}
    assert set(PEP_EXAMPLES) <= names, set(PEP_EXAMPLES) - names


@pytest.mark.parametrize("path", EXAMPLES, ids=[os.path.basename(p) for p in EXAMPLES])
def test_example_runs(path):
    rc, out, err = _result(path)
    detail = "%s\n--- stdout ---\n%s--- stderr ---\n%s" % (os.path.basename(path), out, err)
    assert rc == 0, detail
    for marker in CRASH_MARKERS + ("Exception ignored",):
        assert marker not in err, detail
    assert out.strip(), "an example prints what it shows\n" + detail


@pytest.mark.parametrize("path", EXAMPLES, ids=[os.path.basename(p) for p in EXAMPLES])
def test_example_is_a_script(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    assert text.startswith('"""'), "starts with a docstring saying what it shows"
    assert "python examples/%s" % os.path.basename(path) in text, "the docstring says how to run it"
    assert text.rstrip().endswith('if __name__ == "__main__":\n    main()')
    assert "finally:" in text, "destroys what it creates in finally"


def test_runs_without_installing():
    # No site-packages and no PYTHONPATH: the script must find the checkout itself.
    path = os.path.join(REPO_ROOT, "examples", "run_isolated_code.py")
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    p = subprocess.run([sys.executable, "-S", "-E", path], cwd=REPO_ROOT, env=env,
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[:3] == ["before", "during", "after"], p.stdout


@pytest.mark.parametrize("path", EXAMPLES, ids=[os.path.basename(p) for p in EXAMPLES])
def test_docstring_says_what_changed_from_the_pep_or_that_it_is_an_extra(path):
    import ast
    with open(path, encoding="utf-8") as f:
        doc = ast.get_docstring(ast.parse(f.read()))
    name = os.path.splitext(os.path.basename(path))[0]
    if name in PEP_EXAMPLES:
        assert "Changed from the PEP 554 text" in doc, doc
        assert "An extra example" not in doc
    else:
        assert "An extra example: not one of PEP 554's." in doc, doc
    assert "planned" not in doc, "stale: own-GIL interpreters exist on 3.12+"
