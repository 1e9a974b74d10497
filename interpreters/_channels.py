"""Channels (PEP 554): simplex, unbuffered, many-to-many pipes between interpreters.

Every channel lives in the process-wide arena (``_arena.py``), outside any
interpreter's heap, and every operation on it holds the arena's raw lock.  The
lock and all structures are reached from any interpreter through the arena.

Two raw regions are carved on first use and kept for the life of the process:

* The channel table: NCSLOTS slots of CSLOT_WORDS int64 words.  Channel *cid*
  lives in slot ``cid % NCSLOTS`` (ids are picked so that their slot is free,
  and never reused), so a lookup is one read.  Slot words:

      0 CID        channel id; 0 marks a free slot
      1 STATE      OPEN or CLOSED
      2 QHEAD  3 QTAIL  4 QLEN     queue of message blocks (oldest first)
      5 RWHEAD 6 RWTAIL            receivers waiting (their thread blocks, FIFO)
      7 ENTRIES    first entry block: this channel's per-interpreter flags
      8 CLOSES     close() events so far (explicit, by GC, or by destroy)
      9 TRANSIT_R 10 TRANSIT_S     ends of this channel inside queued messages

* The block pool: POOL_N blocks of 16 int64 words, addressed by index (0 is
  "none"), all seen through one memoryview.  Free blocks form a list (FREE);
  blocks past USED were never handed out.  A block is one of:

      message / waiter  NEXT, KIND, DATA, LEN, STATE, LOCK, OWNED, TOKEN, SENDER
      entries           NEXT, COUNT, then 7 pairs (interpreter id, flags)
      buffer token      STATE (0 live, 1 released), EXPORTER, VIEW, READONLY

Each thread that sends or receives owns one message/waiter block and one raw
lock (``_Thread``), for its whole life: a blocking send() queues the thread's
own block, with DATA pointing into the sender's bytes (kept alive until the
block is DONE); a waiting recv() links the same block into the RW list.  The
lock is held while the thread is idle; a peer wakes the thread by releasing it,
always *while holding the arena lock and after unlinking the block*, so a
thread that gives up (timeout, Ctrl-C) can tell under the arena lock whether it
was woken.  *_nowait() sends use a fresh block and an owned copy of the data,
which the receiver frees.

Invariants (arena lock held):
* a block is in at most one list; a message goes PENDING -> TAKEN -> DONE, or
  PENDING -> DROPPED (channel closed, or its sender gave up);
* a block is in an RW list iff its thread sleeps and nobody released its lock;
* once STATE is CLOSED, no blocked sender's message is queued and the RW list
  is empty; the slot is freed once no accepted message is left in it.

The lock is never held across a blocking wait, a crossing or a data copy of a
blocking send; ``__del__`` only tries it.
"""

from __future__ import annotations

import marshal
import numbers
import os
import threading
import time
import weakref

from . import _arena, _capi, _exc, _interp

# Annotations are strings (postponed); typing is imported for the checker only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import (
        Any, Callable, ClassVar, Dict, List, Optional, Sequence, Tuple, Type, TypeVar, Union,
    )

    from . import Interpreter

    _E = TypeVar("_E", bound="_ChannelEnd")
    Refs = List[Tuple[int, int]]       # (channel id, end) of channel ends inside a message

NCSLOTS = 16384
CSLOT_WORDS = 16
(CID, STATE, QHEAD, QTAIL, QLEN, RWHEAD, RWTAIL, ENTRIES, CLOSES, TRANSIT_R,
 TRANSIT_S) = range(11)
OPEN, CLOSED = 1, 2

POOL_N = 1 << 18
BW = 16                                   # words per block
B_NEXT, B_KIND, B_DATA, B_LEN, B_STATE, B_LOCK, B_OWNED, B_TOKEN, B_SENDER = range(9)
E_NEXT, E_COUNT, E_PAIRS = 0, 1, 2        # entries block; 7 pairs from word 2
E_PER_BLOCK = 7
K_BYTES, K_OBJ, K_BUFFER = 1, 2, 3
PENDING, TAKEN, DONE, DROPPED = 0, 1, 2, 3
T_STATE, T_EXPORTER, T_VIEW, T_READONLY = range(4)

HANDLE_R, HANDLE_S, ASSOC_R, ASSOC_S, CLOSED_R, CLOSED_S = 1, 2, 4, 8, 16, 32
RECV, SEND = 0, 1
_HANDLE = (HANDLE_R, HANDLE_S)
_ASSOC = (ASSOC_R, ASSOC_S)
_CLOSEDF = (CLOSED_R, CLOSED_S)
_TRANSIT = (TRANSIT_R, TRANSIT_S)
_END_NAME = ("receiving", "sending")

_INTERPRETERS_CHANNELS = True   # lets _sub.py find outstanding_exports() at destroy
_ME = _interp.current_id()     # this package instance lives in exactly one interpreter
_ZERO = memoryview(bytes(8 * BW)).cast("q")


