"""Exceptions, and the proxy that carries an uncaught exception out of run().

An exception raised in another interpreter is never shared: the runtime in that
interpreter turns it into plain data (type name, module, message, formatted
traceback), and ``rebuild()`` raises a RunFailedError from that data here.
"""

import builtins
from typing import Dict, NamedTuple, Optional, Type

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


class ExceptionInfo(NamedTuple):
    """Plain-data description of an exception raised in another interpreter.

    Fields: ``type_name`` (qualified name), ``type_module``, ``msg`` (``str()``
    of the exception), ``formatted`` (the full traceback text, as
    ``traceback.format_exception`` printed it there), ``builtin`` (name of the
    nearest builtin ``Exception`` class in its MRO, or ``""``).
    """

    type_name: str
    type_module: str
    msg: str
    formatted: str
    builtin: str = ""

    @property
    def type_display(self) -> str:
        """The type's name, qualified by its module unless builtin or __main__."""
        if self.type_module in ("builtins", "__main__", ""):
            return self.type_name
        return "%s.%s" % (self.type_module, self.type_name)

    def __repr__(self) -> str:
        return "ExceptionInfo(type=%s, msg=%r)" % (self.type_display, self.msg)


class RemoteTraceback(Exception):
    """Carries the other interpreter's formatted traceback as ``__cause__``."""

    def __init__(self, formatted: str) -> None:
        super().__init__(formatted)
        self.formatted = formatted

    def __str__(self) -> str:
        return "\n\n" + self.formatted.rstrip("\n")


class RunFailedError(InterpreterError):
    """An uncaught exception ended code run in another interpreter.

    ``excinfo`` is an ExceptionInfo proxy of the original exception; its
    traceback is chained as ``__cause__``.  When the original is (or derives
    from) a builtin Exception type, the raised error is also an instance of that
    builtin type, so ``except KeyError:`` catches a KeyError raised in the other
    interpreter.  BaseException-only types (SystemExit, KeyboardInterrupt,
    GeneratorExit) are never mixed in: they cannot end this interpreter.
    """

    excinfo: Optional[ExceptionInfo] = None

    def __str__(self) -> str:
        info = self.excinfo
        if info is None:
            return super().__str__()
        return "%s: %s" % (info.type_display, info.msg) if info.msg else info.type_display


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


def rebuild(info: ExceptionInfo) -> RunFailedError:
    """Return the RunFailedError to raise for ExceptionInfo *info*."""
    err = _proxy_class(info.builtin)(info.msg)
    err.excinfo = info
    err.__cause__ = RemoteTraceback(info.formatted)
    return err
