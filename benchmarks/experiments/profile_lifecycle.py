import sys, time, statistics, collections
import os; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
import interpreters
from interpreters import _interp, _capi
T = collections.defaultdict(list)
def wrap(mod, name, label):
    orig = getattr(mod, name)
    def w(*a, **k):
        t0 = time.perf_counter()
        try: return orig(*a, **k)
        finally: T[label].append(time.perf_counter() - t0)
    setattr(mod, name, w)
wrap(_capi, "new_interpreter", "create: Py_NewInterpreter chain")
wrap(_capi, "run_prebuilt", "run_prebuilt (bootstrap / PREPARE_END)")
wrap(_capi, "end_interpreter", "destroy: Py_EndInterpreter (ucontext)")
wrap(_interp, "create", "create() total")
wrap(_interp, "destroy", "destroy() total")
t0 = time.perf_counter()
t1 = time.perf_counter(); comp = [compile(_interp._SUB_SOURCE, 'x', 'exec') for _ in range(50)]
print(sys.version.split()[0], "compile(_sub.py) in main: %.2f ms" % ((time.perf_counter() - t1) / 50 * 1e3))
for _ in range(25):
    interpreters.create().destroy()
for k, v in T.items():
    if "run_prebuilt" in k:
        print("  %-42s boot %.2f ms, prepare_end %.2f ms" % (k, statistics.median(v[0::2]) * 1e3, statistics.median(v[1::2]) * 1e3))
    else:
        print("  %-42s %.2f ms" % (k, statistics.median(v) * 1e3))
# the C module
if sys.version_info >= (3, 13):
    import _interpreters as m; cr = lambda: m.create('legacy')
else:
    import _xxsubinterpreters as m; cr = (lambda: m.create(isolated=False)) if sys.version_info >= (3, 9) else m.create
c, d = [], []
for _ in range(25):
    t0 = time.perf_counter(); i = cr(); t1 = time.perf_counter(); m.destroy(i); t2 = time.perf_counter()
    c.append(t1 - t0); d.append(t2 - t1)
print("  C module create %.2f ms, destroy %.2f ms" % (statistics.median(c) * 1e3, statistics.median(d) * 1e3))
