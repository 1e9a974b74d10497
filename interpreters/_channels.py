"""Channels (PEP 554): simplex, unbuffered, many-to-many pipes between interpreters.

Every channel lives in the process-wide arena (``_arena.py``), outside any
interpreter's heap, and every operation on it holds the arena's raw lock
(``_A``).  Data is copied into raw memory (bytes, marshalled values) or, for
``send_buffer()``, exported in place and mapped by the receiver.

Channel table: NCSLOTS slots of CSLOT_WORDS int64 words; channel *cid* lives
in slot ``cid % NCSLOTS`` (ids are picked so that their slot is free), so a
lookup is one read.  Slot words:

    0 CID        channel id; 0 marks a free slot
    1 STATE      OPEN or CLOSED
    2 QHEAD  3 QTAIL  4 QLEN      queue of message nodes (oldest first)
    5 RWHEAD 6 RWTAIL             receivers waiting (waiter records, FIFO)
    7 ENTRIES 8 NENTRIES 9 CAPENTRIES
                                  per-interpreter (iid, flags) pairs, see ASSOC_R...
    10 CLOSES    close() events so far (explicit, by GC, or by destroy)
    11 TRANSIT_R 12 TRANSIT_S     ends of this channel inside queued messages

Message node (raw, NODE_WORDS words): NEXT, KIND, DATA, LEN, STATE, WAITLOCK,
OWNED, TOKEN, SENDER.  A blocking send() leaves DATA pointing into its own bytes
object (it keeps it alive until the node is DONE) and waits on WAITLOCK, its
thread's raw lock; the receiver copies the data out, sets DONE and releases the
lock.  A *_nowait() send owns a copy (OWNED=1) that the receiver frees.

Waiter record (raw, 2 words): NEXT, LOCK.  A waiting thread's raw lock is held
while the thread is idle; whoever wakes it releases the lock *while holding the
arena lock* and unlinks the record first, so a waiter that times out can tell,
under the arena lock, whether it was woken.

Invariants (all under the arena lock):
* a node is in at most one queue; STATE goes PENDING -> TAKEN -> DONE, or
  PENDING -> DROPPED when the channel closes or its sender gives up;
* a waiter record is in the RW list iff its thread sleeps and nobody released
  its lock yet;
* once STATE is CLOSED the queue holds no node from a blocked sender and the
  RW list is empty; the slot is released when nothing refers to it any more.

Never held across a blocking wait or a crossing; ``__del__`` only tries it.
"""

import marshal
import os
import threading
import time
import weakref

from . import _arena, _capi, _exc, _interp

NCSLOTS = 16384
CSLOT_WORDS = 16
(CID, STATE, QHEAD, QTAIL, QLEN, RWHEAD, RWTAIL, ENTRIES, NENTRIES, CAPENTRIES, CLOSES,
 TRANSIT_R, TRANSIT_S) = range(13)
OPEN, CLOSED = 1, 2

NODE_WORDS = 9
N_NEXT, N_KIND, N_DATA, N_LEN, N_STATE, N_WAITLOCK, N_OWNED, N_TOKEN, N_SENDER = range(9)
K_BYTES, K_OBJ, K_BUFFER = 1, 2, 3
PENDING, TAKEN, DONE, DROPPED = 0, 1, 2, 3

# per-interpreter flags of one channel
HANDLE_R, HANDLE_S, ASSOC_R, ASSOC_S, CLOSED_R, CLOSED_S = 1, 2, 4, 8, 16, 32
RECV, SEND = 0, 1
_HANDLE = (HANDLE_R, HANDLE_S)
_ASSOC = (ASSOC_R, ASSOC_S)
_CLOSEDF = (CLOSED_R, CLOSED_S)
_END_NAME = ("receiving", "sending")

# buffer export token (raw, 4 words): STATE (0 live, 1 released), EXPORTER, VIEW, -
T_STATE, T_EXPORTER, T_VIEW = range(3)

_INTERPRETERS_CHANNELS = True      # found by _sub.py at destroy time (outstanding_exports)
_A = _interp._arena_obj
_ME = _interp.current_id()          # this package instance lives in one interpreter
_pending_closes = []                # (cid, end) closes deferred by __del__
_exports = {}                       # token address -> Py_buffer address (ours)


