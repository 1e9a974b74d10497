"""gdb script: count allocations made while an isolated interpreter is current
during a crossing, outside the C function the crossing calls in it.

Loaded by tests/test_isolated.py with ``gdb -batch -x``.  The child process
calls ``PyThreadState_GetID()`` as a marker (the package never calls it) to
start a phase of the check.  Per OS thread:

* ``PyThreadState_Swap`` called from a chain flips "a foreign interpreter is
  current" (the chains are [Swap(sub), f(...), Swap(back)]), and so does the
  return of ``Py_NewInterpreterFromConfig`` (it leaves the new sub current);
* inside the chained C function (PyRun_SimpleString, PyObject_HasAttr,
  Py_IncRef, Py_DecRef, Py_NewInterpreterFromConfig) the sub's own code runs
  and allocates with its own allocator: that is allowed;
* any allocator or object-constructor call in between is ctypes/partial/map
  plumbing of the calling interpreter running under the sub's allocator: the
  zero-allocation recipe (DESIGN.md fact 3) says there are none.

The first marker starts phase 1, each further marker the next phase, and the
marker after ALLOCCHECK_PHASES (environment, default 2) phases ends the check;
at exit, for each phase, it prints
"ALLOCCHECK phase=<k> hits=<n> crossings=<n> callees=<n>" and a few backtraces.
"""
import os

import gdb

threads = {}      # gdb thread num -> {"in_sub": bool, "depth": int}
phases = [{"hits": [], "swaps": 0, "callees": 0}]   # one per marker call
result = phases[0]
event = []        # what made the inferior stop (set by stop(), read at the top level)


def state():
    return threads.setdefault(gdb.selected_thread().num, {"in_sub": False, "depth": 0})


class Finish(gdb.FinishBreakpoint):
    def __init__(self, frame, st, enters_sub):
        super().__init__(frame, internal=True)
        self.st, self.enters_sub = st, enters_sub

    def stop(self):
        self.st["depth"] = 0
        if self.enters_sub:
            self.st["in_sub"] = True
        event.append("finish")
        return True

    def out_of_scope(self):
        self.st["depth"] = 0


class Bp(gdb.Breakpoint):
    def __init__(self, spec, kind):
        super().__init__(spec, internal=True)
        self.kind = kind
        if kind != "marker":
            self.enabled = False

    def stop(self):
        if self.kind == "marker":
            event.append("marker")
            return True
        st = state()
        if st["depth"]:
            return False
        if self.kind == "swap":
            st["in_sub"] = not st["in_sub"]
            result["swaps"] += 1
            event.append("swap")
            return True
        if (self.kind == "new" and not st["in_sub"]) or (self.kind == "callee" and st["in_sub"]):
            st["depth"] = 1
            result["callees"] += 1
            event.append(("enter", st, self.kind == "new"))
            return True
        if self.kind == "alloc" and st["in_sub"]:
            names, f = [], gdb.newest_frame()
            for _ in range(8):
                if f is None:
                    break
                names.append(f.name() or "?")
                f = f.older()
            if names[0] == "_PyTuple_FromArray":
                try:
                    if int(gdb.newest_frame().read_var("n")) == 0:
                        return False        # the immortal empty tuple: no allocation
                except Exception:
                    pass
            result["hits"].append(" <- ".join(names))
        return False


marker = Bp("PyThreadState_GetID", "marker")
control = [Bp("PyThreadState_Swap", "swap"), Bp("Py_NewInterpreterFromConfig", "new")]
for fn in ("PyRun_SimpleString", "PyObject_HasAttr", "Py_IncRef", "Py_DecRef"):
    control.append(Bp(fn, "callee"))
allocs = []
for fn in ("PyObject_Malloc", "PyObject_Calloc", "PyObject_Realloc", "PyObject_Free",
           "PyMem_Malloc", "PyMem_Calloc", "PyMem_Realloc", "PyMem_Free",
           "_PyObject_GC_New", "_PyObject_GC_NewVar", "PyTuple_New", "_PyTuple_FromArray",
           "PyList_New", "PyDict_New", "PyLong_FromVoidPtr", "PyLong_FromLong"):
    try:
        allocs.append(Bp(fn, "alloc"))
    except Exception as exc:
        print("ALLOCCHECK no breakpoint on", fn, exc)


NPHASES = int(os.environ.get("ALLOCCHECK_PHASES", "2"))


def running():
    return gdb.selected_inferior().pid != 0


gdb.execute("run")                  # stops at the first marker
for bp in control:
    bp.enabled = True
while running():
    del event[:]
    gdb.execute("continue")
    if not running():
        break
    if "marker" in event:
        if len(phases) == NPHASES:  # the last marker: stop watching, let it finish
            for bp in control + allocs + [marker]:
                bp.enabled = False
            gdb.execute("continue")
            break
        result = {"hits": [], "swaps": 0, "callees": 0}
        phases.append(result)
    for ev in event:
        if isinstance(ev, tuple):
            Finish(gdb.newest_frame(), ev[1], ev[2])
    # Allocator breakpoints only while some thread sits in a sub between two calls
    # of a chain: the sub's own work inside the chained function is not trapped.
    watch = any(st["in_sub"] and not st["depth"] for st in threads.values())
    for bp in allocs:
        bp.enabled = watch
for n, ph in enumerate(phases, 1):
    print("ALLOCCHECK phase=%d hits=%d crossings=%d callees=%d"
          % (n, len(ph["hits"]), ph["swaps"], ph["callees"]))
    for h in ph["hits"][:3]:
        print("ALLOCCHECK phase=%d hit: %s" % (n, h))
