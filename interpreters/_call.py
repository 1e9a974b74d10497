"""Calling functions in another interpreter: call(), call_async(), call_in_thread(),
run_in_thread().

Transport (no ctypes here, nothing of this package is needed inside the other
interpreter, so it works in isolated interpreters on 3.12 too):

* the caller pickles ``(f, args, kwargs)`` into the first of a pair of memfds
  (CLOEXEC) that each calling thread keeps for its calls (closed when the thread
  ends), as a frame: an 8-byte length, then the pickle;
* one short ``run()`` calls ``_serve(in_fd, out_fd)`` of a small stdlib-only
  runtime module, ``sys.modules["_interpreters_callrt"]``, installed in that
  interpreter once (by the first call) from ``RUNTIME_SOURCE`` below; the
  source text is the same for every call from a thread (compiled once there);
* ``_serve`` unpickles, calls ``f``, and pickles the result into the second
  memfd, which the caller reads once ``run()`` has returned.  An exception
  raised by ``f`` is not pickled: it propagates out of ``run()``, so the caller
  sees exactly what ``run()`` reports (RunFailedError, also an instance of the
  builtin type it derives from, with ``excinfo``).

The shareable-data fast path.  Simple data (None, bool, int, float, str, bytes,
and tuples, lists and dicts of those, of exact types, up to 32 items: see
``is_simple``), and a function that goes by reference (a builtin, or a function
or class its module hands out under its name, not from ``__main__``) pickle to
the very same bytes with or without the runtime's Pickler subclass, whose
set-up costs more than pickling them: such a call, or such a result, is
pickled with plain ``pickle.dumps``.  Nothing else changes, so results and
exceptions are the same either way.  With the memfds kept, a small call costs a
third (3.8) to 40% (3.12) less than with a fresh pair and the Pickler subclass
every time.

Pickling by value.  Functions and classes that pickle by reference cannot be
resolved from the caller's ``__main__`` (or a REPL), and lambdas and local
functions cannot be pickled by reference at all.  Those are sent by value: a
function as its marshalled code object plus its defaults, keyword defaults,
closure cell contents, ``__dict__`` and the globals its code names
(``LOAD_GLOBAL``), each pickled the same way (modules travel by name and are
imported there, other ``__main__`` functions by value, recursively); a class
as a skeleton ``type(name, bases, {...})`` whose attributes are set afterwards.
In the other interpreter a function from the caller's ``__main__`` gets that
interpreter's ``__main__`` dict as its globals (the referenced globals are
copied in first); one from another module gets that module's dict when the
module imports there (only missing names are added), else a fresh dict.
The same rules apply to results sent back, and an object that was rebuilt by
value travels back by name, so the caller gets its own original object.
"""

from __future__ import annotations

import os
import pickle
import sys
import threading
import types

from . import _exc

# Annotations are strings (postponed); typing is imported for the checker only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import asyncio
    import concurrent.futures
    from typing import Any, Callable, Dict, List, Optional, Set, Tuple, TypeVar

    from . import Interpreter

    _T = TypeVar("_T")

__all__ = ["call", "call_async", "call_in_thread", "run_in_thread", "CallThread",
           "NotSendableError"]

RUNTIME_NAME = "_interpreters_callrt"
RUNTIME_FILE = "<%s>" % RUNTIME_NAME      # the runtime's frames are named so