def _words(addr, n):
    return _capi.raw_view(addr, n * 8).cast("q")


def _table():
    """Return the channel table (int64 view), creating it on first use."""
    t = _A.header[_arena.CHANNELS_W]
    if not t:
        with _A:
            t = _A.header[_arena.CHANNELS_W]
            if not t:
                t = _capi.raw_alloc(NCSLOTS * CSLOT_WORDS * 8)
                _A.header[_arena.CHANNELS_W] = t
    return _words(t, NCSLOTS * CSLOT_WORDS)


_T = None


def _t():
    global _T
    if _T is None:
        _T = _table()
    return _T


def _base_locked(cid):
    """Return the slot base of a live channel *cid*, or raise (lock held)."""
    if isinstance(cid, int) and cid > 0:
        base = (cid % NCSLOTS) * CSLOT_WORDS
        if _t()[base + CID] == cid:
            return base
        if cid < _A.header[_arena.NEXT_CID_W]:
            raise _exc.ChannelClosedError("channel %d is closed" % cid)
    raise _exc.ChannelNotFoundError("channel %r does not exist" % (cid,))


# -- per-interpreter entries ---------------------------------------------------------

def _entry_locked(base, iid, create=True):
    """Return the index (into the ENTRIES array) of *iid*'s pair, or -1."""
    T = _t()
    n = T[base + NENTRIES]
    if n:
        arr = _words(T[base + ENTRIES], 2 * n)
        for i in range(n):
            if arr[2 * i] == iid:
                return i
    if not create:
        return -1
    cap = T[base + CAPENTRIES]
    if n == cap:
        new = _capi.raw_alloc(2 * 8 * 2 * max(cap, 4))
        if cap:
            _capi.raw_copy(new, T[base + ENTRIES], 2 * 8 * cap)
            _capi.raw_free(T[base + ENTRIES])
        T[base + ENTRIES] = new
        T[base + CAPENTRIES] = 2 * max(cap, 4)
    arr = _words(T[base + ENTRIES], 2 * (n + 1))
    arr[2 * n] = iid
    arr[2 * n + 1] = 0
    T[base + NENTRIES] = n + 1
    return n


def _flags_view(base):
    T = _t()
    return _words(T[base + ENTRIES], 2 * T[base + NENTRIES])


def _should_close_locked(base):
    T = _t()
    if not T[base + CLOSES] or T[base + TRANSIT_R] or T[base + TRANSIT_S]:
        return False
    arr = _flags_view(base)
    for i in range(1, len(arr), 2):
        f = arr[i]
        for end in (RECV, SEND):
            if f & (_HANDLE[end] | _ASSOC[end]) and not f & _CLOSEDF[end]:
                return False
    return True


def _close_channel_locked(base):
    """Mark CLOSED, drop blocked senders' nodes, wake every waiter."""
    T = _t()
    T[base + STATE] = CLOSED
    node, keep_head, keep_tail = T[base + QHEAD], 0, 0
    while node:
        nw = _words(node, NODE_WORDS)
        nxt = nw[N_NEXT]
        if nw[N_WAITLOCK]:                 # a blocked send(): it gets EOFError
            nw[N_STATE] = DROPPED
            _drop_refs_locked(nw)
            _capi.lock_release(nw[N_WAITLOCK])
        else:                              # accepted by a *_nowait(): kept for recv
            nw[N_NEXT] = 0
            if keep_tail:
                _words(keep_tail, NODE_WORDS)[N_NEXT] = node
            else:
                keep_head = node
            keep_tail = node
        node = nxt
    T[base + QHEAD], T[base + QTAIL] = keep_head, keep_tail
    T[base + QLEN] = _queue_len_locked(base)
    _wake_all_locked(base)
    _maybe_release_locked(base)


def _queue_len_locked(base):
    n, node = 0, _t()[base + QHEAD]
    while node:
        n += 1
        node = _words(node, NODE_WORDS)[N_NEXT]
    return n


def _maybe_release_locked(base):
    """Free a closed channel's slot once its queue is empty."""
    T = _t()
    if T[base + STATE] == CLOSED and not T[base + QHEAD] and not T[base + RWHEAD]:
        if T[base + ENTRIES]:
            _capi.raw_free(T[base + ENTRIES])
        for i in range(CSLOT_WORDS):
            T[base + i] = 0
        _A.header[_arena.NCHANNELS_W] -= 1


