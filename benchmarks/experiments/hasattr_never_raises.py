# Does PyObject_HasAttr ever leave an exception set when a property getter raises?
import ctypes, sys
lib = ctypes.PyDLL(None)
ha = lib.PyObject_HasAttr; ha.restype = ctypes.c_int; ha.argtypes = (ctypes.py_object, ctypes.py_object)
class P:
    exc = None
    @property
    def go(self):
        if P.exc is not None:
            raise P.exc
        return None
p = P()
hooked = []
if hasattr(sys, "unraisablehook"):
    sys.unraisablehook = lambda u: hooked.append(u.exc_type.__name__)
out = []
for e in (None, SystemExit(3), KeyboardInterrupt(), KeyError("k"), AttributeError("a"), MemoryError(), GeneratorExit()):
    P.exc = e
    r = ha(p, "go")     # ctypes (PyDLL) raises here if an exception was left set
    out.append("%s->%d" % (type(e).__name__ if e else "ok", r))
print(sys.version.split()[0], " ".join(out), "unraisable:", hooked)
