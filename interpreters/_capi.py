"""The package's only contact with ctypes: libpython's C-API, raw memory and teardown.

Everything the rest of the package needs from C goes through the names defined
here.  Three rules hold throughout (DESIGN.md section 3):

* Every prototype is declared once, in ``_PROTOTYPES``, with its C signature,
  the versions it is bound on, and whether the GIL is kept during the call.
  Objects are bound from a private handle on libpython, never by mutating
  ``ctypes.pythonapi``.
* Every switch of the current thread state into another interpreter happens in
  ``_cross()``, as one chain of C calls with prebuilt arguments, so that no
  bytecode runs and nothing is allocated while a foreign thread state is
  current.
* A call that returns with no current thread state (``Py_EndInterpreter``) is
  never made through ctypes' normal call path; ``_cross(END, ...)`` runs it on a
  glibc ucontext chain that switches back before control returns to ctypes.

This module imports nothing from the package.

The bound prototypes live as attributes of ``C`` (``C.PyThreadState_Get()``): the
names come from the table alone, so a type checker sees each of them as a
C function of ints (addresses) returning an int, None or Any.  The public
functions below are the typed surface the rest of the package uses.
"""

from __future__ import annotations

import collections
import functools
import itertools
import operator
import os
import sys
import threading
import time

try:
    import ctypes
except ImportError as _exc:   # pragma: no cover - exercised inside isolated subs on 3.12
    if sys.version_info[:2] == (3, 12) and "subinterpreters" in str(_exc):
        raise ImportError(
            "the interpreters package cannot be imported inside an isolated (own-GIL) "
            "interpreter on CPython 3.12: it needs ctypes, and CPython 3.12 refuses to load "
            "_ctypes in isolated subinterpreters (%s); channels are therefore unavailable "
            "there. CPython 3.13+ allows it." % _exc) from None
    raise
from ctypes import c_char, c_int, c_int64, c_longlong, c_size_t, c_ulong, c_void_p

# Annotations are strings (postponed); typing is imported for the checker only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import (
        Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Type,
    )
    from ctypes import _CDataType, Array
    from _ctypes import CFuncPtr as _CFuncPtr, _CArgObject

    _CType = Type[_CDataType]
    _Fn = Callable[..., Any]
    # One prebuilt ``_cross(RUN)``: [Swap(sub), PyObject_HasAttr(probe, name), Swap(back)],
    # on 3.12+ with the running-main mark set and cleared around the HasAttr.
    RunCalls = Tuple[functools.partial[None], ...]

PYVER = sys.version_info[:2]
PYVER_STR = "%d.%d" % PYVER

if sys.platform != "linux":  # pragma: no cover - the project targets Linux/glibc
    raise ImportError(
        "interpreters needs Linux with glibc (memfd_create and ucontext teardown), "
        "not %s" % sys.platform)

# A private handle on the running libpython: prototypes bound here never touch
# the shared ctypes.pythonapi objects.
_libpython = ctypes.PyDLL(None)
try:
    _libc = ctypes.PyDLL("libc.so.6")
except OSError as exc:  # pragma: no cover
    raise ImportError("interpreters needs glibc (libc.so.6): %s" % exc) from None


class _Proto:
    __slots__ = ("name", "symbol", "restype", "argtypes", "since", "until", "gil", "dll")

    def __init__(self, name: str, restype: Optional[_CType],
                 argtypes: Optional[Tuple[_CType, ...]], since: Tuple[int, int] = (3, 8),
                 until: Tuple[int, int] = (3, 14), gil: str = "held",
                 symbol: Optional[str] = None, dll: str = "python") -> None:
        self.name = name
        self.symbol = symbol or name
        self.restype = restype
        self.argtypes = argtypes
        self.since = since
        self.until = until
        self.gil = gil          # "held": PyDLL semantics; "released": dropped during the call
        self.dll = dll


