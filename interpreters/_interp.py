"""Interpreter lifecycle: create, run, destroy, exit and fork handling.

State shared between interpreters lives in the arena (``_arena.py``); what is
kept here is a per-interpreter cache of it (mappings of io blocks, prebuilt
crossings), always checked against the arena before use.
"""

from __future__ import annotations

import atexit
import functools
import marshal
import mmap
import os
import sys
import threading
import time

from . import _arena, _capi, _exc, _sub

# Annotations are strings (postponed); typing is imported for the checker only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Iterable, List, NoReturn, Optional, Tuple

    from ._capi import RunCalls

    # An io block mapping: [ID1 it was mapped for, mmap, int64 words view, size].
    IOEntry = List[Any]
    # run()'s per-(interpreter, thread) fast path: slot, slot's first word, ID1, GEN,
    # BUSY try/release, io entry, prebuilt RUN calls, the tstate to swap back to, whether
    # Ctrl-C is routed in, the check of CPython's running-main mark (3.12+, else None).
    FastState = Tuple[int, int, int, int, Callable[[], int], Callable[[], None], IOEntry,
                      RunCalls, int, bool, Optional[Callable[[], int]]]

PYVER = sys.version_info[:2]
IO_SIZE = 1 << 16

_arena_obj: _arena.Arena = _arena.attach()
_A: _arena.Arena = _arena_obj                     # short alias for hot paths
_IS_MAIN = _capi.current_interp() == _capi.main_interp()
_local_lock = threading.Lock()       # this interpreter's caches only (never cross-interp)
_io: Dict[int, IOEntry] = {}         # slot -> (gen-independent) [ID1, mmap, words view, size]



def _sub_code() -> Any:
    """_sub.py's code object, from its loader: a plain file, a zip archive (zipimport,
    zipapp) or a .pyc-only install all work."""
    loader = getattr(_sub.__spec__, "loader", None)
    try:
        code = loader.get_code(_sub.__name__)  # type: ignore[union-attr]
    except Exception as exc:
        raise ImportError("interpreters: cannot load the code of %s from %r (%s); it is "
                          "run inside every new interpreter" % (_sub.__name__, loader, exc)
                          ) from None
    if code is None:
        raise ImportError("interpreters: the loader %r gives no code for %s; it is run "
                          "inside every new interpreter" % (loader, _sub.__name__))
    return code


_SUB_CODE = _sub_code()   # loaded once, here


def bootstrap_payload(path: Iterable[str], yielder: bool = False) -> bytes:
    """What the bootstrap finds in the io block: _sub.py's code, sys.path, and
    whether to start the yielder thread there (see _sub.py)."""
    return marshal.dumps((_SUB_CODE, list(path), yielder))


def bootstrap_code(fd: int, iid: int, size: int) -> bytes:
    """Source run once in a new interpreter to install the runtime of _sub.py.

    The code and sys.path come through the io block (a short string to compile
    keeps the parser's allocations, which outlive the interpreter on 3.12+,
    small).  It leaves no name in the interpreter's ``__main__``.
    """
    return ("(lambda m: (lambda c, ns: (exec(c[0], ns), ns['_install'](%d, %d, *c[1:])))"
            "(__import__('marshal').loads(m[%d:%d]), {'__name__': '_interpreters_sub'}))"
            "(__import__('mmap').mmap(%d, 0))\n"
            % (fd, iid, _sub.HDR, _sub.HDR + size, fd)).encode()


# ------------------------------------------------------------------------------------
# The GIL poker (DESIGN.md fact 8): on 3.9-3.12 a thread waiting for the shared GIL
# as a subinterpreter's thread never makes a CPU-bound thread of the main interpreter
# drop it.  A main-interpreter thread that wakes every millisecond while any
# subinterpreter exists makes the request that the waiter cannot.  (The other
# direction, a CPU-bound subinterpreter thread starving this interpreter's threads,
# is handled inside each shared-GIL subinterpreter by its yielder thread: _sub.py.)

_POKER_NEEDED = (3, 9) <= PYVER <= (3, 12)
_poker: Optional[threading.Thread] = None
_creating = [0]    # creations in progress in this interpreter


_POKER_LINGER = 0.5   # seconds without subinterpreters before the poker ends


def _poke() -> None:
    # It lingers a little after the last subinterpreter is gone, so that a loop of
    # create()/destroy() does not start and end a thread every time.
    global _poker
    idle_since = None
    while True:
        with _local_lock:
            if _exiting:
                _poker = None
                return
            if _creating[0] or _A.live_count():
                idle_since = None
            elif idle_since is None:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > _POKER_LINGER:
                _poker = None
                return
        time.sleep(0.001)


def _ensure_poker() -> None:
    """Start the poker if needed; call with _creating[0] already raised."""
    global _poker
    if not (_POKER_NEEDED and _IS_MAIN):
        return
    with _local_lock:
        if _poker is None:
            _poker = threading.Thread(target=_poke, name="interpreters-gil-poker", daemon=True)
            _poker.start()


# ------------------------------------------------------------------------------------
# io blocks