# The runtime: executed as a module in the caller (so both ends pickle the same way
# and resolve the same helper names) and, through run(), in each target interpreter.
# Standard library only.
RUNTIME_SOURCE = r'''
import builtins
import importlib
import marshal
import os
import pickle
import sys
import types
import weakref

PROTOCOL = pickle.HIGHEST_PROTOCOL
_EMPTY = object()
_origin = weakref.WeakKeyDictionary()   # rebuilt by value here -> (module, qualname)
_global_names_cache = {}


class NotSendableError(TypeError, pickle.PicklingError):
    """An object cannot be sent to (or back from) another interpreter."""


class _GlobalsRef(object):
    """Stands for "the globals of module *name*" inside one pickle."""
    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name


def _lookup(module, qualname):
    mod = sys.modules.get(module)
    if mod is None:
        return None
    obj = mod
    for part in qualname.split("."):
        obj = getattr(obj, part, _EMPTY)
        if obj is _EMPTY:
            return None
    return obj


def _resolve(module, qualname):
    obj = _lookup(module, qualname)
    if obj is None:
        try:
            importlib.import_module(module)
        except ImportError:
            pass
        obj = _lookup(module, qualname)
    if obj is None:
        raise AttributeError("cannot find %s.%s here" % (module, qualname))
    return obj


def _needs_value(obj):
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    if not module or not qualname or module == "__main__" or "<" in qualname:
        return True
    return _lookup(module, qualname) is not obj


def _global_names(code):
    names = _global_names_cache.get(code)
    if names is None:
        import dis
        ops = ("LOAD_GLOBAL", "STORE_GLOBAL", "DELETE_GLOBAL", "LOAD_NAME")
        found = set()
        stack = [code]
        while stack:
            c = stack.pop()
            for ins in dis.get_instructions(c):
                if ins.opname in ops:
                    found.add(ins.argval)
            stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
        names = _global_names_cache[code] = tuple(sorted(found))
        if len(_global_names_cache) > 4096:
            _global_names_cache.clear()
    return names


def _load_code(data):
    return marshal.loads(data)


def _globals_for(name):
    if name == "__main__":
        return sys.modules["__main__"].__dict__
    try:
        return importlib.import_module(name).__dict__
    except BaseException:
        return {"__name__": name, "__builtins__": builtins}


def _make_function(code, globals_, name, ncells):
    if "__builtins__" not in globals_:
        globals_["__builtins__"] = builtins
    closure = tuple(types.CellType() for _ in range(ncells)) if ncells else None
    return types.FunctionType(code, globals_, name, None, closure)


def _set_function_state(f, state):
    (names, defaults, kwdefaults, cells, fdict, qualname, module, doc) = state
    g = f.__globals__
    overwrite = g is sys.modules["__main__"].__dict__ or "__file__" not in g
    for k, v in names.items():
        if overwrite or k not in g:
            g[k] = v
    f.__defaults__ = defaults
    f.__kwdefaults__ = kwdefaults
    if cells:
        for cell, value in zip(f.__closure__, cells):
            if value is not _EMPTY:
                cell.cell_contents = value
    if fdict:
        f.__dict__.update(fdict)
    f.__qualname__ = qualname
    f.__module__ = module
    f.__doc__ = doc
    _origin[f] = (module, qualname)
    return f


def _make_proxy(d):
    return types.MappingProxyType(d)


def _make_class(meta, name, bases, ns):
    return meta(name, bases, ns)


def _set_class_state(cls, state):
    for k, v in state.items():
        setattr(cls, k, v)
    _origin[cls] = (cls.__module__, cls.__qualname__)
    return cls


def _empty_marker():
    return _EMPTY


class Pickler(pickle.Pickler):
    """Pickles functions and classes by value when they cannot go by reference."""

    def __init__(self, file):
        super().__init__(file, PROTOCOL)
        self._globals_refs = {}
        self.undo = []       # channel ends, queues, connections counted as in flight

    def reducer_override(self, obj):
        t = type(obj)
        if t is types.FunctionType:
            return self._reduce_function(obj)
        if isinstance(obj, type):
            if obj.__module__ == "builtins":
                return NotImplemented
            return self._reduce_class(obj)
        if t is types.CodeType:
            return _load_code, (marshal.dumps(obj),)
        if t is types.ModuleType:
            if obj.__name__ == "__main__":
                raise NotSendableError("the __main__ module itself cannot be sent")
            return importlib.import_module, (obj.__name__,)
        if t is _GlobalsRef:
            return _globals_for, (obj.name,)
        if t is staticmethod or t is classmethod:
            return t, (obj.__func__,)
        if t is property:
            return property, (obj.fget, obj.fset, obj.fdel, obj.__doc__)
        if t is types.MappingProxyType:
            return _make_proxy, (dict(obj),)
        if obj is _EMPTY:
            return _empty_marker, ()
        in_flight = getattr(t, "_reduce_in_flight_", None)
        if in_flight is not None:
            # Channel ends, queues and connections: counted as in flight until the
            # pickle is loaded, so closing them here right after cannot close them
            # for the receiver (as for ends sent through a channel).
            rv, undo = in_flight(obj)
            self.undo.append(undo)
            return rv
        return NotImplemented

    def _by_origin(self, obj):
        where = _origin.get(obj)
        if where is not None and "<" not in where[1]:
            return _resolve, where
        return None

    def _reduce_function(self, f):
        back = self._by_origin(f)
        if back is not None:
            return back
        if not _needs_value(f):
            return NotImplemented
        code = f.__code__
        module = f.__module__ or "__main__"
        ref = self._globals_refs.get(module)
        if ref is None:
            ref = self._globals_refs[module] = _GlobalsRef(module)
        g = f.__globals__
        names = {}
        for name in _global_names(code):
            if name in g and name != "__builtins__":
                names[name] = g[name]
        cells = None
        if f.__closure__:
            cells = []
            for cell in f.__closure__:
                try:
                    cells.append(cell.cell_contents)
                except ValueError:
                    cells.append(_EMPTY)
        state = (names, f.__defaults__, f.__kwdefaults__, cells, f.__dict__ or None,
                 f.__qualname__, module, f.__doc__)
        return (_make_function, (code, ref, f.__name__, len(code.co_freevars)),
                state, None, None, _set_function_state)

    def _reduce_class(self, cls):
        back = self._by_origin(cls)
        if back is not None:
            return back
        if not _needs_value(cls):
            return NotImplemented
        if any(m.__module__ == "enum" for m in type(cls).__mro__):
            raise NotSendableError("enum class %s.%s cannot be sent by value (define it in "
                                   "an importable module)" % (cls.__module__, cls.__qualname__))
        d = dict(cls.__dict__)
        for k in ("__dict__", "__weakref__", "_abc_impl"):
            d.pop(k, None)
        slots = d.get("__slots__")
        if slots:
            for s in ([slots] if isinstance(slots, str) else list(slots)):
                if s.startswith("__") and not s.endswith("__"):
                    s = "_%s%s" % (cls.__name__.lstrip("_"), s)
                d.pop(s, None)
        ns = {k: d.pop(k) for k in ("__module__", "__qualname__", "__doc__", "__slots__")
              if k in d}
        ns["__module__"] = cls.__module__ or "__main__"
        return (_make_class, (type(cls), cls.__name__, cls.__bases__, ns),
                d, None, None, _set_class_state)


class _Parts(list):
    """A file for Pickler: keeps what it writes, as a list of bytes objects.

    Big bytes objects come as they are (no copy); anything else written (a
    bytearray's contents, say) is copied, so the list is a snapshot.  (Not a
    BytesIO: a memoryview of one, caught in a reference cycle, can crash CPython
    when the cycle is collected.)"""
    __slots__ = ("undo",)

    def write(self, data):
        if type(data) is not bytes:
            data = bytes(data)
        self.append(data)
        return len(data)


def dumps(obj, keep=True):
    """Pickle *obj* with Pickler; return the pickle as a list of bytes objects.

    Its ``undo`` lists what takes back the in-flight counts of the channel ends,
    queues and connections inside, for a pickle that will never be loaded
    (called here already when pickling fails, or when *keep* is false).
    """
    parts = _Parts()
    p = Pickler(parts)
    try:
        p.dump(obj)
    except BaseException:
        undo_all(p.undo)
        raise
    if not keep:
        undo_all(p.undo)
        p.undo = []
    parts.undo = p.undo
    return parts


def undo_all(undo):
    while undo:
        undo.pop()()


# Frames: an 8-byte little-endian length, then the body, written at offset 0 of a
# memfd that is reused call after call (bytes past the frame are stale).  A small
# frame is written with one syscall and read with one.
_FRAME_READ = 8192


def read_frame(fd):
    head = os.pread(fd, _FRAME_READ, 0)
    if len(head) < 8:
        raise EOFError("no frame in memfd %d" % fd)
    n = int.from_bytes(head[:8], "little")
    if n <= len(head) - 8:
        return memoryview(head)[8:8 + n]
    view = memoryview(bytearray(n))
    done = len(head) - 8
    view[:done] = head[8:]
    while done < n:
        k = os.preadv(fd, [view[done:]], 8 + done)
        if k <= 0:
            raise EOFError("short frame in memfd %d" % fd)
        done += k
    return view


_IOV_MAX = 1024


def write_frame(fd, parts):
    """Write a frame of the bytes objects in *parts*; return the body's length."""
    n = 0
    for p in parts:
        n += len(p)
    bufs = [n.to_bytes(8, "little")]
    bufs.extend(parts)
    offset = 0
    while bufs:
        batch = bufs[:_IOV_MAX]
        done = os.pwritev(fd, batch, offset)
        if not done and any(batch):
            raise OSError("memfd %d takes no more bytes" % fd)
        offset += done
        i = 0
        while i < len(batch) and done >= len(batch[i]):
            done -= len(batch[i])
            i += 1
        del bufs[:i]
        if done:
            bufs[0] = memoryview(bufs[0])[done:]
    return n


# Simple data (exact types only) pickles the same with or without Pickler's
# reducer_override: such data is pickled with plain pickle.dumps, which skips the
# subclass's set-up.  Looking costs more than it saves on big data: at most
# _SIMPLE_BUDGET items are looked at.
_ATOMS = frozenset((type(None), bool, int, float, str, bytes))
_SIMPLE_BUDGET = 32


def is_simple(obj):
    t = type(obj)
    if t in _ATOMS:
        return True
    if t is not tuple and t is not list and t is not dict:
        return False
    atoms = _ATOMS
    budget = _SIMPLE_BUDGET
    stack = [obj]
    while stack:
        o = stack.pop()
        if type(o) is dict:
            budget -= 2 * len(o)
            items = list(o.keys()) + list(o.values()) if budget >= 0 else ()
        else:
            budget -= len(o)
            items = o
        if budget < 0:
            return False
        for x in items:
            t = type(x)
            if t in atoms:
                continue
            if t is tuple or t is list or t is dict:
                stack.append(x)
            else:
                return False
    return True


class CallError(RuntimeError):
    """The call could not be set up or answered in this interpreter."""


def _serve(in_fd, out_fd):
    try:
        f, args, kwargs = pickle.loads(read_frame(in_fd))
    except BaseException as exc:
        raise CallError("could not unpickle the call in this interpreter: %s: %s"
                        % (type(exc).__name__, exc)) from exc
    result = f(*args, **kwargs)
    try:
        data = [pickle.dumps(result, PROTOCOL)] if is_simple(result) else dumps(result)
    except BaseException as exc:
        raise NotSendableError("the result of %s() cannot be sent back: %r (%s): %s: %s" % (
            getattr(f, "__qualname__", f), _short_repr(result), type(result).__qualname__,
            type(exc).__name__, exc)) from None
    write_frame(out_fd, data)


def _short_repr(obj):
    try:
        r = repr(obj)
    except BaseException:
        r = "<%s object>" % type(obj).__name__
    return r if len(r) <= 80 else r[:77] + "..."


def _process_chunk(fn, chunk):
    return [fn(*args) for args in chunk]


def _run_source(src):
    exec(compile(src, "<string>", "exec"), sys.modules["__main__"].__dict__)
'''