_P = _Proto
_PROTOTYPES = (
    # --- interpreters and thread states (GIL held) ---------------------------------
    # PyThreadState *Py_NewInterpreter(void)      -- only inside _cross(NEW); result via swap
    _P("_new_interpreter", None, None, symbol="Py_NewInterpreter"),
    # PyStatus Py_NewInterpreterFromConfig(PyThreadState **, const PyInterpreterConfig *)
    #   -- 3.12+, only inside _cross(NEW_ISOLATED).  On x86-64 SysV the 32-byte PyStatus
    #   is returned through a hidden first pointer: it is passed explicitly as a
    #   prebuilt buffer and restype stays None, so ctypes builds nothing.
    _P("_new_from_config", None, None, since=(3, 12), symbol="Py_NewInterpreterFromConfig"),
    # PyThreadState *PyThreadState_Swap(PyThreadState *)   -- chain form: result dropped
    _P("_swap", None, None, symbol="PyThreadState_Swap"),
    # PyThreadState *PyThreadState_Swap(PyThreadState *)   -- last link of NEW: returns the sub
    _P("_swap_back_result", c_void_p, None, symbol="PyThreadState_Swap"),
    # int PyRun_SimpleString(const char *)        -- only inside _cross(BOOT); never raises
    _P("_run_simple", None, None, symbol="PyRun_SimpleString"),
    # int PyObject_HasAttr(PyObject *, PyObject *)   -- only inside _cross(RUN): calls the
    #   sub's entry property; never leaves an exception set (cleared or unraisable)
    _P("_has_attr", None, None, symbol="PyObject_HasAttr"),
    # void Py_IncRef(PyObject *), void Py_DecRef(PyObject *)   -- only inside _cross(PIN/UNPIN)
    _P("_incref", None, None, symbol="Py_IncRef"),
    _P("_decref", None, None, symbol="Py_DecRef"),
    # int _PyInterpreterState_SetRunningMain(PyInterpreterState *)   -- 3.12+, only inside
    #   _cross(RUN): marks the current thread state as running the interpreter's __main__,
    #   the mark CPython's own module reads (is_running(), refusal to run).  Needs a thread
    #   state of that interpreter current; on failure (marked already) it sets RuntimeError
    #   and returns -1, so the next link is always PyErr_Clear.
    _P("_set_running_main", None, None, since=(3, 12),
       symbol="_PyInterpreterState_SetRunningMain"),
    # void _PyInterpreterState_SetNotRunningMain(PyInterpreterState *)   -- 3.12+, same place
    _P("_set_not_running_main", None, None, since=(3, 12),
       symbol="_PyInterpreterState_SetNotRunningMain"),
    # int _PyInterpreterState_IsRunningMain(PyInterpreterState *)   -- 3.12+; reads the mark
    #   only (no thread state needed), from any interpreter
    _P("_is_running_main", c_int, None, since=(3, 12),
       symbol="_PyInterpreterState_IsRunningMain"),
    # void PyErr_Clear(void)   -- only inside _cross(RUN), after _set_running_main
    _P("_err_clear", None, None, symbol="PyErr_Clear"),
    # void PyThreadState_Clear(PyThreadState *)   -- only inside _cross(CLEAR)
    _P("_tstate_clear", None, None, symbol="PyThreadState_Clear"),
    # int PyThreadState_SetAsyncExc(unsigned long id, PyObject *exc)   -- only inside
    #   _cross(ASYNC_EXC): acts on the threads of the *current* interpreter
    _P("_set_async_exc", None, None, symbol="PyThreadState_SetAsyncExc"),
    # PyThreadState *PyThreadState_Get(void)
    _P("PyThreadState_Get", c_void_p, ()),
    # PyThreadState *PyThreadState_New(PyInterpreterState *)
    _P("PyThreadState_New", c_void_p, (c_void_p,)),
    # void PyThreadState_Delete(PyThreadState *)  -- the tstate must not be current
    _P("PyThreadState_Delete", None, (c_void_p,)),
    # PyThreadState *PyThreadState_Next(PyThreadState *)
    _P("PyThreadState_Next", c_void_p, (c_void_p,)),
    # PyInterpreterState *PyThreadState_GetInterpreter(PyThreadState *)   -- 3.9+
    _P("PyThreadState_GetInterpreter", c_void_p, (c_void_p,), since=(3, 9)),
    # PyInterpreterState *PyInterpreterState_Head(void)
    _P("PyInterpreterState_Head", c_void_p, ()),
    # PyInterpreterState *PyInterpreterState_Main(void)
    _P("PyInterpreterState_Main", c_void_p, ()),
    # PyInterpreterState *PyInterpreterState_Next(PyInterpreterState *)
    _P("PyInterpreterState_Next", c_void_p, (c_void_p,)),
    # PyThreadState *PyInterpreterState_ThreadHead(PyInterpreterState *)
    _P("PyInterpreterState_ThreadHead", c_void_p, (c_void_p,)),
    # int64_t PyInterpreterState_GetID(PyInterpreterState *)
    _P("PyInterpreterState_GetID", c_int64, (c_void_p,)),
    # PyObject *PyInterpreterState_GetDict(PyInterpreterState *)   -- borrowed
    _P("PyInterpreterState_GetDict", c_void_p, (c_void_p,)),
    # PyInterpreterState *PyInterpreterState_Get(void)   -- 3.8 exports it with a leading "_"
    _P("PyInterpreterState_Get", c_void_p, (), until=(3, 9), symbol="_PyInterpreterState_Get"),
    _P("PyInterpreterState_Get", c_void_p, (), since=(3, 9)),
    # PyObject *PyDict_GetItemString(PyObject *, const char *)   -- borrowed, never raises
    _P("PyDict_GetItemString", c_void_p, (c_void_p, ctypes.c_char_p)),
    # void *PyLong_AsVoidPtr(PyObject *)   -- reads a borrowed int, no refcount change
    _P("PyLong_AsVoidPtr", c_void_p, (c_void_p,)),
    # int PyErr_CheckSignals(void)   -- raises KeyboardInterrupt etc. in the main thread
    _P("PyErr_CheckSignals", c_int, ()),
    # int PyObject_GetBuffer(PyObject *exporter, Py_buffer *view, int flags)
    _P("PyObject_GetBuffer", c_int, (ctypes.py_object, c_void_p, c_int)),
    # void PyBuffer_Release(Py_buffer *view)
    _P("PyBuffer_Release", None, (c_void_p,)),
    # --- raw memory and locks (no GIL needed; bound "held" unless they block) ------
    # void *PyMem_RawCalloc(size_t nelem, size_t elsize)
    _P("PyMem_RawCalloc", c_void_p, (c_size_t, c_size_t)),
    # void PyMem_RawFree(void *)
    _P("PyMem_RawFree", None, (c_void_p,)),
    # PyThread_type_lock PyThread_allocate_lock(void)
    _P("PyThread_allocate_lock", c_void_p, ()),
    # void PyThread_free_lock(PyThread_type_lock)
    _P("PyThread_free_lock", None, (c_void_p,)),
    # void PyThread_release_lock(PyThread_type_lock)
    _P("PyThread_release_lock", None, (c_void_p,)),
    #   the same two, for fast_lock(): prebuilt ctypes arguments, no conversions
    _P("_lock_try_raw", c_int, None, symbol="PyThread_acquire_lock_timed"),
    _P("_lock_release_raw", None, None, symbol="PyThread_release_lock"),
    # PyLockStatus PyThread_acquire_lock_timed(lock, long long microseconds, int intr_flag)
    #   "held" form: only ever called with timeout 0 (never blocks)
    _P("_lock_try", c_int, (c_void_p, c_longlong, c_int), symbol="PyThread_acquire_lock_timed"),
    #   "released" form: blocking waits drop the GIL (a held form would deadlock)
    _P("_lock_wait", c_int, (c_void_p, c_longlong, c_int), gil="released",
       symbol="PyThread_acquire_lock_timed"),
    #   "released", prebuilt arguments: the fixed-slice wait of slice_waiter()
    _P("_lock_wait_raw", c_int, (), gil="released", symbol="PyThread_acquire_lock_timed"),
    # --- libc, inside a crossing ----------------------------------------------------
    # int snprintf(char *str, size_t size, const char *format, ...)   -- variadic; only
    #   inside _cross(ASYNC_EXC), as the guard's test (see there); never raises
    _P("_snprintf", None, None, symbol="snprintf", dll="libc"),
    # --- glibc ucontext, for the teardown chain ------------------------------------
    # int getcontext(ucontext_t *)
    _P("_getcontext", c_int, (c_void_p,), symbol="getcontext", dll="libc"),
    # void makecontext(ucontext_t *, void (*)(void), int argc, ...)   -- variadic
    _P("_makecontext", None, None, symbol="makecontext", dll="libc"),
    # int swapcontext(ucontext_t *oucp, const ucontext_t *ucp)
    _P("_swapcontext", c_int, (c_void_p, c_void_p), symbol="swapcontext", dll="libc"),
    # void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset)
    #   -- the teardown stack; MAP_FAILED is (void *)-1
    _P("_mmap", c_void_p, (c_void_p, c_size_t, c_int, c_int, c_int, ctypes.c_long),
       symbol="mmap", dll="libc"),
    # int mprotect(void *addr, size_t len, int prot)   -- its guard page
    _P("_mprotect", c_int, (c_void_p, c_size_t, c_int), symbol="mprotect", dll="libc"),
    # int munmap(void *addr, size_t length)
    _P("_munmap", c_int, (c_void_p, c_size_t), symbol="munmap", dll="libc"),
)