def _io_for(slot: int, id1: int) -> IOEntry:
    """Return [id1, mm, words, size] for *slot*, mapping the memfd on first use."""
    entry = _io.get(slot)
    if entry is not None and entry[0] == id1:
        if entry[2][_sub.CAP] == entry[3]:
            return entry
    elif entry is not None:
        _unmap(slot)
    fd = _A.word(slot, _arena.IOFD)
    size = os.fstat(fd).st_size
    if entry is not None and entry[0] == id1:
        _unmap(slot)
    mm = mmap.mmap(fd, size)
    words = memoryview(mm).cast("q")
    entry = [id1, mm, words, size]
    _io[slot] = entry
    return entry


def _unmap(slot: int) -> None:
    entry = _io.pop(slot, None)
    if entry is not None:
        entry[2].release()
        entry[1].close()


def _write_source(slot: int, entry: IOEntry, data: bytes, extra: bytes = b"") -> IOEntry:
    need = _sub.HDR + len(data) + len(extra)
    if need > entry[3]:
        fd = _A.word(slot, _arena.IOFD)
        size = (max(need, 2 * entry[3]) + 4095) & ~4095   # whole pages: both sides cast("q")
        os.ftruncate(fd, size)
        entry[2][_sub.CAP] = size
        entry = _io_for(slot, entry[0])
    mm, words = entry[1], entry[2]
    mm[_sub.HDR:_sub.HDR + len(data)] = data
    if extra:
        mm[_sub.HDR + len(data):need] = extra
    words[_sub.SRCLEN] = len(data)
    words[_sub.EXTRA] = len(extra)
    return entry


# ------------------------------------------------------------------------------------
# lookups

_slot_cache: Dict[int, int] = {}   # iid -> slot (checked against the arena's ID1 on every use)


def slot_of(iid: int) -> int:
    """Return the arena slot of interpreter *iid*, or raise InterpreterNotFoundError."""
    slot = _slot_cache.get(iid)
    if slot is not None and _A.word(slot, _arena.ID1) == iid + 1:
        return slot
    slot = _A.find_slot(iid)
    if slot is not None:
        _slot_cache[iid] = slot
    else:
        _slot_cache.pop(iid, None)
        if iid == 0 or any(i == iid for i, _ in _capi.iter_interps()):
            raise _exc.InterpreterError(
                "interpreter %d was not created by this package (%s) but by other code "
                "or another copy of it; it cannot be run or destroyed from here"
                % (iid, __name__.rpartition(".")[0]))
        raise _exc.InterpreterNotFoundError(
            "interpreter %d does not exist (already destroyed?)" % iid)
    return slot


def list_ids() -> List[int]:
    """Ids of every interpreter in the process, in id (creation) order: main (0) first."""
    return sorted(iid for iid, _ in _capi.iter_interps())


def current_id() -> int:
    return _capi.interp_id(_capi.current_interp())


def exists(iid: int) -> bool:
    return any(i == iid for i, _ in _capi.iter_interps())


_FLAG_ISOLATED = 1   # arena slot FLAGS bit 0: own GIL and allocator


def is_isolated(iid: int) -> bool:
    """True if *iid* was made by this package with its own GIL (checked in the arena)."""
    if iid == 0:
        return False
    slot = _A.find_slot(iid)
    if slot is None:
        if exists(iid):
            return False     # made by other code: not ours to describe
        raise _exc.InterpreterNotFoundError(
            "interpreter %d does not exist (already destroyed?)" % iid)
    return bool(_A.word(slot, _arena.FLAGS) & _FLAG_ISOLATED)


# ------------------------------------------------------------------------------------
# create

def create(isolated: bool = False) -> int:
    """Create an interpreter with the runtime installed; return its id.

    *isolated*: own GIL and own allocator (CPython 3.12+), else a legacy
    shared-GIL interpreter.
    """
    if isolated:
        check_isolation_supported()
    if _exiting:
        raise _exc.InterpreterError("cannot create an interpreter: the process is exiting")
    _creating[0] += 1      # Py_NewInterpreter itself can stall without the poker
    try:
        _ensure_poker()
        return _create(isolated)
    finally:
        _creating[0] -= 1


def check_isolation_supported() -> None:
    if PYVER < _capi.ISOLATION_SINCE:
        raise _exc.InterpreterError(
            "isolated interpreters need CPython %d.%d+ (own GIL through "
            "Py_NewInterpreterFromConfig), this is %s" % (_capi.ISOLATION_SINCE + (_capi.PYVER_STR,)))