class _Regions:
    """This interpreter's views of the arena, its lock, the table and the pool."""

    def __init__(self) -> None:
        A = self.A = _interp._arena_obj
        self.H = A.header
        self.lock_try, self.lock_release = _capi.fast_lock(A.lock)
        self.lock_addr = A.lock
        if not self.H[_arena.CHANNELS_W] or not self.H[_arena.POOL_W]:
            self.acquire()
            try:
                if not self.H[_arena.CHANNELS_W]:
                    self.H[_arena.CHANNELS_W] = _capi.raw_alloc(NCSLOTS * CSLOT_WORDS * 8)
                if not self.H[_arena.POOL_W]:
                    self.H[_arena.POOL_N_W] = POOL_N
                    self.H[_arena.USED_W] = 1        # block 0 means "none"
                    self.H[_arena.POOL_W] = _capi.raw_alloc(POOL_N * BW * 8)
            finally:
                self.lock_release()
        self.T = _capi.raw_view(self.H[_arena.CHANNELS_W], NCSLOTS * CSLOT_WORDS * 8).cast("q")
        self.P = _capi.raw_view(self.H[_arena.POOL_W], self.H[_arena.POOL_N_W] * BW * 8).cast("q")

    def acquire(self) -> None:
        if not self.lock_try():
            _capi.lock_wait(self.lock_addr)

    # blocks (lock held) ---------------------------------------------------------
    def alloc_locked(self) -> int:
        H, P = self.H, self.P
        b = H[_arena.FREE_W]
        if b:
            H[_arena.FREE_W] = P[b * BW]
        else:
            b = H[_arena.USED_W]
            if b >= H[_arena.POOL_N_W]:
                raise _exc.ChannelError("channel memory exhausted (%d blocks in use)" % b)
            H[_arena.USED_W] = b + 1
        P[b * BW:b * BW + BW] = _ZERO
        return b

    def free_locked(self, b: int) -> None:
        self.P[b * BW] = self.H[_arena.FREE_W]
        self.H[_arena.FREE_W] = b


_R: Optional[_Regions] = None


def _regions() -> _Regions:
    global _R
    if _R is None:
        _R = _Regions()
    return _R


class _Lock:
    """``with _locked:`` holds the arena lock (short, non-blocking sections only)."""

    def __enter__(self) -> _Regions:
        R = _R or _regions()
        if not R.lock_try():
            _capi.lock_wait(R.lock_addr)
        return R

    def __exit__(self, *exc: object) -> None:
        (_R or _regions()).lock_release()


_locked = _Lock()


# -- per-thread block and lock ----------------------------------------------------------

class _ThreadBlock:
    """A thread's message/waiter block and raw lock; freed when the thread ends."""

    __slots__ = ("block", "lock", "lock_try", "lock_release", "wait_slice", "retired")
    block: int
    lock: int
    lock_try: Callable[[], int]
    lock_release: Callable[[], None]
    wait_slice: Callable[[], int]
    retired: bool

    def __init__(self) -> None:
        self.lock = _capi.lock_alloc()
        _capi.lock_try(self.lock)                 # held while idle
        self.lock_try, self.lock_release = _capi.fast_lock(self.lock)
        self.wait_slice = _capi.slice_waiter(self.lock)
        self.retired = False
        with _locked as R:
            self.block = R.alloc_locked()
        R.P[self.block * BW + B_LOCK] = self.lock

    def __del__(self) -> None:
        if self.retired:
            return                                 # a peer may still touch it: leak it
        try:
            _pending_frees.append((self.block, self.lock))
        except Exception:
            pass


class _Local(threading.local):
    tb: Optional[_ThreadBlock] = None


_local = _Local()
_pending_frees: List[Tuple[int, int]] = []       # (block, lock) of ended threads, freed at the next operation
_pending_closes: List[Tuple[int, int]] = []      # (cid, end) closes deferred by __del__
_exports: Dict[int, int] = {}             # token block -> Py_buffer address (buffers this interpreter sent)


_releasers: Dict[int, Callable[[], None]] = {}          # raw lock address -> release() with prebuilt arguments


def _release(lock: int) -> None:
    """Release another thread's wait lock (its address comes from the pool)."""
    rel = _releasers.get(lock)
    if rel is None:
        if len(_releasers) > 4096:
            _releasers.clear()
        rel = _releasers[lock] = _capi.fast_lock(lock)[1]
    rel()


def _wait(tb: _ThreadBlock, timeout: Optional[float]) -> bool:
    """Sleep on the thread's lock until a peer releases it; False on timeout."""
    if timeout is None:
        wait_slice = tb.wait_slice
        while wait_slice() != 1:
            _capi.check_signals()     # Ctrl-C raises here, between 50 ms slices
        return True
    return _capi.lock_wait(tb.lock, timeout)


def _thread_block() -> _ThreadBlock:
    tb = _local.tb
    if tb is None:
        tb = _local.tb = _ThreadBlock()
    return tb


def _process_pending() -> None:
    while _pending_frees:
        try:
            block, lock = _pending_frees.pop()
        except IndexError:
            break
        with _locked as R:
            R.free_locked(block)
        _capi.lock_free(lock)
    while _pending_closes:
        try:
            cid, end = _pending_closes.pop()
        except IndexError:
            break
        _close_end(cid, end, _ME)
    if _exports:
        _reap_exports()


