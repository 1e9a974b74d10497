"""The runtime bootstrapped into every subinterpreter this package creates.

This file is not imported as part of the package: its source is executed inside
each new interpreter, in a private namespace, by ``_interp.bootstrap_code()``.
It must therefore import only stdlib modules that load in any interpreter
(never ctypes: that costs ~200 KB per interpreter lifetime on 3.8-3.12 and does
not load at all in isolated interpreters on 3.12, DESIGN.md facts 13 and 15).

It talks to the calling interpreter through an "io block": a memfd that both
sides map.  Layout, little-endian int64 words, then data from byte HDR:

    0 STATUS   written here: OK, FAILED; set to PENDING by the caller
    1 SRCLEN   source length (bytes at HDR)
    2 OUTLEN   length of the marshalled exception info (at HDR) on FAILED
    3 CAP      size of the memfd; either side may grow it (ftruncate + remap)
    4 OP       what to do: RUN, PREPARE_END, JOIN_THREADS
    5 READY    MAGIC once the runtime is installed
    6 EXTRA    length of marshalled injected names, stored after the source
    7 THREADS  reply: JOIN_THREADS, threads still alive besides the caller;
               PREPARE_END, buffers exported from here still held by receivers
    8 PROBE    address of the entry probe object      9 PROBE_NAME  address of
               its attribute name (see below)
   10 YIELDER  1 while the yielder thread (below) runs here, else 0

The yielder (CPython 3.9-3.12, shared-GIL interpreters only): on those versions a
thread that waits for the shared GIL makes the thread holding it drop it only if
both belong to the same interpreter (the drop request goes to the waiter's
interpreter).  A CPU-bound thread here would therefore keep every thread of the
main interpreter from running: its threads, its Ctrl-C watchdog, a main thread
waiting in join().  The yielder is a thread of this interpreter (started with
``_thread``, so ``threading.enumerate()`` does not list it) that wakes every
YIELD_BUSY seconds while code runs here (a run() is in progress or other threads
live) and every YIELD_IDLE seconds otherwise: each wake-up asks for the GIL as a
thread of this interpreter, which a CPU-bound thread here does honour, and the
GIL then goes to whichever thread waits, in any interpreter.  PREPARE_END stops
it (destroy needs this interpreter's threads gone).

The entry point is a property getter: the caller enters the interpreter with
``PyObject_HasAttr(probe, "__interpreters_run__")``, which runs ``run()`` and
never leaves an exception set (a failure is cleared or reported as unraisable),
and which compiles nothing, unlike PyRun_SimpleString.  The caller pins the
probe and the name with Py_IncRef after the bootstrap and unpins them before
the interpreter ends.  ``run()`` itself never lets an exception escape.
"""

from __future__ import annotations

# Not ``from typing import TYPE_CHECKING``: that would import typing into every new
# interpreter (~9 ms per create() on 3.12).  Type checkers treat any name
# TYPE_CHECKING as true; at run time the block is skipped and annotations stay strings.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Tuple

HDR = 128
STATUS, SRCLEN, OUTLEN, CAP, OP, READY, EXTRA, THREADS, PROBE, PROBE_NAME, YIELDER = range(11)
PENDING, OK, FAILED = -1, 0, 1
RUN, PREPARE_END, JOIN_THREADS = 0, 1, 2
MAGIC = 0x49505335  # "IPS5"
_CACHE_MAX = 256          # compiled-code cache entries
_CACHE_SRC_MAX = 1 << 16  # only sources up to this size are cached
YIELD_BUSY = 0.005        # the yielder's period while code runs here (seconds)
YIELD_IDLE = 0.1          # ... and while nothing does


ENTRY_NAME = "__interpreters_run__"