def _create(isolated: bool = False) -> int:
    head: Optional[int]
    if isolated:
        try:
            head = _capi.new_isolated_interpreter()
        except RuntimeError as exc:
            raise _exc.InterpreterError(str(exc)) from None
    else:
        head = _capi.new_interpreter()
    if not head:
        raise _exc.InterpreterError("Py_NewInterpreter() failed")
    interp = _capi.tstate_interp(head)
    iid = _capi.interp_id(interp)
    try:
        fd = os.memfd_create("interpreters-io-%d" % iid, os.MFD_CLOEXEC)
    except OSError:
        _capi.end_interpreter(head)
        raise
    os.ftruncate(fd, IO_SIZE)
    creator = threading.get_ident()
    with _A:
        slot = _A.alloc_slot_locked(iid, interp, head, fd, creator,
                                    _FLAG_ISOLATED if isolated else 0)
        _A.add_tstate_locked(slot, creator, head)
    try:
        entry = _io_for(slot, iid + 1)
        entry[2][_sub.CAP] = entry[3]
        payload = bootstrap_payload(sys.path, _POKER_NEEDED and not isolated)
        entry = _write_source(slot, entry, payload)
        _capi.bootstrap(head, bootstrap_code(fd, iid, len(payload)))
        words = entry[2]
        if words[_sub.READY] != _sub.MAGIC:
            raise _exc.InterpreterError(
                "could not install the runtime in interpreter %d (see stderr)" % iid)
        _capi.pin(head, (words[_sub.PROBE], words[_sub.PROBE_NAME]))
    except BaseException:
        _teardown(slot, iid)
        raise
    return iid


# ------------------------------------------------------------------------------------
# run

def _crossing_for(slot: int, id1: int) -> RunCalls:
    """Return the prebuilt RUN calls for this thread, creating its tstate if needed."""
    # Called on run()'s slow path only: the result is kept in _fast, together with
    # the tstate to swap back to (a new thread can reuse a finished one's ident).
    back = _capi.current_tstate()
    ts = _tstate_of(slot, threading.get_ident())
    words = _io_for(slot, id1)[2]
    return _capi.run_calls(ts, words[_sub.PROBE], words[_sub.PROBE_NAME], back)


_MAIN_THREAD = threading.main_thread().ident


def _tstate_of(slot: int, ident: int) -> int:
    """This thread's tstate in the interpreter of *slot* (made and recorded if new)."""
    with _A:
        for tid, t in _A.tstates_locked(slot):
            if tid == ident:
                return t
        ts = _capi.new_tstate(_A.word(slot, _arena.INTERP))
        if not ts:
            raise MemoryError("cannot create a thread state for interpreter %d"
                              % (_A.word(slot, _arena.ID1) - 1))
        _A.add_tstate_locked(slot, ident, ts)
        return ts


class _CtrlC:
    """Ctrl-C while the main thread runs code in a shared-GIL subinterpreter.

    CPython runs Python signal handlers only in the main interpreter, so a SIGINT
    would wait for the code to end.  Instead, the signal module's wake-up fd is a
    pipe read by a watchdog thread (installed on the first such run; every 64th
    run puts it back if other code replaced it, and whatever fd it replaced keeps
    getting every byte, passed on by the watchdog).  On SIGINT, while the main
    thread is inside a sub (``target``), the watchdog makes the main thread raise
    KeyboardInterrupt *there* (_capi.keyboard_interrupt_at, under the GIL).  When
    the main thread leaves, it raises KeyboardInterrupt here, and a KeyboardInterrupt
    sent in too late is cancelled (then, or at the next run or destroy() if the
    watchdog was still on its way).  Only with the default SIGINT handler.
    """

    def __init__(self) -> None:
        import _signal  # type: ignore[import-not-found]
        self.signal: Any = _signal
        self.getsignal: Callable[[int], Any] = _signal.getsignal
        self.default = _signal.default_int_handler
        self.rfd, self.wfd = os.pipe()
        os.set_blocking(self.wfd, False)
        self.target: Optional[int] = None      # slot the main thread is running in
        self.injected: Optional[int] = None    # slot a KeyboardInterrupt was sent into
        self.chain = -1                        # the wake-up fd ours replaced
        self.runs = 0
        threading.Thread(target=self._watch, name="interpreters-ctrl-c", daemon=True).start()

    def _install(self) -> bool:
        try:
            old = self.signal.set_wakeup_fd(self.wfd, warn_on_full_buffer=False)
        except (ValueError, OSError):
            return False
        if old != self.wfd:
            self.chain = old
        return True

    def enter(self, slot: int) -> bool:
        if self.injected is not None:
            self.settle()
        if self.getsignal(2) is not self.default:             # SIGINT: someone else's
            return False
        if self.runs & 63 == 1 and not self._install():
            return False
        self.target = slot
        return True

    def settle(self) -> None:
        """Cancel a KeyboardInterrupt sent in (a no-op if it was delivered there)."""
        slot = self.injected
        if slot is not None:
            _capi.keyboard_interrupt_at(_tstate_of(slot, threading.get_ident()),
                                        _MAIN_THREAD or 0, cancel=True)
            self.injected = None

    def _watch(self) -> None:
        while True:
            try:
                data = os.read(self.rfd, 512)
            except OSError:
                return
            chain = self.chain
            if chain >= 0:
                try:
                    os.write(chain, data)
                except OSError:
                    pass
            slot = self.target
            if 2 not in data or slot is None:              # SIGINT, main thread inside
                continue
            try:
                self._send(slot)
            except Exception:
                pass

    def _send(self, slot: int) -> None:
        # Never while the main thread is inside one of the package's deferred
        # regions there (the arena's CRIT word, set by _arena.defer() in a
        # subinterpreter): the guard word is tested at the moment of
        # sending, under the GIL the main thread needs (_capi._cross(ASYNC_EXC)).
        # While it is set, try again every millisecond, as long as the main thread
        # is still inside the same interpreter.
        ts = _tstate_of(slot, threading.get_ident())
        guard = _A.addr + 8 * _arena.CRIT_W
        while not _capi.keyboard_interrupt_at(ts, _MAIN_THREAD or 0, guard=guard):
            time.sleep(0.001)
            if self.target != slot:
                return
        self.injected = slot


