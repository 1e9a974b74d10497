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
STATUS, SRCLEN, OUTLEN, CAP, OP, READY, EXTRA, THREADS, PROBE, PROBE_NAME = range(10)
PENDING, OK, FAILED = -1, 0, 1
RUN, PREPARE_END, JOIN_THREADS = 0, 1, 2
MAGIC = 0x49505335  # "IPS5"
_CACHE_MAX = 256          # compiled-code cache entries
_CACHE_SRC_MAX = 1 << 16  # only sources up to this size are cached


ENTRY_NAME = "__interpreters_run__"


def _install(fd: int, interp_id: int, path: Optional[List[str]]) -> None:
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
    try:
        name = _exact_str(cls.__qualname__)
    except BaseException:     # a __qualname__ that raises or is not a str
        try:
            name = _exact_str(cls.__name__)
        except BaseException:
            name = "<unknown>"
    try:
        module = cls.__module__
        module = "" if module is None else _exact_str(module)
    except BaseException:
        module = ""
    builtin = base = ""
    try:
        for c in cls.__mro__:
            if getattr(builtins, c.__name__, None) is c and issubclass(c, BaseException):
                if not base:
                    base = c.__name__
                if issubclass(c, Exception) and c is not Exception:
                    builtin = c.__name__
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


def _inject(names: Tuple[str, Dict[str, Any]], ns: Dict[str, Any]) -> None:
    """Bind channel ends passed to run(channels=...): (package name, {name: spec})."""
    import importlib
    package, specs = names
    channels = importlib.import_module(package + "._channels")   # only when used
    for name, spec in specs.items():
        ns[name] = channels.from_spec(spec)