def _load_runtime() -> types.ModuleType:
    mod = sys.modules.get(RUNTIME_NAME)
    if mod is None or getattr(mod, "__source__", None) != RUNTIME_SOURCE:
        mod = types.ModuleType(RUNTIME_NAME, "Runtime of interpreters._call (stdlib only).")
        mod.__dict__["__source__"] = RUNTIME_SOURCE
        exec(compile(RUNTIME_SOURCE, "<%s>" % RUNTIME_NAME, "exec"), mod.__dict__)
        sys.modules[RUNTIME_NAME] = mod
    return mod


_rt = _load_runtime()
NotSendableError = _rt.NotSendableError

# Installed in the target once: a no-op if an identical runtime is there already.
_INSTALL_SOURCE = """\
def _interpreters_install_callrt_(name, src):
    import sys, types
    mod = sys.modules.get(name)
    if mod is None or getattr(mod, "__source__", None) != src:
        mod = types.ModuleType(name)
        mod.__source__ = src
        exec(compile(src, "<%%s>" %% name, "exec"), mod.__dict__)
        sys.modules[name] = mod
_interpreters_install_callrt_(%r, %r)
del _interpreters_install_callrt_
""" % (RUNTIME_NAME, RUNTIME_SOURCE)

_SERVE_SOURCE = '__import__("sys").modules[%r]._serve(%%d, %%d)' % RUNTIME_NAME

