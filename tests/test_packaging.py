"""What a user of the distribution sees: metadata, license, typing extra, dir()."""

import os
import re
import subprocess
import sys

from support import REPO_ROOT


def _pyproject():
    with open(os.path.join(REPO_ROOT, "pyproject.toml")) as f:
        return f.read()


def test_requires_python_matches_the_supported_versions():
    assert 'requires-python = ">=3.8,<3.14"' in _pyproject()


def test_classifiers_name_license_status_versions_and_platform():
    text = _pyproject()
    for c in ["License :: OSI Approved :: MIT License", "Development Status :: ",
              "Operating System :: POSIX :: Linux"] + [
              "Programming Language :: Python :: 3.%d\"" % m for m in range(8, 14)]:
        assert c in text, c


def test_license_file_is_mit_and_matches_the_metadata():
    with open(os.path.join(REPO_ROOT, "LICENSE")) as f:
        assert f.readline().strip() == "MIT License"
    assert 'license = {text = "MIT"}' in _pyproject()


def test_mypy_is_in_the_test_extra():
    extra = re.search(r"^test = \[(.*)\]$", _pyproject(), re.M).group(1)
    assert '"mypy==1.14.1"' in extra, extra


def test_gitignore_covers_virtualenvs():
    with open(os.path.join(REPO_ROOT, ".gitignore")) as f:
        assert ".venv*/" in f.read().split()


def test_dir_lists_lazy_names_and_hides_typing_helpers():
    out = subprocess.run(
        [sys.executable, "-c", "import interpreters; print(' '.join(dir(interpreters)))"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    names = out.stdout.split()
    assert "InterpreterPoolExecutor" in names and "BrokenInterpreterPool" in names, out
    assert "TYPE_CHECKING" not in names and "annotations" not in names, names
    assert "create" in names and "__version__" in names


def test_help_opens_with_a_quick_start():
    import interpreters
    doc = interpreters.__doc__
    assert doc.index("Quick start") < doc.index("Layout"), doc[:300]
    assert "interpreters.create()" in doc.split("Layout")[0]