# -- lookups and entries (lock held) --------------------------------------------------

def _base_locked(R: _Regions, cid: int) -> int:
    """Return the slot base of channel *cid*, or raise."""
    if type(cid) is int and cid > 0:
        base = (cid % NCSLOTS) * CSLOT_WORDS
        if R.T[base + CID] == cid:
            return base
        if cid < R.H[_arena.NEXT_CID_W]:
            raise _exc.ChannelClosedError("channel %d is closed" % cid)
    raise _exc.ChannelNotFoundError("channel %r does not exist" % (cid,))


def _flags_pos_locked(R: _Regions, base: int, iid: int, create: bool = True) -> int:
    """Return the pool index of *iid*'s flags word for this channel, or -1."""
    T, P = R.T, R.P
    b, last = T[base + ENTRIES], 0
    while b:
        o = b * BW
        for k in range(P[o + E_COUNT]):
            if P[o + E_PAIRS + 2 * k] == iid:
                return o + E_PAIRS + 2 * k + 1
        last, b = b, P[o + E_NEXT]
    if not create:
        return -1
    if last and P[last * BW + E_COUNT] < E_PER_BLOCK:
        o = last * BW
    else:
        nb = R.alloc_locked()
        if last:
            P[last * BW + E_NEXT] = nb
        else:
            T[base + ENTRIES] = nb
        o = nb * BW
    k = P[o + E_COUNT]
    P[o + E_COUNT] = k + 1
    P[o + E_PAIRS + 2 * k] = iid
    P[o + E_PAIRS + 2 * k + 1] = 0
    return o + E_PAIRS + 2 * k + 1


def _all_flags_locked(R: _Regions, base: int) -> List[Tuple[int, int]]:
    T, P = R.T, R.P
    out: List[Tuple[int, int]] = []
    b = T[base + ENTRIES]
    while b:
        o = b * BW
        for k in range(P[o + E_COUNT]):
            out.append((P[o + E_PAIRS + 2 * k], o + E_PAIRS + 2 * k + 1))
        b = P[o + E_NEXT]
    return out


_mypos: Dict[int, int] = {}      # cid -> pool index of this interpreter's flags word (entries never move)


def _my_flags_locked(R: _Regions, base: int, cid: int) -> int:
    pos = _mypos.get(cid)
    if pos is None:
        pos = _mypos[cid] = _flags_pos_locked(R, base, _ME)
    return pos


def _should_close_locked(R: _Regions, base: int) -> bool:
    T, P = R.T, R.P
    if not T[base + CLOSES] or T[base + TRANSIT_R] or T[base + TRANSIT_S]:
        return False
    for _, pos in _all_flags_locked(R, base):
        f = P[pos]
        for end in (RECV, SEND):
            if f & (_HANDLE[end] | _ASSOC[end]) and not f & _CLOSEDF[end]:
                return False
    return True


def _close_channel_locked(R: _Regions, base: int, force: bool = False) -> None:
    """Mark CLOSED: drop blocked senders' messages, wake every waiter.

    Messages accepted by a *_nowait() send stay receivable, unless *force*
    (close(force=True)) discards them too.
    """
    T, P = R.T, R.P
    T[base + STATE] = CLOSED
    b, keep_head, keep_tail, kept = T[base + QHEAD], 0, 0, 0
    while b:
        o = b * BW
        nxt = P[o + B_NEXT]
        if not P[o + B_OWNED] and P[o + B_KIND] != 0 and P[o + B_LOCK]:
            P[o + B_STATE] = DROPPED                  # a blocked send(): EOFError
            P[o + B_NEXT] = 0
            _drop_refs_locked(R, o)
            _release(P[o + B_LOCK])
        elif force:                                   # accepted, but discarded
            _drop_refs_locked(R, o)
            if P[o + B_KIND] != K_BUFFER:
                _capi.raw_free(P[o + B_DATA])
            R.free_locked(b)
        else:                                         # accepted by *_nowait(): kept
            P[o + B_NEXT] = 0
            if keep_tail:
                P[keep_tail * BW + B_NEXT] = b
            else:
                keep_head = b
            keep_tail = b
            kept += 1
        b = nxt
    T[base + QHEAD], T[base + QTAIL], T[base + QLEN] = keep_head, keep_tail, kept
    while _wake_one_locked(R, base):
        pass
    _maybe_release_locked(R, base)


def _maybe_release_locked(R: _Regions, base: int) -> None:
    """Free a closed channel's slot (and its entry blocks) once nothing is queued."""
    T, P = R.T, R.P
    if T[base + STATE] != CLOSED or T[base + QHEAD] or T[base + RWHEAD]:
        return
    b = T[base + ENTRIES]
    while b:
        nxt = P[b * BW + E_NEXT]
        R.free_locked(b)
        b = nxt
    T[base:base + CSLOT_WORDS] = _ZERO
    R.H[_arena.NCHANNELS_W] -= 1


def _wake_one_locked(R: _Regions, base: int) -> bool:
    T, P = R.T, R.P
    w = T[base + RWHEAD]
    if not w:
        return False
    o = w * BW
    T[base + RWHEAD] = P[o + B_NEXT]
    if not P[o + B_NEXT]:
        T[base + RWTAIL] = 0
    P[o + B_NEXT] = 0
    _release(P[o + B_LOCK])
    return True


