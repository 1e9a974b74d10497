"""InterpreterPoolExecutor: a concurrent.futures executor over pooled interpreters.

Each worker is a thread of this interpreter that owns one interpreter, created
lazily by its first task, reused for every later task (a fresh interpreter per
task would leak memory inside CPython, DESIGN.md fact 13), and destroyed by
the same thread when the executor shuts down.  Tasks travel with
``_call.call()``: by pickle, with functions and classes from ``__main__``,
lambdas and local functions sent by value, so user code written for
ProcessPoolExecutor with module-level or ``__main__`` functions works as is.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import itertools
import os
import queue
import sys
import threading
import weakref
from concurrent.futures import _base

from . import _interp
from ._call import FORGET_DUMMY_THREAD as _FORGET_DUMMY_THREAD
from ._call import _rt, call

# Annotations are strings (postponed); typing is imported for the checker only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import (
        Any, Callable, Dict, FrozenSet, Iterable, Iterator, List, Optional, Set, Tuple, Type,
        TypeVar,
    )

    from typing_extensions import ParamSpec

    from . import Interpreter

    _T = TypeVar("_T")
    _P = ParamSpec("_P")
    _Queue = queue.SimpleQueue[Optional["_WorkItem"]]    # None: stop (and pass it on)

__all__ = ["InterpreterPoolExecutor", "BrokenInterpreterPool"]


class BrokenInterpreterPool(_base.BrokenExecutor):
    """A worker's interpreter could not be created or its initializer failed."""


# executors with threads, for the exit hook
_live: weakref.WeakSet[InterpreterPoolExecutor] = weakref.WeakSet()
_exiting = False
_exit_lock = threading.Lock()


def _python_exit() -> None:
    global _exiting
    with _exit_lock:
        _exiting = True
    for ex in list(_live):
        ex._wake_all()
    for ex in list(_live):
        for t in list(ex._threads):
            t.join()


# 3.9+: run before threading joins non-daemon threads (our workers are non-daemon);
# 3.8 has no such hook: workers are daemons and atexit (registered after
# interpreters._interp's own hook, so run before it) stops and joins them.
_DAEMON_WORKERS = not hasattr(threading, "_register_atexit")
if _DAEMON_WORKERS:
    atexit.register(_python_exit)
else:
    threading._register_atexit(_python_exit)  # type: ignore[attr-defined]  # private, 3.9+


