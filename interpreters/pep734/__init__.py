"""PEP 734 (CPython 3.14's ``concurrent.interpreters``) for CPython 3.8-3.13.

Code written for 3.14 runs unchanged with::

    try:
        from concurrent import interpreters              # 3.14+
    except ImportError:
        from interpreters import pep734 as interpreters  # 3.8-3.13

This module is a second face of the ``interpreters`` package: the same
interpreters and queues as its PEP 554 API, so an interpreter or a queue made
through one face can be used through the other (``Interpreter(id)``,
``Queue(id)``).  Layout (imports point down only):

    __init__.py      interpreters, ExecutionFailed (this file)
    _queues.py       Queue, create_queue(), UNBOUND... (as concurrent.interpreters._queues)
    _executor.py     InterpreterPoolExecutor (as concurrent.futures's, 3.14)
    _crossinterp.py  is_shareable(), NotShareableError, unbound-item markers

Versions.  ``create()`` gives each interpreter its own GIL on 3.13, as 3.14
does (``OWN_GIL`` is True there, and ``Interpreter.own_gil`` says it per
interpreter).  On 3.8-3.11 CPython cannot, and interpreters share the GIL
(code in them does not run in parallel).  On 3.12 CPython refuses _ctypes in
own-GIL interpreters, so neither this package's queues nor any module that
imports it (as every module with the import line above does) can be used
inside them: create() and InterpreterPoolExecutor give shared-GIL interpreters
on 3.12, so that 3.14 code runs unchanged.  For own-GIL interpreters on 3.12
(code that needs nothing of this package inside), make them with the package's
``interpreters.create(isolated=True)`` and use them here through
``Interpreter(id)``; a queue passed to one raises NotShareableError naming the rule.

Differences from 3.14, all on purpose: call() also sends closures, lambdas and
local classes (by value) where 3.14 raises NotShareableError; queue waits are
woken rather than polled every 10 ms, take float timeouts (3.14 truncates them
to whole seconds) and are cut short by Ctrl-C; InterpreterError is also a
RuntimeError (the package's own, shared with the PEP 554 face).  An interpreter
made by create() is destroyed when its object is collected, as in 3.14, deferred
to a safe point when needed (see _collected()).  See the README's list of
differences for what is not reproduced.
"""

from __future__ import annotations

import marshal as _marshal
import sys as _sys
import threading as _threading
import types as _types
import weakref as _weakref

from .. import Interpreter as _CoreInterpreter
from .. import _call, _channels, _interp
from .._exc import InterpreterError, InterpreterNotFoundError, RunFailedError
from . import _crossinterp
from ._crossinterp import OWN_GIL, NotShareableError, is_shareable
from ._queues import Queue, QueueEmpty, QueueFull
from ._queues import create as create_queue

# Annotations are strings (postponed); typing is imported for the checker only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Type, TypeVar

    from ._executor import BrokenInterpreterPool, InterpreterPoolExecutor

    _T = TypeVar("_T")

__all__ = [
    "get_current", "get_main", "create", "list_all", "is_shareable",
    "Interpreter",
    "InterpreterError", "InterpreterNotFoundError", "ExecutionFailed",
    "NotShareableError",
    "create_queue", "Queue", "QueueEmpty", "QueueFull",
]


def __getattr__(name: str) -> Any:
    # The executor pulls in concurrent.futures: load it on first use only.
    if name in ("InterpreterPoolExecutor", "BrokenInterpreterPool"):
        from . import _executor
        value = getattr(_executor, name)
        globals()[name] = value
        return value
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


# -- ExecutionFailed ----------------------------------------------------------------------

class ExceptionSnapshot:
    """What ExecutionFailed.excinfo holds: ``type`` (with ``__name__``,
    ``__qualname__``, ``__module__``), ``msg`` (``str()`` of the exception),
    ``formatted`` (``"Type: msg"``) and ``errdisplay`` (the full traceback,
    as printed in the other interpreter)."""

    __slots__ = ("type", "msg", "formatted", "errdisplay")

    def __init__(self, type: _types.SimpleNamespace, msg: Optional[str], formatted: Optional[str],
                 errdisplay: Optional[str]) -> None:
        self.type = type
        self.msg = msg
        self.formatted = formatted
        self.errdisplay = errdisplay

    def __repr__(self) -> str:
        return "ExceptionSnapshot(type=%r, msg=%r)" % (self.type, self.msg)

    @classmethod
    def _from_core(cls, info: Any) -> ExceptionSnapshot:
        qualname = info.type_name
        module = info.type_module or None
        etype = _types.SimpleNamespace(__name__=qualname.rpartition(".")[2],
                                      __qualname__=qualname, __module__=module)
        return cls(etype, info.msg,
                   _format(qualname, module, info.msg), _trim(info.formatted.rstrip("\n")))


