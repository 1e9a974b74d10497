"""The package type-checks: ``mypy --strict --python-version 3.8 interpreters`` finds nothing.

The ``[test]`` extra installs mypy 1.14.1 (the last line that accepts a 3.8
target), so ``pip install ".[test]"`` makes this run on every version (about
2-3 s with a cold cache).  Where mypy 1.x with 3.8-target support is not
importable the test is skipped with the reason.
"""

import os
import subprocess
import sys

import pytest

from support import REPO_ROOT

TARGET = (3, 8)


def _mypy_unavailable():
    """Return why mypy cannot run the check here, or None if it can."""
    try:
        import mypy.defaults
        import mypy.version
    except ImportError:
        return "mypy is not installed for %s (pip install \".[test]\" brings mypy==1.14.1)" % sys.executable
    version = mypy.version.__version__
    if not version.startswith("1."):
        return "mypy %s is not a 1.x release" % version
    if tuple(mypy.defaults.PYTHON3_VERSION_MIN) > TARGET:
        return ("mypy %s no longer accepts --python-version %d.%d (1.14.x is the last "
                "line that does)" % ((version,) + TARGET))
    return None


def test_mypy_strict_python38(tmp_path):
    reason = _mypy_unavailable()
    if reason:
        pytest.skip(reason)
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--python-version", "%d.%d" % TARGET,
         "--cache-dir", str(tmp_path / "mypy_cache"), "interpreters"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        universal_newlines=True, timeout=600,
        env=dict(os.environ, MYPY_FORCE_COLOR="0"))
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.startswith("Success: no issues found"), proc.stdout