def _unlink_locked(R: _Regions, base: int, head_w: int, tail_w: int, block: int) -> bool:
    """Remove *block* from the list at T[base+head_w]; return False if absent."""
    T, P = R.T, R.P
    prev, b = 0, T[base + head_w]
    while b:
        if b == block:
            nxt = P[b * BW + B_NEXT]
            if prev:
                P[prev * BW + B_NEXT] = nxt
            else:
                T[base + head_w] = nxt
            if T[base + tail_w] == block:
                T[base + tail_w] = prev
            P[b * BW + B_NEXT] = 0
            return True
        prev, b = b, P[b * BW + B_NEXT]
    return False


def _append_locked(R: _Regions, base: int, head_w: int, tail_w: int, block: int) -> None:
    T = R.T
    tail = T[base + tail_w]
    if tail:
        R.P[tail * BW + B_NEXT] = block
    else:
        T[base + head_w] = block
    T[base + tail_w] = block


# -- encoding ---------------------------------------------------------------------------

_SIMPLE = frozenset((type(None), bool, int, float, str, bytes))


def _convert(obj: Any, refs: Refs) -> Any:
    """Return *obj* as marshal-able data (tuples become lists, ends dicts)."""
    t = type(obj)
    if t in _SIMPLE:
        return obj
    if t is tuple:
        return [_convert(x, refs) for x in obj]
    if t is RecvChannel or t is SendChannel:
        refs.append((obj._id, obj._end))
        return {"rs"[obj._end]: obj._id}
    raise ValueError("%s object is not shareable: channels carry None, bytes, str, int, "
                     "float, bool, tuples of those, and channel ends (use send_buffer() "
                     "for buffers)" % t.__name__)


def _revert(value: Any, refs: Optional[Refs] = None) -> Any:
    t = type(value)
    if t is list:
        return tuple(_revert(x, refs) for x in value)
    if t is dict:
        ((tag, cid),) = value.items()
        end = RECV if tag == "r" else SEND
        if refs is not None:
            refs.append((cid, end))
            return None
        return (RecvChannel, SendChannel)[end]._received(cid)
    return value


def is_shareable(obj: object) -> bool:
    """Return True if send() accepts *obj* (its data can cross interpreters)."""
    try:
        _convert(obj, [])
    except ValueError:
        return False
    return True


def _drop_refs_locked(R: _Regions, o: int) -> None:
    """A message is discarded: give back its ends' transit counts, release buffers."""
    P = R.P
    kind = P[o + B_KIND]
    if kind == K_BUFFER:
        if P[o + B_TOKEN]:
            P[P[o + B_TOKEN] * BW + T_STATE] = 1
    elif kind == K_OBJ:
        refs: Refs = []
        try:
            _revert(marshal.loads(_capi.raw_string_at(P[o + B_DATA], P[o + B_LEN])), refs)
        except Exception:
            return
        _adjust_transit_locked(R, refs, -1)


def _adjust_transit_locked(R: _Regions, refs: Sequence[Tuple[int, int]], delta: int) -> None:
    T = R.T
    for cid, end in refs:
        base = (cid % NCSLOTS) * CSLOT_WORDS
        if T[base + CID] == cid:
            T[base + _TRANSIT[end]] += delta
            if delta < 0 and T[base + STATE] == OPEN and _should_close_locked(R, base):
                _close_channel_locked(R, base)


# -- channel lifecycle ------------------------------------------------------------------

def create() -> int:
    _process_pending()
    with _locked as R:
        T, H = R.T, R.H
        if H[_arena.NCHANNELS_W] >= NCSLOTS:
            raise _exc.ChannelError("too many open channels (%d)" % NCSLOTS)
        cid = H[_arena.NEXT_CID_W]
        while T[(cid % NCSLOTS) * CSLOT_WORDS + CID]:
            cid += 1
        H[_arena.NEXT_CID_W] = cid + 1
        base = (cid % NCSLOTS) * CSLOT_WORDS
        T[base:base + CSLOT_WORDS] = _ZERO
        T[base + STATE] = OPEN
        T[base + CID] = cid
        H[_arena.NCHANNELS_W] += 1
    return cid


def _attach(cid: int, end: int, received: bool = False) -> None:
    """This interpreter now holds a handle on *end* of channel *cid*."""
    with _locked as R:
        if received:
            base = (cid % NCSLOTS) * CSLOT_WORDS
            if R.T[base + CID] != cid:       # closed while in flight: a dead handle
                return
            R.T[base + _TRANSIT[end]] -= 1
        else:
            base = _base_locked(R, cid)
        pos = _my_flags_locked(R, base, cid)
        R.P[pos] |= _HANDLE[end]