_EXECUTOR_FILE = __file__.rpartition("/")[0] + "/_executor.py"


def _trim(display: str) -> str:
    """Drop the transport's frames from a traceback display: call()'s runtime
    (its frames and the one-line source that starts it) and the executor's
    wrapper, so the display shows what 3.14's does: the user's frames."""
    frames: List[List[str]] = []
    out: List[str] = []
    for line in display.split("\n"):
        if line.startswith('  File "'):
            frames.append([line])
        elif frames and line.startswith("    "):
            frames[-1].append(line)
        else:
            out.extend(_keep(frames))
            frames = []
            out.append(line)
    out.extend(_keep(frames))
    return "\n".join(out)


def _keep(frames: List[List[str]]) -> List[str]:
    kept: List[str] = []
    for i, frame in enumerate(frames):
        head = frame[0]
        if head.startswith('  File "<%s>"' % _call.RUNTIME_NAME):
            continue
        if head.startswith('  File "%s"' % _EXECUTOR_FILE) and head.endswith("in _capture"):
            continue
        if (head == '  File "<string>", line 1, in <module>' and i + 1 < len(frames)
                and frames[i + 1][0].startswith('  File "<%s>"' % _call.RUNTIME_NAME)):
            continue
        kept.extend(frame)
    return kept


def _format(qualname: str, module: Optional[str], msg: Optional[str]) -> str:
    name = qualname if module in (None, "builtins", "__main__") else "%s.%s" % (module, qualname)
    return "%s: %s" % (name, msg) if msg else name


_EXEC_FAILURE_STR = "{superstr}\n\nUncaught in the interpreter:\n\n{formatted}"


class ExecutionFailed(InterpreterError):
    """An unhandled exception happened during execution.

    This is raised from Interpreter.exec() and Interpreter.call().
    ``excinfo`` describes the exception (see ExceptionSnapshot).
    """

    def __init__(self, excinfo: Any) -> None:
        msg = excinfo.formatted
        if not msg:
            if excinfo.type and excinfo.msg:
                msg = "%s: %s" % (excinfo.type.__name__, excinfo.msg)
            else:
                msg = excinfo.type.__name__ or excinfo.msg
        super().__init__(msg)
        self.excinfo = excinfo

    def __str__(self) -> str:
        try:
            formatted = self.excinfo.errdisplay
        except Exception:
            return super().__str__()
        return _EXEC_FAILURE_STR.format(superstr=super().__str__(), formatted=formatted)


def _failed(err: RunFailedError) -> BaseException:
    """The PEP 734 error for a RunFailedError of the core."""
    info = err.excinfo
    if info is None:
        return err
    if info.type_name == "NotSendableError" and info.type_module in (
            "interpreters", _call.RUNTIME_NAME):
        # the result could not be pickled there
        return NotShareableError(info.msg)
    # (raised "from None": the traceback there is in str(), as in 3.14)
    return ExecutionFailed(ExceptionSnapshot._from_core(info))


# -- module functions ---------------------------------------------------------------------

def create() -> Interpreter:
    """Return a new (idle) Python interpreter.

    It has its own GIL on CPython 3.13 (as on 3.14: extension modules that do
    not support that fail to import there); on 3.8-3.12 it shares the GIL
    (see the module docstring for why 3.12 does too).
    """
    if _pending:
        _destroy_pending()
    iid = _interp.create(isolated=OWN_GIL)
    _created.add(iid)
    self = Interpreter(iid)
    if _FORK_GUARD:
        self._core.run(_FORK_GUARD)
    return self


# os.fork() in a subinterpreter: 3.14 (and 3.8, and 3.13) raise RuntimeError, but on
# 3.9-3.12 CPython forks, and the child dies ("Fatal Python error:
# _PyInterpreterState_DeleteExceptMain: not main interpreter").  create() makes
# os.fork and os.forkpty raise there as 3.14 does (leaving no name in __main__).
_FORK_GUARD = (
    "(lambda os: [setattr(os, n, lambda *a, **k: (_ for _ in ()).throw(RuntimeError("
    "'fork not supported for subinterpreters'))) for n in ('fork', 'forkpty') "
    "if hasattr(os, n)])(__import__('os'))\n") if (3, 9) <= _sys.version_info < (3, 13) else ""


def list_all() -> List[Interpreter]:
    """Return all existing interpreters."""
    if _pending:
        _destroy_pending()
    return [Interpreter(i) for i in sorted(_interp.list_ids())]


