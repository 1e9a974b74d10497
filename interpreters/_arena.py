"""The process-wide arena: raw memory that every interpreter of the process finds.

The arena is allocated with PyMem_RawCalloc, outside every interpreter's heap,
and its address is published in the main interpreter's state dict
(``PyInterpreterState_GetDict(PyInterpreterState_Main())``, DESIGN.md fact 12):
every interpreter can read it, including ones created by other code, and child
processes never inherit it (a forked child sees a different pid and builds a
fresh arena).  A stale or foreign address is refused: the header carries a magic,
a layout version and the owning pid, checked before anything else is read.

Header, int64 words:

    0 MAGIC      1 VERSION    2 PID        3 LOCK (raw PyThread lock)
    4 ISLOTS     address of the interpreter table (NISLOTS slots of ISLOT_WORDS)
    5 NISLOTS    6 CHANNELS (channel table, see _channels.py)    7 NCHANNELS
    8 NEXT_CID   next channel id      9 LIVE  interpreter slots in use
    10 POOL      address of the block pool (channel nodes, waiters, entries; _channels.py)
    11 POOL_N    blocks in the pool   12 FREE  free-list head (block index)
    13 USED      blocks handed out so far (the pool is carved lazily)
    14 CRIT      nonzero while the main OS thread, running in a subinterpreter, is
                 inside a deferred region (see defer()): no KeyboardInterrupt may
                 be sent into it then
    15 MAIN      the main OS thread's ident

Interpreter slot, int64 words (one per live interpreter made by this package):

    0 ID1        interpreter id + 1; 0 marks a free slot
    1 INTERP     PyInterpreterState *
    2 HEAD       the thread state Py_NewInterpreter returned (used to end it)
    3 BUSY       raw lock held while code runs in it (or it is being destroyed);
                 allocated once per slot and kept, so a reader that fetched it
                 just before the interpreter went away never touches freed memory
    4 IOFD       memfd of the io block (see _sub.py)
    5 CREATOR    ident of the creating thread
    6 FLAGS      bit 0: isolated (own GIL)
    7 TSTATES    address of an array of (thread ident, tstate) pairs
    8 NTSTATES   pairs in use       9 CAPTSTATES  pairs allocated
    10 GEN       bumped whenever thread states of this slot are deleted, so every
                 interpreter's cached crossing for this slot is rebuilt

Deferred regions.  An exception raised into a thread between two bytecodes of
a critical section (a signal handler that raises, Ctrl-C, the KeyboardInterrupt
the watchdog of ``_interp._CtrlC`` sends into a subinterpreter) would leave the
lock held or a structure half-updated.  Only the main OS thread can receive such
exceptions, so only it needs protection: ``defer()`` ... ``resume()`` brackets a
region in which nothing is raised into it (in the main interpreter, Python signal
handlers are deferred by zeroing ``_PyRuntime.main_thread``; in a subinterpreter,
CRIT keeps the watchdog away).  ``resume()`` runs the handlers that were deferred,
so an interrupt surfaces there: before the operation, or after it completed.
The lock is only ever taken inside such a region (``with arena:`` does both),
and it is waited for without signal checks (holds are short).

LOCK guards: slot allocation and release, ID1/INTERP/HEAD/IOFD/CREATOR/FLAGS
writes, the TSTATES array, GEN, and the channel table.  It is held only for
short, non-blocking sections: never across a crossing, a run(), or a blocking
wait; functions named ``*_locked`` expect it held.  Slot words are read without
it (aligned 8-byte loads are atomic); a reader that needs a stable slot takes
the slot's BUSY lock, then re-checks ID1.
"""

from __future__ import annotations

import os
import threading

# Annotations are strings (postponed); typing is imported for the checker only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, List, Optional, Tuple

from . import _capi

MAGIC = 0x3435355045504950    # "PIPEP554" little-endian
VERSION = 3    # 2: channel slots gained watchers and queues (_channels.py); 3: CRIT, MAIN
# One arena per copy of the package: a vendored copy (``yourpkg._vendor.interpreters``)
# and an installed one in the same process never touch each other's state.
KEY = __name__.rpartition(".")[0] + ".arena"     # "interpreters.arena" when installed
HEADER_WORDS = 16
(MAGIC_W, VERSION_W, PID_W, LOCK_W, ISLOTS_W, NISLOTS_W, CHANNELS_W, NCHANNELS_W, NEXT_CID_W,
 LIVE_W, POOL_W, POOL_N_W, FREE_W, USED_W, CRIT_W, MAIN_W) = range(16)

NISLOTS = 4096
ISLOT_WORDS = 16
(ID1, INTERP, HEAD, BUSY, IOFD, CREATOR, FLAGS, TSTATES, NTSTATES, CAPTSTATES,
 GEN) = range(11)


