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
      11 WHEAD     watchers: links of select()/async waits on this channel (unordered)
      12 MAXSIZE   0: a channel (unbuffered); n > 0: a Queue holding at most n;
                   -1: an unbounded Queue (Pipe connections are two of those)
      13 UNFINISHED  Queue: put() calls not yet matched by task_done()
      14 USED      a channel: 1 once some interpreter was associated with it (see
                   _should_close_locked)

* The block pool: POOL_N blocks of 16 int64 words, addressed by index (0 is
  "none"), all seen through one memoryview.  Free blocks form a list (FREE);
  blocks past USED were never handed out.  A block is one of:

      message / waiter  NEXT, KIND, DATA, LEN, STATE, LOCK, OWNED, TOKEN, SENDER, WATCH,
                        UNBOUND (SENDER: the interpreter that queued it, or that waits in
                        recv(); UNBOUND: a queue item's rule for when SENDER is destroyed,
                        PEP 734: 0 none, 1 remove it then, 2/3 kept; see drop_interp())
      entries           NEXT, COUNT, then 7 pairs (interpreter id, flags)
      buffer token      STATE (0 live, 1 released), EXPORTER, VIEW, READONLY
      watcher           -, FIRED, LOCK, FD (+1), OWNER: one select() or async wait
      link              NEXT, WATCHER, MASK, CID: a watcher's entry in one channel's
                        WHEAD list (MASK: which events fire it)

Watchers.  select(), the *_async() methods and Queue/Pipe waits do not take
anything while they wait, so they do not join the RW list: they hang a link in
WHEAD of every channel they watch and sleep on their thread's lock (select, a
blocked put()/join()) or on an event loop's pipe (async).  An event on a channel
(a message queued, a receiver waiting, a message taken, the last sender gone,
the channel closed, a queue's work finished) *fires* the matching watchers: once
per watcher, FIRED goes from 0 to its value and the lock is released or a byte
is written to the pipe, under the arena lock.  The waiter then removes its
links under the lock and looks again; a fire is a hint, never a message.  An
async send() queues an owned copy whose WATCH names its watcher: taking the
message fires it with TAKEN, dropping it (close) with DROPPED.

Association (PEP 554).  Each entry's flags say, per end, whether that interpreter
holds a handle (HANDLE: an end object exists there), is associated (ASSOC: it
called send()/recv() or their variants -- the PEP's "use"; binding an end with
run(channels=...) or receiving it in a message is not use) and closed it (CLOSED:
close(), its last handle dropped, or its interpreter destroyed; future use raises
ValueError, or EOFError once the channel is closed).  A channel someone used
(USED) is closed when no interpreter is associated with either end, whoever
still holds handles; one nobody used yet is closed once an end was closed and no
handle is left anywhere, in flight included (else it would hold its slot for
ever).  Queues and Pipe connections live by handles: closed once an end was
closed and no interpreter holds them.  close() of an end of a channel that stays
open wakes this interpreter's calls waiting on that end (_withdraw_locked).  A
handle can be made for a closed channel (a dead handle): its use raises EOFError.

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

import collections
import functools
import io
import marshal
import numbers
import os
import sys
import threading
import time
import weakref

from . import _arena, _capi, _exc, _interp

# Annotations are strings (postponed); typing is imported for the checker only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import (
        Any, Callable, ClassVar, Deque, Dict, List, Optional, Sequence, Tuple, Type, TypeVar,
        Union,
    )

    from . import Interpreter

    _E = TypeVar("_E", bound="_ChannelEnd")
    Refs = List[Tuple[int, int]]       # (channel id, end) of channel ends inside a message

NCSLOTS = 16384
CSLOT_WORDS = 16
(CID, STATE, QHEAD, QTAIL, QLEN, RWHEAD, RWTAIL, ENTRIES, CLOSES, TRANSIT_R,
 TRANSIT_S, WHEAD, MAXSIZE, UNFINISHED, USED) = range(15)
OPEN, CLOSED = 1, 2

POOL_N = 1 << 18
BW = 16                                   # words per block
(B_NEXT, B_KIND, B_DATA, B_LEN, B_STATE, B_LOCK, B_OWNED, B_TOKEN, B_SENDER, B_WATCH,
 B_UNBOUND) = range(11)
U_REMOVE = 1                             # B_UNBOUND: drop the item when its sender is destroyed
W_FIRED, W_LOCK, W_FD, W_OWNER = 1, 2, 3, 4              # watcher block
L_NEXT, L_WATCHER, L_MASK, L_CID = 0, 1, 2, 3            # link block
EV_RECV, EV_SEND, EV_JOIN = 1, 2, 4      # recv may succeed / send may / queue work done
EV_ALL = EV_RECV | EV_SEND | EV_JOIN
FIRED, TAKEN, DROPPED_W = 1, 1, 2        # W_FIRED values (an async send's watcher: 1 or 2)
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
            _lock(self)
            try:
                if not self.H[_arena.CHANNELS_W]:
                    self.H[_arena.CHANNELS_W] = _capi.raw_alloc(NCSLOTS * CSLOT_WORDS * 8)
                if not self.H[_arena.POOL_W]:
                    self.H[_arena.POOL_N_W] = POOL_N
                    self.H[_arena.USED_W] = 1        # block 0 means "none"
                    self.H[_arena.POOL_W] = _capi.raw_alloc(POOL_N * BW * 8)
            finally:
                self.lock_release()
                _resume()
        self.T = _capi.raw_view(self.H[_arena.CHANNELS_W], NCSLOTS * CSLOT_WORDS * 8).cast("q")
        self.P = _capi.raw_view(self.H[_arena.POOL_W], self.H[_arena.POOL_N_W] * BW * 8).cast("q")

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


_defer, _resume = _arena.defer, _arena.resume
_get_ident = threading.get_ident
_deque = collections.deque


def _lock(R: _Regions) -> None:
    """Enter a deferred region (``_arena.defer``) and take the arena lock.

    Pair with ``R.lock_release()`` and ``_resume()``.  Once this returned,
    nothing is raised into the thread until ``_resume()``, which runs the signal
    handlers it deferred (a KeyboardInterrupt then surfaces after the section).
    """
    _defer()
    if not R.lock_try():
        _capi.lock_wait_uninterruptible(R.lock_addr)


class _Lock:
    """``with _locked:`` holds the arena lock (short, non-blocking sections only),
    inside a deferred region: an interrupt surfaces at the end of the block."""

    def __enter__(self) -> _Regions:
        R = _R or _regions()
        _lock(R)
        return R

    def __exit__(self, *exc: object) -> None:
        (_R or _regions()).lock_release()
        _resume()


_locked = _Lock()


class _Region:
    """``with _region:`` a deferred region without the lock (see _arena.defer).

    For work that must not be cut in two, like creating a channel and the
    objects that hold it: an interrupt surfaces when the block is done (then
    the objects are dropped, and their finalizers close what they held).
    """

    def __enter__(self) -> None:
        _defer()

    def __exit__(self, *exc: object) -> None:
        _resume()


_region = _Region()


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
    if _last is not None and _get_ident() == _arena._MAIN:
        _settle_last()                 # drop the frame it holds (and what that holds)
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
    """Whether the channel (or queue) at *base*, still OPEN, must be marked CLOSED now.

    A channel some interpreter used (USED): once no interpreter is associated
    with either end (PEP 554: "Once the number of associated interpreters on both
    ends drops to 0, the channel is actually marked as closed"); holding an end,
    or one in flight, does not count.  A channel nobody used yet, and a queue:
    once an end was closed and nobody holds an end any more, here or in flight
    (then nothing could ever use it).
    """
    T, P = R.T, R.P
    if T[base + USED] and not T[base + MAXSIZE]:
        for _, pos in _all_flags_locked(R, base):
            if P[pos] & (ASSOC_R | ASSOC_S):          # close() clears ASSOC
                return False
        return True
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
        if P[o + B_WATCH]:                            # an async send(): DROPPED for it
            _fire_watcher_locked(P, P[o + B_WATCH], DROPPED_W)
            _drop_refs_locked(R, o)
            _capi.raw_free(P[o + B_DATA])
            R.free_locked(b)
        elif not P[o + B_OWNED] and P[o + B_KIND] != 0 and P[o + B_LOCK]:
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
    if T[base + WHEAD]:
        _fire_locked(R, base, EV_ALL)
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


def _enqueue_locked(R: _Regions, base: int, b: int, refs: Sequence[Tuple[int, int]]) -> None:
    """Queue message block *b*: its ends count as in flight; wake a receiver, watchers."""
    T = R.T
    if refs:
        _adjust_transit_locked(R, refs, +1)
    _append_locked(R, base, QHEAD, QTAIL, b)
    T[base + QLEN] += 1
    if T[base + RWHEAD]:
        _wake_one_locked(R, base)
    if T[base + WHEAD]:
        _fire_locked(R, base, EV_RECV)


# -- watchers (lock held) ------------------------------------------------------------------

