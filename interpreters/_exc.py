"""Exceptions, and the proxy that carries an uncaught exception out of run().

An exception raised in another interpreter is never shared: the runtime in that
interpreter turns it into plain data (type name, module, message, formatted
traceback), and ``rebuild()`` raises a RunFailedError from that data here.
"""

import builtins

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


class ExceptionInfo(tuple):
    """Plain-data description of an exception raised in another interpreter.

    Attributes: ``type_name`` (qualified name), ``type_module``, ``msg`` (``str()``
    of the exception), ``formatted`` (the full traceback text, as
    ``traceback.format_exception`` printed it there), ``builtin`` (name of the
    nearest builtin ``Exception`` class in its MRO, or ``""``).
    """

    __slots__ = ()
    _fields = ("type_name", "type_module", "msg", "formatted", "builtin")

    def __new__(cls, type_name, type_module, msg, formatted, builtin=""):
        return tuple.__new__(cls, (type_name, type_module, msg, formatted, builtin))

    type_name = property(lambda self: self[0])
    type_module = property(lambda self: self[1])
    msg = property(lambda self: self[2])
    formatted = property(lambda self: self[3])
    builtin = property(lambda self: self[4])

    @property
    def type_display(self):
        if self.type_module in ("builtins", "__main__", ""):
            return self.type_name
        return "%s.%s" % (self.type_module, self.type_name)

    def __repr__(self):
        return "ExceptionInfo(type=%s, msg=%r)" % (self.type_display, self.msg)

    def __reduce__(self):
        return (ExceptionInfo, tuple(self))


class RemoteTraceback(Exception):
    """Carries the other interpreter's formatted traceback as ``__cause__``."""

    def __init__(self, formatted):
        super().__init__(formatted)
        self.formatted = formatted

    def __str__(self):
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

    excinfo = None

    def __str__(self):
        info = self.excinfo
        if info is None:
            return super().__str__()
        return "%s: %s" % (info.type_display, info.msg) if info.msg else info.type_display


_proxy_classes = {}


def _proxy_class(builtin_name):
    try:
        return _proxy_classes[builtin_name]
    except KeyError:
        pass
    cls = RunFailedError
    base = getattr(builtins, builtin_name, None) if builtin_name else None
    if (isinstance(base, type) and issubclass(base, Exception)
            and not issubclass(base, RunFailedError)):
        try:
            candidate = type("RunFailedError", (RunFailedError, base), {
                "__module__": RunFailedError.__module__,
                "__doc__": "RunFailedError that is also a %s." % builtin_name,
            })
            candidate("probe")   # some layouts need more arguments: fall back then
            cls = candidate
        except TypeError:
            pass
    _proxy_classes[builtin_name] = cls
    return cls


def rebuild(info):
    """Return the RunFailedError to raise for ExceptionInfo *info*."""
    err = _proxy_class(info.builtin)(info.msg)
    err.excinfo = info
    err.__cause__ = RemoteTraceback(info.formatted)
    return err
