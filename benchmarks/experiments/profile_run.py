import sys, time, gc, statistics
import os; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
import interpreters
from interpreters import _interp, _capi, _arena, _sub
PY = sys.version_info[:2]
N = 20000

def t(fn, n=N, reps=9):
    res = []
    for _ in range(reps):
        gc.disable()
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        res.append((time.perf_counter() - t0) / n * 1e6)
        gc.enable()
    return statistics.median(res)

base = t(lambda: None)
def m(name, fn, n=N):
    v = t(fn, n) - base
    print("%-48s %7.2f" % (name, v))
    return v

interp = interpreters.create()
iid = interp.id
for _ in range(100): interp.run('pass')
A = _interp._A
slot = _interp.slot_of(iid)
id1 = iid + 1
busy = A.word(slot, _arena.BUSY)
entry = _interp._io_for(slot, id1)
words = entry[2]
calls = _interp._crossing_for(slot, id1)
print("CPython", sys.version.split()[0], "  (us per call, empty-lambda baseline %.3f subtracted)" % base)
m("TOTAL interp.run('pass')", lambda: interp.run('pass'))
m("  _interp.run(iid,'pass')", lambda: _interp.run(iid, 'pass', b''))
m("  encode", lambda: 'pass'.encode('utf-8', 'surrogatepass'))
m("  slot_of", lambda: _interp.slot_of(iid))
def lk():
    _capi.lock_try(busy); _capi.lock_release(busy)
m("  lock_try+lock_release (ctypes)", lk)
m("  A.word x1", lambda: A.word(slot, _arena.ID1))
m("  current_interp()", _capi.current_interp)
m("  _io_for", lambda: _interp._io_for(slot, id1))
m("  _write_source('pass')", lambda: _interp._write_source(slot, entry, b'pass', b''))
def ws():
    words[_sub.OP] = _sub.RUN; words[_sub.STATUS] = _sub.PENDING
m("  words OP/STATUS stores", ws)
m("  _crossing_for", lambda: _interp._crossing_for(slot, id1))
m("  _flush_std", _interp._flush_std)
m("  run_prebuilt(calls) [crossing+compile+runner]", lambda: _capi.run_prebuilt(calls))
m("    PyThreadState_Get() (unused in RUN)", _capi.PyThreadState_Get)
m("    _chain(calls)", lambda: _capi._chain(calls))
# crossings with other sources
swap_sub, runsimple, swap_back = calls
def chain_of(src):
    code = _capi.code_arg(src)
    import functools
    return (swap_sub, functools.partial(_capi._run_simple, code), swap_back)
m("    chain swap,swap only", lambda: _capi._chain((swap_sub, swap_back)))
c_pass = chain_of(b"pass")
m("    chain PyRun_SimpleString('pass')", lambda: _capi._chain(c_pass))
c_empty = chain_of(b"")
m("    chain PyRun_SimpleString('')", lambda: _capi._chain(c_empty))
# runner loop inside the sub: __interpreters_run__() called directly
words[_sub.OP] = _sub.RUN
_interp._write_source(slot, entry, b'pass', b'')
src = ("import time as _t, builtins as _b\n_f=_b.__interpreters_run__\n_r=[]\n"
       "for _k in range(9):\n _t0=_t.perf_counter()\n for _i in range(%d): _f()\n"
       " _r.append((_t.perf_counter()-_t0)/%d*1e6)\n"
       "_r.sort(); _b.__bench_runner__ = _r[4]\n" % (N, N))
# run it via the raw chain (not interp.run, which would overwrite the io block)
import functools
c_loop = (swap_sub, functools.partial(_capi._run_simple, _capi.code_arg(src.encode())), swap_back)
_capi._chain(c_loop)
c_rd = (swap_sub, functools.partial(_capi._run_simple, _capi.code_arg(
    b"import builtins as _b, mmap\nprint('      [sub] runner __interpreters_run__() per call: %.2f us' % _b.__bench_runner__, flush=True)")), swap_back)
sys.stdout.flush()
_capi._chain(c_rd)
# sub-side pieces
c_sp = (swap_sub, functools.partial(_capi._run_simple, _capi.code_arg(("""
import time as _t, sys as _s, builtins as _b
def _m(name, f, n=%d):
    r=[]
    for _k in range(7):
        t0=_t.perf_counter()
        for _i in range(n): f()
        r.append((_t.perf_counter()-t0)/n*1e6)
    r.sort(); base=_m.base if hasattr(_m,'base') else 0
    print('      [sub] %%-38s %%6.2f' %% (name, r[3]-base), flush=True)
    return r[3]
_m.base = 0
_m.base = _m('(baseline lambda)', lambda: None)
_c = compile('pass', '<string>', 'exec'); _g = _s.modules['__main__'].__dict__
_m('exec(code, main)', lambda: exec(_c, _g))
_m('flush() stdout+stderr', lambda: (_s.stdout.flush(), _s.stderr.flush()))
_m("compile('__interpreters_run__()')", lambda: compile('__interpreters_run__()', '<string>', 'exec'))
""" % N).encode())), swap_back)
_capi._chain(c_sp)
sys.stdout.flush()
interp.destroy()
