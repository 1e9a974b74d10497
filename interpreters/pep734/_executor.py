"""InterpreterPoolExecutor as CPython 3.14's ``concurrent.futures`` has it.

Built on the package's executor (``interpreters._executor``): each worker
thread owns one interpreter (own GIL on 3.12+, as create()), tasks travel by
pickle (and closures, lambdas and ``__main__`` functions by value, a superset
of 3.14).  Workers have their own GIL on 3.13, as create() (shared below).  As in 3.14, ``future.result()`` re-raises the exception the task
raised, with an ExecutionFailed (the traceback there) as its ``__cause__``;
when the exception cannot be pickled back, the ExecutionFailed itself.
"""

from __future__ import annotations

import os
import pickle
import types
from concurrent.futures.thread import BrokenThreadPool

from .. import _executor as _core_executor
from .._exc import RunFailedError
from . import ExecutionFailed, ExceptionSnapshot, _crossinterp, _failed, _format, _trim

# Annotations are strings (postponed); typing is imported for the checker only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Iterable, Optional, Tuple

    from .. import Interpreter

__all__ = ["InterpreterPoolExecutor", "BrokenInterpreterPool"]


class BrokenInterpreterPool(_core_executor.BrokenInterpreterPool, BrokenThreadPool):
    """Raised when a worker's interpreter could not be initialized."""


def _capture(fn: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    # Runs in the worker's interpreter, sent there by value (its __module__ is set to
    # "__main__" below), so it needs nothing of this package there: it works in
    # own-GIL interpreters on 3.12 too.  Returns (True, result) or (False, details).
    try:
        return (True, fn(*args, **kwargs))
    except BaseException as exc:  # noqa: B902
        tb = __import__("traceback")
        pk = __import__("pickle")
        display = "".join(tb.format_exception(type(exc), exc, exc.__traceback__))
        try:
            data = pk.dumps(exc, pk.HIGHEST_PROTOCOL)
        except BaseException:  # noqa: B902
            data = None
        t = type(exc)
        return (False, (data, t.__qualname__, t.__module__, str(exc), display))


_capture.__module__ = "__main__"


def _chunk(fn: Callable[..., Any], chunk: Iterable[Tuple[Any, ...]]) -> Any:
    return [fn(*args) for args in chunk]


_chunk.__module__ = "__main__"


class InterpreterPoolExecutor(_core_executor.InterpreterPoolExecutor):
    """An Executor that runs each call in one of a pool of interpreters.

    ``InterpreterPoolExecutor(max_workers=None, thread_name_prefix='',
    initializer=None, initargs=())`` as in CPython 3.14: *max_workers*
    defaults to ``min(32, os.cpu_count() + 4)``; each worker thread (named
    ``thread_name_prefix + '_' + n``) owns one interpreter, which has its own
    GIL on CPython 3.13 (shared on 3.8-3.12, see interpreters.pep734); ``initializer(*initargs)`` runs in each interpreter
    first, and if it raises, the pool is broken (BrokenInterpreterPool).

    It is not a ThreadPoolExecutor subclass here (3.14's is).
    """

    _broken_type = BrokenInterpreterPool

    def __init__(self, max_workers: Optional[int] = None, thread_name_prefix: str = "",
                 initializer: Optional[Callable[..., object]] = None,
                 initargs: Tuple[Any, ...] = ()) -> None:
        if max_workers is None:
            max_workers = min(32, (os.cpu_count() or 1) + 4)
        if max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        super().__init__(max_workers, isolated=_crossinterp.EXECUTOR_OWN_GIL,
                         initializer=initializer,
                         initargs=initargs)
        if thread_name_prefix:
            self._thread_name_prefix = thread_name_prefix

    @staticmethod
    def _run_item(interp: Interpreter, fn: Callable[..., Any], args: Tuple[Any, ...],
                  kwargs: Dict[str, Any]) -> Any:
        if fn is _core_executor._Chunk:
            fn, args, kwargs = _chunk, args, {}
        from .. import _call
        barred = interp.id if _crossinterp.QUEUES_BARRED_FROM_OWN_GIL else None
        try:
            with _crossinterp.barred_target(barred):
                payload = _call._pickle_call(interp, _capture, (fn, args, kwargs), {})
            ok, value = _call._execute(interp, _capture, payload)
        except RunFailedError as err:
            raise _failed(err) from None
        except _call.NotSendableError as exc:
            from . import NotShareableError
            raise NotShareableError(str(exc)) from None
        if ok:
            return value
        data, qualname, module, msg, display = value
        etype = types.SimpleNamespace(__name__=qualname.rpartition(".")[2],
                                      __qualname__=qualname, __module__=module)
        wrapper = ExecutionFailed(ExceptionSnapshot(etype, msg, _format(qualname, module, msg),
                                                    _trim(display.rstrip("\n"))))
        if data is not None:
            try:
                original = pickle.loads(data)
            except Exception:
                original = None
            if isinstance(original, BaseException):
                raise original from wrapper
        raise wrapper


for _obj in (InterpreterPoolExecutor, BrokenInterpreterPool):
    _obj.__module__ = "interpreters.pep734"
del _obj