def _unheld(lock: int) -> bool:
    if _capi.lock_try(lock):
        _capi.lock_release(lock)
        return True
    return False


class Arena:
    """A view of the arena: ``header`` and ``slots`` are int64 memoryviews."""

    def __init__(self, addr: int) -> None:
        self.addr = addr
        self.header = _capi.raw_view(addr, HEADER_WORDS * 8).cast("q")
        h = self.header
        if h[MAGIC_W] != MAGIC or h[VERSION_W] != VERSION:
            raise ImportError("interpreters: the shared arena at %#x is not ours "
                              "(magic %#x, version %d)" % (addr, h[MAGIC_W], h[VERSION_W]))
        self.lock = h[LOCK_W]
        self.slots = _capi.raw_view(h[ISLOTS_W], h[NISLOTS_W] * ISLOT_WORDS * 8).cast("q")
        self.nslots = h[NISLOTS_W]

    # -- the lock (always inside a deferred region) ------------------------------------
    def __enter__(self) -> "Arena":
        defer()
        try:
            if not _capi.lock_try(self.lock):
                _capi.lock_wait_uninterruptible(self.lock)
        except BaseException:
            resume()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        _capi.lock_release(self.lock)
        resume()

    # -- interpreter slots ---------------------------------------------------------
    def word(self, slot: int, field: int) -> int:
        return self.slots[slot * ISLOT_WORDS + field]

    def set_word(self, slot: int, field: int, value: int) -> None:
        self.slots[slot * ISLOT_WORDS + field] = value

    def find_slot(self, iid: int) -> Optional[int]:
        """Return the slot of interpreter *iid*, or None (no lock needed)."""
        target = iid + 1
        s = self.slots
        for i in range(0, self.nslots * ISLOT_WORDS, ISLOT_WORDS):
            if s[i] == target:
                return i // ISLOT_WORDS
        return None

    def live_count(self) -> int:
        return self.header[LIVE_W]

    def live_slots(self) -> List[int]:
        s = self.slots
        return [i // ISLOT_WORDS for i in range(0, self.nslots * ISLOT_WORDS, ISLOT_WORDS)
                if s[i]]

    def alloc_slot_locked(self, iid: int, interp: int, head: int, iofd: int, creator: int,
                          flags: int = 0) -> int:
        s = self.slots
        for slot in range(self.nslots):
            base = slot * ISLOT_WORDS
            # Skip a free slot whose BUSY is still held: its last interpreter's
            # destroy() frees the slot just before releasing BUSY, and the new
            # interpreter would look running (or refuse to run) until then.
            if s[base + ID1] == 0 and (not s[base + BUSY] or _unheld(s[base + BUSY])):
                break
        else:
            raise RuntimeError("too many live interpreters (%d)" % self.nslots)
        if not s[base + BUSY]:
            s[base + BUSY] = _capi.lock_alloc()
        if not s[base + TSTATES]:
            s[base + TSTATES] = _capi.raw_alloc(8 * 2 * 8)
            s[base + CAPTSTATES] = 8
        s[base + INTERP] = interp
        s[base + HEAD] = head
        s[base + IOFD] = iofd
        s[base + CREATOR] = creator
        s[base + FLAGS] = flags
        s[base + NTSTATES] = 0
        s[base + GEN] += 1
        s[base + ID1] = iid + 1     # last: the slot becomes visible
        self.header[LIVE_W] += 1
        return slot

    def free_slot_locked(self, slot: int) -> None:
        base = slot * ISLOT_WORDS
        s = self.slots
        s[base + ID1] = 0
        self.header[LIVE_W] -= 1
        s[base + NTSTATES] = 0
        s[base + GEN] += 1
        for f in (INTERP, HEAD, IOFD, CREATOR, FLAGS):
            s[base + f] = 0

    def tstates_locked(self, slot: int) -> List[Tuple[int, int]]:
        """Return [(ident, tstate), ...] registered for *slot*."""
        base = slot * ISLOT_WORDS
        n = self.slots[base + NTSTATES]
        if not n:
            return []
        arr = _capi.raw_view(self.slots[base + TSTATES], n * 16).cast("Q")
        return [(arr[2 * i], arr[2 * i + 1]) for i in range(n)]

    def add_tstate_locked(self, slot: int, ident: int, tstate: int) -> None:
        base = slot * ISLOT_WORDS
        s = self.slots
        n, cap = s[base + NTSTATES], s[base + CAPTSTATES]
        if n == cap:
            new = _capi.raw_alloc(cap * 2 * 16)
            _capi.raw_view(new, cap * 16)[:] = _capi.raw_view(s[base + TSTATES], cap * 16)
            old = s[base + TSTATES]
            s[base + TSTATES] = new
            s[base + CAPTSTATES] = cap * 2
            _capi.raw_free(old)
        arr = _capi.raw_view(s[base + TSTATES], (n + 1) * 16).cast("Q")
        arr[2 * n] = ident
        arr[2 * n + 1] = tstate
        s[base + NTSTATES] = n + 1

    def drop_tstates_locked(self, slot: int) -> None:
        base = slot * ISLOT_WORDS
        self.slots[base + NTSTATES] = 0
        self.slots[base + GEN] += 1