def _unavailable(proto: _Proto) -> _Fn:
    def call(*args: Any) -> Any:
        raise NotImplementedError(
            "%s() needs CPython %d.%d to %d.%d, this is %s"
            % (proto.symbol, proto.since[0], proto.since[1], proto.until[0],
               proto.until[1] - 1, PYVER_STR))
    call.__name__ = proto.name
    return call


def _bind(proto: _Proto) -> _CFuncPtr:
    dll = _libpython if proto.dll == "python" else _libc
    try:
        fn: _CFuncPtr = dll[proto.symbol]   # __getitem__: a fresh function object each time
    except AttributeError:
        raise ImportError("interpreters: libpython %s does not export %s"
                          % (PYVER_STR, proto.symbol)) from None
    if proto.gil == "released":
        # Same symbol, but called like a CDLL function: the GIL is dropped for the
        # duration and the saved thread state restored afterwards.
        fn = ctypes.CFUNCTYPE(proto.restype, *(proto.argtypes or ()))(
            ctypes.cast(fn, c_void_p).value or 0)
    else:
        fn.restype = proto.restype
        if proto.argtypes is not None:
            fn.argtypes = proto.argtypes
    return fn


def _bind_all() -> Dict[str, _Fn]:
    names: Dict[str, _Fn] = {}
    for proto in _PROTOTYPES:
        if proto.since <= PYVER < proto.until:
            names[proto.name] = _bind(proto)
        elif proto.name not in names:
            names[proto.name] = _unavailable(proto)
    return names


class _Bound:
    """The bound prototypes: one attribute per name in ``_PROTOTYPES``.

    Out-of-range entries without an in-range twin are bound to a function that
    raises NotImplementedError naming the versions (``_unavailable``).
    """

    def __init__(self, names: Dict[str, _Fn]) -> None:
        self.__dict__.update(names)

    if TYPE_CHECKING:
        # The attribute names exist only in the table: to the checker each one
        # is a C function (ints and None in, an int, None or Any out).
        def __getattr__(self, name: str) -> _Fn: ...


C = _Bound(_bind_all())
# The same objects as module attributes (``_capi.PyThreadState_Get``), for tests
# and experiments that look prototypes up by their table name.
globals().update(vars(C))

# Py_EndInterpreter is looked up as an address only: it is never called from ctypes.
_END_INTERPRETER_ADDR = ctypes.cast(_libpython.Py_EndInterpreter, c_void_p).value or 0
_SWAP_ADDR = ctypes.cast(_libpython.PyThreadState_Swap, c_void_p).value or 0


def tstate_interp(tstate: int) -> int:
    """Return the PyInterpreterState address a thread state belongs to."""
    if PYVER >= (3, 9):
        interp: int = C.PyThreadState_GetInterpreter(tstate)
        return interp
    # 3.8: struct _ts { struct _ts *prev, *next; PyInterpreterState *interp; ... }
    return c_void_p.from_address(tstate + 2 * ctypes.sizeof(c_void_p)).value or 0


# ---------------------------------------------------------------------------------
# Raw memory and raw locks.  The memory is outside every interpreter's heap, so it
# may be shared between interpreters; locks are PyThread locks, which have no
# owner and may be released by any thread of any interpreter.

def raw_alloc(nbytes: int) -> int:
    addr: Optional[int] = C.PyMem_RawCalloc(1, nbytes)
    if not addr:
        raise MemoryError("cannot allocate %d bytes of shared memory" % nbytes)
    return addr


raw_free: Callable[[int], None] = C.PyMem_RawFree


def raw_view(addr: int, nbytes: int) -> memoryview:
    """Return a writable memoryview of *nbytes* at *addr* (format 'B')."""
    return memoryview((c_char * nbytes).from_address(addr)).cast("B")


def raw_string_at(addr: int, nbytes: int) -> bytes:
    return ctypes.string_at(addr, nbytes)


# copy_bytes(dst, data, n): copy the first n bytes of the bytes object *data* to
# address dst.  memmove's c_void_p argument takes bytes as their payload's address,
# so this is one foreign call (no bytes_address() + memmove pair).
copy_bytes: Callable[[int, bytes, int], int] = ctypes.memmove


def bytes_address(data: bytes) -> int:
    """Address of the payload of the bytes object *data* (valid while it lives)."""
    # cast() converts its first argument with c_void_p.from_param, which takes
    # bytes (their payload's address); typeshed's stub does not list bytes.
    return ctypes.cast(data, c_void_p).value or 0  # type: ignore[arg-type]


