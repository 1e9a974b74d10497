"""The package's shape: public names, and where ctypes and the crossing may live."""

import ast
import ctypes
import os

import pytest

from support import (  # noqa: F401 (destroy_leftovers is an autouse fixture)
    PYVER, REPO_ROOT, destroy_leftovers, run_output,
)

import interpreters
from interpreters import _capi

PKG_DIR = os.path.join(REPO_ROOT, "interpreters")
PEP_NAMES = {"create", "list_all", "get_current", "get_main", "Interpreter",
             "RunFailedError", "InterpreterError", "InterpreterNotFoundError"}


def package_sources():
    out = {}
    for name in sorted(os.listdir(PKG_DIR)):
        if name.endswith(".py"):
            with open(os.path.join(PKG_DIR, name), encoding="utf-8") as f:
                out[name] = f.read()
    assert "_capi.py" in out and "__init__.py" in out
    return out


def test_all_names_exist():
    assert len(interpreters.__all__) == len(set(interpreters.__all__))
    missing = [n for n in interpreters.__all__ if not hasattr(interpreters, n)]
    assert missing == []
    assert PEP_NAMES <= set(interpreters.__all__)


def test_star_import():
    ns = {}
    exec("from interpreters import *", ns)
    assert PEP_NAMES <= set(ns)
    assert "_capi" not in ns and "_interp" not in ns


def test_public_objects_module():
    for name in ("Interpreter", "create", "list_all", "get_current", "get_main"):
        assert getattr(interpreters, name).__module__ == "interpreters", name


def test_only_capi_imports_ctypes():
    offenders = []
    for name, src in package_sources().items():
        for node in ast.walk(ast.parse(src, name)):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                mods = [node.module or ""]
            else:
                continue
            if any(m.split(".")[0] in ("ctypes", "_ctypes") for m in mods) and name != "_capi.py":
                offenders.append("%s:%d" % (name, node.lineno))
    assert offenders == []
    assert "import ctypes" in package_sources()["_capi.py"]


def test_thread_state_swap_only_in_capi():
    where = [name for name, src in package_sources().items() if "PyThreadState_Swap" in src]
    assert where == ["_capi.py"]


def test_sub_runtime_does_not_load_ctypes():
    # DESIGN.md facts 13 and 15: ctypes in a sub costs memory and fails to load
    # in own-GIL interpreters on 3.12.
    interp = interpreters.create()
    out = run_output(interp, "import sys; print('ctypes' in sys.modules, "
                             "'_ctypes' in sys.modules)")
    assert out == "False False\n"


# ---------------------------------------------------------------------------------
# _capi: the prototype table and its version gates

def _has_in_range_twin(proto):
    return any(p.name == proto.name and p.since <= PYVER < p.until for p in _capi._PROTOTYPES)


def test_in_range_prototypes_bind():
    for proto in _capi._PROTOTYPES:
        if proto.since <= PYVER < proto.until:
            fn = getattr(_capi, proto.name)
            assert isinstance(fn, ctypes._CFuncPtr), proto.name
            if proto.argtypes is not None and proto.gil == "held":
                assert fn.restype is proto.restype, proto.name


def test_out_of_range_prototypes_raise_the_gate():
    gated = [p for p in _capi._PROTOTYPES
             if not p.since <= PYVER < p.until and not _has_in_range_twin(p)]
    for proto in gated:
        with pytest.raises(NotImplementedError) as info:
            getattr(_capi, proto.name)()
        msg = str(info.value)
        assert proto.symbol in msg
        assert "%d.%d" % proto.since in msg
        assert "%d.%d" % PYVER in msg


@pytest.mark.parametrize("since, until", [((99, 0), (99, 5)), ((3, 0), (3, 1))])
def test_unavailable_message(since, until):
    proto = _capi._Proto("Py_Imaginary", None, (), since=since, until=until)
    stub = _capi._unavailable(proto)
    assert stub.__name__ == "Py_Imaginary"
    with pytest.raises(NotImplementedError) as info:
        stub(1, 2)
    msg = str(info.value)
    assert msg == "Py_Imaginary() needs CPython %d.%d to %d.%d, this is %d.%d" % (
        since + (until[0], until[1] - 1) + PYVER)


def test_pythonapi_is_not_mutated():
    # Prototypes are bound on a private handle: ctypes.pythonapi keeps its defaults.
    for proto in _capi._PROTOTYPES:
        if proto.dll != "python" or not proto.since <= PYVER < proto.until:
            continue
        shared = getattr(ctypes.pythonapi, proto.symbol)
        assert shared is not getattr(_capi, proto.name)
        assert shared.restype is ctypes.c_int, proto.symbol
        assert shared.argtypes is None, proto.symbol
