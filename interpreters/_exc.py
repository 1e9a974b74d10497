"""Exceptions, and the proxy that carries an uncaught exception out of run().

An exception raised in another interpreter is never shared: the runtime in that
interpreter turns it into plain data (type name, module, message, formatted
traceback), and ``rebuild()`` raises a RunFailedError from that data here.
"""

from __future__ import annotations

import builtins
import sys
from types import CodeType, FrameType, TracebackType

# Annotations are strings (postponed); typing is imported for the checker only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import traceback
    from typing import Any, Dict, Iterator, List, Optional, TextIO, Tuple, Type

__all__ = [
    "InterpreterError", "InterpreterNotFoundError", "RunFailedError", "ExceptionInfo",
    "ChannelError", "ChannelNotFoundError", "ChannelClosedError", "ChannelEmptyError",
    "ChannelNotEmptyError", "NotReceivedError", "InterpreterInternalError",
]


class InterpreterError(RuntimeError):
    """An operation on an interpreter failed (it is running, gone, ...)."""


class InterpreterNotFoundError(InterpreterError):
    """The interpreter does not exist (never did, or was destroyed)."""


class InterpreterInternalError(SystemError):
    """A bug in this package: please report it with the message."""


class ChannelError(RuntimeError):
    """A channel operation failed."""


class ChannelNotFoundError(ChannelError, ValueError):
    """No channel has this id (never created, or already released)."""


class ChannelClosedError(ChannelError, EOFError):
    """The channel is closed (EOFError, as the PEP specifies)."""


class ChannelEmptyError(ChannelError):
    """Nothing is waiting in the channel."""


class ChannelNotEmptyError(ChannelError):
    """The channel still holds objects."""


class NotReceivedError(ChannelError):
    """A *_nowait() send found no receiver waiting (RuntimeError, as the PEP says)."""