def _close_end(cid: int, end: int, iid: int) -> bool:
    """close() of one end for interpreter *iid*.  Return True the first time."""
    with _locked as R:
        try:
            base = _base_locked(R, cid)
        except _exc.ChannelError:
            return False
        pos = _my_flags_locked(R, base, cid) if iid == _ME else _flags_pos_locked(R, base, iid)
        P = R.P
        f = P[pos]
        if f & _CLOSEDF[end]:
            return False
        P[pos] = (f | _CLOSEDF[end]) & ~(_ASSOC[end] | _HANDLE[end])
        R.T[base + CLOSES] += 1
        if R.T[base + STATE] == OPEN and _should_close_locked(R, base):
            _close_channel_locked(R, base)
        elif end == SEND and not _senders_attached_locked(R, base):
            # The last sender is gone: receivers iterating over the channel stop
            # (plain recv() calls look again and keep waiting).
            while _wake_one_locked(R, base):
                pass
        return True


def force_close(cid: int) -> bool:
    """close(force=True): close channel *cid* for every interpreter now.

    Return True if this call closed it (False if it was closed already).
    """
    with _locked as R:
        try:
            base = _base_locked(R, cid)
        except _exc.ChannelClosedError:
            return False
        was_open = R.T[base + STATE] == OPEN
        R.T[base + CLOSES] += 1
        _close_channel_locked(R, base, force=True)
        return was_open


def drop_interp(iid: int) -> None:
    """Interpreter *iid* was destroyed: close its ends of every channel."""
    if not _interp._arena_obj.header[_arena.CHANNELS_W]:
        return
    with _locked as R:
        T, P = R.T, R.P
        for cid in [c for c in T[CID::CSLOT_WORDS].tolist() if c]:
            base = (cid % NCSLOTS) * CSLOT_WORDS
            pos = _flags_pos_locked(R, base, iid, create=False)
            if pos < 0:
                continue
            if P[pos] & (HANDLE_R | ASSOC_R | HANDLE_S | ASSOC_S):
                P[pos] = CLOSED_R | CLOSED_S
                T[base + CLOSES] += 1
                if T[base + STATE] == OPEN and _should_close_locked(R, base):
                    _close_channel_locked(R, base)


def _use_locked(R: _Regions, cid: int, end: int) -> int:
    """Check that this interpreter may use *end* and associate it; return base."""
    base = (cid % NCSLOTS) * CSLOT_WORDS
    T = R.T
    if T[base + CID] != cid:
        base = _base_locked(R, cid)        # raises the right error
    pos = _mypos.get(cid)
    if pos is None:
        pos = _my_flags_locked(R, base, cid)
    P = R.P
    f = P[pos]
    if f & _CLOSEDF[end]:
        raise ValueError("channel %d: this interpreter closed its %s end"
                         % (cid, _END_NAME[end]))
    if T[base + STATE] == CLOSED and (end == SEND or not T[base + QHEAD]):
        raise _exc.ChannelClosedError("channel %d is closed" % cid)
    if not f & _ASSOC[end]:
        P[pos] = f | _ASSOC[end]
    return base


# -- send and recv ----------------------------------------------------------------------

def _check_timeout(timeout: object) -> float:
    if not isinstance(timeout, numbers.Real):
        raise TypeError("timeout must be a number of seconds or None, not %s"
                        % type(timeout).__name__)
    timeout = float(timeout)
    if not timeout >= 0:
        raise ValueError("timeout must be a non-negative number, got %r" % timeout)
    return timeout


def _export(obj: object) -> Tuple[int, int, int, bool]:
    try:
        return _capi.buffer_export(obj)
    except (TypeError, BufferError) as exc:
        raise ValueError("send_buffer() needs a contiguous object supporting the buffer "
                         "protocol (PEP 3118), not %s (%s)" % (type(obj).__name__, exc)) from None


