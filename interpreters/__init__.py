"""Multiple interpreters in one process (PEP 554), for CPython 3.8-3.13, in pure Python.

Quick start::

    import interpreters

    interp = interpreters.create()          # a new, idle interpreter
    interp.run("x = 6 * 7")                 # runs there, in the calling thread
    interp.run("print(x)")                  # its __main__ persists: prints 42
    print(interp.call(sum, [1, 2, 3]))      # a function call, result returned: 6
    try:
        interp.run("{}['missing']")
    except KeyError as exc:                 # a RunFailedError, also a KeyError
        print(exc.excinfo.formatted)
    r, s = interpreters.create_channel()    # pass data between interpreters
    interp.destroy()

Output printed in another interpreter reaches this one's ``sys.stdout`` and
``sys.stderr`` when run() or call() returns, if those are not the process's
own streams (so redirect_stdout, pytest's capsys and notebooks see it); else,
and for output printed there while no run() waits, it goes straight to file
descriptors 1 and 2.  ``python -m interpreters`` shows what this Python
supports and runs a short demo.

Layout (imports point down only):

    __init__.py    public API (this file): no ctypes here
    _executor.py   InterpreterPoolExecutor (pooled interpreters, on top of _call)
    _call.py       call(): functions and arguments pickled (by value when needed)
    _channels.py   channels: arena-resident state, association rules, waits; queues,
                   pipes, select() and asyncio waits built on the same channel slots
    _interp.py     interpreter lifecycle: create, run, destroy, exit, fork
    _arena.py      the process-wide raw-memory arena and its lock
    _exc.py        exceptions and the proxy of an exception raised elsewhere
    _sub.py        runtime executed inside each new interpreter (not imported there)
    _capi.py       the only module that imports ctypes: prototypes, raw memory,
                   the audited thread-state crossing, teardown
"""
from __future__ import annotations

import sys as _sys

if _sys.implementation.name != "cpython" or not (3, 8) <= _sys.version_info < (3, 14):
    raise ImportError("interpreters needs CPython 3.8-3.13, not %s %s%s" % (
        _sys.implementation.name, _sys.version.split()[0],
        "; on 3.14+ use the standard library's concurrent.interpreters (PEP 734), which "
        "interpreters.pep734 mirrors" if _sys.version_info >= (3, 14) else ""))

import weakref as _weakref

from . import _channels, _exc, _interp
from ._channels import (
    Connection, Pipe, Queue, RecvChannel, SendChannel, create_channel, is_shareable,
    list_all_channels, select, select_async,
)
from . import _call
from ._call import CallThread, NotSendableError
from ._exc import (
    ChannelClosedError, ChannelEmptyError, ChannelError, ChannelNotEmptyError,
    ChannelNotFoundError, ExceptionInfo, InterpreterError, InterpreterNotFoundError,
    NotReceivedError, RunFailedError,
)

# Annotations are strings (postponed); typing is imported for the checker only
# (this package is also imported inside subinterpreters).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import (Any, Callable, ClassVar, List, Mapping, Optional, SupportsIndex,
                        Tuple, Type, TypeVar, Union)

    from ._executor import BrokenInterpreterPool, InterpreterPoolExecutor

    _T = TypeVar("_T")

__version__ = "0.1.0"

__all__ = [
    "Interpreter", "create", "get_current", "get_main", "list_all",
    "RecvChannel", "SendChannel", "create_channel", "is_shareable", "list_all_channels",
    "InterpreterError", "InterpreterNotFoundError", "RunFailedError", "ExceptionInfo",
    "ChannelError", "ChannelClosedError", "ChannelEmptyError", "ChannelNotEmptyError",
    "ChannelNotFoundError", "NotReceivedError",
    "Queue", "Pipe", "Connection", "select", "select_async",
    "CallThread", "NotSendableError", "InterpreterPoolExecutor", "BrokenInterpreterPool",
]


def __getattr__(name: str) -> Any:
    # The executor pulls in concurrent.futures: load it on first use only (this
    # package is also imported inside subinterpreters, where every module costs).
    if name in ("InterpreterPoolExecutor", "BrokenInterpreterPool"):
        from . import _executor
        value = getattr(_executor, name)
        value.__module__ = __name__
        globals()[name] = value
        return value
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


def __dir__() -> List[str]:
    # The lazily loaded names are listed (tab completion offers them); the names
    # that only serve the type checker are not.
    return sorted((set(globals()) | set(__all__)) - {"TYPE_CHECKING", "annotations"})