def _fire_watcher_locked(P: memoryview, w: int, value: int = FIRED) -> None:
    """Fire watcher block *w* once: set FIRED, release its lock or poke its pipe."""
    o = w * BW
    if P[o + W_FIRED]:
        return
    P[o + W_FIRED] = value
    if P[o + W_LOCK]:
        _release(P[o + W_LOCK])
    if P[o + W_FD]:
        try:
            os.write(P[o + W_FD] - 1, b"\0")
        except OSError:            # full (the loop has not drained it yet) or gone
            pass


def _fire_locked(R: _Regions, base: int, ev: int) -> None:
    """Fire every watcher of this channel whose link listens for an event in *ev*."""
    P = R.P
    link = R.T[base + WHEAD]
    while link:
        o = link * BW
        if P[o + L_MASK] & ev:
            _fire_watcher_locked(P, P[o + L_WATCHER])
        link = P[o + L_NEXT]


def _recv_watched_locked(R: _Regions, base: int) -> bool:
    """Whether a select() or async receiver watches this channel (and was not fired)."""
    P = R.P
    link = R.T[base + WHEAD]
    while link:
        o = link * BW
        if P[o + L_MASK] & EV_RECV and not P[P[o + L_WATCHER] * BW + W_FIRED]:
            return True
        link = P[o + L_NEXT]
    return False


def _ready_locked(R: _Regions, cid: int, ev: int, eof: bool) -> bool:
    """Whether an operation of kind *ev* on channel *cid* would not block now.

    A closed or vanished channel is ready (the operation raises at once), and so is
    an end this interpreter closed.
    *eof*: a receiver also counts "no sender left" as ready (Pipe connections).
    """
    base = (cid % NCSLOTS) * CSLOT_WORDS
    T = R.T
    if T[base + CID] != cid or T[base + STATE] == CLOSED:
        return True
    if ev != EV_JOIN:
        pos = _mypos.get(cid)
        if pos is not None and R.P[pos] & _CLOSEDF[RECV if ev == EV_RECV else SEND]:
            return True                  # this interpreter closed that end: raises at once
    if ev == EV_RECV:
        return bool(T[base + QHEAD]) or (eof and not _senders_attached_locked(R, base))
    if ev == EV_SEND:
        m = T[base + MAXSIZE]
        if m == 0:
            return bool(T[base + RWHEAD]) or _recv_watched_locked(R, base)
        if eof and not _receivers_attached_locked(R, base):
            return True
        return m < 0 or T[base + QLEN] < m
    return T[base + UNFINISHED] == 0              # EV_JOIN


def _watch_locked(R: _Regions, items: Sequence[Tuple[int, int]], lock: int, fd: int
                  ) -> Tuple[int, List[Tuple[int, int]]]:
    """Hang a new watcher on each (cid, events) of *items*; return it and its links."""
    P, T = R.P, R.T
    w = R.alloc_locked()
    o = w * BW
    P[o + W_LOCK] = lock
    P[o + W_FD] = fd + 1 if fd >= 0 else 0
    P[o + W_OWNER] = _ME
    links: List[Tuple[int, int]] = []
    try:
        for cid, ev in items:
            base = (cid % NCSLOTS) * CSLOT_WORDS
            if T[base + CID] != cid:
                continue
            link = R.alloc_locked()
            lo = link * BW
            P[lo + L_WATCHER], P[lo + L_MASK], P[lo + L_CID] = w, ev, cid
            P[lo + L_NEXT] = T[base + WHEAD]
            T[base + WHEAD] = link
            links.append((cid, link))
    except BaseException:
        _unwatch_locked(R, w, links)
        raise
    return w, links


def _unwatch_locked(R: _Regions, w: int, links: Sequence[Tuple[int, int]]) -> int:
    """Take watcher *w*'s links out of their channels, free it; return its FIRED value."""
    P, T = R.P, R.T
    for cid, link in links:
        base = (cid % NCSLOTS) * CSLOT_WORDS
        if T[base + CID] == cid:              # else the slot was freed (and maybe reused)
            prev, b = 0, T[base + WHEAD]
            while b:
                if b == link:
                    if prev:
                        P[prev * BW + L_NEXT] = P[b * BW + L_NEXT]
                    else:
                        T[base + WHEAD] = P[b * BW + L_NEXT]
                    break
                prev, b = b, P[b * BW + L_NEXT]
        R.free_locked(link)
    fired: int = P[w * BW + W_FIRED]
    R.free_locked(w)
    return fired


def _drop_watchers_locked(R: _Regions, base: int, iid: int) -> None:
    """Interpreter *iid* is gone: unlink and free the links (and watchers) it left."""
    P, T = R.P, R.T
    prev, link = 0, T[base + WHEAD]
    while link:
        o = link * BW
        nxt = P[o + L_NEXT]
        w = P[o + L_WATCHER]
        if P[w * BW + W_OWNER] == iid:
            if prev:
                P[prev * BW + L_NEXT] = nxt
            else:
                T[base + WHEAD] = nxt
            P[w * BW + W_FD] = 0            # never write to a descriptor it may have closed
            P[w * BW + W_LOCK] = 0
            R.free_locked(link)              # the watcher block itself is leaked: it may
        else:                                # have links on other channels too
            prev = link
        link = nxt


# -- encoding ---------------------------------------------------------------------------

_SIMPLE = frozenset((type(None), bool, int, float, str, bytes))


def _convert(obj: Any, refs: Refs, fds: Optional[List[int]] = None) -> Any:
    """Return *obj* as marshal-able data (tuples become lists, the rest tagged dicts).

    Channel ends, queues and connections add (channel id, end) pairs to *refs*.
    Sockets and files are duplicated (os.dup) into *fds*, which then own them;
    with *fds* None nothing is duplicated (a dry run: is_shareable()).
    """
    t = type(obj)
    if t in _SIMPLE:
        return obj
    if t is tuple:
        if set(map(type, obj)) <= _SIMPLE:
            return obj                     # marshal keeps it a tuple: nothing to revert
        return [_convert(x, refs, fds) for x in obj]
    if t is RecvChannel or t is SendChannel:
        refs.append((obj._id, obj._end))
        return {"rs"[obj._end]: obj._id}
    if t is Queue:
        refs.append((obj._id, RECV))
        refs.append((obj._id, SEND))
        return {"q": obj._id}
    if t is Connection:
        if obj._closed:
            raise ValueError("%r is closed: a closed connection cannot be sent" % obj)
        if obj._rid:
            refs.append((obj._rid, RECV))
        if obj._sid:
            refs.append((obj._sid, SEND))
        return {"c": [obj._rid, obj._sid]}
    sock = sys.modules.get("socket")
    if sock is not None and isinstance(obj, sock.socket):
        fd = obj.fileno()
        if fd < 0:
            raise ValueError("%r is closed: a closed socket cannot be sent" % (obj,))
        if fds is not None:
            fd = os.dup(fd)
            fds.append(fd)
        return {"k": [fd, int(obj.family), int(obj.type), obj.proto, obj.gettimeout()]}
    if isinstance(obj, io.IOBase) and not isinstance(obj, (io.BytesIO, io.StringIO)):
        try:
            fd = obj.fileno()
        except (OSError, ValueError) as exc:
            raise ValueError("%s object is not shareable: it has no usable file descriptor "
                             "(%s)" % (t.__name__, exc)) from None
        text = isinstance(obj, io.TextIOBase)
        raw = isinstance(obj, io.RawIOBase)
        mode = getattr(obj, "mode", None)
        if not isinstance(mode, str):
            mode = ("r" if obj.readable() else "") + ("w" if obj.writable() else "")
            mode = (mode if mode != "rw" else "r+") + ("" if text else "b")
        if fds is not None:
            if obj.writable():
                obj.flush()                    # the receiver must see what was written
            fd = os.dup(fd)
            fds.append(fd)
        return {"f": [fd, mode, 0 if raw else -1,
                      getattr(obj, "encoding", None) if text else None,
                      getattr(obj, "errors", None) if text else None]}
    foreign = other_copy(t)
    if foreign:
        raise ValueError(foreign)
    raise ValueError("%s object is not shareable: channels carry None, bytes, str, int, "
                     "float, bool, tuples of those, channel ends, queues, Pipe connections, "
                     "sockets and files (use send_buffer() for buffers)" % t.__name__)