def get_current() -> Interpreter:
    """Return the currently running interpreter."""
    return Interpreter(_interp.current_id())


def get_main() -> Interpreter:
    """Return the main interpreter."""
    return Interpreter(0)


# ids of the interpreters create() made in this interpreter and not closed: their
# Interpreter object here owns them (see Interpreter.__del__), and the exit report
_created: set = set()   # type: ignore[type-arg]

# ids whose owning object was collected where destroying was not safe (see _collected)
_pending: List[int] = []

_known: _weakref.WeakValueDictionary[int, Interpreter] = _weakref.WeakValueDictionary()

# CPython 3.13's _interpreters.WHENCE_* values, named as 3.14 names them.
_WHENCE = {0: "unknown", 1: "runtime init", 2: "legacy C-API", 3: "C-API",
           4: "cross-interpreter C-API", 5: "_interpreters module"}

_JOIN_THREADS = ("(lambda t: [x.join() for x in t.enumerate() if not x.daemon and x is not "
                 "t.current_thread() and x is not t.main_thread()])(__import__('threading'))\n")


class Interpreter:
    """A single Python interpreter.

    Attributes:

    "id" - the unique process-global ID number for the interpreter
    "whence" - indicates where the interpreter was created
    "own_gil" - whether it has its own GIL (an addition: create() on 3.13)

    ``Interpreter(id)`` returns the one object for that id in this
    interpreter.  Interpreters not created by this package (by either of its
    APIs) cannot be closed, prepared, or run in (InterpreterError).

    As in 3.14, an interpreter made by create() is destroyed once its object
    is garbage-collected (the one object for its id in the interpreter that
    created it; see _collected() for when that is deferred).
    """

    __slots__ = ("_id", "_core", "_ownsref", "__weakref__")
    _id: int
    _core: _CoreInterpreter
    _ownsref: bool

    def __new__(cls, id: int, /) -> Interpreter:
        if not isinstance(id, int):
            raise TypeError("id must be an int, got %r" % (id,))
        id = int(id)
        self = _known.get(id)
        if self is not None:
            return self
        if id < 0:
            raise ValueError("interpreter id must be a non-negative int, got %d" % id)
        if not _interp.exists(id):
            raise InterpreterNotFoundError("interpreter %d not found" % id)
        self = super().__new__(cls)
        self._id = id
        self._core = _CoreInterpreter(id)
        self._ownsref = id in _created
        if self._ownsref and id in _pending:
            _pending.remove(id)          # owned again before its deferred destroy ran
        _known[id] = self
        return self

    def __del__(self) -> None:
        # No builtins or module globals may be relied on: this also runs at teardown.
        try:
            if self._ownsref:
                self._ownsref = False
                _collected(self._id, self._core)
        except:  # noqa: E722
            pass

    def __repr__(self) -> str:
        return "%s(%d)" % (type(self).__name__, self._id)

    def __hash__(self) -> int:
        return hash(self._id)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Interpreter):
            return NotImplemented
        return self._id == other._id

    # for pickling:
    def __reduce__(self) -> Tuple[Type[Interpreter], Tuple[int]]:
        return (type(self), (self._id,))

    @property
    def id(self) -> int:
        return self._id

    @property
    def whence(self) -> str:
        """Where the interpreter was created: 'runtime init' for the main one,
        '_interpreters module' for this package's (either API); for others, on
        3.13 what CPython records ('_interpreters module' for its own module,
        'C-API', 'legacy C-API', ...), on 3.8-3.12 'unknown'."""
        if self._id == 0:
            return "runtime init"
        if _interp._A.find_slot(self._id) is not None:
            return "_interpreters module"
        try:
            import _interpreters  # type: ignore[import-not-found,unused-ignore]  # 3.13
            code = _interpreters.whence(self._id)
        except Exception:
            return "unknown"
        return _WHENCE.get(code, "unknown")

    @property
    def own_gil(self) -> bool:
        """True if the interpreter has its own GIL (create() on 3.13; an addition)."""
        return _interp.is_isolated(self._id)

    def is_running(self) -> bool:
        """Return whether or not the identified interpreter is running.

        Raises:
            InterpreterNotFoundError: it was destroyed.
            InterpreterError: it was made by other code (neither API of this
                package) and is not the current one: this package cannot tell.
        """
        if self._id == 0 or self._id == _interp.current_id():
            return True
        if not _interp.exists(self._id):
            raise InterpreterNotFoundError("interpreter %d not found" % self._id)
        try:
            return _interp.is_running(self._id)
        except InterpreterNotFoundError:
            raise
        except InterpreterError:
            raise InterpreterError(
                "cannot tell whether interpreter %d is running: it was not created by "
                "this package" % self._id) from None

    def close(self) -> None:
        """Finalize and destroy the interpreter.

        Threads started in it that are not daemons are joined first.

        Raises:
            InterpreterError: it is the current or the main interpreter, or it
                is running.
            InterpreterNotFoundError: it was already destroyed.
        """
        if self._id == 0:
            raise InterpreterError("the main interpreter cannot be closed")
        if self._id == _interp.current_id():
            raise InterpreterError("interpreter %d cannot close itself" % self._id)
        if _pending:
            _destroy_pending()
        if not _interp.exists(self._id):
            raise InterpreterNotFoundError("interpreter %d not found" % self._id)
        _end(self._id, self._core)
        self._ownsref = False

    def _barred(self) -> Optional[int]:
        if _crossinterp.QUEUES_BARRED_FROM_OWN_GIL and _interp.is_isolated(self._id):
            return self._id
        return None

    def prepare_main(self, ns: Optional[Mapping[str, Any]] = None, /, **kwargs: Any) -> None:
        """Bind the given values into the interpreter's __main__.

        Shareable values are passed as they are; others are pickled.

        Raises:
            ValueError: nothing to bind (as 3.14).
            NotShareableError: a value can be neither shared nor pickled.
            InterpreterError: the interpreter is running.
        """
        values = dict(ns, **kwargs) if ns is not None else kwargs
        if not values:
            raise ValueError("prepare_main(): nothing to bind (give a mapping or keyword "
                             "arguments)")
        try:
            with _crossinterp.barred_target(self._barred()):
                data = b"".join(_call._rt.dumps(values))
        except NotShareableError:
            raise
        except Exception as exc:
            raise NotShareableError("prepare_main(): a value cannot be passed to "
                                    "interpreter %d: %s: %s" % (self._id, type(exc).__name__,
                                                                exc)) from None
        if _interp.is_running(self._id):
            raise InterpreterError("interpreter %d is running" % self._id)
        _call._ensure_runtime(self._core)
        self._exec_str("__import__('sys').modules['__main__'].__dict__.update("
                       "__import__('pickle').loads(%r))\n" % data)

    def _exec_str(self, source: str) -> None:
        try:
            self._core.run(source)
        except RunFailedError as err:
            raise _failed(err) from None

    def exec(self, code: Any, /) -> None:
        """Run the given source code in the interpreter.

        This is essentially the same as calling the builtin "exec" with this
        interpreter, using the __dict__ of its __main__ module as both
        globals and locals.  *code* is a str, or a function (or code object)
        that takes no arguments and uses no closure: its body runs there.

        There is no return value.  If the code raises an unhandled exception
        then an ExecutionFailed exception is raised, which summarizes the
        unhandled exception.  This blocks the current Python thread until done.
        """
        if isinstance(code, str):
            if "\0" in code:
                raise ValueError("source code string cannot contain null bytes")   # (3.14's)
            self._exec_str(code)
            return
        self._exec_str("exec(__import__('marshal').loads(%r), "
                       "__import__('sys').modules['__main__'].__dict__)\n"
                       % _marshal.dumps(_code_of(code)))

    def call(self, callable: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
        """Call the object in the interpreter with given args/kwargs; return its result.

        The callable, the arguments and the result are pickled.  Unlike
        3.14, closures, lambdas and functions or classes of ``__main__`` are
        sent by value rather than refused (a superset).  If the callable raises,
        ExecutionFailed is raised here with the error display (full traceback).

        Raises:
            NotShareableError: the callable, an argument or the result can be
                neither shared nor pickled.
            ExecutionFailed: the callable raised.
        """
        return self._call(callable, args, kwargs)

    def _call(self, callable: Callable[..., _T], args: Tuple[Any, ...],
              kwargs: Dict[str, Any]) -> _T:
        try:
            with _crossinterp.barred_target(self._barred()):
                payload = _call._pickle_call(self._core, callable, args, kwargs)
        except _call.NotSendableError as exc:
            raise NotShareableError(str(exc)) from None
        try:
            result: _T = _call._execute(self._core, callable, payload)
        except RunFailedError as err:
            raise _failed(err) from None
        return result

    def call_in_thread(self, callable: Callable[..., Any], /, *args: Any,
                       **kwargs: Any) -> _threading.Thread:
        """Return a new, started thread that calls the object in the interpreter.

        The return value is discarded; an exception goes to threading.excepthook.
        """
        t = _threading.Thread(target=self._call, args=(callable, args, kwargs))
        t.start()
        return t


def _end(iid: int, core: _CoreInterpreter) -> None:
    """close(): join its non-daemon threads, empty its __main__, destroy it."""
    try:
        core.run(_JOIN_THREADS)
        core.run(_call.FORGET_DUMMY_THREAD)
        # Drop what __main__ holds while its modules still work: on 3.9-3.11 a
        # queue first dropped by the teardown itself reports an ignored error.
        core.reset_main()
    except RunFailedError:
        pass
    # A memoryview received last is released (3.8-3.10 keep it a moment): the
    # buffers it shared must be free for the destroy.
    _channels._process_pending()
    _interp.destroy(iid)
    _created.discard(iid)


def _collected(iid: int, core: _CoreInterpreter) -> None:
    """The object owning interpreter *iid* was collected: destroy it, as 3.14 does.

    Collection can happen anywhere: in any thread, inside this package (even
    with the arena lock held), at exit.  The interpreter is destroyed here only
    from plain user code: no frame of this package on the calling thread's
    stack, its threading not shut down (this interpreter is not being ended),
    not at exit, and the interpreter idle.  Otherwise its id waits in _pending
    for the next create(), list_all() or close() here, or for exit (where every
    interpreter left is ended anyway, without the "remaining subinterpreters"
    warning for these).
    """
    if iid not in _created:
        return
    if _interp._exiting or _sys.is_finalizing() or _inside_package():
        _pending.append(iid)
        return
    try:
        if not _threading.main_thread().is_alive():   # this interpreter is ending
            _pending.append(iid)
            return
    except Exception:
        _pending.append(iid)
        return
    _destroy_owned(iid, core)


def _inside_package() -> bool:
    f: Any = _sys._getframe(3)        # the caller of __del__
    while f is not None:
        name = f.f_globals.get("__name__")
        if type(name) is str and (name == "interpreters" or name.startswith("interpreters.")):
            return True
        f = f.f_back
    return False


def _destroy_owned(iid: int, core: Optional[_CoreInterpreter] = None) -> None:
    """Destroy interpreter *iid*, whose owner is gone; defer while it is running."""
    try:
        if not _interp.exists(iid):
            _created.discard(iid)
            return
        if _interp.is_running(iid):
            _pending.append(iid)          # retried at the next call
            return
        _end(iid, core if core is not None else _CoreInterpreter(iid))
    except KeyboardInterrupt:
        # Ctrl-C stopped the wait for its threads: keep the destroy for later and let
        # the interrupt surface in the main thread (a __del__ cannot raise it).
        _pending.append(iid)
        if _threading.current_thread() is _threading.main_thread():
            import _thread
            _thread.interrupt_main()
    except InterpreterError:
        # It cannot end (daemon threads, buffers still held): it stays until close()
        # or exit, as an interpreter nobody closed.
        pass


def _destroy_pending() -> None:
    for iid in list(_pending):
        try:
            _pending.remove(iid)
        except ValueError:
            continue
        if iid in _created and _known.get(iid) is None:
            _destroy_owned(iid)           # (may put it back: still running)


def _code_of(code: Any) -> _types.CodeType:
    if isinstance(code, _types.FunctionType):
        if code.__closure__:
            raise TypeError("exec(): function %s uses a closure: only functions without "
                            "closure can be run" % code.__qualname__)
        co = code.__code__
        what = "function %s" % code.__qualname__
    elif isinstance(code, _types.CodeType):
        co = code
        what = "code object %s" % co.co_name
    else:
        raise TypeError("exec() needs a str, a function or a code object, not %s"
                        % type(code).__name__)
    if co.co_argcount or co.co_kwonlyargcount or co.co_flags & 0x0c:
        raise TypeError("exec(): %s takes arguments: only functions without arguments "
                        "can be run" % what)
    if co.co_freevars:
        raise TypeError("exec(): %s uses a closure: only functions without closure can "
                        "be run" % what)
    return co


def _report_open() -> None:
    # As 3.14's finalization does when subinterpreters are left (same text), for
    # the interpreters create() made here and nobody closed; they are then ended.
    # Those whose object was collected are not reported.
    for iid in list(_pending):
        _created.discard(iid)
    if any(_interp.exists(i) for i in _created):
        import warnings
        warnings.warn_explicit("remaining subinterpreters; close them with "
                               "Interpreter.close()", RuntimeWarning, "<sys>", 0)


if _interp._IS_MAIN:
    import atexit as _atexit
    _atexit.register(_report_open)


for _obj in (Interpreter, ExecutionFailed, ExceptionSnapshot, create, list_all,
             get_current, get_main, create_queue, is_shareable, NotShareableError):
    _obj.__module__ = __name__
del _obj