_ctrl_c: Optional[_CtrlC] = None


def _run_interruptible(slot: int, iid: int, calls: RunCalls) -> None:
    """run_prebuilt(calls) from the main thread, with Ctrl-C reaching the sub.

    enter() and the leaving are inlined for the common case (run()'s hot path).
    """
    global _ctrl_c
    cc = _ctrl_c
    if cc is None:
        cc = _ctrl_c = _CtrlC()
    cc.runs += 1
    if cc.injected is not None or cc.runs & 63 == 1:
        entered = cc.enter(slot)                  # settle, reinstall, checks
    elif cc.getsignal(2) is not cc.default:       # SIGINT: someone else's handler
        entered = False
    else:
        cc.target = slot
        entered = True
    if not entered:
        _capi.run_prebuilt(calls)
        return
    try:
        _capi.run_prebuilt(calls)
    finally:
        # The main interpreter's SIGINT handler may raise at any bytecode from here
        # on, also in this cleanup: retry it until it has run to its end.
        interrupted = False
        while True:
            try:
                cc.target = None
                if cc.injected is not None:
                    interrupted = True
                    cc.settle()
                break
            except KeyboardInterrupt:
                interrupted = True
        if interrupted:
            # Ctrl-C: raise it here and now, whatever the code there made of it (on
            # 3.9-3.11 the main interpreter's handler would otherwise run a few
            # bytecodes late, in the caller's code).
            _capi.check_signals()
            raise KeyboardInterrupt


# ------------------------------------------------------------------------------------
# Output: when this interpreter's sys.stdout or sys.stderr is not the process's own
# stream (sys.__stdout__/__stderr__: redirect_stdout, pytest's capture, IDLE,
# Jupyter), a run() captures what the other interpreter writes to that stream while
# the run lasts, and writes it here, in order, when the run is over (RUN_CAPTURE in
# _sub.py).  Otherwise both write to file descriptors 1 and 2 directly, as before.

def _run_captured(slot: int, id1: int, iid: int, calls: RunCalls, ctrl_c: bool,
                  words: memoryview, out: Any, err: Any) -> memoryview:
    """run()'s crossing as RUN_CAPTURE; the output is written to *out*/*err* before
    returning (busy still held), also when the run is interrupted.

    Returns the io block's words: the output may have grown (and remapped) it.
    """
    words[_sub.CAPTURE] = (out is not sys.__stdout__) | (err is not sys.__stderr__) << 1
    words[_sub.CAPLEN] = 0
    words[_sub.OP] = _sub.RUN_CAPTURE
    _flush_std(out, err)
    captured = None
    try:
        try:
            if ctrl_c:
                _run_interruptible(slot, iid, calls)
            else:
                _capi.run_prebuilt(calls)
        finally:
            captured, words = _take_output(slot, id1)
    finally:
        if captured:
            _deliver(captured, out, err)
    return words


def _take_output(slot: int, id1: int) -> Tuple[Optional[List[Tuple[int, str]]], memoryview]:
    """The output a RUN_CAPTURE kept, read from the io block (busy still held).

    Also returns the io block's words: the output may have grown (and remapped) it.
    """
    entry = _io_for(slot, id1)
    words: memoryview = entry[2]
    n = words[_sub.CAPLEN]
    if not n:
        return None, words
    at = _sub.HDR + (words[_sub.OUTLEN] if words[_sub.STATUS] == _sub.FAILED else 0)
    out: List[Tuple[int, str]] = marshal.loads(entry[1][at:at + n])
    return out, words


def _deliver(captured: List[Tuple[int, str]], out: Any, err: Any) -> None:
    """Write captured output to the caller's streams, in the order it was written."""
    for no, text in captured:
        stream = out if no == 1 else err
        if stream is not None:
            stream.write(text)
    for stream in (out, err):
        if stream is not None:
            try:
                stream.flush()
            except Exception:
                pass


def _flush_std(out: Any, err: Any) -> None:
    for stream in (out, err):
        if stream is not None:
            try:
                stream.flush()
            except Exception:
                pass


_fast: Dict[Tuple[int, int], FastState] = {}        # (iid, thread ident) -> prebuilt state of run(), see _run_slow()
_HERE = _capi.current_interp()     # each interpreter has its own copy of this module