# Run in an interpreter by the thread about to destroy it (CPython 3.13+): drops
# the thread-local marker that removes this thread's threading._DummyThread there,
# while the interpreter's modules still work.  Left for the teardown, the marker's
# __del__ runs after threading's globals are cleared and prints an ignored
# TypeError (e.g. after a task that logged, in an executor worker).
FORGET_DUMMY_THREAD = (
    "(lambda t: getattr(t, '_thread_local_info', None) is not None and "
    "vars(t._thread_local_info).pop('_track_dummy_thread_ref', None))"
    "(__import__('threading'))\n")

_installed: Set[int] = set()          # ids of interpreters that have the runtime (ids are never reused)
_installed_lock = threading.Lock()


def _ensure_runtime(interp: Interpreter) -> None:
    iid = interp.id
    if iid in _installed:
        return
    interp.run(_INSTALL_SOURCE)
    with _installed_lock:
        _installed.add(iid)


def _describe(obj: object) -> str:
    r = _rt._short_repr(obj)
    t = type(obj)
    return "%s (%s.%s)" % (r, t.__module__, t.__qualname__)


def _locate(f: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any]
            ) -> Tuple[Optional[str], Optional[BaseException]]:
    """Name the part of the call that cannot be pickled (called after a failure)."""
    def fails(obj: object) -> Optional[BaseException]:
        try:
            _rt.dumps(obj, keep=False)
        except BaseException as exc:
            return exc
        return None

    exc = fails(f)
    if exc is not None:
        if isinstance(f, types.FunctionType) and _rt._needs_value(f):
            for name in _rt._global_names(f.__code__):
                if name in f.__globals__:
                    e2 = fails(f.__globals__[name])
                    if e2 is not None:
                        return "global %r of function %s: %s" % (
                            name, f.__qualname__, _describe(f.__globals__[name])), e2
            for i, cell in enumerate(f.__closure__ or ()):
                try:
                    value = cell.cell_contents
                except ValueError:
                    continue
                e2 = fails(value)
                if e2 is not None:
                    return "closure variable %r of function %s: %s" % (
                        f.__code__.co_freevars[i], f.__qualname__, _describe(value)), e2
        return "the function %s" % _describe(f), exc
    for i, a in enumerate(args):
        exc = fails(a)
        if exc is not None:
            return "positional argument %d: %s" % (i, _describe(a)), exc
    for k, v in kwargs.items():
        exc = fails(v)
        if exc is not None:
            return "keyword argument %r: %s" % (k, _describe(v)), exc
    return None, None


