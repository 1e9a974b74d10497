import sys, time, gc, statistics
import os; _h = os.path.dirname(os.path.abspath(__file__)); sys.path.insert(0, _h); sys.path.insert(0, os.path.dirname(_h))
import fastpath, interpreters, bench_interp as B
from interpreters import _interp
it = interpreters.create(); f = fastpath.Fast(it)
cid = B.c_create(); cfn = B.c_runner(cid)
# correctness checks
fastpath.fast_run(f, "x = 41\nx += 1")
fastpath.fast_run(f, "assert x == 42")
try:
    fastpath.fast_run(f, "raise KeyError('k')")
except KeyError as e: ok = True
else: ok = False
assert ok
try:
    fastpath.fast_run(f, "raise SystemExit(3)")
except Exception as e: print("SystemExit reported:", type(e).__name__)
it.run("assert x == 42")
fns = {"pkg": lambda: it.run('pass'), "fast": lambda: fastpath.fast_run(f, 'pass'),
       "fast-core": lambda: fastpath.fast_run(f, 'pass'), "C": cfn}
del fns["fast-core"]
for fn in fns.values():
    for _ in range(300): fn()
res = {k: [] for k in fns}
for _ in range(21):
    for k, fn in fns.items():
        res[k].append(B._time_batch(fn, 2000) * 1e6)
med = {k: statistics.median(v) for k, v in res.items()}
print("%s  pkg %.2f  fast %.2f  C %.2f   pkg/C %.2fx  fast/C %.2fx  (load %.2f)" % (
    sys.version.split()[0], med["pkg"], med["fast"], med["C"], med["pkg"]/med["C"], med["fast"]/med["C"], __import__('os').getloadavg()[0]))
f.close(); it.destroy(); B.c_destroy(cid)