def send(cid: int, obj: object, *, nowait: bool = False, buffer: bool = False,
         timeout: Optional[float] = None) -> None:
    if _pending_frees or _pending_closes or _exports:
        _process_pending()
    if timeout is not None:
        timeout = _check_timeout(timeout)
    refs: Sequence[Tuple[int, int]] = ()
    export: Optional[Tuple[int, int, int, bool]] = None
    if buffer:
        kind = K_BUFFER
        export = _export(obj)
        data = b""                  # unused: the buffer itself is sent
    elif type(obj) is bytes:
        kind, data = K_BYTES, obj
    else:
        obj_refs: Refs = []
        kind, data = K_OBJ, marshal.dumps(_convert(obj, obj_refs))
        refs = obj_refs
    if nowait and not buffer:
        n = len(data)
        mem = _capi.raw_alloc(max(n, 1))
        if n:
            _capi.raw_copy(mem, _capi.bytes_address(data), n)
    else:
        mem = 0
    tb = None if nowait else (_local.tb or _thread_block())
    R = _R or _regions()
    try:
        if not R.lock_try():
            _capi.lock_wait(R.lock_addr)
        try:
            base = _use_locked(R, cid, SEND)
            T, P = R.T, R.P
            if nowait and not T[base + RWHEAD]:
                raise _exc.NotReceivedError(
                    "channel %d: no receiver is waiting (a *_nowait() send needs one)" % cid)
            for rcid, _ in refs:
                _base_locked(R, rcid)            # a closed end cannot travel
            b = R.alloc_locked() if tb is None else tb.block
            o = b * BW
            P[o + B_KIND] = kind
            P[o + B_SENDER] = _ME
            P[o + B_STATE] = PENDING
            P[o + B_NEXT] = 0
            if export is not None:           # K_BUFFER
                view, buf, length, readonly = export
                t = R.alloc_locked()
                P[t * BW + T_EXPORTER] = _ME
                P[t * BW + T_VIEW] = view
                P[t * BW + T_READONLY] = readonly
                _exports[t] = view
                export = None                    # owned by the token now
                P[o + B_DATA], P[o + B_LEN], P[o + B_TOKEN] = buf, length, t
            else:
                P[o + B_DATA] = mem or _capi.bytes_address(data)
                P[o + B_LEN] = len(data)
                P[o + B_TOKEN] = 0
            P[o + B_OWNED] = 1 if nowait else 0
            if nowait:
                P[o + B_LOCK] = 0
            if refs:
                _adjust_transit_locked(R, refs, +1)
            _append_locked(R, base, QHEAD, QTAIL, b)
            T[base + QLEN] += 1
            _wake_one_locked(R, base)
        finally:
            R.lock_release()
    except BaseException:
        if mem:
            _capi.raw_free(mem)
        if export is not None:
            _capi.buffer_release(export[0])
        raise
    if tb is None:                           # nowait: done
        return
    # Wait until a receiver took it (DONE) or the channel closed (DROPPED).
    error = None
    try:
        ok = tb.lock_try() or _wait(tb, timeout)
    except BaseException as exc:          # Ctrl-C: withdraw the object if still pending
        ok, error = False, exc
    o = tb.block * BW
    P = R.P
    if not ok:
        with _locked as R:
            if P[o + B_STATE] == PENDING:
                base = (cid % NCSLOTS) * CSLOT_WORDS
                if _unlink_locked(R, base, QHEAD, QTAIL, tb.block):
                    R.T[base + QLEN] -= 1
                P[o + B_STATE] = DROPPED
                _drop_refs_locked(R, o)
                withdrawn = True
            else:
                withdrawn = False
        if withdrawn:
            if error is not None:
                raise error
            raise TimeoutError("channel %d: nothing received the object within %r seconds"
                               % (cid, timeout))
        # A receiver is copying it (or the channel closed under us): our lock is
        # released promptly; wait for that, so *obj* outlives the copy.
        try:
            _capi.lock_wait(tb.lock, None)
        except BaseException:
            tb.retired = True
            _local.tb = None
            raise
        if error is not None and P[o + B_STATE] != DONE:
            raise error
    if P[o + B_STATE] == DROPPED:
        raise _exc.ChannelClosedError("channel %d closed before the object was received"
                                      % cid)


class _NoSenders(Exception):
    """recv(until_no_senders=True) found nothing queued and no sender left."""


def _senders_attached_locked(R: _Regions, base: int) -> bool:
    """Whether any interpreter could still send: holds or used the send end, not closed."""
    if R.T[base + TRANSIT_S]:
        return True
    P = R.P
    for _, pos in _all_flags_locked(R, base):
        if P[pos] & (HANDLE_S | ASSOC_S) and not P[pos] & CLOSED_S:
            return True
    return False


def recv(cid: int, *, nowait: bool = False, default: Any = None,
         timeout: Optional[float] = None, until_no_senders: bool = False) -> Any:
    if _pending_frees or _pending_closes or _exports:
        _process_pending()
    if timeout is not None:
        timeout = _check_timeout(timeout)
        deadline = time.monotonic() + timeout
    tb = None if nowait else (_local.tb or _thread_block())   # not under the lock
    R = _R or _regions()
    while True:
        if not R.lock_try():
            _capi.lock_wait(R.lock_addr)
        try:
            base = _use_locked(R, cid, RECV)
            T, P = R.T, R.P
            b = T[base + QHEAD]
            if b:
                o = b * BW
                T[base + QHEAD] = P[o + B_NEXT]
                if not P[o + B_NEXT]:
                    T[base + QTAIL] = 0
                T[base + QLEN] -= 1
                P[o + B_NEXT] = 0
                P[o + B_STATE] = TAKEN
                kind, data, length = P[o + B_KIND], P[o + B_DATA], P[o + B_LEN]
                owned, lock, token = P[o + B_OWNED], P[o + B_LOCK], P[o + B_TOKEN]
                if T[base + STATE] == CLOSED:
                    _maybe_release_locked(R, base)
            elif tb is None:                  # nowait
                return default
            elif until_no_senders and not _senders_attached_locked(R, base):
                raise _NoSenders(cid)
            else:
                _append_locked(R, base, RWHEAD, RWTAIL, tb.block)
        finally:
            R.lock_release()
        if b:
            return _take(R, b, kind, data, length, owned, lock, token)
        assert tb is not None             # nowait returned above
        error = None
        try:
            if timeout is None:
                woken = _wait(tb, None)
            else:
                left = deadline - time.monotonic()
                woken = left > 0 and _wait(tb, left)
        except BaseException as exc:      # Ctrl-C: leave the channel as we found it
            woken, error = False, exc
        if woken:
            continue
        with _locked as R:
            base = (cid % NCSLOTS) * CSLOT_WORDS
            waiting = (R.T[base + CID] == cid
                       and _unlink_locked(R, base, RWHEAD, RWTAIL, tb.block))
            if not waiting:
                tb.lock_try()             # we were woken as we gave up: take it back
        if error is not None:
            raise error
        if not waiting:
            continue                      # look once more: a message may be there
        raise TimeoutError("channel %d: nothing was sent within %r seconds" % (cid, timeout))


