"""Every ```python block in README.md runs, each in a fresh process on this Python.

Blocks must be self-contained and destroy what they create.  The README must also
open with the two commands that CI and users rely on.
"""

import os
import re
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(REPO_ROOT, "README.md")
CRASH_MARKERS = ("Fatal Python error", "Segmentation fault", "Aborted", "core dumped")

DEMO_COMMAND = "python -m interpreters"
TEST_COMMAND = 'python -m pip install ".[test]" && python -m pytest'


def read_readme():
    with open(README, encoding="utf-8") as f:
        return f.read()


def python_blocks(text):
    """Return [(line number, source)] of the ```python blocks in *text*."""
    blocks = []
    for m in re.finditer(r"^```python[ \t]*\n(.*?)^```[ \t]*$", text, re.M | re.S):
        blocks.append((text.count("\n", 0, m.start()) + 1, m.group(1)))
    return blocks


_BLOCKS = python_blocks(read_readme())


def test_opens_with_the_two_commands():
    text = read_readme()
    lines = text.splitlines()
    assert lines[0].startswith("# "), "the README starts with its title"
    m = re.search(r"```\w*\n(.*?)```", text, re.S)
    assert m is not None and text[:m.start()].count("\n") <= 2, \
        "the first thing after the title is the commands block"
    commands = [line.split("#")[0].strip() for line in m.group(1).splitlines()]
    assert commands == [DEMO_COMMAND, TEST_COMMAND]


def test_has_the_sections_users_look_for():
    text = read_readme()
    for heading in ("## Supported versions", "## Vendoring", "## Benchmarks",
                    "## Semantics that surprise people"):
        assert heading in text


def test_has_python_blocks():
    assert len(_BLOCKS) >= 5


@pytest.mark.parametrize("lineno,source", _BLOCKS, ids=["line%d" % n for n, _ in _BLOCKS])
def test_block_runs(lineno, source):
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO_ROOT + (os.pathsep + env["PYTHONPATH"]
                                     if env.get("PYTHONPATH") else "")
    p = subprocess.run([sys.executable, "-X", "faulthandler", "-c", source], cwd=REPO_ROOT,
                       env=env, capture_output=True, text=True, timeout=60)
    detail = "README.md block at line %d\n--- stdout ---\n%s--- stderr ---\n%s" % (
        lineno, p.stdout, p.stderr)
    assert p.returncode == 0, detail
    for marker in CRASH_MARKERS:
        assert marker not in p.stderr, detail