def _by_reference(f: object) -> bool:
    """True if *f* pickles as a plain reference by name with or without reducer_override:
    a builtin function, or a function or class its module hands out by that name
    (not from __main__, not one rebuilt here by value)."""
    if not isinstance(f, _FUNCTION_TYPES) and not isinstance(f, type):
        return False
    module = getattr(f, "__module__", None)
    qualname = getattr(f, "__qualname__", None)
    return (type(module) is str and type(qualname) is str and module != "__main__"
            and "<" not in qualname and _rt._lookup(module, qualname) is f
            and f not in _rt._origin)


_FUNCTION_TYPES = (types.FunctionType, types.BuiltinFunctionType)


def _pickle_call(interp: Interpreter, f: Callable[..., Any], args: Tuple[Any, ...],
                 kwargs: Dict[str, Any]) -> List[bytes]:
    """Pickle the call, as a list of bytes objects.  A function going by reference
    with simple arguments (see is_simple) takes plain pickle.dumps: the same bytes,
    made faster."""
    try:
        if _by_reference(f) and _rt.is_simple(args) and (not kwargs or _rt.is_simple(kwargs)):
            return [pickle.dumps((f, args, kwargs), _rt.PROTOCOL)]
        data: List[bytes] = _rt.dumps((f, args, kwargs))
        return data
    except BaseException as exc:
        what, why = _locate(f, args, kwargs)
        if what is None:
            what, why = "the call %s" % _describe(f), exc
        raise NotSendableError("call(): cannot send %s to interpreter %d: %s: %s"
                               % (what, interp.id, type(why).__name__, why)) from None