# Py_buffer, identical on 3.8-3.13 (64-bit): buf, obj, len, itemsize, readonly, ndim,
# format, shape, strides, suboffsets, internal.
PY_BUFFER_SIZE = 80
_PyBUF_SIMPLE = 0


def buffer_export(obj: object) -> Tuple[int, int, int, bool]:
    """Export *obj*'s contiguous buffer; return (Py_buffer address, buf, len, readonly).

    The Py_buffer (raw memory) holds a reference to *obj* until buffer_release().
    """
    view = raw_alloc(PY_BUFFER_SIZE)
    try:
        C.PyObject_GetBuffer(obj, view, _PyBUF_SIMPLE)  # raises BufferError/TypeError
    except BaseException:
        raw_free(view)
        raise
    buf = c_void_p.from_address(view).value or 0
    length: int = ctypes.c_ssize_t.from_address(view + 16).value
    readonly = c_int.from_address(view + 32).value
    return view, buf, length, bool(readonly)


def buffer_release(view: int) -> None:
    C.PyBuffer_Release(view)
    raw_free(view)


def foreign_memory(addr: int, nbytes: int) -> Array[c_char]:
    """Return a ctypes array over *nbytes* at *addr* (the exporter of a memoryview)."""
    return (c_char * nbytes).from_address(addr)


def lock_alloc() -> int:
    lock: Optional[int] = C.PyThread_allocate_lock()
    if not lock:
        raise MemoryError("cannot allocate a lock")
    return lock


lock_free: Callable[[int], None] = C.PyThread_free_lock
lock_release: Callable[[int], None] = C.PyThread_release_lock


def fast_lock(lock: int) -> Tuple[Callable[[], int], Callable[[], None]]:
    """Return (try_acquire, release) callables for *lock* with prebuilt arguments.

    try_acquire() never blocks and returns 1 when it took the lock.
    """
    arg = c_void_p(lock)
    return (functools.partial(C._lock_try_raw, arg, c_longlong(0), c_int(0)),
            functools.partial(C._lock_release_raw, arg))


def slice_waiter(lock: int) -> Callable[[], int]:
    """Return wait() -> int: take *lock*, waiting at most one slice with the GIL released.

    1 means taken.  Arguments are prebuilt; the caller runs signal handlers
    (check_signals()) between slices, as lock_wait() does.
    """
    return functools.partial(C._lock_wait_raw, c_void_p(lock), c_longlong(_SLICE_US),
                             c_int(1))


def check_signals() -> None:
    """Run pending signal handlers (raises KeyboardInterrupt on Ctrl-C in the main thread)."""
    C.PyErr_CheckSignals()


def lock_try(lock: int) -> bool:
    """Take *lock* if it is free; never blocks.  Return True if taken."""
    status: int = C._lock_try(lock, 0, 0)
    return status == 1


_SLICE_US = 50000   # blocking waits wake every 50 ms to run signal handlers


def lock_wait(lock: int, timeout: Optional[float] = None) -> bool:
    """Take *lock*, waiting with the GIL released.  Return False on timeout.

    The wait is cut into slices so that Ctrl-C (and any other signal handler)
    runs promptly in the main thread: PyErr_CheckSignals() raises from here.
    """
    if C._lock_try(lock, 0, 0) == 1:
        return True
    if timeout is not None:
        deadline = time.monotonic() + timeout
    while True:
        if timeout is None:
            slice_us = _SLICE_US
        else:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            slice_us = max(1, min(_SLICE_US, int(left * 1e6)))
        if C._lock_wait(lock, slice_us, 1) == 1:
            return True
        # A handler that raised (Ctrl-C) leaves its exception set; ctypes raises it here.
        C.PyErr_CheckSignals()


def current_interp() -> int:
    """Return the PyInterpreterState address of the calling thread."""
    interp: int = C.PyInterpreterState_Get()
    return interp


def interp_id(interp: int) -> int:
    iid: int = C.PyInterpreterState_GetID(interp)
    return iid


def iter_interps() -> Iterator[Tuple[int, int]]:
    """Yield (id, PyInterpreterState address) for every interpreter, newest first."""
    interp = C.PyInterpreterState_Head()
    while interp:
        yield C.PyInterpreterState_GetID(interp), interp
        interp = C.PyInterpreterState_Next(interp)


def interp_tstates(interp: int) -> List[int]:
    """Return the addresses of every thread state of *interp*."""
    out: List[int] = []
    ts = C.PyInterpreterState_ThreadHead(interp)
    while ts:
        out.append(ts)
        ts = C.PyThreadState_Next(ts)
    return out


# The calling thread's PyThreadState (never NULL: CPython aborts instead).  Bound
# directly, not wrapped: run()'s fast path calls it.
current_tstate: Callable[[], int] = C.PyThreadState_Get


def new_tstate(interp: int) -> int:
    """Return a new thread state of *interp*, current nowhere; 0 if out of memory."""
    tstate: Optional[int] = C.PyThreadState_New(interp)
    return tstate or 0


def main_interp() -> int:
    interp: int = C.PyInterpreterState_Main()
    return interp


def main_dict_get(key: str) -> Optional[int]:
    """Read an int stored under *key* in the main interpreter's state dict.

    Nothing here touches a reference count of a main-interpreter object, so it
    is safe from any interpreter.  Return None when the key is missing.
    """
    d = C.PyInterpreterState_GetDict(C.PyInterpreterState_Main())
    if not d:
        return None
    item = C.PyDict_GetItemString(d, key.encode())
    if not item:
        return None
    value: int = C.PyLong_AsVoidPtr(item) or 0
    return value


def main_dict_set(key: str, value: int) -> None:
    """Store the int *value* under *key* in the main interpreter's state dict.

    Only called from the main interpreter (the dict and the int belong to it).
    """
    d = C.PyInterpreterState_GetDict(C.PyInterpreterState_Main())
    ctypes.cast(d, ctypes.py_object).value[key] = value


# ---------------------------------------------------------------------------------
# The crossing.