def _create() -> int:
    addr = _capi.raw_alloc(HEADER_WORDS * 8)
    h = _capi.raw_view(addr, HEADER_WORDS * 8).cast("q")
    h[LOCK_W] = _capi.lock_alloc()
    h[ISLOTS_W] = _capi.raw_alloc(NISLOTS * ISLOT_WORDS * 8)
    h[NISLOTS_W] = NISLOTS
    h[NEXT_CID_W] = 1
    h[PID_W] = os.getpid()
    h[MAIN_W] = threading.main_thread().ident or 0
    h[VERSION_W] = VERSION
    h[MAGIC_W] = MAGIC
    h.release()
    return addr


def _valid(addr: int) -> bool:
    if not addr:
        return False
    h = _capi.raw_view(addr, HEADER_WORDS * 8).cast("q")
    try:
        return h[MAGIC_W] == MAGIC and h[PID_W] == os.getpid()
    finally:
        h.release()


def attach() -> Arena:
    """Return the process's Arena, creating it when called in the main interpreter."""
    addr = _capi.main_dict_get(KEY)
    in_main = _capi.current_interp() == _capi.main_interp()
    if not (addr and _valid(addr)):
        if not in_main:
            raise ImportError("interpreters: import the package in the main interpreter "
                              "first (no shared arena is published yet)")
        addr = _create()   # none yet, or a forked parent's (other pid): start afresh
        _capi.main_dict_set(KEY, addr)
    arena = Arena(addr)
    _set_region_state(arena, in_main)
    return arena


# -- deferred regions ------------------------------------------------------------------

_H: Optional[memoryview] = None     # the arena header
_MAIN = -1                          # the main OS thread's ident (-1: not attached yet)
_RT: Optional[memoryview] = None    # _PyRuntime.main_thread (main interpreter only)
_depth = 0                          # the main OS thread's nesting of regions (only it writes)
_get_ident = threading.get_ident


def _set_region_state(arena: Arena, in_main: bool) -> None:
    global _H, _MAIN, _RT, _depth
    _H = arena.header
    _MAIN = arena.header[MAIN_W]
    _RT = _capi.main_thread_view() if in_main else None
    _depth = 0


def _flush() -> None:
    """A call: a KeyboardInterrupt sent in before CRIT was set surfaces at it."""


def defer() -> None:
    """Enter a deferred region (see the module docstring); pair with resume().

    Only the main OS thread is affected; regions nest.  Use as
    ``defer()`` / ``try:`` ... ``finally: resume()``: once defer() has returned,
    nothing can be raised into the thread before the ``try``.
    """
    global _depth
    if _get_ident() != _MAIN:
        return
    if _depth:
        _depth += 1
        return
    rt = _RT
    if rt is not None:
        rt[0] = 0              # from here on no Python signal handler runs
        _depth = 1
        return
    H = _H
    assert H is not None
    try:
        H[CRIT_W] = 1          # the watchdog sends nothing in from here on
        _flush()               # one it sent before surfaces here, outside the region
    except BaseException:
        H[CRIT_W] = 0
        raise
    _depth = 1


def resume() -> None:
    """Leave a deferred region; at the outermost, run the signal handlers it deferred.

    A handler that raises (Ctrl-C) raises from here, after the region's work.
    """
    global _depth
    if _get_ident() != _MAIN or not _depth:
        return
    _depth -= 1
    if _depth:
        return
    rt = _RT
    if rt is not None:
        rt[0] = _MAIN
        _capi.check_signals()
    else:
        H = _H
        assert H is not None
        H[CRIT_W] = 0


def deferred() -> bool:
    """Whether the calling thread is inside a deferred region (tests, assertions)."""
    return _get_ident() == _MAIN and _depth > 0


def main_in_critical() -> bool:
    """Whether the main OS thread is inside a region of a subinterpreter's copy."""
    return _H is not None and _H[CRIT_W] != 0


def _after_fork_in_child() -> None:
    # The forking thread is the child's main thread; no region is open in it.
    global _MAIN, _depth
    _MAIN = _get_ident()
    _depth = 0
    if _H is not None and _RT is not None:
        _RT[0] = _MAIN


os.register_at_fork(after_in_child=_after_fork_in_child)