def run(iid: int, source: str, extra: bytes = b"") -> None:
    """Run *source* (str) in interpreter *iid*; block until done.

    The fast path reuses what the first run() from this thread prepared, after
    checking it against the arena: the slot still holds this interpreter (ID1),
    its thread states were not rebuilt (GEN), this thread's tstate is the same
    (a new thread can reuse a dead one's ident), and the io block was not grown.
    """
    if type(source) is not str:
        raise TypeError("run() source must be str, not %s" % type(source).__name__)
    data = source.encode("utf-8", "surrogatepass")
    fast = _fast.get((iid, threading.get_ident()))
    if fast is None:
        return _run_slow(iid, data, extra)
    slot, base, id1, gen, busy_try, busy_release, entry, calls, back, ctrl_c, elsewhere = fast
    info = None
    if not busy_try():
        raise _exc.InterpreterError("interpreter %d is already running" % iid)
    try:
        if elsewhere is not None and elsewhere():
            _running_elsewhere(iid)
        S = _A.slots
        mm, words, size = entry[1], entry[2], entry[3]
        n = len(data)
        if (_io.get(slot) is not entry or S[base] != id1 or S[base + _arena.GEN] != gen
                or words[_sub.CAP] != size
                or _sub.HDR + n + len(extra) > size or _capi.current_tstate() != back):
            fast = None
        else:
            mm[_sub.HDR:_sub.HDR + n] = data
            if extra:
                mm[_sub.HDR + n:_sub.HDR + n + len(extra)] = extra
            words[_sub.SRCLEN] = n
            words[_sub.EXTRA] = len(extra)
            words[_sub.STATUS] = _sub.PENDING
            out = sys.stdout
            err = sys.stderr
            try:
                if out is sys.__stdout__ and err is sys.__stderr__:
                    words[_sub.OP] = _sub.RUN
                    try:                     # _flush_std(), inlined
                        if out is not None:
                            out.flush()
                        if err is not None:
                            err.flush()
                    except Exception:
                        _flush_std(out, err)
                    if ctrl_c:
                        _run_interruptible(slot, iid, calls)
                    else:
                        _capi.run_prebuilt(calls)
                else:
                    words = _run_captured(slot, id1, iid, calls, ctrl_c, words, out, err)
            except KeyboardInterrupt:
                if not ctrl_c:
                    raise
                # (the io block may have grown: its words are read afresh)
                raise _interrupted(slot, id1, _io_for(slot, id1)[2]) from None
            status = words[_sub.STATUS]
            if status == _sub.FAILED:
                info = _read_failure(slot, id1)
    finally:
        busy_release()
    if fast is None:
        _fast.pop((iid, threading.get_ident()), None)
        return _run_slow(iid, data, extra)
    if status == _sub.OK:
        return None
    _finish(iid, status, info)


def _running_elsewhere(iid: int) -> NoReturn:
    raise _exc.InterpreterError(
        "interpreter %d is already running (code run there by CPython's own "
        "interpreters module)" % iid)


def _read_failure(slot: int, id1: int) -> _exc.ExceptionInfo:
    entry = _io_for(slot, id1)    # the report may have grown the io block
    try:
        return _exc.ExceptionInfo._from_report(marshal.loads(
            entry[1][_sub.HDR:_sub.HDR + entry[2][_sub.OUTLEN]]))
    except Exception:             # the runtime there always writes one; never trust it
        return _exc.ExceptionInfo("<unknown>", "", "<the exception could not be described>",
                                  "")


def _interrupted(slot: int, id1: int, words: memoryview) -> KeyboardInterrupt:
    """The KeyboardInterrupt run() raises after Ctrl-C reached code it ran.

    When that code ended with the KeyboardInterrupt, the exception carries its
    report, so that the traceback shows where the code was (_exc.relocated).
    """
    ki = KeyboardInterrupt()
    if words[_sub.STATUS] == _sub.FAILED:
        info = _read_failure(slot, id1)
        if info.type_name == "KeyboardInterrupt" and info.type_module == "builtins":
            ki._interpreters_excinfo = info   # type: ignore[attr-defined]
    return ki


def _finish(iid: int, status: int, info: Optional[_exc.ExceptionInfo]) -> NoReturn:
    if status == _sub.FAILED and info is not None:
        raise _exc.rebuild(info)
    raise _exc.InterpreterError(
        "the runtime of interpreter %d is damaged (status %d); see stderr" % (iid, status))


_busy_ops: Dict[int, Tuple[Callable[[], int], Callable[[], None]]] = {}    # slot -> (try, release) with prebuilt arguments (BUSY locks are kept)