NEW, BOOT, RUN, PIN, UNPIN, CLEAR, END = "new", "boot", "run", "pin", "unpin", "clear", "end"
NEW_ISOLATED = "new_isolated"
ASYNC_EXC = "async_exc"

# 3.11+: operator.call makes zero allocations (DESIGN.md fact 3).  3.8-3.10 have no
# operator.call; partial.__call__ allocates transient argument tuples, which is
# safe there because every interpreter shares one allocator before 3.12.
_CALL: Callable[[functools.partial[Any]], Any] = (getattr(operator, "call", None)
                                                 or functools.partial.__call__)


def _chain(calls: Iterable[functools.partial[Any]], results: bool = False,
           _deque: Any = collections.deque, _map: Any = map,
           _call: Callable[[functools.partial[Any]], Any] = _CALL) -> Optional[List[Any]]:
    """Call each partial in *calls* back to back, inside C."""
    if results:
        return list(_map(_call, calls))
    _deque(_map(_call, calls), maxlen=0)
    return None


def ptr_arg(addr: int) -> _CArgObject:
    """A prebuilt pointer argument: passing it allocates nothing (DESIGN.md fact 3)."""
    return ctypes.byref(c_char.from_address(addr))


def code_arg(source_bytes: bytes) -> _CArgObject:
    """A prebuilt ``const char *`` argument, private to its caller."""
    return ctypes.byref(ctypes.create_string_buffer(source_bytes))


# 3.12+: run() sets the running-main mark that CPython's own module reads.
RUNNING_MARK = PYVER >= (3, 12)


def run_calls(sub_tstate: int, probe: int, name: int, back_tstate: int) -> RunCalls:
    """Prebuild the call list of ``_cross(RUN)``; keep it private to one thread."""
    enter = functools.partial(C._swap, ptr_arg(sub_tstate))
    call = functools.partial(C._has_attr, ptr_arg(probe), ptr_arg(name))
    leave = functools.partial(C._swap, ptr_arg(back_tstate))
    if not RUNNING_MARK:
        return (enter, call, leave)
    interp = ptr_arg(tstate_interp(sub_tstate))
    return (enter, functools.partial(C._set_running_main, interp), functools.partial(C._err_clear),
            call, functools.partial(C._set_not_running_main, interp), leave)


def running_elsewhere(interp: int) -> Optional[Callable[[], int]]:
    """Return a check (3.12+; None before) that *interp* is marked as running its __main__.

    The mark is set by CPython's own module while it runs code there (and by our
    run() while it does): a prebuilt call that reads it, usable from any interpreter.
    """
    if not RUNNING_MARK:
        return None
    return functools.partial(C._is_running_main, ptr_arg(interp))


def _cross(op: str, sub_tstate: int = 0, calls: Any = None) -> Optional[int]:
    """AUDITED CROSSING: the package's only switches into another interpreter.

    *calls* depends on *op* (see each); only NEW returns something.

    NEW:   [Py_NewInterpreter(), Swap(back)] -> return the new sub's tstate.
    NEW_ISOLATED: (3.12+) [Py_NewInterpreterFromConfig(&status, &tstate, &config),
           Swap(back)] with *calls* = (status, tstate, config): three ctypes buffers
           made by the caller for this call only.  The new sub (own GIL, own
           allocator) is current between the two calls with its GIL held and the
           main GIL released; Swap(back) releases the one and retakes the other.
           No result is built by ctypes (restype None): the caller reads the
           buffers after the chain.
    BOOT:  [Swap(sub), PyRun_SimpleString(code), Swap(back)], once per interpreter.
           PyRun_SimpleString never leaves an exception set (it prints and clears
           it), and the bootstrap catches SystemExit itself.
    RUN:   *calls* from run_calls(): [Swap(sub), PyObject_HasAttr(probe, name),
           Swap(back)].  The attribute is a property whose getter is the sub's
           runner; HasAttr clears (3.13: reports as unraisable) any exception,
           so nothing in the chain can raise while the sub is current.  On 3.12+
           the HasAttr is wrapped in [_PyInterpreterState_SetRunningMain(interp),
           PyErr_Clear()] ... [_PyInterpreterState_SetNotRunningMain(interp)]:
           the mark CPython's own module checks, set with the sub's tstate
           current (which it requires).  The caller checks the mark first
           (running_elsewhere()); should CPython's module enter in between, the
           failed SetRunningMain's RuntimeError is cleared at once.
    PIN / UNPIN: [Swap(sub), Py_IncRef/Py_DecRef(obj)..., Swap(back)]: keep the
           probe and its name alive from outside the sub's namespace.
    CLEAR: [Swap(sub), PyThreadState_Clear(sub), Swap(back)]; the caller then
           deletes the (no longer current) tstate.
    ASYNC_EXC: [Swap(sub), (guard test,) PyThreadState_SetAsyncExc(ident, exc),
           Swap(back)] with *calls* = (buf, exc, guard): make the thread whose ident
           is in *buf* (16 bytes; the ident in the first 8), running in that
           (shared-GIL) sub, raise *exc* (KeyboardInterrupt, a static type shared by
           every interpreter) at its next bytecode, or cancel that (exc None).
           *sub_tstate* is the calling thread's own tstate in the sub; from the
           first Swap on (3.12's Swap releases and retakes the GIL) the GIL is
           held, so the target thread is stopped until Swap(back).  *guard*, if
           not 0, is the address of an int64 word tested inside the chain, under
           that same GIL hold: ``snprintf(buf + 7, 2, "%.*s%.*s", lo, "\\xff",
           hi, "\\xff")`` with lo/hi the word's two halves (read at call time)
           writes 0xff into the ident's top byte if the word is not 0, which
           makes the ident match no thread (user-space thread idents are below
           2**56); the caller reads buf[7] afterwards to learn which it was.
    END:   [Swap(sub), Py_EndInterpreter(sub), Swap(back)] on glibc ucontexts
           entered by one swapcontext() call: Py_EndInterpreter leaves no
           current thread state, which no ctypes call may return into.

    Every argument is built before the first switch and is private to the
    calling thread; the chain runs inside C, so the calling frame executes no
    bytecode until the original thread state is current again.
    """
    if op == RUN:
        _chain(calls)
        return None
    back = C.PyThreadState_Get()

    def inside(*middle: functools.partial[Any]) -> None:
        # [Swap(sub), *middle, Swap(back)]: the shape of BOOT, PIN, UNPIN and CLEAR.
        _chain((functools.partial(C._swap, ptr_arg(sub_tstate)), *middle,
                functools.partial(C._swap, ptr_arg(back))))

    if op == BOOT:
        inside(functools.partial(C._run_simple, calls))
        return None
    if op in (PIN, UNPIN):
        fn = C._incref if op == PIN else C._decref
        inside(*[functools.partial(fn, ptr_arg(a)) for a in calls])
        return None
    if op == NEW:
        # Py_NewInterpreter leaves the new tstate current; swapping back returns it
        # (the int is built by ctypes after the swap, so in the caller's interpreter).
        results = _chain((functools.partial(C._new_interpreter),
                          functools.partial(C._swap_back_result, ptr_arg(back))),
                         results=True)
        return results[1] if results else None
    if op == NEW_ISOLATED:
        status, tstate, config = calls
        _chain((functools.partial(C._new_from_config, ctypes.byref(status),
                                  ctypes.byref(tstate), ctypes.byref(config)),
                functools.partial(C._swap, ptr_arg(back))))
        return None
    if op == CLEAR:
        inside(functools.partial(C._tstate_clear, ptr_arg(sub_tstate)))
        return None
    if op == ASYNC_EXC:
        buf, exc, guard = calls
        inject = functools.partial(C._set_async_exc, ctypes.c_ulong.from_buffer(buf),
                                   c_void_p(exc))
        if guard:
            test = functools.partial(C._snprintf, ptr_arg(ctypes.addressof(buf) + 7),
                                     c_size_t(2), ptr_arg(ctypes.addressof(_GUARD_FMT)),
                                     c_int.from_address(guard), ptr_arg(ctypes.addressof(_FF)),
                                     c_int.from_address(guard + 4),
                                     ptr_arg(ctypes.addressof(_FF)))
            inside(test, inject)
        else:
            inside(inject)
        return None
    if op == END:
        _end_on_ucontexts(sub_tstate, back)
        return None
    raise ValueError("unknown crossing %r" % (op,))