def _wake_one_locked(base):
    T = _t()
    w = T[base + RWHEAD]
    if not w:
        return False
    ww = _words(w, 2)
    T[base + RWHEAD] = ww[0]
    if not ww[0]:
        T[base + RWTAIL] = 0
    ww[0] = 0
    _capi.lock_release(ww[1])
    return True


def _wake_all_locked(base):
    while _wake_one_locked(base):
        pass


def _unlink_waiter_locked(base, waiter):
    """Remove *waiter* from the RW list; return False if it was not there (woken)."""
    T = _t()
    prev, w = 0, T[base + RWHEAD]
    while w:
        ww = _words(w, 2)
        if w == waiter:
            if prev:
                _words(prev, 2)[0] = ww[0]
            else:
                T[base + RWHEAD] = ww[0]
            if T[base + RWTAIL] == waiter:
                T[base + RWTAIL] = prev
            ww[0] = 0
            return True
        prev, w = w, ww[0]
    return False


def _unlink_node_locked(base, node):
    T = _t()
    prev, n = 0, T[base + QHEAD]
    while n:
        nw = _words(n, NODE_WORDS)
        if n == node:
            if prev:
                _words(prev, NODE_WORDS)[N_NEXT] = nw[N_NEXT]
            else:
                T[base + QHEAD] = nw[N_NEXT]
            if T[base + QTAIL] == node:
                T[base + QTAIL] = prev
            T[base + QLEN] -= 1
            return True
        prev, n = n, nw[N_NEXT]
    return False


# -- per-thread wait records ---------------------------------------------------------

class _Waiter(threading.local):
    addr = 0      # raw record [NEXT, LOCK]; LOCK is held while the thread is idle

    def get(self):
        if not self.addr:
            lock = _capi.lock_alloc()
            _capi.lock_try(lock)
            self.addr = _capi.raw_alloc(16)
            _words(self.addr, 2)[1] = lock
        return self.addr

    def lock(self):
        return _words(self.get(), 2)[1]

    def retire(self):
        """Forget a record whose lock a peer may still release (leaked on purpose)."""
        self.addr = 0


_waiter = _Waiter()


# -- encoding ------------------------------------------------------------------------

_SIMPLE = frozenset((type(None), bool, int, float, str, bytes))


def _convert(obj, refs):
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


def _revert(value):
    t = type(value)
    if t is list:
        return tuple(_revert(x) for x in value)
    if t is dict:
        ((tag, cid),) = value.items()
        return (RecvChannel if tag == "r" else SendChannel)._received(cid)
    return value


def is_shareable(obj):
    """Return True if send() accepts *obj* (its data can cross interpreters)."""
    try:
        _convert(obj, [])
    except ValueError:
        return False
    return True


def _drop_refs_locked(nw):
    """A node carrying channel ends is discarded: give back their transit counts."""
    if nw[N_KIND] != K_OBJ:
        if nw[N_KIND] == K_BUFFER and nw[N_TOKEN]:
            _words(nw[N_TOKEN], 4)[T_STATE] = 1
        return
    try:
        refs = []
        _plain_refs(marshal.loads(_capi.raw_string_at(nw[N_DATA], nw[N_LEN])), refs)
    except Exception:
        return
    _adjust_transit_locked(refs, -1)


def _plain_refs(value, refs):
    """Collect the (cid, end) of every channel end in a marshalled message value."""
    t = type(value)
    if t is list:
        for x in value:
            _plain_refs(x, refs)
    elif t is dict:
        ((tag, cid),) = value.items()
        refs.append((cid, RECV if tag == "r" else SEND))


def _adjust_transit_locked(refs, delta):
    T = _t()
    for cid, end in refs:
        base = (cid % NCSLOTS) * CSLOT_WORDS
        if T[base + CID] == cid:
            T[base + (TRANSIT_R, TRANSIT_S)[end]] += delta
            if delta < 0 and _should_close_locked(base) and T[base + STATE] == OPEN:
                _close_channel_locked(base)


# -- operations ------------------------------------------------------------------------

def _process_pending():
    while _pending_closes:
        try:
            cid, end = _pending_closes.pop()
        except IndexError:
            break
        _close_end(cid, end, _ME, explicit=False)
    if _exports:
        _reap_exports()