def _install(fd: int, interp_id: int, path: Optional[List[str]], yielder: bool = False) -> None:
    import builtins
    import marshal
    import mmap
    import os
    import sys
    import threading   # DESIGN.md fact 5: import now, on the creating thread

    if path is not None:
        sys.path[:] = path

    mapping: Dict[str, Any] = {}   # "mm", "words", "size": the current mapping
    cache: Dict[bytes, Any] = {}
    active = [0]                   # run() calls in progress here (any thread)
    stoppers: List[Any] = []       # the yielder's [stop lock, sentinel lock] while it runs

    def start_yielder() -> None:
        import _thread
        count = _thread._count     # threads started here (the yielder included)
        stop = _thread.allocate_lock()
        stop.acquire()
        started = _thread.allocate_lock()
        started.acquire()
        sentinel: List[Any] = []

        def yielder() -> None:
            # Released by CPython once this thread's state is deleted (3.9-3.12).
            sentinel.append(_thread._set_sentinel())  # type: ignore[attr-defined]
            started.release()
            acquire = stop.acquire
            while not acquire(True, YIELD_BUSY if active[0] or count() > 1 else YIELD_IDLE):
                pass

        _thread.start_new_thread(yielder, ())
        started.acquire()
        stoppers[:] = [stop, sentinel[0]]
        mapping["words"][YIELDER] = 1

    def stop_yielder() -> None:
        if stoppers:
            stop, gone = stoppers
            del stoppers[:]
            stop.release()
            gone.acquire()         # its thread state is unlinked: not "another thread"
            mapping["words"][YIELDER] = 0

    def remap() -> None:
        words = mapping.get("words")
        if words is not None:
            words.release()
            mapping["mm"].close()
        size = os.fstat(fd).st_size
        mm = mmap.mmap(fd, size)
        mapping["mm"] = mm
        mapping["words"] = memoryview(mm).cast("q")
        mapping["size"] = size

    def write_out(data: bytes) -> None:
        need = HDR + len(data)
        if need > mapping["size"]:
            size = (max(need, 2 * mapping["size"]) + 4095) & ~4095   # whole pages: cast("q")
            os.ftruncate(fd, size)
            remap()
            mapping["words"][CAP] = size
        mapping["mm"][HDR:need] = data
        mapping["words"][OUTLEN] = len(data)

    def describe(exc: BaseException) -> bytes:
        import traceback
        tb = exc.__traceback__
        if tb is not None and tb.tb_frame.f_code is run.__code__:
            tb = tb.tb_next       # hide this runtime's own frame
        try:
            formatted = "".join(traceback.format_exception(type(exc), exc, tb))
        except BaseException:   # a broken __str__ or similar
            formatted = "%s: <unprintable exception>\n" % type(exc).__qualname__
        try:
            msg = str(exc)
        except BaseException:
            msg = "<unprintable %s object>" % type(exc).__name__
        builtin = ""
        for cls in type(exc).__mro__:
            if (getattr(builtins, cls.__name__, None) is cls and issubclass(cls, Exception)
                    and cls is not Exception):
                builtin = cls.__name__
                break
        cls = type(exc)
        return marshal.dumps((str(getattr(cls, "__qualname__", cls.__name__)),
                              str(getattr(cls, "__module__", "") or ""),
                              msg, formatted, builtin))

    def flush() -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                if stream is not None:
                    stream.flush()
            except BaseException:
                pass

    def run(_probe: object = None) -> None:
        counted = False
        try:
            if mapping["words"][CAP] != mapping["size"]:
                remap()
            words = mapping["words"]
            op = words[OP]
            if op == PREPARE_END:
                # Py_EndInterpreter runs threading._shutdown(), which must run on
                # the sub's "main" thread: make that the calling thread.
                threading._main_thread._ident = threading.get_ident()  # type: ignore[attr-defined]
                flush()
                # Buffers sent from here with send_buffer() and still held elsewhere
                # would dangle once this interpreter's objects are freed.
                held = 0
                for mod in list(sys.modules.values()):
                    if getattr(mod, "_INTERPRETERS_CHANNELS", False) is True:
                        held += mod.outstanding_exports()
                words[THREADS] = held
                if not held:
                    stop_yielder()
                words[STATUS] = OK
                return
            if op == JOIN_THREADS:
                me = threading.current_thread()
                for t in threading.enumerate():
                    if t is not me and not t.daemon and t is not threading.main_thread():
                        t.join()
                words[THREADS] = sum(1 for t in threading.enumerate() if t is not me) - 1
                words[STATUS] = OK
                return
            active[0] += 1
            counted = True
            n = words[SRCLEN]
            src = mapping["mm"][HDR:HDR + n]
            main = sys.modules["__main__"].__dict__
            extra = words[EXTRA]
            if extra:
                names = marshal.loads(mapping["mm"][HDR + n:HDR + n + extra])
                _inject(names, main)
            code = cache.get(src)
            if code is None:
                code = compile(src, "<string>", "exec")
                if n <= _CACHE_SRC_MAX:
                    if len(cache) >= _CACHE_MAX:
                        cache.clear()
                    cache[src] = code
            exec(code, main)
            flush()
            words[STATUS] = OK
        except BaseException as exc:   # SystemExit and KeyboardInterrupt included
            try:
                flush()
                write_out(describe(exc))
                mapping["words"][STATUS] = FAILED
            except BaseException:
                pass
        finally:
            if counted:
                active[0] -= 1

    entry_type = type("_Entry", (), {"__slots__": (), ENTRY_NAME: property(run)})
    probe = entry_type()
    name = next(k for k in vars(entry_type) if k == ENTRY_NAME)   # the dict's own key
    # alive until the caller pins them:
    sys._interpreters_probe = (probe, name)  # type: ignore[attr-defined]
    remap()
    words = mapping["words"]
    words[PROBE] = id(probe)
    words[PROBE_NAME] = id(name)
    if yielder:
        start_yielder()
    words[READY] = MAGIC


def _inject(names: Tuple[str, Dict[str, Any]], ns: Dict[str, Any]) -> None:
    """Bind channel ends passed to run(channels=...): (package name, {name: spec})."""
    import importlib
    package, specs = names
    channels = importlib.import_module(package + "._channels")   # only when used
    for name, spec in specs.items():
        ns[name] = channels.from_spec(spec)
