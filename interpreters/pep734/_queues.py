"""Cross-interpreter queues, as ``concurrent.interpreters._queues`` of CPython 3.14.

A Queue here is a face of this package's ``interpreters.Queue`` with the same
id: the same arena-resident queue, its blocking waits (woken, never polled),
float timeouts and Ctrl-C.  What this layer adds:

* items: shareable data (see is_shareable()) travels as is; anything else is
  pickled here and unpickled by get(); queues inside an item travel as queues;
* every item carries the id of the interpreter that put it and its unbound
  op, and get() applies UNBOUND / UNBOUND_ERROR to an item whose interpreter
  is gone (interpreter ids are never reused); shareable data put by the main
  interpreter, which outlives every item, goes untagged.  Items put with
  UNBOUND_REMOVE are removed when their interpreter is destroyed, as in 3.14
  (the core's drop_interp() does it, from the op put() stores with the item),
  so qsize() and full() no longer count them;
* a memoryview is not copied: put() shares its buffer (the core's buffer
  path, as send_buffer()) and get() returns a memoryview onto the same
  memory, flat and of unsigned bytes (``.cast()`` it back);
* a queue's default ``unbounditems`` travels with the Queue object when it is
  passed to another interpreter.
"""

from __future__ import annotations

import pickle
import queue
import time
import weakref

from .. import _arena, _channels, _exc, _interp
from . import _crossinterp
from ._crossinterp import UNBOUND, UNBOUND_ERROR, UNBOUND_REMOVE, NotShareableError

# Annotations are strings (postponed); typing is imported for the checker only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, List, Optional, Tuple

__all__ = [
    "UNBOUND", "UNBOUND_ERROR", "UNBOUND_REMOVE",
    "create", "list_all",
    "Queue",
    "QueueError", "QueueNotFoundError", "QueueEmpty", "QueueFull",
    "ItemInterpreterDestroyed",
]


class QueueError(RuntimeError):
    """Indicates that a queue-related error happened."""


class QueueNotFoundError(QueueError):
    """The queue does not exist (never created, or every holder dropped it)."""


class QueueEmpty(QueueError, queue.Empty):
    """Raised from get_nowait() when the queue is empty.

    It is also raised from get() if it times out.
    """


class QueueFull(QueueError, queue.Full):
    """Raised from put_nowait() when the queue is full.

    It is also raised from put() if it times out.
    """


class ItemInterpreterDestroyed(QueueError, _crossinterp.ItemInterpreterDestroyed):
    """Raised from get() and get_nowait()."""


# Item layout in the underlying queue: (_TAG, putter id, op, kind, payload).  Items
# without the tag were put through the package's PEP 554 face: get() returns them
# as they are.
_TAG = "interpreters.pep734 item"
_SHARED, _PICKLED, _WITH_QUEUES = 0, 1, 2
_INT_MIN, _INT_MAX = -(1 << 63), (1 << 63) - 1


def _has_queue(obj: object) -> bool:
    t = type(obj)
    if t is Queue:
        return True
    return t is tuple and any(_has_queue(x) for x in obj)  # type: ignore[attr-defined]


def _to_core(obj: Any) -> Any:
    if type(obj) is Queue:
        return obj._core
    if type(obj) is tuple:
        return tuple(_to_core(x) for x in obj)
    return obj


def _from_core(obj: Any) -> Any:
    if type(obj) is _channels.Queue:
        return Queue._wrap(obj)
    if type(obj) is tuple:
        return tuple(_from_core(x) for x in obj)
    return obj


_ME = _interp.current_id()      # this interpreter (alive while this code runs)


def _encode(obj: object, op: int) -> Any:
    me = _ME
    if type(obj) is memoryview:
        return obj        # shared (put() sends its buffer), never outlives its putter
    if _crossinterp.is_shareable(obj):
        if _has_queue(obj):
            return (_TAG, me, op, _WITH_QUEUES, _to_core(obj))
        if not me and not (type(obj) is tuple and obj and obj[0] == _TAG):
            # The main interpreter outlives every item: no unbound rule can apply, so
            # shareable data goes as it is (bytes keep the core's fast path).
            return obj
        return (_TAG, me, op, _SHARED, obj)
    try:
        return (_TAG, me, op, _PICKLED, pickle.dumps(obj, pickle.HIGHEST_PROTOCOL))
    except Exception as exc:
        raise NotShareableError("%s object is neither shareable nor picklable: %s: %s"
                                % (type(obj).__name__, type(exc).__name__, exc)) from exc


_REMOVED = object()