def create():
    _process_pending()
    T = _t()
    with _A:
        h = _A.header
        if h[_arena.NCHANNELS_W] >= NCSLOTS:
            raise _exc.ChannelError("too many open channels (%d)" % NCSLOTS)
        cid = h[_arena.NEXT_CID_W]
        while T[(cid % NCSLOTS) * CSLOT_WORDS + CID]:
            cid += 1
        h[_arena.NEXT_CID_W] = cid + 1
        base = (cid % NCSLOTS) * CSLOT_WORDS
        for i in range(CSLOT_WORDS):
            T[base + i] = 0
        T[base + STATE] = OPEN
        T[base + CID] = cid
        h[_arena.NCHANNELS_W] += 1
    return cid


def _attach(cid, end, received=False):
    """Record that this interpreter holds a handle on *end* of channel *cid*."""
    with _A:
        base = _base_locked(cid)
        i = _entry_locked(base, _ME)
        arr = _flags_view(base)
        arr[2 * i + 1] |= _HANDLE[end]
        if received:
            T = _t()
            T[base + (TRANSIT_R, TRANSIT_S)[end]] -= 1


def _use_locked(cid, end):
    """Check that this interpreter may use *end*; associate it.  Return base."""
    base = _base_locked(cid)
    T = _t()
    i = _entry_locked(base, _ME)
    arr = _flags_view(base)
    f = arr[2 * i + 1]
    if f & _CLOSEDF[end]:
        if T[base + STATE] == CLOSED:
            raise _exc.ChannelClosedError("channel %d is closed" % cid)
        raise ValueError("channel %d: this interpreter closed its %s end"
                         % (cid, _END_NAME[end]))
    if T[base + STATE] == CLOSED and (end == SEND or not T[base + QHEAD]):
        raise _exc.ChannelClosedError("channel %d is closed" % cid)
    arr[2 * i + 1] = f | _ASSOC[end]
    return base


def _close_end(cid, end, iid, explicit=True):
    """close() of one end for interpreter *iid*.  Return True the first time."""
    with _A:
        try:
            base = _base_locked(cid)
        except _exc.ChannelClosedError:
            return False
        i = _entry_locked(base, iid)
        arr = _flags_view(base)
        f = arr[2 * i + 1]
        if f & _CLOSEDF[end]:
            return False
        arr[2 * i + 1] = (f | _CLOSEDF[end]) & ~(_ASSOC[end] | _HANDLE[end])
        T = _t()
        T[base + CLOSES] += 1
        if T[base + STATE] == OPEN and _should_close_locked(base):
            _close_channel_locked(base)
        return True


def drop_interp(iid):
    """Interpreter *iid* is being destroyed: close its ends of every channel."""
    tbl = _A.header[_arena.CHANNELS_W]
    if not tbl:
        return
    T = _t()
    with _A:
        cids = [c for c in T[CID::CSLOT_WORDS].tolist() if c]
        for cid in cids:
            base = (cid % NCSLOTS) * CSLOT_WORDS
            i = _entry_locked(base, iid, create=False)
            if i < 0:
                continue
            arr = _flags_view(base)
            f = arr[2 * i + 1]
            if f & (HANDLE_R | ASSOC_R | HANDLE_S | ASSOC_S):
                arr[2 * i + 1] = CLOSED_R | CLOSED_S
                T[base + CLOSES] += 1
                if T[base + STATE] == OPEN and _should_close_locked(base):
                    _close_channel_locked(base)


def _encode(obj, buffer):
    """Return (kind, data_bytes, refs, export) for a message."""
    if buffer:
        try:
            view, buf, length, readonly = _capi.buffer_export(obj)
        except (TypeError, BufferError) as exc:
            raise ValueError("send_buffer() needs a contiguous object supporting the "
                             "buffer protocol (PEP 3118), not %s (%s)"
                             % (type(obj).__name__, exc)) from None
        return K_BUFFER, None, (), (view, buf, length, readonly)
    if type(obj) is bytes:
        return K_BYTES, obj, (), None
    refs = []
    return K_OBJ, marshal.dumps(_convert(obj, refs)), refs, None