def _memfd(name: str) -> int:
    return os.memfd_create(name, getattr(os, "MFD_CLOEXEC", 1))


_fork_generation = 0        # bumped in a forked child, whose inherited memfds are shared


def _after_fork_in_child() -> None:
    global _fork_generation
    _fork_generation += 1


os.register_at_fork(after_in_child=_after_fork_in_child)

_BIG_FRAME = 1 << 20        # after a bigger frame the memfds are emptied


class _Fds:
    """A pair of memfds a thread keeps for its calls (closed when the thread ends)."""

    __slots__ = ("fin", "fout", "source", "generation")

    def __init__(self) -> None:
        self.fin = self.fout = -1
        self.fin = _memfd("interpreters-call-in")
        self.fout = _memfd("interpreters-call-out")
        self.source = _SERVE_SOURCE % (self.fin, self.fout)   # the same text every call
        self.generation = _fork_generation

    def shrink(self) -> None:
        os.ftruncate(self.fin, 0)
        os.ftruncate(self.fout, 0)

    def __del__(self, _close: Callable[[int], None] = os.close) -> None:
        for fd in (self.fin, self.fout):
            if fd >= 0:
                try:
                    _close(fd)
                except OSError:
                    pass


_local = threading.local()


def _execute(interp: Interpreter, f: Callable[..., Any], payload: List[bytes]) -> Any:
    """Run a call pickled by _pickle_call() in *interp*; return its result."""
    fds: Optional[_Fds] = getattr(_local, "fds", None)
    if fds is None or fds.generation != _fork_generation:
        fds = _Fds()
    else:
        _local.fds = None          # in use: a signal handler calling call() makes its own
    big = False
    undo = getattr(payload, "undo", None)    # in-flight counts of ends inside the payload
    try:
        reached = False
        try:
            big = _rt.write_frame(fds.fin, payload) > _BIG_FRAME
            del payload
            _ensure_runtime(interp)
            reached = True
            interp.run(fds.source)
        except BaseException as exc:
            # Busy, gone, or failed before the call was read there: the payload will
            # never be loaded, so its ends are no longer in flight.  (A RunFailedError
            # of the call itself means it was read there.)
            if undo and not (reached and isinstance(exc, _exc.RunFailedError)):
                _rt.undo_all(undo)
            raise
        data = _rt.read_frame(fds.fout)
        big = big or len(data) > _BIG_FRAME
    finally:
        if big:
            fds.shrink()
        _local.fds = fds
        del fds                    # a traceback keeps this frame, not the memfds
    try:
        return pickle.loads(data)
    except Exception as exc:
        raise _rt.CallError("call(): the result of %s() from interpreter %d cannot be "
                            "unpickled here: %s: %s" % (getattr(f, "__qualname__", f),
                                                        interp.id, type(exc).__name__, exc)
                            ) from exc