# --- teardown on glibc ucontexts (DESIGN.md fact 6a) -------------------------------
# ucontext_t on x86-64 glibc: uc_link at 8, uc_stack.ss_sp at 16, ss_flags at 24,
# ss_size at 32; sizeof(ucontext_t) is 968 on glibc 2.36, so 4096 leaves room.
_UC_SIZE = 4096
_UC_SWAP_STACK = 1 << 20      # the two PyThreadState_Swap links
_uc_lock = threading.Lock()   # the stacks below are process-wide
_uc_stacks: List[Array[c_char]] = []
# Py_EndInterpreter runs the interpreter's atexit callbacks and finalizes its
# modules (__del__ methods): Python code, which on 3.8-3.10 recurses on the C
# stack.  It gets a stack at least as large as any thread of the process gets
# (the main thread's limit, pthread's default, threading.stack_size()), mapped
# with a guard page below it, so that code which may recurse that deep in run()
# may do so at teardown too, and an overflow faults instead of corrupting memory.
_END_STACK_MIN = 8 << 20
_END_STACK_MAX = 1 << 30
_PAGE = os.sysconf("SC_PAGE_SIZE")
_end_stack = [0, 0]           # [address of the mapping, its size incl. the guard page]


def end_stack_size() -> int:
    """The usable size of the stack Py_EndInterpreter runs on (bytes)."""
    size = max(_END_STACK_MIN, threading.stack_size())
    try:
        import resource
        soft = resource.getrlimit(resource.RLIMIT_STACK)[0]
        if soft != resource.RLIM_INFINITY and soft > 0:
            size = max(size, soft)
    except (ImportError, OSError, ValueError):   # pragma: no cover
        pass
    size = min(size, _END_STACK_MAX)
    return (size + _PAGE - 1) & ~(_PAGE - 1)


def _end_stack_mapping() -> Tuple[int, int]:
    """Return (lowest usable address, usable size) of the teardown stack; lock held."""
    need = end_stack_size() + _PAGE
    if _end_stack[1] < need:
        if _end_stack[0]:
            C._munmap(c_void_p(_end_stack[0]), _end_stack[1])
            _end_stack[0] = _end_stack[1] = 0
        # PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE|MAP_STACK
        addr = C._mmap(None, need, 0x1 | 0x2, 0x02 | 0x20 | 0x4000 | 0x20000, -1, 0)
        if not addr or addr == (1 << 64) - 1:
            raise MemoryError("cannot map a %d-byte stack for Py_EndInterpreter" % need)
        if C._mprotect(c_void_p(addr), _PAGE, 0):     # the guard page: PROT_NONE
            C._munmap(c_void_p(addr), need)
            raise OSError("mprotect() of the teardown guard page failed")
        _end_stack[0], _end_stack[1] = addr, need
    return _end_stack[0] + _PAGE, _end_stack[1] - _PAGE


def _uc_prepare(func_addr: int, arg: int, stack: int, stack_size: int,
                link: int) -> Array[c_char]:
    uc = ctypes.create_string_buffer(_UC_SIZE)
    a = ctypes.addressof(uc)
    if C._getcontext(a):
        raise OSError("getcontext() failed")
    c_void_p.from_address(a + 8).value = link
    c_void_p.from_address(a + 16).value = stack
    c_int.from_address(a + 24).value = 0
    c_size_t.from_address(a + 32).value = stack_size
    C._makecontext(c_void_p(a), c_void_p(func_addr), c_int(1), c_void_p(arg))
    return uc