def _make_node(kind, data, export, owned):
    node = _capi.raw_alloc(NODE_WORDS * 8)
    nw = _words(node, NODE_WORDS)
    nw[N_KIND] = kind
    nw[N_SENDER] = _ME
    if kind == K_BUFFER:
        view, buf, length, readonly = export
        token = _capi.raw_alloc(32)
        tw = _words(token, 4)
        tw[T_EXPORTER] = _ME
        tw[T_VIEW] = view
        tw[3] = readonly
        _exports[token] = view
        nw[N_DATA], nw[N_LEN], nw[N_TOKEN] = buf, length, token
    elif owned:
        n = len(data)
        mem = _capi.raw_alloc(max(n, 1))
        if n:
            _capi.raw_copy(mem, _capi.bytes_address(data), n)
        nw[N_DATA], nw[N_LEN], nw[N_OWNED] = mem, n, 1
    else:
        nw[N_DATA], nw[N_LEN] = _capi.bytes_address(data), len(data)
    return node, nw


def _free_node(node, nw):
    if nw[N_OWNED]:
        _capi.raw_free(nw[N_DATA])
    nw.release()
    _capi.raw_free(node)


def _enqueue_locked(base, node):
    T = _t()
    tail = T[base + QTAIL]
    if tail:
        _words(tail, NODE_WORDS)[N_NEXT] = node
    else:
        T[base + QHEAD] = node
    T[base + QTAIL] = node
    T[base + QLEN] += 1


def send(cid, obj, *, nowait=False, buffer=False, timeout=None):
    _process_pending()
    if timeout is not None:
        timeout = _check_timeout(timeout)
    kind, data, refs, export = _encode(obj, buffer)
    owned = nowait and kind != K_BUFFER
    node, nw = _make_node(kind, data, export, owned)
    try:
        with _A:
            base = _use_locked(cid, SEND)
            T = _t()
            if nowait and not T[base + RWHEAD]:
                raise _exc.NotReceivedError(
                    "channel %d: no receiver is waiting (send_nowait needs one)" % cid)
            if refs:
                for rcid, _ in refs:
                    _base_locked(rcid)      # a closed end cannot travel
                _adjust_transit_locked(refs, +1)
            if not nowait:
                lock = _waiter.lock()
                nw[N_WAITLOCK] = lock
            _enqueue_locked(base, node)
            _wake_one_locked(base)
    except BaseException:
        if kind == K_BUFFER:
            _unexport(nw[N_TOKEN])
        _free_node(node, nw)
        raise
    if nowait:
        return
    # Wait until a receiver took it (DONE) or the channel closed (DROPPED).
    error = None
    try:
        ok = _capi.lock_wait(lock, timeout)
    except BaseException as exc:        # Ctrl-C: withdraw the object if still pending
        ok, error = False, exc
    if not ok:
        with _A:
            state = nw[N_STATE]
            if state == PENDING:
                base = (cid % NCSLOTS) * CSLOT_WORDS
                _unlink_node_locked(base, node)
                nw[N_STATE] = DROPPED
                _drop_refs_locked(nw)
                gave_up = True
            else:
                gave_up = False
        if gave_up:
            if kind == K_BUFFER:
                _reap_exports()
            _free_node(node, nw)
            if error is not None:
                raise error
            raise TimeoutError("channel %d: nothing received the object within %r seconds"
                               % (cid, timeout))
        # A receiver is taking it (or the channel closed under us): the lock will be
        # released promptly; wait for that without a timeout.
        try:
            _capi.lock_wait(lock, None)
        except BaseException:
            _waiter.retire()
            raise
        if error is not None and nw[N_STATE] == DONE:
            error = None                  # it was received: the send succeeded
    state = nw[N_STATE]
    _free_node(node, nw)
    if state == DROPPED:
        raise _exc.ChannelClosedError("channel %d closed before the object was received"
                                      % cid)