class Interpreter:
    """A single Python interpreter in this process, named by its id.

    ``Interpreter(id)`` returns the one object for that id in this interpreter.
    Two objects compare and hash equal when they name the same interpreter.
    """

    __slots__ = ("_id", "__weakref__")
    _id: int
    _known: ClassVar[_weakref.WeakValueDictionary[int, Interpreter]] = (
        _weakref.WeakValueDictionary())

    def __new__(cls, id: SupportsIndex) -> Interpreter:
        if isinstance(id, bool) or not isinstance(id, int):
            try:
                id = int(id.__index__())
            except (AttributeError, TypeError):
                raise TypeError("interpreter id must be an int, not %s"
                                % type(id).__name__) from None
        if id < 0:
            raise ValueError("interpreter id must be a non-negative int, got %d" % id)
        self = cls._known.get(id)
        if self is None:
            self = super().__new__(cls)
            self._id = id
            cls._known[id] = self
        return self

    def __reduce__(self) -> Tuple[Type[Interpreter], Tuple[int]]:
        return (type(self), (self._id,))

    def __repr__(self) -> str:
        return "%s(%d)" % (type(self).__name__, self._id)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Interpreter):
            return NotImplemented
        return self._id == other._id

    def __hash__(self) -> int:
        return hash((Interpreter, self._id))

    @property
    def id(self) -> int:
        """The interpreter's id (read-only): 0 is the main interpreter."""
        return self._id

    @property
    def isolated(self) -> bool:
        """True if the interpreter has its own GIL and allocator (read-only).

        See ``create(isolated=True)``.  False for the main interpreter and for
        interpreters made by other code.
        """
        return _interp.is_isolated(self._id)

    def is_running(self) -> bool:
        """Return whether the interpreter is currently executing code.

        Always True for the main interpreter and for the calling interpreter.
        """
        return _interp.is_running(self._id)

    def destroy(self) -> None:
        """Finalize and destroy the interpreter, as CPython ends a process.

        Its threading atexit hooks run, then destroy() waits for its non-daemon
        threads (KeyboardInterrupt, e.g. Ctrl-C, interrupts that wait and leaves
        the interpreter alive and usable); then its atexit callbacks run and its
        modules are finalized, with new threads refused (RuntimeError).

        Raises:
            RuntimeError (InterpreterError): it is running, it is the calling
                interpreter, or daemon threads started inside it are still alive.
            InterpreterNotFoundError: it was already destroyed.
        """
        _interp.destroy(self._id)

    def reset_main(self) -> None:
        """Clear the interpreter's ``__main__``, keeping its dunder attributes.

        Everything a run() left there (variables, functions, imported names,
        channel ends bound by run(channels=...)) is dropped; ``__name__``,
        ``__builtins__`` and the other ``__dunder__`` names stay.  Modules stay
        imported (``sys.modules`` is not touched).  Raises like run().
        """
        try:
            _interp.run(self._id, _RESET_MAIN)
        except (RunFailedError, KeyboardInterrupt) as exc:
            raise _exc.relocated(exc)

    def run(self, source_str: str, /, *,
            channels: Optional[Mapping[str, Union[RecvChannel, SendChannel, Queue,
                                                     Connection]]] = None) -> None:
        """Run *source_str* in the interpreter's ``__main__``; block until done.

        The code runs in the calling OS thread; ``__main__`` (and all other
        state) persists between calls.  If *channels* is given, it maps names
        to channel ends, which are bound in ``__main__`` before the code runs.

        Ctrl-C while the main thread runs code in a shared-GIL interpreter raises
        KeyboardInterrupt in that code at its next bytecode (a blocking C call
        finishes first; a CPU-bound loop is interrupted too), then here (with
        Python's default SIGINT handler).

        Output: if this interpreter's ``sys.stdout`` or ``sys.stderr`` is not
        the process's own stream (``sys.__stdout__``/``sys.__stderr__``:
        redirect_stdout, pytest's capture, IDLE, Jupyter), what the code writes
        to that stream, also from threads of that interpreter, is kept while it
        runs and written to this one's stream, in order, when run() returns or
        raises.  Otherwise, and for output written there while no run() waits,
        it goes straight to file descriptors 1 and 2.

        Raises:
            TypeError: *source_str* is not a str.
            ValueError: a value in *channels* is not a RecvChannel/SendChannel.
            RuntimeError (InterpreterError): the interpreter is already running.
            RunFailedError: the code raised; the error proxies it (see RunFailedError).
        """
        if not isinstance(source_str, str):
            raise TypeError("run() argument must be str, not %s" % type(source_str).__name__)
        extra = _channel_spec(channels)
        if extra and _CHANNELS_NEED_CTYPES_IN_SUB and _interp.is_isolated(self._id):
            raise InterpreterError(
                "run(channels=...) cannot pass channels into isolated interpreter %d on "
                "CPython 3.12: channel ends need this package inside the interpreter, which "
                "needs ctypes, and CPython 3.12 refuses to load _ctypes in isolated "
                "subinterpreters (3.13+ allows it). Use a shared-GIL interpreter "
                "(create()) for channels, or pipes/os.eventfd/mmap inside isolated ones"
                % self._id)
        try:
            _interp.run(self._id, source_str, extra)
        except (RunFailedError, KeyboardInterrupt) as exc:
            # The traceback: the caller, this line, then the code there (_exc.relocated).
            raise _exc.relocated(exc)

    def call(self, f: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
        """Run ``f(*args, **kwargs)`` in the interpreter, block, and return its result.

        Arguments and the result travel pickled; functions and classes that
        pickle by reference cannot be found from here (defined in ``__main__``,
        in a REPL, lambdas, closures) are sent by value.  An exception raised by
        *f* comes back as from run(): a RunFailedError, also an instance of a
        builtin original type.  Unsendable arguments raise NotSendableError.

        Like run(), it runs in the calling thread; Ctrl-C in the main thread makes
        *f* raise KeyboardInterrupt at its next bytecode (a blocking C call
        finishes first), and KeyboardInterrupt is raised here.  Waits on
        call_in_thread() or call_async() are cut short by Ctrl-C at once.
        Output goes where run()'s goes.
        """
        try:
            return _call.call(self, f, *args, **kwargs)
        except (RunFailedError, KeyboardInterrupt) as exc:
            raise _exc.relocated(exc, _call.RUNTIME_FILE)

    async def call_async(self, f: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
        """Await ``self.call(f, *args, **kwargs)`` run in a worker thread.

        *f* and the arguments are pickled when the await starts.  The event loop
        is not blocked: the thread hands the outcome back with
        ``loop.call_soon_threadsafe``.  Returns the result or raises what call()
        raises.  Cancelling the await (``asyncio.wait_for``, Ctrl-C under
        ``asyncio.run``) does not stop the call: it runs to its end, its outcome
        is dropped, and the interpreter stays busy until then.
        """
        try:
            return await _call.call_async(self, f, *args, **kwargs)
        except (RunFailedError, KeyboardInterrupt) as exc:
            raise _exc.relocated(exc, _call.RUNTIME_FILE)

    def call_in_thread(self, f: Callable[..., Any], /, *args: Any,
                       **kwargs: Any) -> CallThread:
        """Start a thread running ``self.call(f, *args, **kwargs)``; return its handle.

        ``handle.join()`` waits and re-raises the call's exception;
        ``handle.result()`` returns its value.  Ctrl-C cuts these waits short
        (KeyboardInterrupt); the call goes on, and the handle can be waited on again.
        """
        return _call.call_in_thread(self, f, *args, **kwargs)

    def run_in_thread(self, source_str: str, /) -> CallThread:
        """Start a thread running ``self.run(source_str)``; return its handle.

        ``handle.join()`` waits and re-raises a RunFailedError.
        """
        return _call.run_in_thread(self, source_str)


# Leaves no name behind: the names it clears are collected inside the lambda.
_RESET_MAIN = (
    "(lambda d: [d.pop(k) for k in [k for k in d if not (k[:2] == '__' == k[-2:])]])"
    "(__import__('sys').modules['__main__'].__dict__)\n")


# CPython 3.12 refuses _ctypes in isolated subinterpreters (DESIGN.md fact 15).
_CHANNELS_NEED_CTYPES_IN_SUB = _sys.version_info[:2] == (3, 12)


def _channel_spec(channels: Optional[Mapping[str, Union[RecvChannel, SendChannel, Queue,
                                                         Connection]]]) -> bytes:
    """Validate run(channels=...) and return the marshalled injection (or b"")."""
    if channels is None:
        return b""
    try:
        items = list(channels.items())
    except AttributeError:
        raise TypeError("channels must be a mapping of names to channel ends, not %s"
                        % type(channels).__name__) from None
    specs = {}
    for name, end in items:
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError("channels key %r is not a valid identifier" % (name,))
        if not isinstance(end, (RecvChannel, SendChannel, Queue, Connection)):
            foreign = _channels.other_copy(type(end))
            if foreign:
                raise ValueError("channels[%r]: %s" % (name, foreign))
            raise ValueError("channels[%r] must be a RecvChannel, SendChannel, Queue or "
                             "Connection, not %s" % (name, type(end).__name__))
        specs[name] = end._spec()
    if not specs:
        return b""
    import marshal
    return marshal.dumps((__name__, specs))


def create(*, isolated: bool = False) -> Interpreter:
    """Initialize a new (idle) Python interpreter and return it.

    It is created in the calling thread, may be used from any thread, and
    starts with this interpreter's ``sys.path``.

    ``isolated=True`` (CPython 3.12+) gives the interpreter its own GIL and its
    own allocator, so code in different isolated interpreters runs in parallel
    on several cores.  Extension modules that do not support subinterpreters
    fail to import there with ImportError, as in CPython's own module; on 3.12
    that includes ctypes, so channels cannot be used inside (3.13 allows it).
    Below 3.12 it raises InterpreterError naming the version rule.
    """
    return Interpreter(_interp.create(isolated=bool(isolated)))


def list_all() -> List[Interpreter]:
    """Return every existing interpreter (including ones made by other code).

    They come in id order, which is creation order: the main interpreter first.
    """
    return [Interpreter(i) for i in _interp.list_ids()]


def get_current() -> Interpreter:
    """Return the interpreter the calling thread is running in."""
    return Interpreter(_interp.current_id())


def get_main() -> Interpreter:
    """Return the main interpreter."""
    return Interpreter(0)


for _obj in (Interpreter, create, list_all, get_current, get_main, RecvChannel, SendChannel,
             create_channel, is_shareable, list_all_channels, CallThread, NotSendableError,
             Queue, Pipe, Connection, select, select_async):
    _obj.__module__ = __name__
del _obj