def _decode(item: Any) -> Any:
    if type(item) is not tuple or len(item) != 5 or item[0] != _TAG:
        return item
    _, putter, op, kind, payload = item
    if putter and putter != _ME and not _interp.exists(putter):
        if op == _crossinterp.OP_ERROR:
            raise ItemInterpreterDestroyed(
                "the interpreter (%d) that put this item was destroyed" % putter)
        if op == _crossinterp.OP_REMOVE:
            return _REMOVED
        return UNBOUND
    if kind == _SHARED:
        return payload
    if kind == _WITH_QUEUES:
        return _from_core(payload)
    return pickle.loads(payload)


def _unbound_op(unbounditems: object) -> int:
    return _crossinterp.serialize_unbound(unbounditems)


def create(maxsize: int = 0, *, unbounditems: object = UNBOUND) -> Queue:
    """Return a new cross-interpreter queue.

    The queue may be used to pass data safely between interpreters.
    *maxsize* 0 (or less) means unbounded; Queue.maxsize gives it back as
    given.  *unbounditems* sets the default for Queue.put(); see that method
    for supported values.  The default value is UNBOUND, which replaces the
    unbound item.
    """
    if isinstance(maxsize, bool) or not isinstance(maxsize, int):
        raise TypeError("maxsize must be an int, not %s" % type(maxsize).__name__)
    op = _unbound_op(unbounditems)
    core = _channels.Queue(maxsize)
    if maxsize < 0:
        # 3.14 keeps a bound of 0 or less as given (all mean unbounded): the core
        # reads any negative MAXSIZE as unbounded, -1 as maxsize 0 (see Queue.maxsize).
        with _channels._locked as R:
            base = (core.id % _channels.NCSLOTS) * _channels.CSLOT_WORDS
            if R.T[base + _channels.CID] == core.id:
                R.T[base + _channels.MAXSIZE] = maxsize - 1
    self = Queue._wrap(core)
    self._op = op
    return self


def _open_queue_ids() -> List[int]:
    # XXX the core lists open channels only (list_open()); this reads the same slot
    # table for queues (MAXSIZE != 0).  A core list_open_queues() would replace it.
    C = _channels
    if not _interp._arena_obj.header[_arena.CHANNELS_W]:
        return []
    with C._locked as R:
        T = R.T
        return sorted(c for c in T[C.CID::C.CSLOT_WORDS].tolist()
                      if c and T[(c % C.NCSLOTS) * C.CSLOT_WORDS + C.STATE] == C.OPEN
                      and T[(c % C.NCSLOTS) * C.CSLOT_WORDS + C.MAXSIZE])


def list_all() -> List[Queue]:
    """Return a list of all open queues."""
    out = []
    for cid in _open_queue_ids():
        try:
            q = Queue(cid)
        except QueueNotFoundError:
            continue
        out.append(q)
    return out


_known_queues: weakref.WeakValueDictionary[int, Queue] = weakref.WeakValueDictionary()