class _WorkItem:
    __slots__ = ("future", "fn", "args", "kwargs")

    def __init__(self, future: concurrent.futures.Future[Any], fn: Callable[..., Any],
                 args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> None:
        self.future = future
        self.fn = fn
        self.args = args
        self.kwargs = kwargs


def _chunks(chunksize: int, *iterables: Iterable[Any]) -> Iterator[Tuple[Tuple[Any, ...], ...]]:
    it = zip(*iterables)
    while True:
        chunk = tuple(itertools.islice(it, chunksize))
        if not chunk:
            return
        yield chunk


def _chain(results: Iterable[List[_T]]) -> Iterator[_T]:
    for element in results:
        element.reverse()
        while element:
            yield element.pop()


class InterpreterPoolExecutor(_base.Executor):
    """An Executor that runs each call in one of a pool of interpreters.

    ``max_workers`` defaults to ``os.cpu_count()`` (as ProcessPoolExecutor).
    ``isolated=True`` gives each interpreter its own GIL (CPython 3.12+; below
    it the constructor raises InterpreterError), so CPU-bound tasks run in
    parallel.  ``initializer(*initargs)`` is called inside each interpreter once,
    after it is created; if it raises, the pool is broken (as in
    ProcessPoolExecutor): pending and later futures fail with BrokenInterpreterPool.

    Functions, arguments and results travel by pickle (see interpreters._call).
    An exception raised by a task is re-raised by ``future.result()`` as the
    RunFailedError ``run()`` reports (also an instance of the builtin type it
    derives from, e.g. ``except ValueError`` works).  Workers (threads here,
    one interpreter each) start lazily, up to ``max_workers``, reusing idle
    ones first.
    """

    def __init__(self, max_workers: Optional[int] = None, *, isolated: bool = False,
                 initializer: Optional[Callable[..., object]] = None,
                 initargs: Iterable[Any] = ()) -> None:
        if max_workers is None:
            max_workers = os.cpu_count() or 1
        elif max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        isolated = bool(isolated)
        if isolated:
            _interp.check_isolation_supported()
        self._max_workers = max_workers
        self._isolated = isolated
        self._initializer = initializer
        self._initargs = tuple(initargs)
        self._queue: _Queue = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._threads: Set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._shutdown = False
        self._broken: Optional[str] = None
        self._interp_ids: Set[int] = set()
        self._thread_name_prefix = "InterpreterPoolExecutor-%d" % (id(self) & 0xffff)

    # -- submission -----------------------------------------------------------------

    # Positional-only fn, as Executor.submit itself since 3.9; typeshed's 3.8 stub
    # still lets fn be passed by keyword, which this subclass does not.
    def submit(self, fn: Callable[_P, _T], /,  # type: ignore[override,unused-ignore]
               *args: _P.args, **kwargs: _P.kwargs) -> concurrent.futures.Future[_T]:
        with self._lock:
            if self._broken:
                raise self._broken_type(self._broken)
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if _exiting:
                raise RuntimeError("cannot schedule new futures after interpreter shutdown")
            f: concurrent.futures.Future[_T] = _base.Future()
            self._queue.put(_WorkItem(f, fn, args, kwargs))
            self._adjust_thread_count()
            return f

    submit.__doc__ = _base.Executor.submit.__doc__

    def map(self, fn: Callable[..., _T], *iterables: Iterable[Any],
            timeout: Optional[float] = None, chunksize: int = 1) -> Iterator[_T]:
        """Like Executor.map; *chunksize* items are sent to a worker per task.

        As with ProcessPoolExecutor, a large chunksize cuts the per-task cost
        for long iterables of small tasks.
        """
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        if chunksize == 1:
            return super().map(fn, *iterables, timeout=timeout)
        # each chunk is one task: submit(_Chunk, fn, chunk), run by the worker as
        # one call() of the runtime's _process_chunk(fn, chunk)
        results = super().map(_Chunk, itertools.repeat(fn), _chunks(chunksize, *iterables),
                              timeout=timeout)
        return _chain(results)

    def _adjust_thread_count(self) -> None:
        if self._idle.acquire(timeout=0):
            return
        if len(self._threads) < self._max_workers:
            t = threading.Thread(
                target=_worker,
                args=(weakref.ref(self, _wake_on_collect(self._queue)), self._queue,
                      self._isolated, self._initializer, self._initargs, type(self)._run_item,
                      type(self)._broken_type),
                name="%s_%d" % (self._thread_name_prefix, len(self._threads)),
                daemon=_DAEMON_WORKERS)
            t.start()
            self._threads.add(t)
            _live.add(self)

    # -- shutdown -------------------------------------------------------------------

    def _wake_all(self) -> None:
        self._queue.put(None)

    def _fail_pending(self, exc_factory: Callable[[], BaseException]) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                if item.future.set_running_or_notify_cancel():
                    item.future.set_exception(exc_factory())
            else:
                self._queue.put(None)
                return

    def _initializer_failed(self, reason: str) -> None:
        with self._lock:
            self._broken = reason
            self._fail_pending(lambda: self._broken_type(reason))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting tasks; destroy the interpreters once their queues drain.

        ``cancel_futures=True`` cancels the tasks that have not started.  With
        ``wait=True``, return once every worker has finished and destroyed its
        interpreter.
        """
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                while True:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is not None:
                        item.future.cancel()
            self._queue.put(None)
        if wait:
            for t in list(self._threads):
                t.join()

    # -- hooks for subclasses (interpreters.pep734's executor) ------------------------

    # The exception type a broken pool raises.
    _broken_type: Type[BaseException] = BrokenInterpreterPool

    @staticmethod
    def _run_item(interp: Interpreter, fn: Callable[..., Any], args: Tuple[Any, ...],
                  kwargs: Dict[str, Any]) -> Any:
        """Run one task in the worker's interpreter; return its result or raise."""
        if fn is _Chunk:
            return call(interp, _rt._process_chunk, *args)
        return call(interp, fn, *args, **kwargs)

    # -- introspection --------------------------------------------------------------

    @property
    def interpreter_ids(self) -> FrozenSet[int]:
        """Ids of the interpreters this executor has created so far (a frozenset)."""
        return frozenset(self._interp_ids)


def _wake_on_collect(q: _Queue) -> Callable[[object], None]:
    def cb(_ref: object) -> None:
        q.put(None)
    return cb


def _worker(executor_ref: weakref.ref[InterpreterPoolExecutor], q: _Queue, isolated: bool,
            initializer: Optional[Callable[..., object]], initargs: Tuple[Any, ...],
            run_item: Callable[[Interpreter, Callable[..., Any], Tuple[Any, ...],
                                Dict[str, Any]], Any],
            broken_type: Type[BaseException]) -> None:
    interp: Optional[Interpreter] = None
    try:
        while True:
            item = q.get()
            if item is None:
                q.put(None)            # wake the next worker, then stop
                return
            ex = executor_ref()
            if interp is None:
                try:
                    interp = _interp_create(isolated)
                    if ex is not None:
                        ex._interp_ids.add(interp.id)
                    if initializer is not None:
                        call(interp, initializer, *initargs)
                except BaseException as exc:
                    reason = ("a worker's interpreter could not be initialized: %s: %s"
                              % (type(exc).__name__, exc))
                    if item.future.set_running_or_notify_cancel():
                        item.future.set_exception(broken_type(reason))
                    if ex is not None:
                        ex._initializer_failed(reason)
                    return
            del ex
            if item.future.set_running_or_notify_cancel():
                try:
                    result = run_item(interp, item.fn, item.args, item.kwargs)
                except BaseException as exc:
                    item.future.set_exception(exc)     # (exc is unbound on leaving)
                else:
                    item.future.set_result(result)
                    result = None
            item = None
            ex = executor_ref()
            if ex is not None:
                ex._idle.release()
            del ex
            if _exiting:
                return
    finally:
        if interp is not None:
            try:
                try:
                    interp.run(_FORGET_DUMMY_THREAD)
                except Exception:
                    pass
                interp.destroy()
            except Exception as exc:
                sys.stderr.write("InterpreterPoolExecutor: could not destroy interpreter "
                                 "%d: %s\n" % (interp.id, exc))


def _Chunk(fn: Callable[..., _T], chunk: Iterable[Tuple[Any, ...]]) -> List[_T]:
    """Marks a map() chunk in submit(); workers run it as one call() of _process_chunk."""
    return [fn(*args) for args in chunk]


def _interp_create(isolated: bool) -> Interpreter:
    from . import Interpreter
    return Interpreter(_interp.create(isolated=isolated))