def _end_on_ucontexts(sub_tstate: int, back_tstate: int) -> None:
    with _uc_lock:
        if not _uc_stacks:
            _uc_stacks.extend(ctypes.create_string_buffer(_UC_SWAP_STACK) for _ in range(2))
        end_stack, end_size = _end_stack_mapping()
        s1, s3 = ctypes.addressof(_uc_stacks[0]), ctypes.addressof(_uc_stacks[1])
        ret = ctypes.create_string_buffer(_UC_SIZE)
        c3 = _uc_prepare(_SWAP_ADDR, back_tstate, s3, _UC_SWAP_STACK, ctypes.addressof(ret))
        c2 = _uc_prepare(_END_INTERPRETER_ADDR, sub_tstate, end_stack, end_size,
                         ctypes.addressof(c3))
        c1 = _uc_prepare(_SWAP_ADDR, sub_tstate, s1, _UC_SWAP_STACK, ctypes.addressof(c2))
        if C._swapcontext(ctypes.addressof(ret), ctypes.addressof(c1)):
            raise OSError("swapcontext() failed")


# --- unlinking at exit --------------------------------------------------------------
# A sub that cannot be ended at exit (still running in a daemon thread, or with
# threads of its own) makes CPython's finalization abort.  It is taken off the
# runtime's list instead: struct pyinterpreters {mutex; head; main; next_id} inside
# _PyRuntime (head and main adjacent on 3.8-3.13), and PyInterpreterState.next
# (offset 0 on 3.8-3.12; on 3.13 after the ceval state, found and checked below).