def recv(cid, *, nowait=False, default=None, timeout=None):
    _process_pending()
    if timeout is not None:
        timeout = _check_timeout(timeout)
        deadline = time.monotonic() + timeout
    waiter = 0
    while True:
        with _A:
            base = _use_locked(cid, RECV)
            T = _t()
            node = T[base + QHEAD]
            if node:
                nw = _words(node, NODE_WORDS)
                T[base + QHEAD] = nw[N_NEXT]
                if not nw[N_NEXT]:
                    T[base + QTAIL] = 0
                T[base + QLEN] -= 1
                nw[N_STATE] = TAKEN
                if T[base + STATE] == CLOSED:
                    _maybe_release_locked(base)
            elif nowait:
                return default
            else:
                waiter = _waiter.get()
                ww = _words(waiter, 2)
                tail = T[base + RWTAIL]
                if tail:
                    _words(tail, 2)[0] = waiter
                else:
                    T[base + RWHEAD] = waiter
                T[base + RWTAIL] = waiter
                lock = ww[1]
        if node:
            return _take(node, nw)
        error = None
        try:
            if timeout is None:
                woken = _capi.lock_wait(lock, None)
            else:
                left = deadline - time.monotonic()
                woken = left > 0 and _capi.lock_wait(lock, left)
        except BaseException as exc:     # Ctrl-C: leave the channel as we found it
            woken, error = False, exc
        if woken:
            continue
        with _A:
            base = (cid % NCSLOTS) * CSLOT_WORDS
            still_waiting = _unlink_waiter_locked(base, waiter) if _t()[base + CID] == cid \
                else False
            if not still_waiting:
                _capi.lock_try(lock)      # we were woken as we gave up: consume it
        if error is not None:
            raise error
        if not still_waiting:
            continue                      # look once more: a message may be there
        raise TimeoutError("channel %d: nothing was sent within %r seconds" % (cid, timeout))


def _take(node, nw):
    kind = nw[N_KIND]
    try:
        if kind == K_BYTES:
            obj = _capi.raw_string_at(nw[N_DATA], nw[N_LEN])
        elif kind == K_OBJ:
            obj = _revert(marshal.loads(_capi.raw_string_at(nw[N_DATA], nw[N_LEN])))
        else:
            obj = _map_buffer(nw)
    finally:
        if nw[N_WAITLOCK]:
            lock = nw[N_WAITLOCK]
            nw[N_STATE] = DONE
            nw.release()
            _capi.lock_release(lock)      # the sender frees the node
        else:
            _free_node(node, nw)
    return obj


def _map_buffer(nw):
    holder = _capi.foreign_memory(nw[N_DATA], nw[N_LEN])
    token = nw[N_TOKEN]
    view = memoryview(holder).cast("B")
    if _words(token, 4)[3]:
        view = view.toreadonly()
    weakref.finalize(holder, _release_token, token)
    return view


def _release_token(token):
    _words(token, 4)[T_STATE] = 1


def _unexport(token):
    view = _exports.pop(token, None)
    if view:
        _capi.buffer_release(view)
    _capi.raw_free(token)


def _reap_exports():
    for token in [t for t in list(_exports) if _words(t, 4)[T_STATE]]:
        _unexport(token)


def outstanding_exports():
    """Buffers this interpreter exported that a receiver still holds."""
    _reap_exports()
    return len(_exports)


def _check_timeout(timeout):
    try:
        timeout = float(timeout)
    except (TypeError, ValueError):
        raise TypeError("timeout must be a number of seconds or None, not %s"
                        % type(timeout).__name__) from None
    if timeout < 0 or timeout != timeout:
        raise ValueError("timeout must be a non-negative number, got %r" % timeout)
    return timeout


def associated(cid, end):
    with _A:
        base = _base_locked(cid)
        arr = _flags_view(base)
        return [arr[i] for i in range(0, len(arr), 2)
                if arr[i + 1] & _ASSOC[end] and not arr[i + 1] & _CLOSEDF[end]]


def list_open():
    tbl = _A.header[_arena.CHANNELS_W]
    if not tbl:
        return []
    T = _t()
    with _A:
        return sorted(c for c in T[CID::CSLOT_WORDS].tolist()
                      if c and T[(c % NCSLOTS) * CSLOT_WORDS + STATE] == OPEN)


# -- the channel ends ------------------------------------------------------------------