def _revert(value: Any, refs: Optional[Refs] = None) -> Any:
    """Rebuild what _convert() made.  With *refs* (a message being discarded), only
    collect its channel references and close its duplicated descriptors.

    Lists are converted tuples; tuples arrive as they were sent (simple items only).
    """
    t = type(value)
    if t is list:
        return tuple(_revert(x, refs) for x in value)
    if t is dict:
        ((tag, arg),) = value.items()
        if tag in ("k", "f"):
            if refs is not None:
                _close_fds([arg[0]])
                return None
            if tag == "k":
                import socket
                fd, family, type_, proto, timeout = arg
                s = socket.socket(family, type_, proto, fileno=fd)
                s.settimeout(timeout)
                return s
            fd, mode, buffering, encoding, errors = arg
            return open(fd, mode, buffering, encoding=encoding, errors=errors)
        if tag == "q" or tag == "c":
            pairs = ([(arg, RECV), (arg, SEND)] if tag == "q"
                     else [(c, e) for c, e in ((arg[0], RECV), (arg[1], SEND)) if c])
            if refs is not None:
                refs.extend(pairs)
                return None
            if tag == "q":
                return Queue._received(arg)
            return Connection._received(arg[0], arg[1])
        end = RECV if tag == "r" else SEND
        if refs is not None:
            refs.append((arg, end))
            return None
        return (RecvChannel, SendChannel)[end]._received(arg)
    return value