def call(interp: Interpreter, f: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
    """Run ``f(*args, **kwargs)`` in *interp*, block, and return its result.

    The call runs in the calling OS thread, like ``run()``.  *f*, the arguments
    and the result travel by pickle; functions and classes that cannot be
    pickled by reference (from ``__main__``, a REPL, lambdas, local functions)
    travel by value (see the module docstring).

    Ctrl-C in the main thread (default SIGINT handler) makes *f* raise
    KeyboardInterrupt at its next bytecode (a blocking C call finishes first),
    and KeyboardInterrupt is raised here (see run()), CPU-bound code included.
    Not for isolated interpreters: there it waits for *f* to return.  The waits of call_in_thread() and call_async() are
    cut short by Ctrl-C in every case.

    Raises:
        NotSendableError (a TypeError and a pickle.PicklingError): *f* or an
            argument cannot be pickled; the message names it and says why.
        RunFailedError: *f* raised (also an instance of the builtin type the
            original derives from, so ``except KeyError`` works; ``excinfo``
            names the original type), or the call could not be rebuilt there
            (a RuntimeError naming ``CallError``), or the result could not be
            pickled there (a TypeError naming ``NotSendableError``).
        InterpreterError: *interp* is running already, or is gone.
    """
    if not callable(f):
        raise TypeError("call() needs a callable, not %s" % type(f).__name__)
    try:
        result: _T = _execute(interp, f, _pickle_call(interp, f, args, kwargs))
    except (_exc.RunFailedError, KeyboardInterrupt) as exc:
        raise _exc.relocated(exc, RUNTIME_FILE)     # f's frames, not the runtime's
    return result


class CallThread:
    """A started thread running one call()/run() in an interpreter.

    ``join(timeout=None)`` waits like ``threading.Thread.join`` (returns None,
    also when the timeout expires: check ``is_alive()``), then re-raises the
    exception the call raised, if any.  ``result(timeout=None)`` waits and
    returns the call's return value (None for run_in_thread()) or re-raises
    its exception; it raises TimeoutError if the call is still running after
    *timeout* seconds.  ``exception(timeout=None)`` returns the exception or None.

    Ctrl-C while the main thread waits in any of these raises KeyboardInterrupt
    there at once; the call goes on in its thread (nothing can stop it), and the
    handle can be waited on again.
    """

    def __init__(self, interp: Interpreter, target: Callable[..., Any], args: Tuple[Any, ...],
                 kwargs: Dict[str, Any], name: str) -> None:
        self.interp = interp
        self._target = target
        self._args = args
        self._kwargs = kwargs
        self._result: Any = None
        self._exc: Optional[BaseException] = None
        # Waits are on this event, not on Thread.join(): on CPython 3.9-3.12 a join()
        # cut short by Ctrl-C can mark the still-running thread as stopped.
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._main, name=name)
        self._thread.start()

    def _main(self) -> None:
        try:
            self._result = self._target(*self._args, **self._kwargs)
        except BaseException as exc:
            self._exc = exc
        finally:
            del self._target, self._args, self._kwargs
            self._done.set()

    @property
    def name(self) -> str:
        return self._thread.name

    @property
    def ident(self) -> Optional[int]:
        return self._thread.ident

    def is_alive(self) -> bool:
        """True until the call has returned or raised."""
        return not self._done.is_set()

    def join(self, timeout: Optional[float] = None) -> None:
        if self._done.wait(timeout):
            self._thread.join()        # its last bytecodes: the call is over
            if self._exc is not None:
                raise _exc.relocated(self._exc, RUNTIME_FILE)

    def _wait(self, timeout: Optional[float]) -> None:
        if not self._done.wait(timeout):
            raise TimeoutError("the call in interpreter %d is still running after %s s"
                               % (self.interp.id, timeout))

    def result(self, timeout: Optional[float] = None) -> Any:
        self._wait(timeout)
        if self._exc is not None:
            raise _exc.relocated(self._exc, RUNTIME_FILE)
        return self._result

    def exception(self, timeout: Optional[float] = None) -> Optional[BaseException]:
        self._wait(timeout)
        return self._exc

    def __repr__(self) -> str:
        state = "running" if self.is_alive() else ("failed" if self._exc else "done")
        return "<%s %s interp=%d %s>" % (type(self).__name__, self.name, self.interp.id, state)


async def call_async(interp: Interpreter, f: Callable[..., _T], /, *args: Any,
                     **kwargs: Any) -> _T:
    """Run ``call(interp, f, *args, **kwargs)`` in a worker thread; await its result.

    *f* and the arguments are pickled at once, in the awaiting thread (later
    changes to them do not travel); the call then runs in a worker thread (one
    per call in progress, reused, never a daemon), which hands the outcome to the
    event loop with ``call_soon_threadsafe``: the loop is never blocked and
    nothing polls.  Returns the result or raises what call() raises (a
    StopIteration, which cannot cross an await, arrives as the ``__cause__`` of
    a RuntimeError).

    Cancelling the awaiting task (``asyncio.wait_for`` timing out, Ctrl-C under
    ``asyncio.run``) cancels the await at once, but not the call: nothing can
    stop code running in an interpreter.  It runs to its end in its thread, its
    result or exception is dropped, and *interp* stays busy (run() and call() on
    it raise InterpreterError) until then; at exit Python waits for it.
    """
    import asyncio
    if not callable(f):
        raise TypeError("call_async() needs a callable, not %s" % type(f).__name__)
    payload = _pickle_call(interp, f, args, kwargs)
    loop = asyncio.get_running_loop()
    future: asyncio.Future[_T] = loop.create_future()
    _async_threads().submit(_call_for_loop, interp, f, payload, loop, future)
    del payload
    return await future