def _run_slow(iid: int, data: bytes, extra: bytes) -> None:
    if iid == 0:
        raise _exc.InterpreterError(
            "interpreter 0 (main) is always running: run() cannot enter it")
    slot = slot_of(iid)
    id1 = iid + 1
    busy = _A.word(slot, _arena.BUSY)
    ops = _busy_ops.get(slot)
    if ops is None:
        ops = _busy_ops[slot] = _capi.fast_lock(busy)
    if not ops[0]():
        raise _exc.InterpreterError("interpreter %d is already running" % iid)
    info = None
    try:
        if _A.word(slot, _arena.ID1) != id1:
            raise _exc.InterpreterNotFoundError(
                "interpreter %d does not exist (already destroyed?)" % iid)
        if _A.word(slot, _arena.INTERP) == _HERE:
            raise _exc.InterpreterError("interpreter %d is already running" % iid)
        elsewhere = _capi.running_elsewhere(_A.word(slot, _arena.INTERP))
        if elsewhere is not None and elsewhere():
            _running_elsewhere(iid)
        entry = _write_source(slot, _io_for(slot, id1), data, extra)
        words = entry[2]
        words[_sub.STATUS] = _sub.PENDING
        calls = _crossing_for(slot, id1)
        gen = _A.word(slot, _arena.GEN)
        entry = _io_for(slot, id1)
        ctrl_c = (_IS_MAIN and threading.get_ident() == _MAIN_THREAD
                  and not _A.word(slot, _arena.FLAGS) & 1)
        _fast[(iid, threading.get_ident())] = (
            slot, slot * _arena.ISLOT_WORDS, id1, gen, ops[0], ops[1], entry, calls,
            _capi.current_tstate(), ctrl_c, elsewhere)
        out = sys.stdout
        err = sys.stderr
        try:
            if out is sys.__stdout__ and err is sys.__stderr__:
                words[_sub.OP] = _sub.RUN
                _flush_std(out, err)
                if ctrl_c:
                    _run_interruptible(slot, iid, calls)
                else:
                    _capi.run_prebuilt(calls)
            else:
                words = _run_captured(slot, id1, iid, calls, ctrl_c, words, out, err)
        except KeyboardInterrupt:
            if not ctrl_c:
                raise
            raise _interrupted(slot, id1, _io_for(slot, id1)[2]) from None
        status = words[_sub.STATUS]
        if status == _sub.FAILED:
            info = _read_failure(slot, id1)
    finally:
        ops[1]()
    if status == _sub.OK:
        return None
    _finish(iid, status, info)


def is_running(iid: int) -> bool:
    if iid == 0:
        return True
    slot = slot_of(iid)
    busy = _A.word(slot, _arena.BUSY)
    if _capi.lock_try(busy):
        _capi.lock_release(busy)
        if _A.word(slot, _arena.ID1) != iid + 1:
            raise _exc.InterpreterNotFoundError(
                "interpreter %d does not exist (already destroyed?)" % iid)
        # 3.12+: code run there by CPython's own module counts too.
        elsewhere = _capi.running_elsewhere(_A.word(slot, _arena.INTERP))
        return bool(elsewhere is not None and elsewhere())
    return True


# ------------------------------------------------------------------------------------
# destroy

def _op(slot: int, id1: int, op: int, tstate: int, arg: int = 0) -> Tuple[bool, memoryview]:
    """Run a runtime operation (JOIN_THREADS, PREPARE_END, CANCEL_END) with *tstate*; busy held."""
    entry = _io_for(slot, id1)
    words = entry[2]
    words[_sub.ARG] = arg
    words[_sub.OP] = op
    words[_sub.STATUS] = _sub.PENDING
    _capi.run_prebuilt(_capi.run_calls(tstate, words[_sub.PROBE], words[_sub.PROBE_NAME],
                                       _capi.current_tstate()))
    words[_sub.OP] = _sub.RUN
    return words[_sub.STATUS] == _sub.OK, words


def _drop_extra_tstates(slot: int) -> int:
    """Delete every thread state we made for *slot* except the head; return the head."""
    head = _A.word(slot, _arena.HEAD)
    with _A:
        pairs = _A.tstates_locked(slot)
        _A.drop_tstates_locked(slot)
        _A.add_tstate_locked(slot, _A.word(slot, _arena.CREATOR), head)
    for _, ts in pairs:
        if ts != head:
            _capi.delete_tstate(ts)
    return head


def _foreign_threads(slot: int) -> int:
    """Threads in the interpreter of *slot* besides the head (and its yielder)."""
    yielder: int = _io_for(slot, _A.word(slot, _arena.ID1))[2][_sub.YIELDER]
    return len(_capi.interp_tstates(_A.word(slot, _arena.INTERP))) - 1 - yielder


def _yielder_gone(slot: int, words: memoryview) -> bool:
    """After a PREPARE_END that went ahead: whether the yielder is gone.

    PREPARE_END stopped it and waited for its OS thread to end (YIELDER is then
    0): its thread state is freed and it no longer reads this interpreter's GIL
    state, so the thread states may be walked and the interpreter ended.
    """
    return not words[_sub.YIELDER]


_JOIN_SLICE_US = 50000    # destroy() waits for threads in slices: Ctrl-C lands between them


def _failure_text(slot: int, id1: int) -> str:
    try:
        info = _read_failure(slot, id1)
        return "%s: %s" % (info.type_display, info.msg)
    except Exception:
        return "unknown error"


