"""Scratch prototype of an optimized run() path (not the package; measured only)."""
import sys, time, gc, statistics, ctypes, functools, collections, threading, marshal, itertools
import os; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
import interpreters
from interpreters import _interp, _capi, _arena, _sub, _exc
PY = sys.version_info[:2]
lib = ctypes.PyDLL(None)

def proto(name, restype):
    f = lib[name]; f.restype = restype; return f
_acq = proto("PyThread_acquire_lock", ctypes.c_int)       # (lock, 0): never blocks
_rel = proto("PyThread_release_lock", None)
_callobj = proto("PyObject_CallObject", None)            # new ref to None dropped below
_decref = proto("Py_DecRef", None)
_incref = proto("Py_IncRef", None)
_swap = proto("PyThreadState_Swap", None)
_get = proto("PyThreadState_Get", ctypes.c_void_p)
_hasattr = proto("PyObject_HasAttr", None)     # never leaves an exception set
import os
ENTRY = os.environ.get("ENTRY", "hasattr")      # hasattr | call | simple
FASTLOCK = os.environ.get("FASTLOCK", "1") == "1"
INLINE = os.environ.get("INLINE", "1") == "1"
FLUSH = os.environ.get("FLUSH", "1") == "1"
_NONE = _capi.ptr_arg(id(None))
_MY_INTERP = _capi.current_interp()
_deque = collections.deque
_CALL = _capi._CALL
USE_STARMAP = PY < (3, 11) and os.environ.get("STARMAP", "1") == "1"      # shared allocator, no operator.call: starmap is cheaper

def _chain_of(links):
    if USE_STARMAP:
        return tuple((f, ) + tuple(a) for f, *a in links)
    return tuple(functools.partial(f, *a) for f, *a in links)

_starmap = itertools.starmap
_cfcall = ctypes._CFuncPtr.__call__

class Fast:
    def __init__(self, interp):
        iid = interp.id
        slot = _interp.slot_of(iid)
        A = _interp._A
        entry = _interp._io_for(slot, iid + 1)
        words = entry[2]
        fd = A.word(slot, _arena.IOFD)
        # (proposal: _install writes id(run) into a header word; here: a bootstrap)
        boot = ("import builtins as _b, mmap as _m\n_mm=_m.mmap(%d, %d)\n_w=memoryview(_mm).cast('q')\n"
                "_r=_b.__interpreters_run__\n"
                "class _Entry:\n __slots__=()\n __interpreters_run__=property(lambda self, _r=_r: _r())\n"
                "_b.__interpreters_probe__=_Entry()\n"
                "_w[7]=id(_r)\n_w[11]=id(_b.__interpreters_probe__)\n_w[12]=id('__interpreters_run__')\n"
                "_w.release(); _mm.close()\ndel _b, _m, _mm, _w, _r, _Entry\n"
                % (fd, entry[3])).encode()
        calls = _interp._crossing_for(slot, iid + 1)
        _capi._chain((calls[0], functools.partial(_capi._run_simple, _capi.code_arg(boot)), calls[2]))
        self.run_ptr = _capi.ptr_arg(words[7])
        self.probe = _capi.ptr_arg(words[11]); self.name = _capi.ptr_arg(words[12])
        _capi._chain((calls[0], functools.partial(_incref, self.run_ptr), functools.partial(_incref, self.probe),
                      functools.partial(_incref, self.name), calls[2]))  # pin them
        sub_ts, back_ts = calls[0].args[0], calls[2].args[0]
        if ENTRY == "call":
            links = ((_swap, sub_ts), (_callobj, self.run_ptr, None), (_decref, _NONE), (_swap, back_ts))
        elif ENTRY == "hasattr":
            links = ((_swap, sub_ts), (_hasattr, self.probe, self.name), (_swap, back_ts))
        else:
            links = ((_swap, sub_ts), (_capi._run_simple, calls[1].args[0]), (_swap, back_ts))
        self.chain = _chain_of(links)
        busy = A.word(slot, _arena.BUSY)
        self.busy = _capi.ptr_arg(busy)
        self.slot, self.id1, self.iid = slot, iid + 1, iid
        self.entry = entry
        self.base = slot * _arena.ISLOT_WORDS
        self.unpin = (calls[0], functools.partial(_decref, self.run_ptr), functools.partial(_decref, self.probe),
                      functools.partial(_decref, self.name), calls[2])

    def close(self):
        _capi._chain(self.unpin)

def _flush_std(sys=sys):
    out = sys.stdout
    if out is not None:
        try: out.flush()
        except Exception: pass
    err = sys.stderr
    if err is not None:
        try: err.flush()
        except Exception: pass

def fast_run(f, source, extra=b"", _acq=_acq, _rel=_rel, _deque=_deque, _starmap=_starmap,
             _cfcall=_cfcall, _call=_CALL, S=None):
    if not isinstance(source, str):
        raise TypeError("source must be str")
    data = source.encode("utf-8", "surrogatepass")
    if not INLINE:
        _interp.slot_of(f.iid)
    busy = f.busy
    if FASTLOCK:
        if not _acq(busy, 0):
            raise _exc.InterpreterError("interpreter %d is already running" % f.iid)
    else:
        if not _capi.lock_try(_interp._A.word(f.slot, 3)):
            raise _exc.InterpreterError("interpreter %d is already running" % f.iid)
    try:
        S = _interp._A.slots; base = f.base
        if S[base] != f.id1:
            raise _exc.InterpreterNotFoundError("gone")
        if S[base + 1] == (_MY_INTERP if INLINE else _capi.current_interp()):
            raise _exc.InterpreterError("already running")
        entry = f.entry
        words = entry[2]
        if not INLINE or words[3] != entry[3] or _sub.HDR + len(data) + len(extra) > entry[3]:
            entry = _interp._write_source(f.slot, entry, data, extra); words = entry[2]
        else:
            n = len(data)
            entry[1][64:64 + n] = data
            if extra:
                entry[1][64 + n:64 + n + len(extra)] = extra
            words[1] = n
            words[6] = len(extra)
        words[4] = 0          # OP = RUN
        words[0] = -1         # STATUS = PENDING
        if FLUSH: _flush_std()
        else: _interp._flush_std()
        if not INLINE: _interp._crossing_for(f.slot, f.id1); _capi.PyThreadState_Get()
        if USE_STARMAP:
            _deque(_starmap(_cfcall, f.chain), 0)
        else:
            _deque(map(_call, f.chain), 0)
        status = words[0]
        if status == 1:
            info = _exc.ExceptionInfo(*marshal.loads(entry[1][64:64 + words[2]]))
    finally:
        if FASTLOCK: _rel(busy)
        else: _capi.lock_release(_interp._A.word(f.slot, 3))
    if status == 0:
        return
    if status == 1:
        raise _exc.rebuild(info)
    raise _exc.InterpreterError("damaged %d" % status)