def _take(R: _Regions, b: int, kind: int, data: int, length: int, owned: int, lock: int,
          token: int) -> Any:
    try:
        if kind == K_BYTES:
            obj = _capi.raw_string_at(data, length)
        elif kind == K_OBJ:
            obj = _revert(marshal.loads(_capi.raw_string_at(data, length)))
        else:
            obj = _map_buffer(R, data, length, token)
    finally:
        if owned:
            with _locked as R:
                R.free_locked(b)
            if kind != K_BUFFER:
                _capi.raw_free(data)
        else:
            R.P[b * BW + B_STATE] = DONE
            _release(lock)                # the sender owns the block
    return obj


def _map_buffer(R: _Regions, data: int, length: int, token: int) -> memoryview:
    holder = _capi.foreign_memory(data, length)
    view = memoryview(holder).cast("B")
    if R.P[token * BW + T_READONLY]:
        view = view.toreadonly()
    weakref.finalize(holder, _release_token, token)
    return view


def _release_token(token: int) -> None:
    R = _R or _regions()
    R.P[token * BW + T_STATE] = 1         # the exporter releases it at its next operation


def _reap_exports() -> None:
    P = (_R or _regions()).P
    done = [t for t in list(_exports) if P[t * BW + T_STATE]]
    for t in done:
        view = _exports.pop(t, None)
        if view:
            _capi.buffer_release(view)
        with _locked as R:
            R.free_locked(t)


def outstanding_exports() -> int:
    """Number of buffers this interpreter sent that a receiver still holds."""
    if _exports:
        _reap_exports()
    return len(_exports)


def associated(cid: int, end: int) -> List[int]:
    with _locked as R:
        base = _base_locked(R, cid)
        return [iid for iid, pos in _all_flags_locked(R, base)
                if R.P[pos] & _ASSOC[end] and not R.P[pos] & _CLOSEDF[end]]


def list_open() -> List[int]:
    if not _interp._arena_obj.header[_arena.CHANNELS_W]:
        return []
    with _locked as R:
        T = R.T
        return sorted(c for c in T[CID::CSLOT_WORDS].tolist()
                      if c and T[(c % NCSLOTS) * CSLOT_WORDS + STATE] == OPEN)


# -- the channel ends ---------------------------------------------------------------------

class _ChannelEnd:
    __slots__ = ("_id", "__weakref__")
    _id: int
    _end: ClassVar[int] = RECV
    # Each concrete end class has its own: one object per channel id and end.
    _known: ClassVar[weakref.WeakValueDictionary[int, Any]]

    def __new__(cls: Type[_E], id: int) -> _E:
        if isinstance(id, bool) or not isinstance(id, int):
            raise TypeError("channel id must be an int, not %s" % type(id).__name__)
        id = int(id)
        self = cls._known.get(id)
        if self is None:
            _process_pending()
            _attach(id, cls._end)
            self = object.__new__(cls)
            self._id = id
            cls._known[id] = self
        return self

    @classmethod
    def _received(cls: Type[_E], cid: int) -> _E:
        _attach(cid, cls._end, received=True)
        self = cls._known.get(cid)
        if self is None:
            self = object.__new__(cls)
            self._id = cid
            cls._known[cid] = self
        return self

    def __del__(self) -> None:
        # The last handle in this interpreter is gone: close our end (PEP 554).
        # Never block here: if the arena lock is taken (maybe by this very thread,
        # when the collector runs inside a locked section), defer to the next
        # operation in this interpreter.
        try:
            R = _R
            if R is not None and R.lock_try():
                R.lock_release()
                _close_end(self._id, self._end, _ME)
            else:
                _pending_closes.append((self._id, self._end))
        except Exception:
            pass

    def __reduce__(self) -> Tuple[Type[_ChannelEnd], Tuple[int]]:
        return (type(self), (self._id,))

    def __repr__(self) -> str:
        return "%s(%d)" % (type(self).__name__, self._id)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _ChannelEnd)
        return self._id == other._id

    def __hash__(self) -> int:
        return hash((type(self), self._id))

    @property
    def id(self) -> int:
        """The channel's unique id (read-only)."""
        return self._id

    @property
    def interpreters(self) -> List[Interpreter]:
        """The interpreters associated with this end: used it and did not close it."""
        from . import Interpreter
        return [Interpreter(i) for i in associated(self._id, self._end)]

    def _spec(self) -> Tuple[str, int]:
        return ("rs"[self._end], self._id)

    def close(self, force: bool = False) -> bool:
        """Drop this interpreter's association with this end and block future use.

        Once no interpreter is attached to either end (holding it or associated
        with it, and not closed), the channel is closed: send() and recv()
        anywhere raise EOFError (ChannelClosedError), except that objects
        already accepted by a *_nowait() send can still be received.
        Idempotent: return True only the first time this interpreter closes it.

        ``force=True`` (the PEP's "poisoning"): close the whole channel now, for
        every interpreter.  Blocked send() and recv() calls anywhere raise
        ChannelClosedError, and objects not yet received are discarded.  Return
        True if this call closed the channel.
        """
        _process_pending()
        if force:
            return force_close(self._id)
        return _close_end(self._id, self._end, _ME)

    def poison(self) -> bool:
        """Same as ``close(force=True)`` (CSP's name for it)."""
        return self.close(force=True)

    def __enter__(self: _E) -> _E:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Leaving a ``with`` block closes this interpreter's end (``close()``)."""
        self.close()