class ExceptionInfo:
    """Surrogate of an exception raised in another interpreter, and of its traceback.

    PEP 554: "we create a surrogate of the exception and its traceback (see
    traceback.TracebackException)".  It is plain data, made from a report the
    other interpreter writes (nothing of that interpreter is shared), and it
    answers like a ``traceback.TracebackException`` to code that formats errors:

    * ``format(*, chain=True)``: the full traceback text as an iterator of
      strings (each ending in a newline, some holding several lines), the
      ``__cause__``/``__context__`` chain included, exactly as it was formatted
      there; ``print(*, file=None, chain=True)`` prints it;
    * ``format_exception_only()``: the last part, ``"KeyError: 'spam'\n"``
      (with the details of a SyntaxError and any notes);
    * ``exc_type_str`` (CPython 3.13's name; also ``type_display``): the type as
      the traceback names it, qualified by its module unless builtin or
      __main__; ``exc_type_qualname`` and ``exc_type_module`` (also
      ``type_name`` and ``type_module``);
    * ``exc_type``: the class cannot cross interpreters.  For a builtin
      exception type it is that builtin class (``KeyError``); for any other
      type a stand-in class carrying the original's ``__name__``,
      ``__qualname__`` and ``__module__``, derived from the nearest builtin
      exception class of the original (so ``issubclass(info.exc_type,
      LookupError)`` is right), with ``__interpreters_stand_in__ = True``;
    * ``stack``: a ``traceback.StackSummary`` of ``traceback.FrameSummary``
      objects (``filename``, ``lineno``, ``name``, ``line``), innermost last,
      the code of this package's own runtime left out;
    * ``__cause__``, ``__context__``: ExceptionInfo surrogates of the chained
      exceptions, or None; ``__suppress_context__``; ``exceptions``: the
      surrogates of an exception group's members, or None;
    * ``str(info)``: ``str()`` of the original, like TracebackException (also
      ``msg``).

    Also kept: ``formatted`` (``"".join(info.format())``) and ``builtin``
    (the nearest builtin ``Exception`` subclass in the original's MRO, not
    Exception itself, or ``""``).  ``msg`` is ``str()`` of the exception: for a
    SyntaxError it is not TracebackException's ``msg`` (the compiler message).
    Instances compare equal when they describe the same report and pickle.
    """

    __slots__ = ("_full", "_nodes", "_i", "_cache")

    def __init__(self, type_name: str, type_module: str, msg: str, formatted: str,
                 builtin: str = "") -> None:
        # What an ExceptionInfo used to be (five fields): one exception, no frames.
        display = _display(type_name, type_module)
        only = ("%s: %s\n" % (display, msg) if msg else "%s\n" % display,)
        self._full: Tuple[str, ...] = (formatted,)
        self._nodes: Tuple[Any, ...] = (
            (type_name, type_module, msg, builtin, builtin, (), only, (formatted,), -1, -1,
             False, None),)
        self._i = 0
        self._cache: Dict[Any, Any] = {}

    @classmethod
    def _from_report(cls, report: Tuple[Any, ...], index: int = 0) -> ExceptionInfo:
        """Build from the report _sub.py writes: (full chunks, nodes)."""
        self = cls.__new__(cls)
        self._full, self._nodes = report
        self._i = index
        self._cache = {}
        return self

    def _node(self, i: int) -> ExceptionInfo:
        if i < 0:
            return None   # type: ignore[return-value]
        if i == self._i:
            return self
        cached = self._cache.get(i)
        if cached is None:
            cached = self._cache[i] = ExceptionInfo._from_report((self._full, self._nodes), i)
            cached._cache = self._cache     # the whole chain shares one cache
        return cached

    # --- the original type ------------------------------------------------------
    @property
    def type_name(self) -> str:
        """The type's qualified name (``__qualname__``), e.g. ``"Outer.Inner"``."""
        return self._nodes[self._i][0]   # type: ignore[no-any-return]

    exc_type_qualname = type_name

    @property
    def type_module(self) -> str:
        """The type's ``__module__`` (``"builtins"``, ``"__main__"``, ...)."""
        return self._nodes[self._i][1]   # type: ignore[no-any-return]

    exc_type_module = type_module

    @property
    def msg(self) -> str:
        """``str()`` of the exception."""
        return self._nodes[self._i][2]   # type: ignore[no-any-return]

    @property
    def builtin(self) -> str:
        """Name of the nearest builtin Exception subclass in the MRO (not Exception), or ""."""
        return self._nodes[self._i][3]   # type: ignore[no-any-return]

    @property
    def type_display(self) -> str:
        """The type's name, qualified by its module unless builtin or __main__."""
        return _display(self.type_name, self.type_module)

    exc_type_str = type_display

    @property
    def exc_type(self) -> Type[BaseException]:
        """The builtin class, or a stand-in class (see the class docstring)."""
        node = self._nodes[self._i]
        return _exc_type(node[0], node[1], node[4])

    # --- traceback ----------------------------------------------------------------
    @property
    def stack(self) -> traceback.StackSummary:
        """The frames, outermost first, as a ``traceback.StackSummary``."""
        stack = self._cache.get("stack%d" % self._i)
        if stack is None:
            import traceback
            stack = traceback.StackSummary.from_list(
                [_frame_summary(f) for f in self._nodes[self._i][5]])
            self._cache["stack%d" % self._i] = stack
        return stack

    @property
    def __cause__(self) -> Optional[ExceptionInfo]:
        return self._node(self._nodes[self._i][8])

    @property
    def __context__(self) -> Optional[ExceptionInfo]:
        return self._node(self._nodes[self._i][9])

    @property
    def __suppress_context__(self) -> bool:
        return bool(self._nodes[self._i][10])

    @property
    def exceptions(self) -> Optional[List[ExceptionInfo]]:
        """Surrogates of an exception group's members; None for other exceptions."""
        members = self._nodes[self._i][11]
        return None if members is None else [self._node(i) for i in members]

    def format(self, *, chain: bool = True, **kwargs: Any) -> Iterator[str]:
        """Yield the traceback text, like ``TracebackException.format()``.

        Keyword arguments other than *chain* (3.13's ``colorize``) are accepted
        and ignored: the text is the one formatted in the other interpreter.
        """
        if not chain:
            return iter(self._nodes[self._i][7])
        if self._i == 0:
            return iter(self._full)
        return self._format_chain()

    def _format_chain(self) -> Iterator[str]:
        parts = []
        seen = set()
        i = self._i
        while i >= 0 and i not in seen:
            seen.add(i)
            node = self._nodes[i]
            if node[8] >= 0:
                parts.append((_CAUSE_MESSAGE, i))
                i = node[8]
            elif node[9] >= 0 and not node[10]:
                parts.append((_CONTEXT_MESSAGE, i))
                i = node[9]
            else:
                parts.append(("", i))
                i = -1
        for k in range(len(parts) - 1, -1, -1):
            yield from self._nodes[parts[k][1]][7]
            if k:
                yield parts[k - 1][0]

    def format_exception_only(self, **kwargs: Any) -> Iterator[str]:
        """Yield the exception's last line(s), like ``TracebackException.format_exception_only()``.

        Keyword arguments (3.13's ``show_group``, ``colorize``) are accepted and
        ignored.
        """
        return iter(self._nodes[self._i][6])

    def print(self, *, file: Optional[TextIO] = None, chain: bool = True) -> None:
        """Print ``format(chain=chain)`` to *file* (default ``sys.stderr``)."""
        import sys
        out = sys.stderr if file is None else file
        for chunk in self.format(chain=chain):
            print(chunk, file=out, end="")

    @property
    def formatted(self) -> str:
        """The full traceback text, as ``traceback.format_exception`` printed it there."""
        return "".join(self.format())

    def _traceback(self, runtime_file: Optional[str] = None) -> Optional[TracebackType]:
        """The frames as a traceback object of stand-in frames (see _fake_traceback).

        *runtime_file*: leave out the frames of call()'s runtime (named so) and the
        one-line source that called it.
        """
        key = "tb%d:%s" % (self._i, runtime_file)
        if key not in self._cache:
            frames = self._nodes[self._i][5]
            if runtime_file is not None:
                k = 0
                if frames and frames[0][0] == "<string>" and frames[0][2] == "<module>":
                    k = 1
                if k < len(frames) and frames[k][0] == runtime_file:
                    while k < len(frames) and frames[k][0] == runtime_file:
                        k += 1
                    frames = frames[k:]
            self._cache[key] = _fake_traceback(frames)
        return self._cache[key]   # type: ignore[no-any-return]

    # --- comparison, pickling, display ----------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ExceptionInfo):
            return NotImplemented
        return (self._i, self._full, self._nodes) == (other._i, other._full, other._nodes)

    def __hash__(self) -> int:
        return hash((self._i, self._full, self._nodes))

    def __reduce__(self) -> Tuple[Any, ...]:
        return (_exception_info, (self._full, self._nodes, self._i))

    def __str__(self) -> str:
        return self.msg

    def __repr__(self) -> str:
        return "ExceptionInfo(type=%s, msg=%r)" % (self.type_display, self.msg)