_async_pool: Optional[concurrent.futures.ThreadPoolExecutor] = None
_async_pool_generation = -1
_async_pool_lock = threading.Lock()


def _async_threads() -> concurrent.futures.ThreadPoolExecutor:
    """The threads call_async() runs calls in: one per call in progress, reused.

    A ThreadPoolExecutor with no practical bound: it starts a thread only when
    none is idle, so no call ever waits for another to end; and at exit Python
    waits for the calls in progress, as for any thread that is not a daemon.
    """
    global _async_pool, _async_pool_generation
    pool = _async_pool
    if pool is None or _async_pool_generation != _fork_generation:
        import concurrent.futures
        with _async_pool_lock:
            if _async_pool is None or _async_pool_generation != _fork_generation:
                _async_pool = concurrent.futures.ThreadPoolExecutor(
                    max_workers=1 << 20, thread_name_prefix="interpreters-call-async")
                _async_pool_generation = _fork_generation
            pool = _async_pool
    return pool


def _call_for_loop(interp: Interpreter, f: Callable[..., Any], payload: List[bytes],
                   loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any]) -> None:
    result: Any = None
    exc: Optional[BaseException] = None
    try:
        result = _execute(interp, f, payload)
    except BaseException as e:
        exc = e
    del payload
    try:
        loop.call_soon_threadsafe(_settle, future, result, exc)
    except RuntimeError:       # the loop is closed: nobody awaits this any more
        pass
    finally:
        del result, exc


def _settle(future: asyncio.Future[Any], result: Any, exc: Optional[BaseException]) -> None:
    if future.done():          # the await was cancelled: the outcome is dropped
        return
    if exc is None:
        future.set_result(result)
    elif isinstance(exc, StopIteration):
        err = RuntimeError("call_async(): the call raised StopIteration, which cannot "
                           "cross an await")
        err.__cause__ = exc
        future.set_exception(err)
    else:
        future.set_exception(exc)


def call_in_thread(interp: Interpreter, f: Callable[..., Any], /, *args: Any,
                   **kwargs: Any) -> CallThread:
    """Start a thread that runs ``call(interp, f, *args, **kwargs)``; return its CallThread.

    The thread is not a daemon (like threading.Thread).  ``.result()`` returns
    the value; ``.join()`` re-raises the exception.  *f* and the arguments are
    pickled here, before this returns (so a queue or a connection passed as an
    argument may be closed right after); a NotSendableError surfaces from
    join/result, like every other failure of the call.
    """
    name = "interp-%d-call-%s" % (interp.id, getattr(f, "__name__", "f"))
    if not callable(f):
        return CallThread(interp, _raise, (TypeError("call() needs a callable, not %s"
                                                     % type(f).__name__),), {}, name)
    try:
        payload = _pickle_call(interp, f, args, kwargs)
    except NotSendableError as exc:
        return CallThread(interp, _raise, (exc,), {}, name)
    return CallThread(interp, _execute, (interp, f, payload), {}, name)


def _raise(exc: BaseException) -> None:
    raise exc


def run_in_thread(interp: Interpreter, src: str, /) -> CallThread:
    """Start a thread that runs ``interp.run(src)``; return its CallThread.

    ``.join()`` re-raises the RunFailedError; ``.result()`` returns None.
    """
    if not isinstance(src, str):
        raise TypeError("run_in_thread() source must be str, not %s" % type(src).__name__)
    return CallThread(interp, interp.run, (src,), {}, "interp-%d-run" % interp.id)
