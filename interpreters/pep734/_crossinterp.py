"""What crosses interpreters in the PEP 734 face: shareable data, the unbound-item
markers, and the errors both the interpreter and the queue parts raise.

Mirrors ``concurrent.interpreters._crossinterp`` of CPython 3.14.
"""

from __future__ import annotations

import sys
import threading

# Annotations are strings (postponed); typing is imported for the checker only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional, Tuple

__all__ = ["NotShareableError", "is_shareable", "UnboundItem", "UNBOUND", "UNBOUND_ERROR",
           "UNBOUND_REMOVE", "ItemInterpreterDestroyed"]

# create() and the executor give interpreters their own GIL where CPython lets this
# package be imported in them (3.13+), as 3.14 does: on 3.12, a module that does the
# PEP 734 import line (so imports this package) cannot be imported there.
OWN_GIL = sys.version_info >= (3, 13)
EXECUTOR_OWN_GIL = OWN_GIL

# CPython 3.12 refuses _ctypes in own-GIL subinterpreters, so this package (and so
# its queues) cannot be imported there; 3.13 allows it.
QUEUES_BARRED_FROM_OWN_GIL = sys.version_info[:2] == (3, 12)


class NotShareableError(TypeError):
    """The object cannot be passed to another interpreter (neither shared nor pickled)."""


_INT_MIN, _INT_MAX = -(1 << 63), (1 << 63) - 1
_ATOMS = (type(None), bool, bytes, str, float)


def is_shareable(obj: object) -> bool:
    """Return True if *obj* is passed between interpreters without pickling.

    As in CPython 3.14: None, bool, bytes, str, int (64-bit range), float,
    tuples of those, queues (``Queue``) and ``memoryview`` (a queue shares its
    buffer).  Anything else that pickles travels pickled.  Unlike 3.14, a tuple
    holding a memoryview is not shareable (see the README's version table).
    """
    t = type(obj)
    if t in _ATOMS or t is memoryview:
        return True
    if t is int:
        return _INT_MIN <= obj <= _INT_MAX  # type: ignore[operator]
    if t is tuple:
        return all(type(x) is not memoryview and is_shareable(x)
                   for x in obj)  # type: ignore[attr-defined]
    from ._queues import Queue
    return t is Queue


class UnboundItem:
    """The type of ``UNBOUND``: what get() returns for an item whose interpreter is gone."""

    __slots__ = ("_name", "_module")

    def __init__(self, name: str, module: str) -> None:
        self._name = name
        self._module = module

    def __repr__(self) -> str:
        return "%s.%s" % (self._module, self._name)

    def __reduce__(self) -> str:
        return self._name


UnboundItem.__module__ = __name__


class _UnboundOp:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return "interpreters.pep734._queues.%s" % self._name

    def __reduce__(self) -> Tuple[Any, Tuple[str]]:
        return (_unbound_op, (self._name,))


def _unbound_op(name: str) -> object:
    return _OPS_BY_NAME[name]


UNBOUND = UnboundItem("UNBOUND", "interpreters.pep734._queues")
UNBOUND_ERROR = _UnboundOp("UNBOUND_ERROR")
UNBOUND_REMOVE = _UnboundOp("UNBOUND_REMOVE")
_OPS_BY_NAME = {"UNBOUND_ERROR": UNBOUND_ERROR, "UNBOUND_REMOVE": UNBOUND_REMOVE}

# The ops as stored with each item (3.14's numbering).
OP_UNBOUND, OP_ERROR, OP_REMOVE = 3, 2, 1
_OP_OF = {id(UNBOUND): OP_UNBOUND, id(UNBOUND_ERROR): OP_ERROR, id(UNBOUND_REMOVE): OP_REMOVE}
_ITEMS_OF = {OP_UNBOUND: UNBOUND, OP_ERROR: UNBOUND_ERROR, OP_REMOVE: UNBOUND_REMOVE}


def serialize_unbound(unbounditems: object) -> int:
    """Return the op number for UNBOUND, UNBOUND_ERROR or UNBOUND_REMOVE."""
    try:
        return _OP_OF[id(unbounditems)]
    except KeyError:
        raise NotImplementedError(
            "unsupported unbound replacement op %r (use UNBOUND, UNBOUND_ERROR or "
            "UNBOUND_REMOVE from interpreters.pep734._queues)" % (unbounditems,)) from None


def resolve_unbound(op: int) -> object:
    return _ITEMS_OF[op]


class ItemInterpreterDestroyed(Exception):
    """The interpreter that put an item has been destroyed."""


# The target of the pickling in progress in this thread, when it is an own-GIL
# interpreter on CPython 3.12: a Queue refuses to be pickled for it (see Queue).
_sending = threading.local()


def sending_to() -> Optional[int]:
    target: Optional[int] = getattr(_sending, "barred", None)
    return target


class barred_target:
    """Context manager: pickling in this thread is for interpreter *iid*."""

    __slots__ = ("_iid", "_saved")

    def __init__(self, iid: Optional[int]) -> None:
        self._iid = iid
        self._saved: Optional[int] = None

    def __enter__(self) -> None:
        self._saved = getattr(_sending, "barred", None)
        _sending.barred = self._iid

    def __exit__(self, *exc: object) -> None:
        _sending.barred = self._saved


for _obj in (NotShareableError, ItemInterpreterDestroyed):
    _obj.__module__ = "interpreters.pep734"
del _obj