def _exception_info(full: Tuple[str, ...], nodes: Tuple[Any, ...], index: int) -> ExceptionInfo:
    return ExceptionInfo._from_report((full, nodes), index)


_CAUSE_MESSAGE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT_MESSAGE = "\nDuring handling of the above exception, another exception occurred:\n\n"


def _display(name: str, module: str) -> str:
    if module in ("builtins", "__main__", ""):
        return name
    return "%s.%s" % (module, name)


_stand_ins: Dict[Tuple[str, str, str], Type[BaseException]] = {}


def _exc_type(name: str, module: str, base_name: str) -> Type[BaseException]:
    if module == "builtins":
        cls = getattr(builtins, name, None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            return cls
    key = (name, module, base_name)
    cls = _stand_ins.get(key)
    if cls is None:
        base = getattr(builtins, base_name, None) if base_name else None
        if not (isinstance(base, type) and issubclass(base, BaseException)):
            base = Exception
        try:
            cls = type(name.rpartition(".")[2] or name, (base,), {
                "__module__": module, "__qualname__": name,
                "__doc__": "Stand-in for %s, raised in another interpreter."
                           % _display(name, module),
                "__interpreters_stand_in__": True})
        except TypeError:        # a base that cannot be subclassed (none today)
            cls = type(name.rpartition(".")[2] or name, (Exception,), {
                "__module__": module, "__qualname__": name, "__interpreters_stand_in__": True})
        if len(_stand_ins) >= 256:
            _stand_ins.clear()
        _stand_ins[key] = cls
    return cls


def _frame_summary(frame: Tuple[Any, ...]) -> traceback.FrameSummary:
    import traceback
    filename, lineno, name, text, end_lineno, colno, end_colno = frame
    if sys.version_info >= (3, 11):
        return traceback.FrameSummary(filename, lineno, name, lookup_line=False, line=text,
                                      end_lineno=end_lineno, colno=colno,
                                      end_colno=end_colno)
    return traceback.FrameSummary(filename, lineno, name, lookup_line=False, line=text)


# --- stand-in frames ------------------------------------------------------------------
# A traceback object can only hold real frames.  To show where the code in the
# other interpreter was, each of its frames gets a stand-in here: the frame of a
# one-line code object renamed to that frame's file and function, run once (it
# raises at once) inside a generator (a suspended generator's frame keeps no
# f_back, so the stand-in does not keep this thread's stack alive on 3.8-3.10).
# tb_lineno carries the line number; the source line shown is read from the file,
# as for any frame.  On 3.11+ the code's location table has no columns, so no
# ^^^ markers are drawn under a line they do not belong to.

_PYVER = sys.version_info[:2]
_template: Optional[CodeType] = None
_NO_COLUMNS = 13     # PY_CODE_LOCATION_INFO_NO_COLUMNS (Objects/locations.md, 3.11+)


def _stand_in_code(filename: str, name: str, lineno: int) -> CodeType:
    global _template
    template = _template
    if template is None:
        template = _template = compile("raise __interpreters_exc__", "<remote>", "exec")
    if sys.version_info >= (3, 11):
        units = len(template.co_code) // 2
        table = bytearray()
        while units > 0:
            n = min(units, 8)
            table += bytes((0x80 | (_NO_COLUMNS << 3) | (n - 1), 0))   # line delta 0
            units -= n
        return template.replace(co_filename=filename, co_name=name, co_qualname=name,
                                co_firstlineno=max(lineno, 1), co_linetable=bytes(table))
    return template.replace(co_filename=filename, co_name=name, co_firstlineno=max(lineno, 1))


class _StandIn(Exception):
    pass


def _stand_in_frames(code: CodeType) -> Iterator[FrameType]:
    try:
        exec(code, {"__interpreters_exc__": _StandIn, "__name__": "interpreters._remote"})
    except _StandIn as exc:
        tb = exc.__traceback__
        del exc
        assert tb is not None and tb.tb_next is not None
        yield tb.tb_next.tb_frame


def _fake_traceback(frames: Tuple[Any, ...]) -> Optional[TracebackType]:
    """A traceback of stand-in frames for *frames* (from the report), outermost first."""
    tb = None
    lasti = 0 if _PYVER >= (3, 11) else -1
    for frame in reversed(frames):
        filename, lineno, name = frame[0], frame[1], frame[2]
        lineno = lineno if isinstance(lineno, int) else 0
        try:
            stand_in = next(_stand_in_frames(_stand_in_code(filename, name, lineno)))
            tb = TracebackType(tb, stand_in, lasti, lineno)
        except Exception:       # an odd name or line: leave that frame out
            continue
    return tb


class RunFailedError(InterpreterError):
    """An uncaught exception ended code run in another interpreter.

    ``excinfo`` is the ExceptionInfo surrogate of the original exception (see
    there).  Raised by run() and call(), the error's traceback continues with
    the frames of the code in the other interpreter (stand-in frames: file,
    line and function as they were there), so a printed traceback shows where
    that code was; the original's ``__cause__`` / ``__context__`` come along as
    RunFailedErrors of their own (a ``__context__`` is replaced by the
    exception being handled here, if run() was called inside an ``except``
    block: ``excinfo.__context__`` keeps it).  When the original is (or derives
    from) a builtin Exception type, the raised error is also an instance of
    that builtin type, so ``except KeyError:`` catches a KeyError raised in the
    other interpreter.  BaseException-only types (SystemExit,
    KeyboardInterrupt, GeneratorExit) are never mixed in: they cannot end this
    interpreter.  ``str(err)`` is ``"KeyError: 'spam'"``.
    """

    excinfo: Optional[ExceptionInfo] = None

    def __str__(self) -> str:
        info = self.excinfo
        if info is None:
            return super().__str__()
        return "%s: %s" % (info.type_display, info.msg) if info.msg else info.type_display

    def __repr__(self) -> str:
        if self.excinfo is None:
            return super().__repr__()
        return "%s(%r)" % (type(self).__name__, str(self))

    def __reduce__(self) -> Any:
        if self.excinfo is None:
            return super().__reduce__()
        return (rebuild, (self.excinfo,))


# Shown as interpreters.X in tracebacks and reprs (the names the package exports;
# a vendored copy's own package name, e.g. yourpkg._vendor.interpreters.X, so that
# pickle finds the class of this copy by that name).
for _cls in (InterpreterError, InterpreterNotFoundError, InterpreterInternalError,
             ChannelError, ChannelNotFoundError, ChannelClosedError, ChannelEmptyError,
             ChannelNotEmptyError, NotReceivedError, RunFailedError, ExceptionInfo):
    _cls.__module__ = __name__.rpartition(".")[0]
del _cls

_proxy_classes: Dict[str, Type[RunFailedError]] = {}


def _proxy_class(builtin_name: str) -> Type[RunFailedError]:
    try:
        return _proxy_classes[builtin_name]
    except KeyError:
        pass
    cls: Type[RunFailedError] = RunFailedError
    base = getattr(builtins, builtin_name, None) if builtin_name else None
    if (isinstance(base, type) and issubclass(base, Exception)
            and not issubclass(base, RunFailedError)):
        try:
            candidate: Type[RunFailedError] = type("RunFailedError", (RunFailedError, base), {
                "__module__": RunFailedError.__module__,
                "__doc__": "RunFailedError that is also a %s." % builtin_name,
            })
            candidate("probe")   # some layouts need more arguments: fall back then
            cls = candidate
        except TypeError:
            pass
    _proxy_classes[builtin_name] = cls
    return cls


def _one(info: ExceptionInfo) -> RunFailedError:
    err = _proxy_class(info.builtin)(str(info.type_display + (": " + info.msg if info.msg
                                                                 else "")))
    err.excinfo = info
    return err


def rebuild(info: ExceptionInfo) -> RunFailedError:
    """Return the RunFailedError to raise for ExceptionInfo *info*.

    Its ``__cause__``/``__context__`` are RunFailedErrors for the original's, and
    every one of them carries a traceback of stand-in frames (see _fake_traceback).
    """
    made: Dict[int, RunFailedError] = {}
    top = _one(info)
    made[id(info)] = top
    todo = [(info, top)]
    while todo:
        i, err = todo.pop()
        try:
            err.__traceback__ = i._traceback()
        except Exception:
            pass
        for attr in ("__cause__", "__context__"):
            chained = getattr(i, attr)
            if chained is None:
                continue
            other = made.get(id(chained))
            if other is None:
                other = made[id(chained)] = _one(chained)
                todo.append((chained, other))
            setattr(err, attr, other)
        err.__suppress_context__ = i.__suppress_context__
    return top


def relocated(exc: BaseException, runtime_file: Optional[str] = None) -> BaseException:
    """Give *exc*, about to be raised by a public function, its user-facing traceback.

    A RunFailedError from run()/call() (and a KeyboardInterrupt that carries the
    report of code stopped by Ctrl-C there) gets the stand-in frames of the code
    in the other interpreter in place of this package's own frames, so raising
    it from the public function shows: the caller, that function, the code
    there.  *runtime_file*: call()'s runtime, whose frames are left out.  A
    KeyboardInterrupt without a report loses this package's frames, and a
    chained KeyboardInterrupt (the same Ctrl-C, seen twice) is not shown.
    Anything else is returned unchanged.
    """
    if isinstance(exc, RunFailedError):
        info = exc.excinfo
        if info is None:
            return exc
        return exc.with_traceback(info._traceback(runtime_file))
    if isinstance(exc, KeyboardInterrupt):
        info = getattr(exc, "_interpreters_excinfo", None)
        if isinstance(exc.__context__, KeyboardInterrupt):
            exc.__suppress_context__ = True
        return exc.with_traceback(
            info._traceback(runtime_file) if isinstance(info, ExceptionInfo) else None)
    return exc