def _mapped_words(addr: int, limit: int) -> int:
    """Return how many 8-byte words from *addr* lie in its mapping (at most *limit*).

    _PyRuntime sits near the end of libpython's data segment on 3.8-3.10: a fixed
    64 KB scan from it read past the mapping and segfaulted.
    """
    with open("/proc/self/maps") as maps:
        for line in maps:
            lo, hi = (int(x, 16) for x in line.split(None, 1)[0].split("-"))
            if lo <= addr < hi:
                return min(limit, (hi - addr) // 8)
    return 0


def _runtime_head_addr() -> int:
    base = ctypes.addressof(c_void_p.in_dll(_libpython, "_PyRuntime"))
    head, main = C.PyInterpreterState_Head(), C.PyInterpreterState_Main()
    n = _mapped_words(base, 8192)
    words = (c_void_p * n).from_address(base)
    found = [i for i in range(n - 1) if words[i] == head and words[i + 1] == main]
    if len(found) != 1:
        raise RuntimeError("cannot locate the runtime's interpreter list (%d matches)"
                           % len(found))
    return base + 8 * found[0]


def _next_field_addr(interp: int) -> int:
    nxt, iid = C.PyInterpreterState_Next(interp), C.PyInterpreterState_GetID(interp)
    words = (c_int64 * 8192).from_address(interp)
    if PYVER < (3, 12):
        if c_void_p.from_address(interp).value != nxt:
            raise RuntimeError("unexpected PyInterpreterState layout")
        return interp
    found = [i for i in range(8191)
             if (words[i] & 0xFFFFFFFFFFFFFFFF) == (nxt or 0) and words[i + 1] == iid]
    if len(found) != 1:
        raise RuntimeError("cannot locate PyInterpreterState.next (%d matches)" % len(found))
    return interp + 8 * found[0]


def unlink_interpreter(interp: int) -> None:
    """Take *interp* off the runtime's interpreter list; it is never freed."""
    head_addr = _runtime_head_addr()
    target_next = C.PyInterpreterState_Next(interp)
    if c_void_p.from_address(head_addr).value == interp:
        c_void_p.from_address(head_addr).value = target_next
        return
    prev = c_void_p.from_address(head_addr).value
    while prev:
        nxt = C.PyInterpreterState_Next(prev)
        if nxt == interp:
            c_void_p.from_address(_next_field_addr(prev)).value = target_next
            return
        prev = nxt


# --- deferring signal handlers ------------------------------------------------------
# CPython runs Python-level signal handlers only in the thread whose ident is in
# _PyRuntime.main_thread (the eval loop's check on 3.8, every check on 3.9+).
# Zeroing that word defers every handler: the C-level handler still records the
# signal (and writes the wake-up fd); the Python handlers run once the word is
# back and PyErr_CheckSignals() is called.  _arena.defer()/resume() are the only
# writers.  The word's index per version (a unique match is searched for when the
# table disagrees, e.g. on another build):
_MAIN_THREAD_WORD = {(3, 8): 9, (3, 9): 9, (3, 10): 9, (3, 11): 10, (3, 12): 8, (3, 13): 82}


def main_thread_view() -> Optional[memoryview]:
    """Return a one-item 'Q' view of _PyRuntime.main_thread, or None if not found.

    Call it in the main interpreter, outside any deferral (the word must hold
    the main thread's ident to be recognised).
    """
    ident = threading.main_thread().ident or 0
    base = ctypes.addressof(c_void_p.in_dll(_libpython, "_PyRuntime"))
    n = _mapped_words(base, 1024)
    words = (ctypes.c_uint64 * n).from_address(base)
    index = _MAIN_THREAD_WORD.get(PYVER, -1)
    if not (0 <= index < n and words[index] == ident):
        found = [i for i in range(n) if words[i] == ident]
        if len(found) != 1:
            return None
        index = found[0]
    return memoryview((ctypes.c_uint64 * 1).from_address(base + 8 * index)).cast("B").cast("Q")


def lock_wait_uninterruptible(lock: int) -> None:
    """Take *lock*, blocking with the GIL released and no signal checks (short holds only)."""
    C._lock_wait(lock, -1, 0)


def new_interpreter() -> Optional[int]:
    """Create a legacy (shared-GIL) subinterpreter; return its head thread state."""
    return _cross(NEW)


# PyInterpreterConfig (3.12 and 3.13): seven ints, in this order.
CONFIG_FIELDS = ("use_main_obmalloc", "allow_fork", "allow_exec", "allow_threads",
                 "allow_daemon_threads", "check_multi_interp_extensions", "gil")
GIL_DEFAULT, GIL_SHARED, GIL_OWN = 0, 1, 2
# What create(isolated=True) asks for: own allocator, no fork/exec, threads but no
# daemon threads, single-phase-init extensions refused, own GIL.
ISOLATED_CONFIG = (0, 0, 0, 1, 0, 1, GIL_OWN)
ISOLATION_SINCE = (3, 12)
_PYSTATUS_SIZE = 32    # {int _type; const char *func; const char *err_msg; int exitcode}


def validate_config(config: Iterable[int]) -> Tuple[int, ...]:
    """Check a PyInterpreterConfig tuple in Python, before CPython ever sees it.

    CPython 3.12.1 crashes on a config it rejects (``drop_gil: GIL is not
    locked``), and both 3.12 and 3.13 wrongly accept an own GIL with the main
    interpreter's allocator.  Raise ValueError on anything but a config known
    to be accepted and sound.
    """
    config = tuple(config)
    if len(config) != len(CONFIG_FIELDS):
        raise ValueError("an interpreter config has %d fields (%s), got %d"
                         % (len(CONFIG_FIELDS), ", ".join(CONFIG_FIELDS), len(config)))
    fields = dict(zip(CONFIG_FIELDS, config))
    for name, value in fields.items():
        if type(value) is not int:
            raise ValueError("config field %s must be an int, not %s"
                             % (name, type(value).__name__))
        allowed = (GIL_DEFAULT, GIL_SHARED, GIL_OWN) if name == "gil" else (0, 1)
        if value not in allowed:
            raise ValueError("config field %s must be one of %s, got %d" % (name, allowed, value))
    if fields["gil"] == GIL_OWN and fields["use_main_obmalloc"]:
        raise ValueError("an interpreter with its own GIL needs its own allocator "
                         "(use_main_obmalloc=0); CPython accepts the combination but "
                         "objects would be allocated and freed under two different GILs")
    if not fields["use_main_obmalloc"] and not fields["check_multi_interp_extensions"]:
        raise ValueError("an interpreter with its own allocator must refuse single-phase-init "
                         "extension modules (check_multi_interp_extensions=1)")
    if fields["allow_daemon_threads"] and not fields["allow_threads"]:
        raise ValueError("allow_daemon_threads=1 needs allow_threads=1")
    return config


def new_isolated_interpreter(config: Iterable[int] = ISOLATED_CONFIG) -> int:
    """Create an interpreter from *config* (3.12+); return its head thread state.

    Raise NotImplementedError below 3.12, ValueError for a config that is not
    validated, RuntimeError when CPython reports a failure.
    """
    if PYVER < ISOLATION_SINCE:
        raise NotImplementedError(
            "isolated interpreters need CPython %d.%d+ (Py_NewInterpreterFromConfig, own GIL), "
            "this is %s" % (ISOLATION_SINCE + (PYVER_STR,)))
    config = validate_config(config)
    # Private to this call (so to this thread), built before the crossing.
    status = (c_char * _PYSTATUS_SIZE)()
    tstate = c_void_p()
    cfg = (c_int * len(CONFIG_FIELDS))(*config)
    _cross(NEW_ISOLATED, calls=(status, tstate, cfg))
    kind = c_int.from_buffer(status).value
    if kind or not tstate.value:
        msg = c_void_p.from_buffer(status, 16).value
        func = c_void_p.from_buffer(status, 8).value
        raise RuntimeError("Py_NewInterpreterFromConfig() failed: %s%s" % (
            ctypes.string_at(func).decode(errors="replace") + ": " if func else "",
            ctypes.string_at(msg).decode(errors="replace") if msg else "status %d" % kind))
    return tstate.value


def run_prebuilt(calls: RunCalls) -> None:
    _cross(RUN, calls=calls)


def bootstrap(sub_tstate: int, code: bytes) -> None:
    """Run *code* (bytes, compiled by PyRun_SimpleString) once in a new sub."""
    _cross(BOOT, sub_tstate, code_arg(code))


def pin(sub_tstate: int, addrs: Sequence[int]) -> None:
    _cross(PIN, sub_tstate, addrs)


def unpin(sub_tstate: int, addrs: Sequence[int]) -> None:
    _cross(UNPIN, sub_tstate, addrs)


# The guard test's constant arguments (read only, by C).
_GUARD_FMT = ctypes.create_string_buffer(b"%.*s%.*s")
_FF = ctypes.create_string_buffer(b"\xff")


def keyboard_interrupt_at(sub_tstate: int, ident: int, cancel: bool = False,
                          guard: int = 0) -> bool:
    """Make thread *ident*, running in the shared-GIL sub of *sub_tstate* (the calling
    thread's own tstate there), raise KeyboardInterrupt; or cancel a pending one.

    With *guard* (the address of an int64 word), nothing is sent if the word is
    not 0 at the moment of sending, tested while the GIL is held as the sub's
    thread, so the target cannot change it in between (see _cross(ASYNC_EXC)).
    Return False if the guard stopped it.
    """
    exc = None if cancel else c_void_p.in_dll(ctypes.pythonapi, "PyExc_KeyboardInterrupt").value
    if ident >> 56:    # never on Linux x86-64 (idents are user-space addresses)
        raise ValueError("thread ident %#x does not leave the guard byte free" % ident)
    buf = (c_char * 16)()          # private to this call: the ident, then slack
    ctypes.c_ulong.from_buffer(buf).value = ident
    _cross(ASYNC_EXC, sub_tstate, (buf, exc, 0 if cancel else guard))
    return buf[7] != b"\xff"


def delete_tstate(tstate: int) -> None:
    """Clear and delete a parked (not current anywhere) thread state of a sub."""
    _cross(CLEAR, tstate)
    C.PyThreadState_Delete(tstate)


def end_interpreter(head_tstate: int) -> None:
    """Finalize the sub whose only remaining thread state is *head_tstate*."""
    _cross(END, head_tstate)