class RecvChannel(_ChannelEnd):
    """The receiving end of a channel."""

    __slots__ = ()
    _end = RECV
    _known: ClassVar[weakref.WeakValueDictionary[int, RecvChannel]] = (
        weakref.WeakValueDictionary())

    def recv(self, timeout: Optional[float] = None) -> Any:
        """Return the next object sent on the channel, waiting until one arrives.

        The object is rebuilt in this interpreter; nothing is shared with the
        sender.  Associates this interpreter with the receiving end.

        Raises:
            EOFError (ChannelClosedError): the channel is closed (and empty).
            ValueError: this interpreter already closed its receiving end.
            TimeoutError: nothing arrived within *timeout* seconds.
            KeyboardInterrupt: Ctrl-C while waiting (the channel is left intact).
        """
        return recv(self._id, timeout=timeout)

    def recv_nowait(self, default: Any = None) -> Any:
        """Like recv(), but return *default* at once when nothing is pending."""
        return recv(self._id, nowait=True, default=default)

    def __iter__(self) -> RecvChannel:
        """Iterate over received objects until no more can come.

        Iteration stops, like reading a pipe to its end, once nothing is
        queued and no interpreter can send any more: the channel is closed,
        or every interpreter that held or used the sending end closed it
        (a plain recv() would keep waiting then, since another interpreter
        could still take up the sending end).  Associates like recv().
        """
        return self

    def __next__(self) -> Any:
        try:
            return recv(self._id, until_no_senders=True)
        except (_exc.ChannelClosedError, _NoSenders):
            raise StopIteration from None


class SendChannel(_ChannelEnd):
    """The sending end of a channel."""

    __slots__ = ()
    _end = SEND
    _known: ClassVar[weakref.WeakValueDictionary[int, SendChannel]] = (
        weakref.WeakValueDictionary())

    def send(self, obj: object, timeout: Optional[float] = None) -> None:
        """Send *obj*'s data and wait until a receiver has taken it.

        Shareable: None, bytes, str, int, float, bool, tuples of those, and
        channel ends.  Associates this interpreter with the sending end.

        Raises:
            ValueError: *obj* is not shareable, or this interpreter closed its end.
            EOFError (ChannelClosedError): the channel is (or becomes) closed.
            TimeoutError: no receiver took it within *timeout* seconds; the
                object was withdrawn and will never be received.
            KeyboardInterrupt: Ctrl-C while waiting; the object is withdrawn
                unless a receiver had already taken it.
        """
        send(self._id, obj, timeout=timeout)

    def send_nowait(self, obj: object) -> None:
        """Hand *obj* to a receiver waiting right now; else raise RuntimeError.

        Raises NotReceivedError (a RuntimeError) when no receiver is waiting.
        """
        send(self._id, obj, nowait=True)

    def send_buffer(self, obj: object, timeout: Optional[float] = None) -> None:
        """Send a zero-copy view of *obj*'s (PEP 3118) buffer; wait until received.

        The receiver gets a memoryview over this interpreter's memory, writable
        if *obj* is.  *obj* stays exported (and alive) until the receiver
        releases the view or its interpreter ends, even if every reference here
        is dropped.  While a receiver holds such a view, the sending
        interpreter cannot be destroyed (InterpreterError says so).
        """
        send(self._id, obj, buffer=True, timeout=timeout)

    def send_buffer_nowait(self, obj: object) -> None:
        """Like send_buffer(), but raise RuntimeError unless a receiver is waiting."""
        send(self._id, obj, nowait=True, buffer=True)


def from_spec(spec: Tuple[str, int]) -> Union[RecvChannel, SendChannel]:
    tag, cid = spec
    return (RecvChannel if tag == "r" else SendChannel)(cid)


def create_channel() -> Tuple[RecvChannel, SendChannel]:
    """Create a channel; return its ends as (RecvChannel, SendChannel)."""
    cid = create()
    return RecvChannel(cid), SendChannel(cid)


def list_all_channels() -> List[Tuple[RecvChannel, SendChannel]]:
    """Return (RecvChannel, SendChannel) for every open channel."""
    out: List[Tuple[RecvChannel, SendChannel]] = []
    for cid in list_open():
        try:
            out.append((RecvChannel(cid), SendChannel(cid)))
        except _exc.ChannelError:
            pass
    return out


def _after_fork_in_child() -> None:
    # The child starts a fresh arena (_interp does that first): forget the parent's.
    global _R
    _R = None
    _local.tb = None
    _mypos.clear()
    _exports.clear()
    _pending_closes.clear()
    _pending_frees.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
