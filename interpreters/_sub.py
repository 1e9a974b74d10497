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
    4 OP       what to do: RUN, RUN_CAPTURE, JOIN_THREADS, PREPARE_END, CANCEL_END
    5 READY    MAGIC once the runtime is installed
    6 EXTRA    length of marshalled injected names, stored after the source
    7 THREADS  reply of JOIN_THREADS and PREPARE_END: non-daemon threads still alive
    8 PROBE    address of the entry probe object      9 PROBE_NAME  address of
               its attribute name (see below)
   10 HELD     reply of PREPARE_END: buffers exported from here still held by receivers
   11 ARG      argument of JOIN_THREADS: 1 to run the threading atexit hooks first,
               plus 2 * the longest wait in microseconds (0: until all are done)
   12 DAEMONS  reply of PREPARE_END: daemon threads still alive
   13 YIELDER  1 while the yielder thread (below) runs here, else 0
   14 CAPTURE  RUN_CAPTURE: which streams to capture (1 stdout, 2 stderr)
   15 CAPLEN   reply to RUN_CAPTURE: length of the marshalled output, stored
               at HDR (OK) or after the exception info (FAILED); 0 if none

Ending an interpreter (``_interp.destroy()``) goes through these operations, as
CPython's own shutdown does (threading._shutdown(), then atexit, then the
modules): JOIN_THREADS, repeated, runs the threading atexit hooks
(``threading._register_atexit``, e.g. concurrent.futures' executors) once and
then waits for the non-daemon threads; PREPARE_END refuses new threads from then
on (as CPython 3.12+ does once an interpreter is finalizing: atexit callbacks
and ``__del__`` methods that start one get RuntimeError) and reports what
still blocks the end; CANCEL_END undoes both if the end is called off.

RUN_CAPTURE is RUN with ``sys.stdout``/``sys.stderr`` replaced, for that run,
by streams that keep what is written (also by other threads of this
interpreter) as [(1 or 2, text), ...]; the caller writes it to its own
``sys.stdout``/``sys.stderr`` when the run is over.  Written after the run,
the interpreter's own streams get it again (file descriptors 1 and 2).

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
it when the end goes ahead (nothing else blocks it: destroy needs this
interpreter's threads gone), and CANCEL_END starts it again.

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

HDR = 128                 # 16 header words (0-15), all in use: data starts here
STATUS, SRCLEN, OUTLEN, CAP, OP, READY, EXTRA, THREADS, PROBE, PROBE_NAME = range(10)
HELD, ARG, DAEMONS = 10, 11, 12
YIELDER, CAPTURE, CAPLEN = 13, 14, 15
PENDING, OK, FAILED = -1, 0, 1
RUN, PREPARE_END, JOIN_THREADS, CANCEL_END, RUN_CAPTURE = 0, 1, 2, 3, 4
MAGIC = 0x49505335  # "IPS5"
_CACHE_MAX = 256          # compiled-code cache entries
_CACHE_SRC_MAX = 1 << 16  # only sources up to this size are cached
YIELD_BUSY = 0.005        # the yielder's period while code runs here (seconds)
YIELD_IDLE = 0.1          # ... and while nothing does


ENTRY_NAME = "__interpreters_run__"


def _install(fd: int, interp_id: int, path: Optional[List[str]], yielder: bool = False) -> None:
    import marshal
    import mmap
    import os
    import sys
    import threading   # DESIGN.md fact 5: import now, on the creating thread
    import time

    if path is not None:
        sys.path[:] = path
    _guard_fork(interp_id)

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
            sentinel.append(_thread.get_native_id())
            started.release()
            acquire = stop.acquire
            while not acquire(True, YIELD_BUSY if active[0] or count() > 1 else YIELD_IDLE):
                pass

        _thread.start_new_thread(yielder, ())
        started.acquire()
        stoppers[:] = [stop, sentinel[0], sentinel[1]]
        mapping["words"][YIELDER] = 1

    def stop_yielder() -> None:
        if stoppers:
            stop, gone, tid = stoppers
            del stoppers[:]
            stop.release()
            gone.acquire()         # CPython is deleting its thread state
            # Wait for its OS thread to end: until then CPython may still be
            # unlinking and freeing that thread state (a caller walking the
            # interpreter's thread states could read freed memory) and reading
            # this interpreter's GIL.  YIELDER stays 1 if it does not end.
            task = "/proc/self/task/%d" % tid
            deadline = time.monotonic() + 5.0
            while os.path.exists(task):
                if time.monotonic() > deadline:
                    return
                time.sleep(0.0005)
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
        tb = exc.__traceback__
        if tb is not None and tb.tb_frame.f_code is run.__code__:
            tb = tb.tb_next       # hide this runtime's own frame
        try:
            return marshal.dumps(_report(exc, tb))
        except BaseException:     # a broken exception or class: say what can be said
            return marshal.dumps(_fallback_report(exc, tb))

    def flush() -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                if stream is not None:
                    stream.flush()
            except BaseException:
                pass

    def write_capture(at: int, data: bytes) -> None:
        need = at + len(data)
        if need > mapping["size"]:
            size = (max(need, 2 * mapping["size"]) + 4095) & ~4095   # whole pages: cast("q")
            os.ftruncate(fd, size)
            remap()
            mapping["words"][CAP] = size
        mapping["mm"][at:need] = data
        mapping["words"][CAPLEN] = len(data)

    captured_type: List[Any] = []     # the stream class, made on first use

    def capture_begin(mask: int) -> Tuple[List[Tuple[int, str]], Any, List[Any]]:
        if not captured_type:
            captured_type.append(_captured_stream_type())
        records: List[Tuple[int, str]] = []
        lock = threading.Lock()       # this interpreter's own: writers are its threads
        streams = []
        for no, name in ((1, "stdout"), (2, "stderr")):
            if mask & no:
                old = getattr(sys, name)
                new = captured_type[0](records, lock, no, old)
                setattr(sys, name, new)
                streams.append((name, old, new))
        return records, lock, streams

    def capture_end(state: Tuple[List[Tuple[int, str]], Any, List[Any]]) -> None:
        records, lock, streams = state
        with lock:
            for name, old, new in streams:
                new._records = None          # from now on: the interpreter's own stream
                if getattr(sys, name) is new:
                    setattr(sys, name, old)
            merged: List[Tuple[int, str]] = []
            for no, text in records:         # consecutive writes to one stream: one write
                if merged and merged[-1][0] == no:
                    merged[-1] = (no, merged[-1][1] + text)
                else:
                    merged.append((no, text))
            del records[:]
        words = mapping["words"]
        if not merged:
            words[CAPLEN] = 0
            return
        write_capture(HDR + (words[OUTLEN] if words[STATUS] == FAILED else 0),
                      marshal.dumps(merged))

    def run_capture(words: memoryview) -> None:
        """RUN_CAPTURE: run() with sys.stdout/sys.stderr captured."""
        words[OP] = RUN
        try:
            state = capture_begin(words[CAPTURE])
        except BaseException:
            words[CAPLEN] = 0
            state = None        # run it uncaptured rather than not at all
        run()                   # never raises
        if state is not None:
            try:
                capture_end(state)
            except BaseException:
                mapping["words"][CAPLEN] = 0

    def run(_probe: object = None) -> None:
        counted = False
        try:
            if mapping["words"][CAP] != mapping["size"]:
                remap()
            words = mapping["words"]
            op = words[OP]
            if op == RUN_CAPTURE:
                run_capture(words)
                return
            if op != RUN:
                ending(op, words)
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
            report(exc)
        finally:
            if counted:
                active[0] -= 1

    def report(exc: BaseException) -> None:
        # Never leaves STATUS at PENDING: the caller would find the runtime damaged.
        try:
            flush()
            data = describe(exc)
        except BaseException:
            data = b""
        for attempt in (data, _UNDESCRIBED):
            try:
                if attempt:
                    write_out(attempt)
                    mapping["words"][STATUS] = FAILED
                    return
            except BaseException:
                pass

    # --- ending the interpreter (see the module docstring) ---------------------
    import _thread
    modules = {"_thread": _thread, "threading": threading}

    def refuse_thread(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("can't create new thread at interpreter shutdown "
                           "(interpreter %d is being destroyed)" % interp_id)

    def guard_threads(on: bool) -> None:
        if on and "unguarded" not in mapping:
            saved = {}
            for mod_name, attr in _THREAD_STARTERS:
                mod = modules[mod_name]
                if hasattr(mod, attr):
                    saved[(mod_name, attr)] = getattr(mod, attr)
                    setattr(mod, attr, refuse_thread)
            mapping["unguarded"] = saved
        elif not on:
            for (mod_name, attr), fn in mapping.pop("unguarded", {}).items():
                setattr(modules[mod_name], attr, fn)

    def alive() -> Tuple[List[Any], int]:
        """The non-daemon threads alive besides the caller, and the daemon count."""
        me = threading.current_thread()
        main = threading.main_thread()
        waited, daemons = [], 0
        for t in threading.enumerate():
            # _DummyThread: a thread that entered with run(); its tstate is gone.
            if t is me or t is main or isinstance(t, threading._DummyThread):
                continue
            if t.daemon:
                daemons += 1
            else:
                waited.append(t)
        return waited, daemons

    def run_threading_hooks() -> None:
        # What threading._shutdown() does before it joins (3.9+): e.g.
        # concurrent.futures makes its idle workers exit.  The hooks are taken
        # off the list (Py_EndInterpreter would run them again) and kept, to be
        # put back if the end is called off.
        hooks = getattr(threading, "_threading_atexits", None)
        if hooks is None:
            # 3.8: concurrent.futures' workers are daemon threads, stopped by an
            # atexit callback; run that one here, so that they are not in the way.
            futures = sys.modules.get("concurrent.futures.thread")
            stop = getattr(futures, "_python_exit", None)
            if stop is None:
                return
            import atexit
            atexit.unregister(stop)
            mapping["atexit"] = stop
            hooks = [stop]
        taken = list(hooks)
        del hooks[:]
        mapping.setdefault("hooks", []).extend(taken)
        for hook in reversed(taken):
            try:
                hook()
            except BaseException:
                _print_ignored("Exception ignored in a threading atexit hook of interpreter "
                               "%d:" % interp_id)

    def ending(op: int, words: Any) -> None:
        if op == JOIN_THREADS:
            arg = words[ARG]
            if arg & 1:
                run_threading_hooks()
            timeout = (arg >> 1) / 1e6
            deadline = time.monotonic() + timeout
            for t in alive()[0]:
                if timeout:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    t.join(left)
                else:
                    t.join()
            words[THREADS] = len(alive()[0])
        elif op == PREPARE_END:
            # Py_EndInterpreter runs threading._shutdown(), which must run on
            # the sub's "main" thread: make that the calling thread.
            threading._main_thread._ident = threading.get_ident()  # type: ignore[attr-defined]
            flush()
            guard_threads(True)
            waited, daemons = alive()
            # Buffers sent from here with send_buffer() and still held elsewhere
            # would dangle once this interpreter's objects are freed.
            held = 0
            for mod in list(sys.modules.values()):
                if getattr(mod, "_INTERPRETERS_CHANNELS", False) is True:
                    held += mod.outstanding_exports()
            words[THREADS] = len(waited)
            words[DAEMONS] = daemons
            words[HELD] = held
            if waited or daemons or held:
                guard_threads(False)
            else:
                # The end goes ahead: the yielder must be gone (CANCEL_END restarts it).
                if stoppers:
                    stop_yielder()
                    mapping["yielder_stopped"] = True
                # 3.13: current_thread() above may have left this thread a
                # _DummyThread marker whose __del__, run after threading's globals
                # are cleared at the end, prints an ignored TypeError: drop it now.
                info = getattr(threading, "_thread_local_info", None)
                if info is not None:
                    vars(info).pop("_track_dummy_thread_ref", None)
        elif op == CANCEL_END:
            guard_threads(False)
            taken = mapping.pop("hooks", [])
            hooks = getattr(threading, "_threading_atexits", None)
            if hooks is not None:
                hooks[:0] = taken
            if "atexit" in mapping:
                import atexit
                atexit.register(mapping.pop("atexit"))
            if mapping.pop("yielder_stopped", False) and not stoppers:
                start_yielder()

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


# --- the report of an uncaught exception (read by _exc.ExceptionInfo) -------------
# marshal data, built with the traceback module (imported only when an exception
# happened): (full, nodes), where *full* is the chunks of
# TracebackException.format() and *nodes* describes the exception (node 0), its
# __cause__/__context__ chain and the members of exception groups:
#   (qualname, module, str(exc), nearest builtin Exception type below Exception or "",
#    nearest builtin BaseException type, frames, format_exception_only() chunks,
#    format(chain=False) chunks, cause index, context index (-1: none),
#    __suppress_context__, group member indexes or None)
# with frames (filename, lineno, name, source text, end_lineno, colno, end_colno).

def _exact_str(value: object) -> str:
    text = value if type(value) is str else str(value)
    return str.__str__(text)           # an exact str (marshal takes no subclass)


def _type_fields(cls: type) -> Tuple[str, str, str, str]:
    import builtins
    name = _type_name(cls)    # read past a metaclass whose attributes raise
    try:
        module = vars(type)["__module__"].__get__(cls)
        module = "" if module is None else _exact_str(module)
    except BaseException:
        module = ""
    builtin = base = ""
    try:
        for c in vars(type)["__mro__"].__get__(cls):
            if getattr(builtins, _type_name(c), None) is c and issubclass(c, BaseException):
                if not base:
                    base = _type_name(c)
                if issubclass(c, Exception) and c is not Exception:
                    builtin = _type_name(c)
                    break
    except BaseException:
        pass
    return name, module, builtin, base


def _message(exc: BaseException) -> str:
    try:
        return _exact_str(exc)
    except BaseException:
        return "<unprintable %s object>" % type(exc).__name__


def _frames(stack: Any) -> Tuple[Any, ...]:
    out = []
    for fs in stack:
        fs.line                                  # loads the source text
        text = getattr(fs, "_lines", None)       # 3.13: every line of the range
        if text is None:
            text = getattr(fs, "_line", None)    # 3.8-3.12: the line, unstripped
        out.append((_exact_str(fs.filename), fs.lineno, _exact_str(fs.name),
                    None if text is None else _exact_str(text),
                    getattr(fs, "end_lineno", None), getattr(fs, "colno", None),
                    getattr(fs, "end_colno", None)))
    return tuple(out)


def _chunks(lines: Any) -> Tuple[str, ...]:
    return tuple(_exact_str(line) for line in lines)


def _report(exc: BaseException, tb: Any) -> Tuple[Any, ...]:
    import traceback
    te = traceback.TracebackException(type(exc), exc, tb)
    full = _chunks(te.format())
    # Walk the TracebackException graph and the exceptions side by side (the
    # former has the frames and text, the latter the types).
    order = [(te, exc)]
    index = {id(te): 0}

    def ref(t: Any, e: Any) -> int:
        if t is None or e is None:
            return -1
        k = index.get(id(t))
        if k is None:
            k = index[id(t)] = len(order)
            order.append((t, e))
        return k

    nodes = []
    i = 0
    while i < len(order):
        t, e = order[i]
        i += 1
        cause = ref(t.__cause__, e.__cause__)
        context = ref(t.__context__, e.__context__)
        members = getattr(t, "exceptions", None)
        group = (None if members is None
                 else tuple(ref(m, x) for m, x in zip(members, getattr(e, "exceptions"))))
        name, module, builtin, base = _type_fields(type(e))
        nodes.append((name, module, _message(e), builtin, base, _frames(t.stack),
                      _chunks(t.format_exception_only()), _chunks(t.format(chain=False)),
                      cause, context, bool(t.__suppress_context__), group))
    return full, tuple(nodes)


def _fallback_report(exc: BaseException, tb: Any) -> Tuple[Any, ...]:
    name, module, builtin, base = _type_fields(type(exc))
    msg = _message(exc)
    try:
        import traceback
        full = _chunks(traceback.format_exception(type(exc), exc, tb))
    except BaseException:
        full = ("%s: <unprintable exception>\n" % name,)
    only = ("%s: %s\n" % (name, msg),)
    return full, ((name, module, msg, builtin, base, (), only, full, -1, -1, False, None),)


def _captured_stream_type() -> Any:
    """The class of the streams that stand in for sys.stdout/sys.stderr in RUN_CAPTURE."""
    import io

    class CapturedOutput(io.TextIOBase):
        """Keeps what is written while run() waits; afterwards writes to *fallback*."""

        def __init__(self, records: Optional[List[Tuple[int, str]]], lock: Any, no: int,
                     fallback: Any) -> None:
            self._records = records
            self._lock = lock
            self._no = no
            self._fallback = fallback

        @property
        def encoding(self) -> str:  # type: ignore[override]
            return str(getattr(self._fallback, "encoding", None) or "utf-8")

        @property
        def errors(self) -> Optional[str]:  # type: ignore[override]
            return getattr(self._fallback, "errors", None)

        def writable(self) -> bool:
            return True

        def write(self, s: str) -> int:
            if not isinstance(s, str):
                raise TypeError("write() argument must be str, not %s" % type(s).__name__)
            with self._lock:
                records = self._records
                if records is not None:
                    records.append((self._no, s))
                    return len(s)
            fallback = self._fallback      # run() is over: where output went before
            if fallback is None:
                return len(s)
            return int(fallback.write(s))

        def flush(self) -> None:
            if self._records is None and self._fallback is not None:
                self._fallback.flush()

        @property
        def buffer(self) -> Any:
            """Bytes written here are decoded (this stream's encoding) and kept in order."""
            raw = self.__dict__.get("_buffer")
            if raw is None:
                raw = self.__dict__["_buffer"] = CapturedBytes(self)
            return raw

    class CapturedBytes(io.BufferedIOBase):
        """``sys.stdout.buffer`` of a CapturedOutput."""

        def __init__(self, text: CapturedOutput) -> None:
            import codecs
            self._text = text
            self._decoder = codecs.getincrementaldecoder(text.encoding)("replace")

        def writable(self) -> bool:
            return True

        def write(self, b: Any) -> int:
            data = bytes(memoryview(b))
            text = self._text
            with text._lock:
                records = text._records
                if records is not None:
                    s = self._decoder.decode(data)
                    if s:
                        records.append((text._no, s))
                    return len(data)
            fallback = getattr(text._fallback, "buffer", None)
            if fallback is None:
                return len(data)
            return int(fallback.write(data))

        def flush(self) -> None:
            if self._text._records is None:
                fallback = getattr(self._text._fallback, "buffer", None)
                if fallback is not None:
                    fallback.flush()

    return CapturedOutput


def _inject(names: Tuple[str, Dict[str, Any]], ns: Dict[str, Any]) -> None:
    """Bind channel ends passed to run(channels=...): (package name, {name: spec})."""
    import importlib
    package, specs = names
    channels = importlib.import_module(package + "._channels")   # only when used
    for name, spec in specs.items():
        ns[name] = channels.from_spec(spec)


# What starts a thread, in each module that binds it (3.13: start_joinable_thread).
_THREAD_STARTERS = (("_thread", "start_new_thread"), ("_thread", "start_new"),
                    ("_thread", "start_joinable_thread"), ("threading", "_start_new_thread"),
                    ("threading", "_start_joinable_thread"))

# Sent when even a fallback description failed (e.g. out of memory).
_UNDESCRIBED = __import__("marshal").dumps(
    ("<unknown>", "", "<the exception could not be described>", "", ""))


def _type_name(cls: Any) -> str:
    """cls.__qualname__, read past any metaclass; else its __name__; else '<unknown>'."""
    for key in ("__qualname__", "__name__"):
        try:
            return _exact_str(vars(type)[key].__get__(cls))
        except BaseException:
            pass
    return "<unknown>"


def _print_ignored(header: str) -> None:
    """Print the exception being handled as CPython prints one it ignores."""
    import sys
    import traceback
    try:
        print(header, file=sys.stderr)
        traceback.print_exc()
    except BaseException:
        pass


def _guard_fork(interp_id: int) -> None:
    """Refuse os.fork() here, as CPython 3.8 and isolated interpreters do.

    CPython 3.9+ lets a legacy subinterpreter fork, and the child then dies of
    "Fatal Python error: _PyInterpreterState_DeleteExceptMain: not main
    interpreter".  os.forkpty() and subprocess's preexec_fn are refused in
    subinterpreters by CPython itself.
    """
    import os
    import posix

    original = posix.fork

    def fork() -> int:
        raise RuntimeError(
            "fork not supported for subinterpreters: os.fork() was called in "
            "interpreter %d, and only the main interpreter may fork (the child process "
            "would die of a fatal error); start processes with subprocess instead"
            % interp_id)
    fork.__doc__ = original.__doc__
    fork.__wrapped__ = original   # type: ignore[attr-defined]
    os.fork = posix.fork = fork