def _prepare_end(slot: int, iid: int, head: int) -> Optional[str]:
    """Make interpreter *iid* ready to end, as CPython's shutdown does.

    Run its threading atexit hooks, wait for its non-daemon threads (in slices:
    KeyboardInterrupt, e.g. Ctrl-C in the main thread, surfaces between them),
    then refuse new threads.  Return None when nothing blocks the end, else
    why it cannot end (the caller then calls _cancel_end()).
    """
    id1 = iid + 1
    hooks = 1
    while True:
        ok, words = _op(slot, id1, _sub.JOIN_THREADS, head, hooks | _JOIN_SLICE_US << 1)
        hooks = 0
        if not ok:
            return "waiting for its threads failed: %s" % _failure_text(slot, id1)
        if words[_sub.THREADS]:
            # Still waiting.  Run the main interpreter's signal handlers now: on
            # 3.9-3.11 their pending flag may have been lost to another thread's
            # recomputation while this one was in the sub.
            _capi.check_signals()
            continue
        # The yielder (3.9-3.12) is stopped by a PREPARE_END that goes ahead (and
        # started again by _cancel_end()).
        yielder = _io_for(slot, id1)[2][_sub.YIELDER]
        ok, words = _op(slot, id1, _sub.PREPARE_END, head)
        if not ok:
            return "its runtime failed to prepare the end: %s" % _failure_text(slot, id1)
        if words[_sub.THREADS]:
            continue                       # one started meanwhile: wait for it too
        if words[_sub.DAEMONS]:
            return ("%d daemon thread(s) started in it are still running; CPython cannot "
                    "end an interpreter while any of its threads runs, and destroy() waits "
                    "only for non-daemon threads: stop the daemon threads first"
                    % words[_sub.DAEMONS])
        if words[_sub.HELD]:
            return ("%d buffer(s) it sent with send_buffer() are still held by receivers; "
                    "release those memoryviews first" % words[_sub.HELD])
        if yielder and not _yielder_gone(slot, words):
            return "its yielder thread did not stop"
        # Threads the threading module does not know (_thread.start_new_thread); a
        # thread that just finished may still be unlinking its tstate.
        others = _foreign_threads(slot)
        deadline = time.monotonic() + 0.2
        while others and time.monotonic() < deadline:
            time.sleep(0.005)
            others = _foreign_threads(slot)
        if others:
            return ("%d thread(s) started in it (not with the threading module) are still "
                    "running; stop them first" % others)
        return None


def _cancel_end(slot: int, iid: int, head: int) -> None:
    """Undo _prepare_end(): threads may start again, the hooks are registered again."""
    while True:
        try:
            _op(slot, iid + 1, _sub.CANCEL_END, head)     # idempotent
            return
        except KeyboardInterrupt:
            continue


def destroy(iid: int, *, at_exit: bool = False) -> bool:
    """Finalize interpreter *iid*.  Return False if it had to be abandoned (exit only).

    Like the end of a process: the interpreter's threading atexit hooks run, its
    non-daemon threads are waited for (KeyboardInterrupt interrupts the wait and
    leaves the interpreter as it was, minus what those hooks did), then its
    atexit callbacks run and its modules are finalized; threads started from
    then on are refused with RuntimeError.  Live daemon threads make it refuse
    (at exit: abandon the interpreter), since CPython cannot end it then.
    """
    if iid == 0:
        raise _exc.InterpreterError("the main interpreter cannot be destroyed")
    slot = slot_of(iid)
    id1 = iid + 1
    busy = _A.word(slot, _arena.BUSY)
    if not _capi.lock_try(busy):
        if at_exit:
            return _abandon(slot, iid)
        raise _exc.InterpreterError(
            "cannot destroy interpreter %d: it is running" % iid)
    try:
        if _A.word(slot, _arena.ID1) != id1:
            raise _exc.InterpreterNotFoundError(
                "interpreter %d does not exist (already destroyed?)" % iid)
        if _A.word(slot, _arena.INTERP) == _capi.current_interp():
            raise _exc.InterpreterError(
                "cannot destroy interpreter %d from inside itself" % iid)
        if _ctrl_c is not None and _ctrl_c.injected == slot:
            _ctrl_c.settle()       # a Ctrl-C sent in too late must not fire in teardown
        head = _drop_extra_tstates(slot)
        try:
            blocker = _prepare_end(slot, iid, head)
        except BaseException:
            _cancel_end(slot, iid, head)
            raise
        if blocker is not None:
            _cancel_end(slot, iid, head)
            if at_exit:
                return _abandon(slot, iid, busy_held=True)
            raise _exc.InterpreterError("cannot destroy interpreter %d: %s" % (iid, blocker))
        words = _io_for(slot, id1)[2]
        _capi.unpin(head, (words[_sub.PROBE], words[_sub.PROBE_NAME]))
        _capi.end_interpreter(head)
        _release(slot, iid)
        if _A.header[_arena.CHANNELS_W]:
            from . import _channels      # close the ends it held (PEP 554)
            _channels.drop_interp(iid)
    finally:
        _capi.lock_release(busy)
    return True


def _teardown(slot: int, iid: int) -> None:
    """End a freshly created interpreter whose setup failed (no threads in it yet)."""
    head = _A.word(slot, _arena.HEAD)
    _capi.end_interpreter(head)
    _release(slot, iid)


def _release(slot: int, iid: int) -> None:
    fd = _A.word(slot, _arena.IOFD)
    _unmap(slot)
    for key in [k for k in _fast if k[0] == iid]:
        _fast.pop(key, None)
    with _A:
        _A.free_slot_locked(slot)
    try:
        os.close(fd)
    except OSError:
        pass


# ------------------------------------------------------------------------------------
# exit: leave no subinterpreter for CPython's finalization to trip on

_exiting = False
_abandoned: List[int] = []