class _ChannelEnd:
    __slots__ = ("_id", "__weakref__")
    _end = None
    _known = None

    def __new__(cls, id):
        if isinstance(id, bool) or not isinstance(id, int):
            raise TypeError("channel id must be an int, not %s" % type(id).__name__)
        self = cls._known.get(id)
        if self is None:
            _process_pending()
            _attach(id, cls._end)
            self = object.__new__(cls)
            self._id = id
            cls._known[id] = self
        return self

    @classmethod
    def _received(cls, cid):
        self = cls._known.get(cid)
        if self is None:
            self = object.__new__(cls)
            self._id = cid
            cls._known[cid] = self
        _attach(cid, cls._end, received=True)
        return self

    def __del__(self):
        # The last handle in this interpreter is gone: close our end (PEP 554).
        # Never block here: the arena lock may be held by this very thread.
        try:
            if _capi.lock_try(_A.lock):
                _capi.lock_release(_A.lock)
                _close_end(self._id, self._end, _ME, explicit=False)
            else:
                _pending_closes.append((self._id, self._end))
        except Exception:
            pass

    def __reduce__(self):
        return (type(self), (self._id,))

    def __repr__(self):
        return "%s(%d)" % (type(self).__name__, self._id)

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self._id == other._id

    def __hash__(self):
        return hash((type(self), self._id))

    @property
    def id(self):
        """The channel's unique id (read-only)."""
        return self._id

    @property
    def interpreters(self):
        """The interpreters associated with this end (used it and not closed it)."""
        from . import Interpreter
        return [Interpreter(i) for i in associated(self._id, self._end)]

    def _spec(self):
        return ("rs"[self._end], self._id)

    def close(self):
        """Drop this interpreter's association with this end and block future use.

        Once no interpreter is attached to either end, the channel is closed and
        send()/recv() anywhere raise EOFError (ChannelClosedError).  Idempotent:
        return True only the first time this interpreter closes this end.
        """
        _process_pending()
        return _close_end(self._id, self._end, _ME)


class RecvChannel(_ChannelEnd):
    """The receiving end of a channel."""

    __slots__ = ()
    _end = RECV
    _known = weakref.WeakValueDictionary()

    def recv(self, timeout=None):
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

    def recv_nowait(self, default=None):
        """Like recv(), but return *default* at once when nothing is pending."""
        return recv(self._id, nowait=True, default=default)


class SendChannel(_ChannelEnd):
    """The sending end of a channel."""

    __slots__ = ()
    _end = SEND
    _known = weakref.WeakValueDictionary()

    def send(self, obj, timeout=None):
        """Send *obj*'s data and wait until a receiver has taken it.

        Shareable: None, bytes, str, int, float, bool, tuples of those, and
        channel ends.  Associates this interpreter with the sending end.

        Raises:
            ValueError: *obj* is not shareable, or this interpreter closed its end.
            EOFError (ChannelClosedError): the channel is (or becomes) closed.
            TimeoutError: no receiver took it within *timeout* seconds; the
                object was withdrawn and will never be received.
        """
        send(self._id, obj, timeout=timeout)

    def send_nowait(self, obj):
        """Hand *obj* to a receiver that is waiting now; else raise RuntimeError.

        Raises NotReceivedError (a RuntimeError) when no receiver is waiting.
        """
        send(self._id, obj, nowait=True)

    def send_buffer(self, obj, timeout=None):
        """Send a zero-copy view of *obj*'s (PEP 3118) buffer; wait until received.

        The receiver gets a memoryview over this interpreter's memory.  *obj* stays
        exported (and alive) until the receiver releases the view or its
        interpreter ends, even if every reference here is dropped.  While such a
        view is held, this interpreter cannot be destroyed (InterpreterError).
        """
        send(self._id, obj, buffer=True, timeout=timeout)

    def send_buffer_nowait(self, obj):
        """Like send_buffer(), but raise RuntimeError unless a receiver is waiting."""
        send(self._id, obj, nowait=True, buffer=True)


def from_spec(spec):
    tag, cid = spec
    return (RecvChannel if tag == "r" else SendChannel)(cid)


def create_channel():
    """Create a channel; return its ends as (RecvChannel, SendChannel)."""
    cid = create()
    return RecvChannel(cid), SendChannel(cid)


def list_all_channels():
    """Return (RecvChannel, SendChannel) for every open channel."""
    out = []
    for cid in list_open():
        try:
            out.append((RecvChannel(cid), SendChannel(cid)))
        except _exc.ChannelError:
            pass
    return out


def _after_fork_in_child():
    global _A, _T
    _A = _interp._arena_obj
    _T = None
    _exports.clear()
    _pending_closes.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