class Queue:
    """A cross-interpreter queue (``Queue(id)``: the one object for that id here)."""

    __slots__ = ("_id", "_core", "_op", "__weakref__")
    _id: int
    _core: _channels.Queue
    _op: int

    def __new__(cls, id: int, /) -> Queue:
        if not isinstance(id, int):
            raise TypeError("id must be an int, got %r" % (id,))
        id = int(id)
        self = _known_queues.get(id)
        if self is not None:
            return self
        if id not in _open_queue_ids():
            raise QueueNotFoundError("queue %d not found" % id)
        try:
            core = _channels._queue_by_id(id)
        except _exc.ChannelError:
            raise QueueNotFoundError("queue %d not found" % id) from None
        return cls._wrap(core)

    @classmethod
    def _wrap(cls, core: _channels.Queue, op: int = _crossinterp.OP_UNBOUND) -> Queue:
        self = _known_queues.get(core.id)
        if self is None:
            self = object.__new__(cls)
            self._id = core.id
            self._core = core
            self._op = op
            _known_queues[core.id] = self
        return self

    def __repr__(self) -> str:
        return "%s(%d)" % (type(self).__name__, self._id)

    def __hash__(self) -> int:
        return hash(self._id)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Queue):
            return NotImplemented
        return self._id == other._id

    # for pickling (and for call()/prepare_main()/exec() arguments):
    def __reduce__(self) -> Tuple[Callable[..., Queue], Tuple[Any, ...]]:
        barred = _crossinterp.sending_to()
        if barred is not None:
            raise NotShareableError(
                "queue %d cannot be passed into interpreter %d: it has its own GIL, and on "
                "CPython 3.12 queues cannot be used in such interpreters (CPython 3.12 "
                "refuses to load _ctypes there; 3.13+ allows it)" % (self._id, barred))
        return (_rebuild, (self._core, self._op))

    @property
    def id(self) -> int:
        return self._id

    @property
    def unbounditems(self) -> object:
        """The default for put(unbounditems=None): UNBOUND, UNBOUND_ERROR or UNBOUND_REMOVE."""
        return _crossinterp.resolve_unbound(self._op)

    @property
    def maxsize(self) -> int:
        """The bound given at creation (0 or less: unbounded)."""
        try:
            m = self._core._word(_channels.MAXSIZE)
        except (ValueError, _exc.ChannelError):
            return 0
        return m if m > 0 else m + 1

    def empty(self) -> bool:
        return self.qsize() == 0

    def full(self) -> bool:
        return self._core.full()

    def qsize(self) -> int:
        try:
            return self._core.qsize()
        except _exc.ChannelError as exc:
            raise QueueNotFoundError(str(exc)) from None

    def put(self, obj: object, block: bool = True, timeout: Optional[float] = None, *,
            unbounditems: object = None) -> None:
        """Add the object to the queue.

        If *block* is true, this blocks while the queue is full (sleeping until
        woken: no polling; *timeout* may be a float; Ctrl-C interrupts the wait).

        Shareable objects (see is_shareable()) travel as they are; any other
        object is pickled here and unpickled by get(), so what get() returns is
        a new object, equal to the original.  Queues travel as queues.

        *unbounditems* says what get() does with this item if the interpreter
        calling put() is destroyed first: None (the queue's default, set with
        create_queue()), UNBOUND (get() returns UNBOUND in its place),
        UNBOUND_ERROR (get() raises ItemInterpreterDestroyed), UNBOUND_REMOVE
        (the item is skipped).

        Raises:
            QueueFull: *block* is false and the queue is full, or it stayed
                full for *timeout* seconds.
            ValueError: *timeout* is negative.
            NotShareableError: *obj* is neither shareable nor picklable.
        """
        op = self._op if unbounditems is None else _unbound_op(unbounditems)
        item = _encode(obj, op)
        shared = item is obj and type(obj) is memoryview
        if shared and not obj.c_contiguous:  # type: ignore[attr-defined]
            raise NotShareableError("a memoryview that is not C-contiguous cannot be shared "
                                    "here (3.14 shares any): put a contiguous copy")
        try:
            _channels.qput(self._core._cid(), item, block, timeout if block else None,
                           unbound=op if _ME else 0, buffer=shared)
        except queue.Full as exc:
            raise QueueFull(str(exc)) from None
        except _exc.ChannelError as exc:
            raise QueueNotFoundError(str(exc)) from None

    def put_nowait(self, obj: object, *, unbounditems: object = None) -> None:
        """put(obj, block=False, unbounditems=unbounditems)."""
        self.put(obj, False, unbounditems=unbounditems)

    def get(self, block: bool = True, timeout: Optional[float] = None) -> Any:
        """Return the next object from the queue.

        If *block* is true, this blocks while the queue is empty (woken, no
        polling; float *timeout*; Ctrl-C interrupts the wait).  If the next
        item's interpreter has been destroyed, what happens depends on the
        *unbounditems* it was put with (see put()).

        Raises:
            QueueEmpty: *block* is false and the queue is empty, or nothing
                came within *timeout* seconds.
            ItemInterpreterDestroyed: the item's interpreter is gone and it was
                put with UNBOUND_ERROR (the item is consumed).
            ValueError: *timeout* is negative.
        """
        deadline = None
        if block and timeout is not None:
            timeout = _channels._check_timeout(timeout)
            deadline = time.monotonic() + timeout
        while True:
            try:
                item = self._core.get(block, timeout)
            except queue.Empty as exc:
                raise QueueEmpty(str(exc)) from None
            except _exc.ChannelError as exc:
                raise QueueNotFoundError(str(exc)) from None
            obj = _decode(item)
            if obj is not _REMOVED:
                return obj
            if deadline is not None:
                timeout = max(0.0, deadline - time.monotonic())

    def get_nowait(self) -> Any:
        """Return the next object from the queue, or raise QueueEmpty at once."""
        return self.get(False)


def _rebuild(core: _channels.Queue, op: int) -> Queue:
    q = Queue._wrap(core, op)
    return q


for _obj in (Queue, QueueError, QueueNotFoundError, QueueEmpty, QueueFull,
             ItemInterpreterDestroyed, create, list_all):
    _obj.__module__ = __name__
del _obj