def _abandon(slot: int, iid: int, busy_held: bool = False) -> bool:
    """Unlink a sub that cannot be ended (still running, or with live threads).

    Finalization would abort on it ("remaining subinterpreters", 3.8-3.12) or
    on its threads ("not the last thread", 3.13).  Its threads are stopped by
    CPython itself once finalization starts (they exit when they next ask for
    the GIL); its memory is left to the OS.
    """
    _abandoned.append(iid)
    _capi.unlink_interpreter(_A.word(slot, _arena.INTERP))
    return False


def _at_exit() -> None:
    global _exiting
    _exiting = True
    interrupted = False
    for slot in _A.live_slots():
        iid = _A.word(slot, _arena.ID1) - 1
        if iid <= 0:
            continue
        try:
            if interrupted:      # Ctrl-C at exit: stop waiting for threads anywhere
                _abandon(slot, iid)
            else:
                destroy(iid, at_exit=True)
        except BaseException as exc:   # never let exit fail half-way
            if isinstance(exc, KeyboardInterrupt):
                interrupted = True
            try:
                sys.stderr.write("interpreters: could not end interpreter %d at exit: %s\n"
                                 % (iid, str(exc) or type(exc).__name__))
            except Exception:
                pass
            try:   # left linked, it would make finalization abort (fact 9)
                if exists(iid):
                    _abandon(slot, iid)
            except Exception:
                pass


# ------------------------------------------------------------------------------------
# fork (DESIGN.md fact 10): with any subinterpreter alive, CPython's child deadlocks
# (3.8-3.12) or aborts (3.13).  Refuse before forking, with a clear error.

def _check_fork(what: str, hint: str = "or use the 'spawn' or 'forkserver' "
                                        "multiprocessing start method") -> None:
    live = [iid for iid in list_ids() if iid != 0]
    if live:
        raise _exc.InterpreterError(
            "cannot %s while subinterpreters exist (%s): CPython's child process would "
            "hang or crash; destroy them first, %s"
            % (what, ", ".join(map(str, sorted(live))), hint))


def _guard(name: str) -> Callable[..., Any]:
    original = getattr(os, name)

    def guarded(*args: Any, **kwargs: Any) -> Any:
        _check_fork("call os.%s()" % name)
        return original(*args, **kwargs)
    # Sets __doc__ and __wrapped__ (the mark that a function is already guarded).
    functools.update_wrapper(guarded, original, assigned=("__doc__",), updated=())
    guarded.__name__ = name
    guarded.__qualname__ = name
    return guarded


def _guard_fork_exec(original: Callable[..., Any]) -> Callable[..., Any]:
    # subprocess with preexec_fn forks and then runs Python in the child (which
    # needs PyOS_AfterFork_Child): with a live subinterpreter that child hangs
    # (3.8-3.11) or crashes (3.12+), and the parent waits on it.  Without
    # preexec_fn the child only calls exec(), which is safe.  preexec_fn is the
    # only callable among fork_exec()'s arguments on every version.
    def fork_exec(*args: Any, **kwargs: Any) -> Any:
        if any(callable(a) for a in args) or callable(kwargs.get("preexec_fn")):
            _check_fork("start a subprocess with preexec_fn",
                        "or start it without preexec_fn (e.g. start_new_session=True, "
                        "process_group=, user=, umask= cover the common uses)")
        return original(*args, **kwargs)
    functools.update_wrapper(fork_exec, original, assigned=("__doc__",), updated=())
    fork_exec.__name__ = fork_exec.__qualname__ = "fork_exec"
    return fork_exec


def _install_subprocess_guard() -> None:
    try:
        import _posixsubprocess
    except ImportError:          # pragma: no cover - every Linux CPython has it
        return
    if hasattr(_posixsubprocess.fork_exec, "__wrapped__"):
        return
    guarded = _guard_fork_exec(_posixsubprocess.fork_exec)
    _posixsubprocess.fork_exec = guarded
    sub = sys.modules.get("subprocess")   # 3.11+ binds it at import as _fork_exec
    if sub is not None and hasattr(sub, "_fork_exec"):
        setattr(sub, "_fork_exec", guarded)


def _after_fork_in_child() -> None:
    # The child has no subinterpreter (fork is refused while any exists) and must
    # not share the parent's arena: start a fresh one.
    global _A, _arena_obj, _ctrl_c
    _io.clear()
    _slot_cache.clear()
    _fast.clear()
    _busy_ops.clear()
    _arena_obj = _A = _arena.attach()
    cc, _ctrl_c = _ctrl_c, None
    if cc is not None:
        # The Ctrl-C pipe is shared with the parent, whose watchdog reads it; the
        # child has no watchdog: give it back the wake-up fd ours replaced.
        try:
            prev = cc.signal.set_wakeup_fd(cc.chain)
            if prev != cc.wfd:                 # not ours any more: put it back
                cc.signal.set_wakeup_fd(prev)
        except (ValueError, OSError):
            pass
        for fd in (cc.rfd, cc.wfd):
            try:
                os.close(fd)
            except OSError:
                pass


if _IS_MAIN:
    atexit.register(_at_exit)
    for _name in ("fork", "forkpty"):
        if hasattr(os, _name) and not hasattr(getattr(os, _name), "__wrapped__"):
            setattr(os, _name, _guard(_name))
    _install_subprocess_guard()
    os.register_at_fork(after_in_child=_after_fork_in_child)