def _close_fds(fds: Sequence[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _encode(obj: object) -> Tuple[int, bytes, Refs, List[int]]:
    """Return (kind, data, refs, fds) for sending *obj* (fds: duplicates it owns)."""
    if type(obj) is bytes:
        return K_BYTES, obj, [], []
    refs: Refs = []
    fds: List[int] = []
    try:
        return K_OBJ, marshal.dumps(_convert(obj, refs, fds)), refs, fds
    except BaseException:
        _close_fds(fds)
        raise


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

def create(maxsize: int = 0) -> int:
    """Create a channel (maxsize 0) or a queue (see MAXSIZE); return its id."""
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
        T[base + MAXSIZE] = maxsize
        T[base + CID] = cid
        H[_arena.NCHANNELS_W] += 1
    return cid


def _attach(cid: int, end: int, received: bool = False, reopen: bool = False) -> None:
    """This interpreter now holds a handle on *end* of channel *cid*.

    *reopen* (queues and Pipe connections): one this interpreter closed or dropped
    before is usable again when it comes back (channel ends stay closed, PEP 554).
    A channel end of a closed channel is a dead handle (its use raises EOFError):
    closed channels stay nameable, e.g. in run(channels=...).
    """
    with _locked as R:
        if received:
            base = (cid % NCSLOTS) * CSLOT_WORDS
            if R.T[base + CID] != cid:       # closed while in flight: a dead handle
                return
            R.T[base + _TRANSIT[end]] -= 1
        elif reopen:
            base = _base_locked(R, cid)
        else:
            try:
                base = _base_locked(R, cid)
            except _exc.ChannelClosedError:
                return                        # a dead handle
        pos = _my_flags_locked(R, base, cid)
        f = R.P[pos]
        if reopen:
            f &= ~_CLOSEDF[end]
        R.P[pos] = f | _HANDLE[end]


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
            # Nobody holds a queue any more: what it holds can never be taken.
            _close_channel_locked(R, base, force=R.T[base + MAXSIZE] != 0)
            return True
        if R.T[base + STATE] == OPEN and not R.T[base + MAXSIZE]:
            _withdraw_locked(R, base, end, iid)
        if end == SEND and not _senders_attached_locked(R, base):
            # The last sender is gone: receivers iterating over the channel stop
            # (plain recv() calls look again and keep waiting).
            while _wake_one_locked(R, base):
                pass
            if R.T[base + WHEAD]:
                _fire_locked(R, base, EV_RECV)
        elif end == RECV and R.T[base + WHEAD] and not _receivers_attached_locked(R, base):
            _fire_locked(R, base, EV_SEND)          # a Pipe's writer: BrokenPipeError
        return True


def _withdraw_locked(R: _Regions, base: int, end: int, iid: int) -> None:
    """Interpreter *iid* closed *end* of this channel, which stays open: its calls
    on that end that wait right now stop (PEP 554: "subsequent (or current) send()
    and recv() calls from that interpreter will raise ValueError").

    Its blocked send()s are dropped (they raise ValueError, see _dropped_error),
    its async sends fire DROPPED, its recv()s waiting are woken (they look again
    and raise ValueError), and its select()/async waits on that end fire.
    Objects accepted by a *_nowait() send stay receivable.
    """
    T, P = R.T, R.P
    if end == RECV:
        b = T[base + RWHEAD]
        while b:
            o = b * BW
            nxt = P[o + B_NEXT]
            if P[o + B_SENDER] == iid:
                _unlink_locked(R, base, RWHEAD, RWTAIL, b)
                _release(P[o + B_LOCK])
            b = nxt
    else:
        b = T[base + QHEAD]
        while b:
            o = b * BW
            nxt = P[o + B_NEXT]
            if P[o + B_SENDER] == iid and (P[o + B_WATCH] or not P[o + B_OWNED]):
                _unlink_locked(R, base, QHEAD, QTAIL, b)
                T[base + QLEN] -= 1
                _drop_refs_locked(R, o)
                if P[o + B_WATCH]:                    # an async send(): DROPPED for it
                    _fire_watcher_locked(P, P[o + B_WATCH], DROPPED_W)
                    _capi.raw_free(P[o + B_DATA])
                    R.free_locked(b)
                else:                                 # a blocked send()
                    P[o + B_STATE] = DROPPED
                    _release(P[o + B_LOCK])
            b = nxt
    ev = EV_RECV if end == RECV else EV_SEND
    link = T[base + WHEAD]
    while link:
        lo = link * BW
        w = P[lo + L_WATCHER]
        if P[lo + L_MASK] & ev and P[w * BW + W_OWNER] == iid:
            _fire_watcher_locked(P, w)
        link = P[lo + L_NEXT]


def _dropped_error(cid: int, end: int) -> BaseException:
    """What a send whose object was dropped unreceived raises: ValueError when this
    interpreter closed its end and the channel is still open, else EOFError."""
    with _locked as R:
        base = (cid % NCSLOTS) * CSLOT_WORDS
        pos = _mypos.get(cid)
        if (R.T[base + CID] == cid and R.T[base + STATE] == OPEN and pos is not None
                and R.P[pos] & _CLOSEDF[end]):
            return ValueError("channel %d: this interpreter closed its %s end before the "
                              "object was received" % (cid, _END_NAME[end]))
    return _exc.ChannelClosedError("channel %d closed before the object was received" % cid)


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
            if T[base + WHEAD]:
                _drop_watchers_locked(R, base, iid)
            b = T[base + QHEAD]
            while b:                        # its pending async sends: never poke its pipe
                w = P[b * BW + B_WATCH]
                if w and P[w * BW + W_OWNER] == iid:
                    P[w * BW + W_FD] = 0
                b = P[b * BW + B_NEXT]
            if T[base + MAXSIZE] and T[base + QHEAD]:
                _drop_unbound_locked(R, base, iid)
            pos = _flags_pos_locked(R, base, iid, create=False)
            if pos < 0:
                continue
            f = P[pos]
            if f & (HANDLE_R | ASSOC_R | HANDLE_S | ASSOC_S):
                P[pos] = CLOSED_R | CLOSED_S
                T[base + CLOSES] += 1
                if T[base + STATE] == OPEN and _should_close_locked(R, base):
                    _close_channel_locked(R, base, force=T[base + MAXSIZE] != 0)
                elif T[base + STATE] == OPEN:
                    # As if it had closed its ends itself (see _close_end).
                    if f & (HANDLE_S | ASSOC_S) and not _senders_attached_locked(R, base):
                        while _wake_one_locked(R, base):
                            pass
                        if T[base + WHEAD]:
                            _fire_locked(R, base, EV_RECV)
                    if (f & (HANDLE_R | ASSOC_R) and T[base + WHEAD]
                            and not _receivers_attached_locked(R, base)):
                        _fire_locked(R, base, EV_SEND)


def _drop_unbound_locked(R: _Regions, base: int, iid: int) -> None:
    """Interpreter *iid* is gone: remove the queue's items it put with U_REMOVE."""
    T, P = R.T, R.P
    prev, b, removed = 0, T[base + QHEAD], 0
    while b:
        o = b * BW
        nxt = P[o + B_NEXT]
        if P[o + B_UNBOUND] == U_REMOVE and P[o + B_SENDER] == iid and P[o + B_OWNED]:
            if prev:
                P[prev * BW + B_NEXT] = nxt
            else:
                T[base + QHEAD] = nxt
            if T[base + QTAIL] == b:
                T[base + QTAIL] = prev
            _drop_refs_locked(R, o)
            if P[o + B_KIND] != K_BUFFER:
                _capi.raw_free(P[o + B_DATA])
            R.free_locked(b)
            removed += 1
            if T[base + UNFINISHED] > 0:
                T[base + UNFINISHED] -= 1
        else:
            prev = b
        b = nxt
    if removed:
        T[base + QLEN] -= removed
        if T[base + WHEAD]:
            _fire_locked(R, base, EV_SEND if T[base + UNFINISHED] else EV_SEND | EV_JOIN)


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
    if T[base + STATE] == CLOSED and (end == SEND or not T[base + QHEAD] or f & _CLOSEDF[end]):
        raise _exc.ChannelClosedError("channel %d is closed" % cid)      # EOFError first
    if f & _CLOSEDF[end]:
        raise ValueError("channel %d: this interpreter closed its %s end"
                         % (cid, _END_NAME[end]))
    if not f & _ASSOC[end]:
        P[pos] = f | _ASSOC[end]
        T[base + USED] = 1
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
    if _pending_frees or _pending_closes or _exports or _last is not None:
        _process_pending()
    if timeout is not None:
        timeout = _check_timeout(timeout)
    refs: Sequence[Tuple[int, int]] = ()
    fds: List[int] = []
    export: Optional[Tuple[int, int, int, bool]] = None
    if buffer:
        kind = K_BUFFER
        export = _export(obj)
        data = b""                  # unused: the buffer itself is sent
    elif type(obj) is bytes:
        kind, data = K_BYTES, obj
    else:
        kind, data, refs, fds = _encode(obj)
    if nowait and not buffer:
        n = len(data)
        mem = _capi.raw_alloc(max(n, 1))
        if n:
            _capi.copy_bytes(mem, data, n)
    else:
        mem = 0
    tb = None if nowait else (_local.tb or _thread_block())
    R = _R or _regions()
    queued = False
    _lock(R)                                 # nothing is raised in here until _resume()
    try:
        try:
            base = _use_locked(R, cid, SEND)
            T, P = R.T, R.P
            if nowait and not T[base + RWHEAD] and not (
                    T[base + WHEAD] and _recv_watched_locked(R, base)):
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
            _enqueue_locked(R, base, b, refs)
            queued = True                        # the message owns mem and the fds now
        finally:
            R.lock_release()
    except BaseException:
        if not queued:
            if mem:
                _capi.raw_free(mem)
            if export is not None:
                _capi.buffer_release(export[0])
            _close_fds(fds)                  # not queued: the duplicates are ours
        _resume()
        raise
    if tb is None:                           # nowait: done (an interrupt surfaces after)
        _resume()
        return
    # Wait until a receiver took it (DONE) or the channel closed (DROPPED).  An
    # interrupt deferred during the section surfaces now, as one during the wait.
    error = None
    try:
        _resume()
        ok = tb.lock_try() or _wait(tb, timeout)
    except BaseException as exc:          # Ctrl-C: withdraw the object if still pending
        ok, error = False, exc
    o = tb.block * BW
    P = R.P
    if not ok:
        withdrawn = False
        _lock(R)
        try:
            if P[o + B_STATE] == PENDING:
                base = (cid % NCSLOTS) * CSLOT_WORDS
                if _unlink_locked(R, base, QHEAD, QTAIL, tb.block):
                    R.T[base + QLEN] -= 1
                P[o + B_STATE] = DROPPED
                _drop_refs_locked(R, o)
                withdrawn = True
        finally:
            R.lock_release()
            try:
                _resume()
            except BaseException as exc:
                error = error or exc
        if withdrawn:
            if error is not None:
                raise error
            raise TimeoutError("channel %d: nothing received the object within %r seconds"
                               % (cid, timeout))
        # A receiver is copying it (or the channel closed under us): our lock is
        # released promptly; wait for that, so *obj* outlives the copy.
        _defer()
        try:
            _capi.lock_wait_uninterruptible(tb.lock)
        finally:
            try:
                _resume()
            except BaseException as exc:
                error = error or exc
        if error is not None:
            raise error                   # after the send completed (or was dropped)
    if P[o + B_STATE] == DROPPED:
        raise _dropped_error(cid, SEND)


class _NoSenders(Exception):
    """recv(until_no_senders=True) found nothing queued and no sender left."""


def _attached_locked(R: _Regions, base: int, end: int) -> bool:
    """Whether any interpreter could still use *end*: holds it or used it and did not
    close it, or it is in flight (inside a message or a call() pickle)."""
    if R.T[base + _TRANSIT[end]]:
        return True
    P = R.P
    mask, closed = _HANDLE[end] | _ASSOC[end], _CLOSEDF[end]
    for _, pos in _all_flags_locked(R, base):
        if P[pos] & mask and not P[pos] & closed:
            return True
    return False


def _senders_attached_locked(R: _Regions, base: int) -> bool:
    return _attached_locked(R, base, SEND)


def _receivers_attached_locked(R: _Regions, base: int) -> bool:
    return _attached_locked(R, base, RECV)


# Messages the main thread took as an interrupt surfaced (channel id -> oldest first):
# its next recv() on that channel returns them first.  Only the main OS thread can
# be interrupted, so only it keeps messages here, and only it takes them back.
_kept: Dict[int, Deque[Any]] = {}

# CPython 3.8-3.10 also run signal handlers when a call returns into a Python frame,
# so an interrupt could still drop a message on its way up through this module's
# frames (Queue.get -> qget -> recv).  There, the main thread's last message is
# remembered with the outermost frame of this module it passes through; the next recv()
# gives it back (in _kept) unless that frame returned normally.  From 3.11 on a
# return into a Python frame runs no handler, and nothing needs remembering.
_WINDOWED = sys.version_info < (3, 11)
_last: Optional[Tuple[int, Any, Any]] = None        # (channel id, message, frame)
_RETURN_VALUE = 83                                  # opcode.opmap["RETURN_VALUE"], 3.8-3.10
_HERE = globals()


def _outer_frame() -> Any:
    """The outermost frame of this module in the calling thread's stack, from recv().

    Only this module's frames: code above them (another layer of the package
    included) may raise after a message was delivered, which must not count as
    an interrupt that dropped it.
    """
    f = sys._getframe(1)                  # recv()
    here = _HERE
    while True:
        b = f.f_back
        if b is None or b.f_globals is not here:
            return f
        f = b


def _settle_last() -> None:
    """Give the main thread's last message back (to _kept) if it never got out."""
    global _last
    last = _last
    if last is None:
        return
    cid, obj, frame = last
    if frame.f_code.co_code[frame.f_lasti] != _RETURN_VALUE:
        f: Any = sys._getframe(1)
        while f is not None:
            if f is frame:
                return                        # still running (a nested recv): not yet
            f = f.f_back
        k = _kept.get(cid)
        if k is None:
            k = _kept[cid] = _deque()
        for x in k:
            if x is obj:
                break
        else:
            k.appendleft(obj)
    _last = None


def recv(cid: int, *, nowait: bool = False, default: Any = None,
         timeout: Optional[float] = None, until_no_senders: bool = False) -> Any:
    """Take the oldest message of channel *cid* (the one place messages are taken).

    A KeyboardInterrupt (or a raising signal handler) surfaces either before
    anything was taken, or after: then the message is kept and returned by this
    thread's next recv() on the channel (see _kept).
    """
    global _last
    if _pending_frees or _pending_closes or _exports:
        _process_pending()
    main = _get_ident() == _arena._MAIN
    if main and (_kept or _last is not None):
        if _last is not None:
            _settle_last()
        k = _kept.get(cid)
        if k:
            obj = k[0]
            if _WINDOWED:
                _last = (cid, obj, _outer_frame())
            del k[0]
            return obj
    if timeout is not None:
        timeout = _check_timeout(timeout)
        deadline = time.monotonic() + timeout
    tb = None if nowait else (_local.tb or _thread_block())   # not under the lock
    R = _R or _regions()
    while True:
        b = 0
        nothing = False
        _lock(R)                              # nothing is raised in here until _resume()
        try:
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
                    if P[o + B_WATCH]:                  # an async send() waits for this
                        _fire_watcher_locked(P, P[o + B_WATCH], TAKEN)
                        P[o + B_WATCH] = 0
                    if T[base + WHEAD] and T[base + MAXSIZE]:
                        _fire_locked(R, base, EV_SEND)  # a queue has room again
                    if owned:
                        R.free_locked(b)                # all we need of it is read
                    if T[base + STATE] == CLOSED:
                        _maybe_release_locked(R, base)
                elif until_no_senders and not _senders_attached_locked(R, base):
                    raise _NoSenders(cid)
                elif tb is None:                  # nowait
                    nothing = True
                else:
                    P[tb.block * BW + B_SENDER] = _ME     # whose waiter (_withdraw_locked)
                    _append_locked(R, base, RWHEAD, RWTAIL, tb.block)
                    if T[base + WHEAD]:
                        _fire_locked(R, base, EV_SEND)  # a receiver waits: send_nowait() works
            finally:
                R.lock_release()
            if b:
                obj = _take(R, b, kind, data, length, owned, lock, token)
                if main:
                    kept = _kept.get(cid)
                    if kept is None:
                        kept = _kept[cid] = _deque()
                    kept.append(obj)
        except BaseException:
            _resume()
            raise
        error = None
        try:
            _resume()                         # may raise the interrupt it deferred
        except BaseException as exc:
            if b or nothing:
                raise                         # a message taken waits in _kept
            error = exc                       # we wait as a receiver: unlink below
        if nothing:
            return default
        if b:
            if not main:
                return obj
            assert kept is not None           # (obj is still in it here)
            if _WINDOWED:
                _last = (cid, obj, _outer_frame())
            del kept[-1]                      # no handler runs from here to the return
            return obj
        assert tb is not None             # nowait returned above
        if error is None:
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
        waiting = False
        _lock(R)
        try:
            base = (cid % NCSLOTS) * CSLOT_WORDS
            waiting = (R.T[base + CID] == cid
                       and _unlink_locked(R, base, RWHEAD, RWTAIL, tb.block))
            if not waiting:
                tb.lock_try()             # we were woken as we gave up: take it back
        finally:
            R.lock_release()
            try:
                _resume()
            except BaseException as exc:
                error = error or exc
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
        if owned:                             # recv() freed the block already
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
        try:
            base = _base_locked(R, cid)
        except _exc.ChannelClosedError:
            return []                    # a closed channel has no associated interpreter
        return [iid for iid, pos in _all_flags_locked(R, base)
                if R.P[pos] & _ASSOC[end] and not R.P[pos] & _CLOSEDF[end]]


def list_open() -> List[int]:
    if not _interp._arena_obj.header[_arena.CHANNELS_W]:
        return []
    with _locked as R:
        T = R.T
        return sorted(c for c in T[CID::CSLOT_WORDS].tolist()
                      if c and T[(c % NCSLOTS) * CSLOT_WORDS + STATE] == OPEN
                      and not T[(c % NCSLOTS) * CSLOT_WORDS + MAXSIZE])   # not queues


# -- waiting for readiness: select() and asyncio ------------------------------------------

if TYPE_CHECKING:
    Watch = Tuple[int, int, bool]    # (channel id, EV_RECV/EV_SEND/EV_JOIN, eof counts)


def _ready_now(items: Sequence[Watch]) -> List[int]:
    with _locked as R:
        return [i for i, (cid, ev, eof) in enumerate(items) if _ready_locked(R, cid, ev, eof)]


def wait_ready(items: Sequence[Watch], timeout: Optional[float]) -> List[int]:
    """Block until one of *items* is ready; return the indices of the ready ones.

    Returns [] when *timeout* expires.  Sleeps on this thread's lock with the
    GIL released (no polling); Ctrl-C raises here, leaving nothing behind.
    """
    if _pending_frees or _pending_closes or _exports:
        _process_pending()
    if timeout is not None:
        timeout = _check_timeout(timeout)
        deadline = time.monotonic() + timeout
    tb = _local.tb or _thread_block()
    pairs = [(cid, ev) for cid, ev, _ in items]
    R = _R or _regions()
    while True:
        w = 0
        _lock(R)
        try:
            try:
                ready = [i for i, (cid, ev, eof) in enumerate(items)
                         if _ready_locked(R, cid, ev, eof)]
                left = None if timeout is None else deadline - time.monotonic()
                if not ready and (left is None or left > 0):
                    w, links = _watch_locked(R, pairs, tb.lock, -1)
            finally:
                R.lock_release()
        except BaseException:
            _resume()
            raise
        error = None
        try:
            _resume()                         # may raise the interrupt it deferred
            if not w:
                return ready                  # ready ones, or [] on timeout
            woken = tb.lock_try() or _wait(tb, left)
        except BaseException as exc:          # Ctrl-C
            if not w:
                raise
            woken, error = False, exc
        _lock(R)
        try:
            fired = _unwatch_locked(R, w, links)
            if fired and not woken:
                tb.lock_try()                 # fired as we gave up: take the release back
        finally:
            R.lock_release()
            try:
                _resume()
            except BaseException as exc:
                error = error or exc
        if error is not None:
            raise error


class _LoopWaker:
    """One event loop's wake-up pipe: watchers write a byte, the loop reads it."""

    def __init__(self, loop: Any) -> None:
        self.loop = weakref.ref(loop)            # the loop owns its waker, not the reverse
        self.rfd, self.wfd = os.pipe()
        os.set_blocking(self.rfd, False)
        os.set_blocking(self.wfd, False)
        self.futures: Dict[int, Any] = {}        # watcher block -> asyncio future
        loop.add_reader(self.rfd, self._readable)
        weakref.finalize(loop, _LoopWaker._close, self.rfd, self.wfd)

    def _readable(self) -> None:
        try:
            while os.read(self.rfd, 4096):
                pass
        except OSError:
            pass
        P = (_R or _regions()).P
        for w, fut in list(self.futures.items()):
            if P[w * BW + W_FIRED] and not fut.done():
                fut.set_result(None)

    @staticmethod
    def _close(rfd: int, wfd: int) -> None:
        # The loop is gone.  Its waits removed their watchers (finally clauses);
        # only then may the descriptors be closed and reused.
        for fd in (rfd, wfd):
            try:
                os.close(fd)
            except OSError:
                pass


_wakers: weakref.WeakKeyDictionary[Any, _LoopWaker] = weakref.WeakKeyDictionary()


def _waker() -> _LoopWaker:
    import asyncio
    loop = asyncio.get_running_loop()
    waker = _wakers.get(loop)
    if waker is None or loop.is_closed():
        waker = _wakers[loop] = _LoopWaker(loop)
    return waker


def _set_if_pending(fut: Any) -> None:
    if not fut.done():
        fut.set_result(None)


async def _until_fired(waker: _LoopWaker, w: int, deadline: Optional[float]) -> None:
    """Wait (in the loop) until watcher *w* fires or *deadline* (monotonic) passes."""
    import asyncio
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    waker.futures[w] = fut
    timer = None
    if deadline is not None:
        timer = loop.call_later(max(0.0, deadline - time.monotonic()),
                                      _set_if_pending, fut)
    try:
        if (_R or _regions()).P[w * BW + W_FIRED]:
            return
        await fut
    finally:
        del waker.futures[w]
        if timer is not None:
            timer.cancel()


async def wait_ready_async(items: Sequence[Watch], timeout: Optional[float]) -> List[int]:
    """wait_ready() for coroutines: the event loop sleeps, woken through a pipe."""
    if _pending_frees or _pending_closes or _exports:
        _process_pending()
    deadline = None
    if timeout is not None:
        deadline = time.monotonic() + _check_timeout(timeout)
    waker = _waker()
    pairs = [(cid, ev) for cid, ev, _ in items]
    while True:
        with _locked as R:
            ready = [i for i, (cid, ev, eof) in enumerate(items)
                     if _ready_locked(R, cid, ev, eof)]
            if ready or (deadline is not None and time.monotonic() >= deadline):
                return ready
            w, links = _watch_locked(R, pairs, 0, waker.wfd)
        try:
            await _until_fired(waker, w, deadline)
        finally:
            with _locked as R:
                _unwatch_locked(R, w, links)


_NOTHING: Any = object()


async def recv_async(cid: int, timeout: Optional[float] = None, eof: bool = False) -> Any:
    """recv() for coroutines: never blocks the loop; cancelling it takes nothing."""
    deadline = None if timeout is None else time.monotonic() + _check_timeout(timeout)
    while True:
        obj = recv(cid, nowait=True, default=_NOTHING, until_no_senders=eof)
        if obj is not _NOTHING:
            return obj
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not await wait_ready_async([(cid, EV_RECV, eof)], left):
            raise TimeoutError("channel %d: nothing was sent within %r seconds"
                               % (cid, timeout))


async def send_async(cid: int, obj: object, timeout: Optional[float] = None) -> None:
    """send() for coroutines: queue a copy, wait in the loop until a receiver took it.

    Cancelled or timed out before that, the copy is withdrawn (never received).
    """
    if _pending_frees or _pending_closes or _exports:
        _process_pending()
    deadline = None if timeout is None else time.monotonic() + _check_timeout(timeout)
    waker = _waker()
    kind, data, refs, fds = _encode(obj)
    n = len(data)
    try:
        mem = _capi.raw_alloc(max(n, 1))
    except BaseException:
        _close_fds(fds)
        raise
    if n:
        _capi.copy_bytes(mem, data, n)
    error: Optional[BaseException] = None
    try:
        with _locked as R:
            base = _use_locked(R, cid, SEND)
            for rcid, _ in refs:
                _base_locked(R, rcid)
            T, P = R.T, R.P
            w = R.alloc_locked()
            try:
                b = R.alloc_locked()
            except BaseException:
                R.free_locked(w)
                raise
            P[w * BW + W_FD] = waker.wfd + 1
            P[w * BW + W_OWNER] = _ME
            o = b * BW
            P[o + B_KIND], P[o + B_SENDER], P[o + B_STATE] = kind, _ME, PENDING
            P[o + B_DATA], P[o + B_LEN], P[o + B_OWNED], P[o + B_WATCH] = mem, n, 1, w
            mem = 0                               # the message owns it now
            _enqueue_locked(R, base, b, refs)
    except BaseException as exc:
        if mem:                                   # not queued
            _capi.raw_free(mem)
            _close_fds(fds)
            raise
        error = exc                               # queued, then interrupted: withdraw it
    try:
        if error is not None:
            raise error
        await _until_fired(waker, w, deadline)
    finally:
        with _locked as R:
            P = R.P
            state = P[w * BW + W_FIRED]
            if not state:                         # cancelled or timed out: withdraw it
                base = (cid % NCSLOTS) * CSLOT_WORDS
                if R.T[base + CID] == cid and _unlink_locked(R, base, QHEAD, QTAIL, b):
                    R.T[base + QLEN] -= 1
                _drop_refs_locked(R, b * BW)
                _capi.raw_free(P[b * BW + B_DATA])
                R.free_locked(b)
            R.free_locked(w)
    if state == DROPPED_W:
        raise _dropped_error(cid, SEND)
    if not state:
        raise TimeoutError("channel %d: nothing received the object within %r seconds"
                           % (cid, timeout))


# -- the channel ends ---------------------------------------------------------------------

def _count_in_flight(refs: Sequence[Tuple[int, int]]) -> Callable[[], None]:
    """Count *refs* as in flight (inside a pickle); return what takes that back.

    Used by the call() transport (``_reduce_in_flight_``): while counted, closing
    the ends here does not close the channel for the interpreter that will load
    the pickle, exactly as for ends inside a channel message.
    """
    with _locked as R:
        for cid, _ in refs:
            _base_locked(R, cid)                   # a closed end cannot travel
        _adjust_transit_locked(R, refs, +1)
    return functools.partial(_uncount_in_flight, tuple(refs))


def _uncount_in_flight(refs: Sequence[Tuple[int, int]]) -> None:
    with _locked as R:
        _adjust_transit_locked(R, refs, -1)


def _end_in_flight(end: int, cid: int) -> _ChannelEnd:
    """Unpickle an end counted by _count_in_flight()."""
    cls: Type[_ChannelEnd] = (RecvChannel, SendChannel)[end]
    return cls._received(cid)


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
            with _region:                  # no handle flag without its object
                _attach(id, cls._end)
                self = object.__new__(cls)
                self._id = id
                cls._known[id] = self
        return self

    @classmethod
    def _received(cls: Type[_E], cid: int) -> _E:
        with _region:
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
        except:  # noqa: E722  (at teardown even builtins may be gone; destroy() closes them)
            pass

    def __reduce__(self) -> Tuple[Type[_ChannelEnd], Tuple[int]]:
        return (type(self), (self._id,))

    def _reduce_in_flight_(self) -> Tuple[Tuple[Callable[[int, int], _ChannelEnd],
                                                Tuple[int, int]], Callable[[], None]]:
        return (_end_in_flight, (self._end, self._id)), _count_in_flight([(self._id, self._end)])

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

        Calls of this interpreter waiting on this end in other threads stop at
        once: ValueError, or EOFError if this close closed the channel.  Once no
        interpreter is associated with either end (used it and did not close
        it; holding an end is not enough), the channel is closed: send() and
        recv() anywhere raise EOFError (ChannelClosedError), except that objects
        already accepted by a *_nowait() send can still be received.  A channel
        nobody used yet stays open while any interpreter holds an end.
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
            ValueError: this interpreter closed its receiving end (before the
                call, or while it waited: close() in another thread).
            TimeoutError: nothing arrived within *timeout* seconds.
            KeyboardInterrupt: Ctrl-C while waiting (the channel is left intact).
        """
        return recv(self._id, timeout=timeout)

    def recv_nowait(self, default: Any = None) -> Any:
        """Like recv(), but return *default* at once when nothing is pending."""
        return recv(self._id, nowait=True, default=default)

    async def recv_async(self, timeout: Optional[float] = None) -> Any:
        """recv() for coroutines: ``obj = await end.recv_async()``.

        The event loop keeps running while it waits (woken through a pipe the
        loop watches, no polling, no thread).  Cancelling the awaiting task
        takes nothing from the channel.  Raises like recv().
        """
        return await recv_async(self._id, timeout)

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
            ValueError: *obj* is not shareable, or this interpreter closed its end
                (before the call, or while it waited: the object is withdrawn).
            EOFError (ChannelClosedError): the channel is (or becomes) closed.
            TimeoutError: no receiver took it within *timeout* seconds; the
                object was withdrawn and will never be received.
            KeyboardInterrupt: Ctrl-C while waiting; the object is withdrawn
                unless a receiver had already taken it.
        """
        send(self._id, obj, timeout=timeout)

    async def send_async(self, obj: object, timeout: Optional[float] = None) -> None:
        """send() for coroutines: ``await end.send_async(obj)``.

        A copy of *obj* is queued at once; the coroutine completes when a
        receiver has taken it, while the event loop keeps running.  Cancelled
        (or timed out) before that, the copy is withdrawn and never received.
        Raises like send().
        """
        await send_async(self._id, obj, timeout)

    def send_nowait(self, obj: object) -> None:
        """Hand *obj* to a receiver waiting right now; else raise RuntimeError.

        Waiting receivers: recv(), recv_async() and select() calls on this
        channel.  Raises NotReceivedError (a RuntimeError) when none waits.
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


# -- queues and pipes ----------------------------------------------------------------------

def _full_error(cid: int, timeout: Optional[float]) -> BaseException:
    import queue
    if timeout:
        return queue.Full("queue %d: still full after %r seconds" % (cid, timeout))
    return queue.Full("queue %d is full" % cid)


def _empty_error(cid: int, timeout: Optional[float]) -> BaseException:
    import queue
    if timeout:
        return queue.Empty("queue %d: still empty after %r seconds" % (cid, timeout))
    return queue.Empty("queue %d is empty" % cid)


def qput(cid: int, obj: object, block: bool = True, timeout: Optional[float] = None,
         pipe: bool = False, unbound: int = 0, buffer: bool = False) -> None:
    """Append a copy of *obj* to queue *cid*, waiting for room (queue.Queue.put rules).

    *pipe*: raise BrokenPipeError when no interpreter can receive any more.
    *unbound*: the item's B_UNBOUND word.  *buffer*: share *obj*'s buffer, as
    send_buffer() does (the getter receives a memoryview onto the same memory).
    """
    if _pending_frees or _pending_closes or _exports or _last is not None:
        _process_pending()
    if timeout is not None:
        timeout = _check_timeout(timeout)
        deadline = time.monotonic() + timeout
    refs: Sequence[Tuple[int, int]]
    fds: List[int]
    export: Optional[Tuple[int, int, int, bool]] = None
    if buffer:
        kind, data, refs, fds = K_BUFFER, b"", (), []
        export = _export(obj)
    elif type(obj) is bytes:
        kind, data, refs, fds = K_BYTES, obj, (), []
    else:
        kind, data, refs, fds = _encode(obj)
    n = len(data)
    mem = 0
    R = _R or _regions()
    try:
        if export is None:
            mem = _capi.raw_alloc(n or 1)
        if n:
            _capi.copy_bytes(mem, data, n)
        while True:
            _lock(R)                                 # an interrupt surfaces at _resume()
            try:
                base = _use_locked(R, cid, SEND)
                T, P = R.T, R.P
                if pipe and not _receivers_attached_locked(R, base):
                    raise BrokenPipeError("connection %d: the other end is closed" % cid)
                m = T[base + MAXSIZE]
                if m < 0 or T[base + QLEN] < m:
                    for rcid, _ in refs:
                        _base_locked(R, rcid)        # a closed end cannot travel
                    t = R.alloc_locked() if export is not None else 0
                    try:
                        b = R.alloc_locked()         # zeroed: NEXT, LOCK, TOKEN, WATCH 0
                    except BaseException:
                        if t:
                            R.free_locked(t)
                        raise
                    o = b * BW
                    P[o + B_KIND] = kind
                    if export is not None:           # K_BUFFER: the token owns it now
                        view, buf, n, readonly = export
                        P[t * BW + T_EXPORTER] = _ME
                        P[t * BW + T_VIEW] = view
                        P[t * BW + T_READONLY] = readonly
                        _exports[t] = view
                        export = None
                        P[o + B_DATA], P[o + B_TOKEN] = buf, t
                    else:
                        P[o + B_DATA] = mem
                    P[o + B_LEN] = n
                    P[o + B_OWNED] = 1
                    P[o + B_SENDER] = _ME
                    P[o + B_UNBOUND] = unbound
                    mem = 0                          # the message owns it now
                    fds = []
                    T[base + UNFINISHED] += 1
                    _enqueue_locked(R, base, b, refs)
                    return
            finally:
                R.lock_release()
                _resume()                            # after the put, if it happened
            if not block:
                raise _full_error(cid, None)
            left = None if timeout is None else deadline - time.monotonic()
            if left is not None and left <= 0 or not wait_ready([(cid, EV_SEND, pipe)], left):
                raise _full_error(cid, timeout)
    finally:
        if mem:
            _capi.raw_free(mem)
        if fds:
            _close_fds(fds)
        if export is not None:
            _capi.buffer_release(export[0])


def qget(cid: int, block: bool = True, timeout: Optional[float] = None,
         pipe: bool = False) -> Any:
    """Remove and return the oldest item of queue *cid* (queue.Queue.get rules).

    *pipe*: raise EOFError once it is empty and no interpreter can send any more.
    """
    try:
        if not block:
            obj = recv(cid, nowait=True, default=_NOTHING, until_no_senders=pipe)
            if obj is _NOTHING:
                raise _empty_error(cid, None)
            return obj
        return recv(cid, timeout=timeout, until_no_senders=pipe)
    except (TimeoutError, _NoSenders) as exc:
        raise _get_error(exc, cid, timeout, pipe) from None


def _get_error(exc: BaseException, cid: int, timeout: Optional[float], pipe: bool
               ) -> BaseException:
    """What a queue or pipe get raises for a recv() timeout or _NoSenders."""
    if isinstance(exc, _NoSenders):
        return EOFError("connection %d: the other end is closed and nothing is left" % cid)
    return exc if pipe else _empty_error(cid, timeout)


async def qput_async(cid: int, obj: object, timeout: Optional[float] = None,
                     pipe: bool = False) -> None:
    deadline = None if timeout is None else time.monotonic() + _check_timeout(timeout)
    while True:
        try:
            return qput(cid, obj, block=False, pipe=pipe)
        except Exception as exc:
            import queue
            if not isinstance(exc, queue.Full):
                raise
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not await wait_ready_async([(cid, EV_SEND, pipe)], left):
            raise _full_error(cid, timeout)


async def qget_async(cid: int, timeout: Optional[float] = None, pipe: bool = False) -> Any:
    try:
        return await recv_async(cid, timeout, eof=pipe)
    except (TimeoutError, _NoSenders) as exc:
        raise _get_error(exc, cid, timeout, pipe) from None


def _close_ends_soon(pairs: Sequence[Tuple[int, int]]) -> None:
    """Close this interpreter's *pairs* from a finalizer: never block on the lock."""
    try:
        R = _R
        if R is not None and R.lock_try():
            R.lock_release()
            for cid, end in pairs:
                _close_end(cid, end, _ME)
        else:
            _pending_closes.extend(pairs)
    except:  # noqa: E722  (at teardown even builtins may be gone; destroy() closes them)
        pass


class Queue:
    """A FIFO queue shared by interpreters: ``queue.Queue``'s API, across interpreters.

    ``Queue(maxsize=0)``: at most *maxsize* items (0 or less: no bound).  Items
    follow the channel rules (shareable data, channel ends, queues, Pipe
    connections, sockets and files), are copied in on put() and rebuilt on get().
    Pass the queue to another interpreter through a channel, another queue,
    ``call()`` arguments or ``run(channels={...})``: every interpreter gets its own
    Queue object for the same queue.  The queue lives until no interpreter holds
    it; then whatever is left in it is discarded.
    """

    __slots__ = ("_id", "_closed", "__weakref__")
    _id: int
    _closed: bool
    _known: ClassVar[weakref.WeakValueDictionary[int, Queue]] = weakref.WeakValueDictionary()

    def __init__(self, maxsize: int = 0) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int):
            raise TypeError("maxsize must be an int, not %s" % type(maxsize).__name__)
        with _region:                      # the queue is held by this object, or closed
            cid = create(maxsize if maxsize > 0 else -1)
            self._id, self._closed = cid, False
            _attach(cid, RECV)
            _attach(cid, SEND)
            Queue._known[cid] = self

    @classmethod
    def _received(cls, cid: int, received: bool = True) -> Queue:
        if _pending_closes:
            _process_pending()        # a dropped Queue's deferred close goes first
        with _region:
            _attach(cid, RECV, received, reopen=True)
            _attach(cid, SEND, received, reopen=True)
            self = cls._known.get(cid)
            if self is None or self._closed:
                self = object.__new__(cls)
                self._id, self._closed = cid, False
                cls._known[cid] = self
        return self

    def __reduce__(self) -> Tuple[Callable[[int], Queue], Tuple[int]]:
        return (_queue_by_id, (self._id,))

    def _reduce_in_flight_(self) -> Tuple[Tuple[Callable[[int], Queue], Tuple[int]],
                                          Callable[[], None]]:
        cid = self._cid()
        return (_queue_in_flight, (cid,)), _count_in_flight([(cid, RECV), (cid, SEND)])

    def _spec(self) -> Tuple[str, int]:
        return ("q", self._cid())

    def __del__(self) -> None:
        # No builtins here: this may run while the interpreter is being torn down.
        try:
            closed = self._closed                       # unset if __init__ failed
        except:  # noqa: E722
            return
        if not closed:
            _close_ends_soon([(self._id, RECV), (self._id, SEND)])

    def __repr__(self) -> str:
        return "<%s id=%d maxsize=%d>" % (type(self).__name__, self._id, self.maxsize)

    @property
    def id(self) -> int:
        """The queue's unique id (queues and channels share one id space)."""
        return self._id

    def _cid(self) -> int:
        if self._closed:
            raise ValueError("queue %d was closed in this interpreter" % self._id)
        return self._id

    def _word(self, word: int) -> int:
        with _locked as R:
            base = _base_locked(R, self._cid())
            return int(R.T[base + word])

    @property
    def maxsize(self) -> int:
        """The bound given at creation (0: unbounded)."""
        try:
            return max(self._word(MAXSIZE), 0)
        except (ValueError, _exc.ChannelError):
            return 0

    def qsize(self) -> int:
        """The number of items in the queue now (a snapshot, as in queue.Queue)."""
        return self._word(QLEN)

    def empty(self) -> bool:
        return self.qsize() == 0

    def full(self) -> bool:
        m = self.maxsize
        return 0 < m <= self.qsize()

    def put(self, item: object, block: bool = True, timeout: Optional[float] = None) -> None:
        """Put a copy of *item* in the queue, waiting for room if it is full.

        Like queue.Queue.put(): raises queue.Full if *block* is false and the
        queue is full, or if it stays full for *timeout* seconds.  Ctrl-C while
        waiting raises KeyboardInterrupt and leaves the queue as it was.
        Raises ValueError if *item* is not shareable.
        """
        qput(self._cid(), item, block, timeout)

    def put_nowait(self, item: object) -> None:
        """put(item, block=False)."""
        qput(self._cid(), item, False)

    def get(self, block: bool = True, timeout: Optional[float] = None) -> Any:
        """Remove and return the oldest item, waiting until there is one.

        Like queue.Queue.get(): raises queue.Empty if *block* is false and the
        queue is empty, or if nothing arrives within *timeout* seconds.
        """
        return qget(self._cid(), block, timeout)

    def get_nowait(self) -> Any:
        """get(block=False)."""
        return qget(self._cid(), False)

    async def put_async(self, item: object, timeout: Optional[float] = None) -> None:
        """put() for coroutines: waits for room in the event loop, never blocking it."""
        await qput_async(self._cid(), item, timeout)

    async def get_async(self, timeout: Optional[float] = None) -> Any:
        """get() for coroutines: waits in the event loop; cancelling it takes nothing."""
        return await qget_async(self._cid(), timeout)

    def task_done(self) -> None:
        """Mark one item from get() as processed (queue.Queue.task_done()).

        Raises ValueError if called more times than items were put.
        """
        with _locked as R:
            base = _base_locked(R, self._cid())
            T = R.T
            if T[base + UNFINISHED] <= 0:
                raise ValueError("task_done() called too many times (queue %d)" % self._id)
            T[base + UNFINISHED] -= 1
            if not T[base + UNFINISHED] and T[base + WHEAD]:
                _fire_locked(R, base, EV_JOIN)

    def join(self, timeout: Optional[float] = None) -> bool:
        """Wait until every item put has been marked task_done() (in any interpreter).

        Returns True; with *timeout*, False if work is still unfinished then
        (queue.Queue.join() takes no timeout; this is an addition).
        """
        return bool(wait_ready([(self._cid(), EV_JOIN, False)], timeout))

    def close(self) -> None:
        """Drop this interpreter's hold on the queue (idempotent).  Once no
        interpreter holds it, the queue is gone and its items are discarded."""
        if not self._closed:
            self._closed = True
            _process_pending()
            _close_end(self._id, RECV, _ME)
            _close_end(self._id, SEND, _ME)

    def __enter__(self) -> Queue:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _queue_by_id(cid: int) -> Queue:
    return Queue._received(cid, received=False)


def _queue_in_flight(cid: int) -> Queue:
    return Queue._received(cid, received=True)


class Connection:
    """One end of a Pipe(): send() and recv() like multiprocessing's Connection.

    Items follow the channel rules and are copied.  send() never blocks (the
    pipe is buffered); it raises BrokenPipeError once the other end is closed.
    recv() waits; it raises EOFError once the other end is closed and nothing
    is left.  A connection belongs to one interpreter at a time: send it to
    another one (through a channel, a queue or call()/call_in_thread()
    arguments), then close it here (at once: it counts as in flight until
    the other interpreter has it).
    """

    __slots__ = ("_rid", "_sid", "_closed", "__weakref__")
    _rid: int
    _sid: int
    _closed: bool
    _known: ClassVar[weakref.WeakValueDictionary[Tuple[int, int], Connection]] = (
        weakref.WeakValueDictionary())

    def __init__(self) -> None:
        raise TypeError("use interpreters.Pipe() to make connections")

    @classmethod
    def _received(cls, rid: int, sid: int, received: bool = True) -> Connection:
        if _pending_closes:
            _process_pending()        # a dropped Connection's deferred close goes first
        with _region:
            if rid:
                _attach(rid, RECV, received, reopen=True)
            if sid:
                _attach(sid, SEND, received, reopen=True)
            self = cls._known.get((rid, sid))
            if self is None or self._closed:
                self = object.__new__(cls)
                self._rid, self._sid, self._closed = rid, sid, False
                cls._known[(rid, sid)] = self
        return self

    def __reduce__(self) -> Tuple[Callable[[int, int], Connection], Tuple[int, int]]:
        if self._closed:
            raise ValueError("%r is closed: a closed connection cannot be sent" % self)
        return (_connection_by_id, (self._rid, self._sid))

    def _reduce_in_flight_(self) -> Tuple[Tuple[Callable[[int, int], Connection],
                                                Tuple[int, int]], Callable[[], None]]:
        if self._closed:
            raise ValueError("%r is closed: a closed connection cannot be sent" % self)
        refs = [(c, e) for c, e in ((self._rid, RECV), (self._sid, SEND)) if c]
        return (_connection_in_flight, (self._rid, self._sid)), _count_in_flight(refs)

    def __del__(self) -> None:
        try:
            closed = self._closed                       # unset: Connection() raised
        except:  # noqa: E722
            return
        if not closed:
            _close_ends_soon([p for p in ((self._rid, RECV), (self._sid, SEND)) if p[0]])

    def _spec(self) -> Tuple[str, Tuple[int, int]]:
        self._check(self._rid or self._sid, "read")
        return ("c", (self._rid, self._sid))

    def __repr__(self) -> str:
        return "<%s recv=%d send=%d%s>" % (type(self).__name__, self._rid, self._sid,
                                           " closed" if self._closed else "")

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def readable(self) -> bool:
        return bool(self._rid)

    @property
    def writable(self) -> bool:
        return bool(self._sid)

    def _check(self, cid: int, what: str) -> int:
        if self._closed:
            raise OSError("handle is closed")
        if not cid:
            raise OSError("connection is %s-only" % ("write" if what == "read" else "read"))
        return cid

    def send(self, obj: object) -> None:
        """Send a copy of *obj* to the other end; does not wait for it to be received."""
        qput(self._check(self._sid, "write"), obj, pipe=True)

    def recv(self, timeout: Optional[float] = None) -> Any:
        """Return the next object sent by the other end, waiting for one.

        Raises EOFError when the other end is closed and nothing is left,
        TimeoutError after *timeout* seconds (an addition to multiprocessing's
        API), KeyboardInterrupt on Ctrl-C (nothing is lost).
        """
        return qget(self._check(self._rid, "read"), True, timeout, pipe=True)

    def poll(self, timeout: Optional[float] = 0.0) -> bool:
        """Whether recv() would return (or raise EOFError) without waiting.

        Waits up to *timeout* seconds (None: no limit), like multiprocessing's.
        """
        cid = self._check(self._rid, "read")
        return bool(wait_ready([(cid, EV_RECV, True)], timeout))

    async def send_async(self, obj: object) -> None:
        """send() for coroutines (it never waits, so this is send() as a coroutine)."""
        qput(self._check(self._sid, "write"), obj, pipe=True)

    async def recv_async(self, timeout: Optional[float] = None) -> Any:
        """recv() for coroutines: waits in the event loop, never blocking it."""
        return await qget_async(self._check(self._rid, "read"), timeout, pipe=True)

    def close(self) -> None:
        """Close this end here (idempotent); the other end then sees EOF/BrokenPipe."""
        if not self._closed:
            self._closed = True
            _process_pending()
            if self._rid:
                _close_end(self._rid, RECV, _ME)
            if self._sid:
                _close_end(self._sid, SEND, _ME)

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _connection_by_id(rid: int, sid: int) -> Connection:
    return Connection._received(rid, sid, received=False)


def _connection_in_flight(rid: int, sid: int) -> Connection:
    return Connection._received(rid, sid, received=True)


def Pipe(duplex: bool = True) -> Tuple[Connection, Connection]:
    """Return a pair of connected Connection objects, like multiprocessing.Pipe().

    With *duplex* true both ends send and receive; otherwise the first one
    only receives and the second one only sends.
    """
    with _region:                          # both held by the connections, or closed
        a = create(-1)
        b = create(-1) if duplex else 0
        try:
            if duplex:
                pair = Connection._received(a, b, False), Connection._received(b, a, False)
            else:
                pair = Connection._received(a, 0, False), Connection._received(0, a, False)
        except BaseException:
            force_close(a)
            if b:
                force_close(b)
            raise
    return pair


# -- select ---------------------------------------------------------------------------------

if TYPE_CHECKING:
    Selectable = Union[RecvChannel, SendChannel, Queue, Connection]
    _S = TypeVar("_S", RecvChannel, SendChannel, Queue, Connection)


def _watch_of(obj: object) -> Watch:
    t = type(obj)
    if t is RecvChannel:
        return (obj._id, EV_RECV, False)        # type: ignore[attr-defined]
    if t is SendChannel:
        return (obj._id, EV_SEND, False)        # type: ignore[attr-defined]
    if t is Queue:
        return (obj._cid(), EV_RECV, False)     # type: ignore[attr-defined]
    if t is Connection:
        return (obj._check(obj._rid, "read"), EV_RECV, True)   # type: ignore[attr-defined]
    raise TypeError(other_copy(t) or "select() waits on RecvChannel, SendChannel, Queue and "
                    "Connection objects, not %s" % t.__name__)


def _select_items(objects: Sequence[_S]) -> Tuple[List[_S], List[Watch]]:
    if isinstance(objects, (_ChannelEnd, Queue, Connection)):
        # A RecvChannel is iterable: list() would receive from it (or wait forever).
        raise TypeError("select() takes a sequence of channel ends, queues and "
                        "connections, not a single %s" % type(objects).__name__)
    objs = list(objects)
    items = [_watch_of(o) for o in objs]
    if not items:
        raise ValueError("select() needs at least one channel end, queue or connection")
    return objs, items


def select(objects: Sequence[_S], timeout: Optional[float] = None) -> List[_S]:
    """Wait until at least one of *objects* is ready; return the ready ones, in order.

    Ready means the operation would not wait: RecvChannel.recv(),
    Queue.get() and Connection.recv() have something to return (or would
    raise at once: closed, or a Connection's other end gone);
    SendChannel.send_nowait() finds a receiver waiting.  Returns [] after
    *timeout* seconds (None: no limit; 0: just look).  Readiness is a snapshot:
    another interpreter may take the item first, so use the *_nowait() calls
    (or a short timeout) on what it returns.  Ctrl-C raises KeyboardInterrupt.
    """
    objs, items = _select_items(objects)
    return [objs[i] for i in wait_ready(items, timeout)]


async def select_async(objects: Sequence[_S], timeout: Optional[float] = None) -> List[_S]:
    """select() for coroutines: the event loop waits, never blocked."""
    objs, items = _select_items(objects)
    return [objs[i] for i in await wait_ready_async(items, timeout)]


def from_spec(spec: Tuple[str, Any]) -> Union[RecvChannel, SendChannel, Queue, Connection]:
    tag, cid = spec
    if tag == "q":
        return _queue_by_id(cid)
    if tag == "c":
        return _connection_by_id(cid[0], cid[1])
    return (RecvChannel if tag == "r" else SendChannel)(cid)


def create_channel() -> Tuple[RecvChannel, SendChannel]:
    """Create a channel; return its ends as (RecvChannel, SendChannel)."""
    with _region:                          # the channel is held by its ends, or closed
        cid = create()
        ends = RecvChannel(cid), SendChannel(cid)
    return ends


def other_copy(t: type) -> str:
    """An error message if *t* is a class of another copy of this package, else ""."""
    mod = getattr(t, "__module__", None)
    ours = __name__.rpartition(".")[0]
    if (not isinstance(mod, str) or mod == ours or getattr(
            sys.modules.get(mod + "._channels"), "_INTERPRETERS_CHANNELS", False) is not True):
        return ""
    return ("this %s comes from another copy of the interpreters package (%s), not from %s: "
            "each copy has its own interpreters and channels; use the objects of one copy"
            % (t.__name__, mod, ours))


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
    global _R, _last
    _R = None
    _last = None
    _local.tb = None
    _kept.clear()
    _mypos.clear()
    _exports.clear()
    _pending_closes.clear()
    _pending_frees.clear()
    _wakers.clear()          # their watchers were in the parent's arena


os.register_at_fork(after_in_child=_after_fork_in_child)
