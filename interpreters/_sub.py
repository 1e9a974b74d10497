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
   10 CAPTURE  RUN_CAPTURE: which streams to capture (1 stdout, 2 stderr)
   11 CAPLEN   reply to RUN_CAPTURE: length of the marshalled output, stored
               at HDR (OK) or after the exception info (FAILED); 0 if none

RUN_CAPTURE is RUN with ``sys.stdout``/``sys.stderr`` replaced, for that run,
by streams that keep what is written (also by other threads of this
interpreter) as [(1 or 2, text), ...]; the caller writes it to its own
``sys.stdout``/``sys.stderr`` when the run is over.  Written after the run,
the interpreter's own streams get it again (file descriptors 1 and 2).

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
(STATUS, SRCLEN, OUTLEN, CAP, OP, READY, EXTRA, THREADS, PROBE, PROBE_NAME, CAPTURE,
 CAPLEN) = range(12)
PENDING, OK, FAILED = -1, 0, 1
RUN, PREPARE_END, JOIN_THREADS, RUN_CAPTURE = 0, 1, 2, 3
MAGIC = 0x49505335  # "IPS5"
_CACHE_MAX = 256          # compiled-code cache entries
_CACHE_SRC_MAX = 1 << 16  # only sources up to this size are cached


ENTRY_NAME = "__interpreters_run__"


def _install(fd: int, interp_id: int, path: Optional[List[str]]) -> None:
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
            if op == RUN_CAPTURE:
                run_capture(words)
                return
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

    entry_type = type("_Entry", (), {"__slots__": (), ENTRY_NAME: property(run)})
    probe = entry_type()
    name = next(k for k in vars(entry_type) if k == ENTRY_NAME)   # the dict's own key
    # alive until the caller pins them:
    sys._interpreters_probe = (probe, name)  # type: ignore[attr-defined]
    remap()
    words = mapping["words"]
    words[PROBE] = id(probe)
    words[PROBE_NAME] = id(name)
    words[READY] = MAGIC


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
