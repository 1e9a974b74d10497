"""interpreters.pep734: CPython 3.14's concurrent.interpreters API, on 3.8-3.13.

Written from 3.14's documented behaviour (Doc/library/concurrent.interpreters.rst,
Lib/concurrent/interpreters/, Lib/concurrent/futures/interpreter.py and their tests).
"""

import concurrent.futures
import glob
import inspect
import os
import pickle
import queue
import re
import subprocess
import sys
import threading
import time

import pytest

from support import (PYVER, REPO_ROOT, WAIT, assert_python_ok, destroy_leftovers,  # noqa: F401
                     finish, in_thread)

import interpreters
from interpreters import pep734
from interpreters.pep734 import _queues

OWN_GIL_CREATE = PYVER >= (3, 13)
OWN_GIL_EXECUTOR = PYVER >= (3, 13)


def _current_id():
    from interpreters import pep734
    return pep734.get_current().id


def _add(a, b=0):
    return a + b


def _fail(exc_type, msg):
    raise exc_type(msg)


class _Unpicklable(Exception):
    def __reduce__(self):
        raise TypeError("no pickling")


def _raise_unpicklable():
    raise _Unpicklable("deep")


def _return_lock():
    import threading
    return threading.Lock()


# -- module surface -------------------------------------------------------------------

def test_all_is_314s():
    assert sorted(pep734.__all__) == sorted([
        "get_current", "get_main", "create", "list_all", "is_shareable", "Interpreter",
        "InterpreterError", "InterpreterNotFoundError", "ExecutionFailed",
        "NotShareableError", "create_queue", "Queue", "QueueEmpty", "QueueFull"])
    for name in pep734.__all__:
        assert getattr(pep734, name) is not None
    for name in ["UNBOUND", "UNBOUND_ERROR", "UNBOUND_REMOVE", "create", "list_all", "Queue",
                 "QueueError", "QueueNotFoundError", "QueueEmpty", "QueueFull",
                 "ItemInterpreterDestroyed"]:
        assert name in _queues.__all__ and hasattr(_queues, name), name
    assert pep734.Queue is _queues.Queue and pep734.create_queue is _queues.create


def test_exception_hierarchy():
    assert issubclass(pep734.InterpreterNotFoundError, pep734.InterpreterError)
    assert issubclass(pep734.ExecutionFailed, pep734.InterpreterError)
    assert issubclass(pep734.NotShareableError, TypeError)
    assert issubclass(pep734.QueueEmpty, _queues.QueueError)
    assert issubclass(pep734.QueueEmpty, queue.Empty)
    assert issubclass(pep734.QueueFull, _queues.QueueError)
    assert issubclass(pep734.QueueFull, queue.Full)
    assert issubclass(_queues.QueueNotFoundError, _queues.QueueError)
    assert issubclass(_queues.ItemInterpreterDestroyed, _queues.QueueError)
    # the two faces share the interpreter errors
    assert pep734.InterpreterError is interpreters.InterpreterError


def test_import_line_of_314_code():
    assert_python_ok("""
        try:
            from concurrent import interpreters
        except ImportError:
            from interpreters import pep734 as interpreters
        assert interpreters.__name__ == "interpreters.pep734", interpreters
        interp = interpreters.create()
        interp.exec("x = 6 * 7")
        assert interp.call(pow, 2, 5) == 32
        interp.close()
    """)


# -- interpreters ---------------------------------------------------------------------

def test_create_gil_by_version():
    interp = pep734.create()
    assert isinstance(interp, pep734.Interpreter)
    assert interp in pep734.list_all()
    assert pep734.OWN_GIL is OWN_GIL_CREATE
    assert interp.own_gil is OWN_GIL_CREATE
    assert pep734.get_main().own_gil is False
    interp.close()


def test_interpreter_ids():
    main = pep734.get_main()
    assert main.id == 0 and main is pep734.get_current() and main is pep734.Interpreter(0)
    for bad in ["0", 0.0, None, object(), ""]:
        with pytest.raises(TypeError):
            pep734.Interpreter(bad)
    with pytest.raises(ValueError):
        pep734.Interpreter(-1)
    with pytest.raises(pep734.InterpreterNotFoundError):
        pep734.Interpreter(1_000_000)
    interp = pep734.create()
    assert pep734.Interpreter(interp.id) is interp
    assert hash(interp) == hash(interp.id)
    assert interp == interp and interp != main
    with pytest.raises(AttributeError):
        interp.id = 5
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert pickle.loads(pickle.dumps(interp, protocol)) is interp
    assert repr(interp) == "Interpreter(%d)" % interp.id
    interp.close()


def test_list_all_in_creation_order():
    first, second = pep734.create(), pep734.create()
    ids = [i.id for i in pep734.list_all()]
    assert ids[0] == 0 and ids[-2:] == [first.id, second.id]
    first.close()
    assert first not in pep734.list_all() and second in pep734.list_all()
    second.close()


def test_whence():
    interp = pep734.create()
    assert pep734.get_main().whence == "runtime init"
    assert interp.whence == "_interpreters module"
    with pytest.raises(AttributeError):
        interp.whence = "unknown"
    interp.close()


@pytest.mark.skipif(PYVER != (3, 13), reason="CPython 3.13 records whence; its _interpreters module is 3.13+")
def test_whence_of_interpreters_made_by_cpythons_module():
    import _interpreters
    iid = _interpreters.create()
    try:
        foreign = pep734.Interpreter(iid)
        assert foreign.whence == "_interpreters module"
        with pytest.raises(pep734.InterpreterError, match="not created by this package"):
            foreign.is_running()
        with pytest.raises(pep734.InterpreterError, match="not created by this package"):
            foreign.exec("pass")
    finally:
        _interpreters.destroy(iid)


def test_get_current_inside():
    interp = pep734.create()
    assert interp.call(_current_id) == interp.id
    interp.close()


def test_is_running():
    interp = pep734.create()
    assert pep734.get_main().is_running()
    assert not interp.is_running()
    r, w = os.pipe()
    try:
        t = interp.call_in_thread(os.read, r, 1)
        for _ in range(WAIT * 100):
            if interp.is_running():
                break
            threading.Event().wait(0.01)
        assert interp.is_running()
        with pytest.raises(pep734.InterpreterError):
            interp.close()                      # running
        os.write(w, b"x")
        t.join(WAIT)
    finally:
        os.close(r)
        os.close(w)
    assert not interp.is_running()
    interp.close()
    with pytest.raises(pep734.InterpreterNotFoundError):
        interp.is_running()


def test_close():
    with pytest.raises(pep734.InterpreterError):
        pep734.get_main().close()
    interp = pep734.create()
    interp.close()
    with pytest.raises(pep734.InterpreterNotFoundError):
        interp.close()


def test_close_joins_non_daemon_threads():
    interp = pep734.create()
    r, w = os.pipe()
    try:
        interp.exec("""if True:
            import os, threading, time
            def late():
                time.sleep(0.3)
                os.write(%d, b"done")
            threading.Thread(target=late).start()
            """ % w)
        interp.close()
        os.set_blocking(r, False)
        assert os.read(r, 4) == b"done"      # written before close() returned
    finally:
        os.close(r)
        os.close(w)


def test_prepare_main():
    interp = pep734.create()
    interp.prepare_main({"a": 1, "b": "two"}, c=(3, b"4"), d={"k": [1, 2]})
    interp.exec("assert (a, b, c, d) == (1, 'two', (3, b'4'), {'k': [1, 2]}), (a, b, c, d)")
    interp.prepare_main(a=5)
    interp.exec("assert a == 5")
    with pytest.raises(pep734.NotShareableError):
        interp.prepare_main(lock=threading.Lock())
    interp.close()


def test_exec_source_with_null_bytes_raises_valueerror():
    interp = pep734.create()
    with pytest.raises(ValueError, match="null bytes"):
        interp.exec("x = 1\0")
    interp.close()


def test_prepare_main_with_nothing_raises_valueerror():
    interp = pep734.create()
    with pytest.raises(ValueError):
        interp.prepare_main()
    with pytest.raises(ValueError):
        interp.prepare_main({})
    interp.close()


def test_put_nowait_ignores_the_timeout():
    q = pep734.create_queue(1)
    q.put(1, block=False, timeout=-1)         # as 3.14: block=False is put_nowait()
    with pytest.raises(pep734.QueueFull):
        q.put(2, block=False, timeout=-1)
    with pytest.raises(ValueError):
        q.put(2, timeout=-1)
    assert q.get(block=False, timeout=-1) == 1


def test_prepare_main_while_running():
    interp = pep734.create()
    r, w = os.pipe()
    try:
        t = interp.call_in_thread(os.read, r, 1)
        for _ in range(WAIT * 100):
            if interp.is_running():
                break
            threading.Event().wait(0.01)
        with pytest.raises(pep734.InterpreterError):
            interp.prepare_main(x=1)
        os.write(w, b"x")
        t.join(WAIT)
    finally:
        os.close(r)
        os.close(w)
    interp.close()


def test_exec_str_and_state_persists():
    interp = pep734.create()
    interp.exec("import sys; spam = sys.modules['__main__'].__name__")
    interp.exec("assert spam == '__main__'")
    interp.close()


def _exec_body():
    import sys
    sys.modules["__main__"].ran_body = True


def test_exec_function_and_code():
    interp = pep734.create()
    interp.exec(_exec_body)
    interp.exec("assert ran_body")
    interp.exec(compile("code_ran = 1", "<x>", "exec"))
    interp.exec("assert code_ran == 1")
    with pytest.raises(TypeError):
        interp.exec(_add)                       # takes arguments
    x = 1

    def closure():
        return x
    with pytest.raises(TypeError):
        interp.exec(closure)
    for bad in [42, b"pass", None]:
        with pytest.raises(TypeError):
            interp.exec(bad)
    interp.close()


def test_execution_failed():
    interp = pep734.create()
    with pytest.raises(pep734.ExecutionFailed) as info:
        interp.exec("def f():\n    raise ValueError('spam')\nf()")
    err = info.value
    excinfo = err.excinfo
    assert excinfo.type.__name__ == "ValueError"
    assert excinfo.type.__qualname__ == "ValueError"
    assert excinfo.type.__module__ == "builtins"
    assert excinfo.msg == "spam"
    assert excinfo.formatted == "ValueError: spam"
    assert excinfo.errdisplay.startswith("Traceback (most recent call last):")
    assert excinfo.errdisplay.endswith("ValueError: spam")
    assert str(err) == ("ValueError: spam\n\nUncaught in the interpreter:\n\n"
                        + excinfo.errdisplay)
    interp.exec("assert True")                  # still usable
    interp.close()


def test_call():
    interp = pep734.create()
    assert interp.call(_add, 1, b=2) == 3
    assert interp.call(_current_id) == interp.id
    with pytest.raises(pep734.ExecutionFailed) as info:
        interp.call(_fail, KeyError, "k")
    assert info.value.excinfo.type.__name__ == "KeyError"
    display = info.value.excinfo.errdisplay
    assert display.startswith("Traceback (most recent call last):\n  File ")
    assert ", in _fail\n" in display and "KeyError: 'k'" in display
    assert "_interpreters_callrt" not in display and '"<string>"' not in display, display
    with pytest.raises(pep734.NotShareableError):
        interp.call(_add, threading.Lock())     # unpicklable argument
    with pytest.raises(pep734.NotShareableError):
        interp.call(_return_lock)               # unpicklable result
    interp.close()


def test_call_sends_closures_by_value():
    # A documented superset of 3.14 (which raises NotShareableError here).
    interp = pep734.create()
    base = 40
    assert interp.call(lambda: base + 2) == 42
    interp.close()


def test_call_in_thread():
    interp = pep734.create()
    r, w = os.pipe()
    try:
        t = interp.call_in_thread(os.write, w, b"hi")
        assert isinstance(t, threading.Thread)
        t.join(WAIT)
        assert not t.is_alive()
        assert os.read(r, 2) == b"hi"
    finally:
        os.close(r)
        os.close(w)
    seen = []
    old = threading.excepthook
    threading.excepthook = lambda args: seen.append(args.exc_type)
    try:
        t = interp.call_in_thread(_fail, ValueError, "x")
        t.join(WAIT)
    finally:
        threading.excepthook = old
    assert seen == [pep734.ExecutionFailed]
    interp.close()


def test_at_exit_open_interpreters_are_reported():
    out, err = assert_python_ok("""
        from interpreters import pep734
        interp = pep734.create()
        interp.exec("x = 1")
        print("ok")
    """)
    assert ("<sys>:0: RuntimeWarning: remaining subinterpreters; close them with "
            "Interpreter.close()") in err, err
    assert out == "ok\n"


def test_fork_inside_raises_runtimeerror():
    interp = pep734.create()
    with pytest.raises(pep734.ExecutionFailed) as info:
        interp.exec("import os\npid = os.fork()\nif pid == 0: os._exit(0)")
    assert info.value.excinfo.type.__name__ == "RuntimeError"
    interp.exec("assert 'pid' not in dir()")
    interp.close()


def test_ctrl_c_interrupts_a_queue_get():
    out, err = assert_python_ok("""
        import os, signal, threading
        from interpreters import pep734
        q = pep734.create_queue()
        started = threading.Event()

        def interrupt():
            started.wait()
            threading.Event().wait(0.3)    # let the main thread reach get()
            os.kill(os.getpid(), signal.SIGINT)

        threading.Thread(target=interrupt).start()
        started.set()
        try:
            q.get()                   # waits forever unless Ctrl-C cuts it short
        except KeyboardInterrupt:
            print("interrupted")
        q.put(1)
        print(q.get_nowait())
    """)
    assert out == "interrupted\n1\n", (out, err)


# -- shareable ------------------------------------------------------------------------

def test_is_shareable():
    q = pep734.create_queue()
    for obj in [None, True, False, b"b", "s", 1, -(2 ** 63), 2 ** 63 - 1, 1.5, (), (1, ("a",)),
                q, (q, 1)]:
        assert pep734.is_shareable(obj), obj
    assert pep734.is_shareable(memoryview(b"x"))
    for obj in [2 ** 63, 2 ** 1000, [1], {}, {1}, object(), bytearray(b"x"), (1, [2]),
                threading.Lock(), pep734.get_main(), (memoryview(b"x"),)]:
        assert not pep734.is_shareable(obj), obj


def test_memoryview_shares_its_buffer_through_a_queue():
    q = pep734.create_queue()
    buf = bytearray(b"hello")
    q.put(memoryview(buf))
    mv = q.get()
    assert type(mv) is memoryview and bytes(mv) == b"hello" and not mv.readonly
    mv[0] = ord("J")
    assert buf == b"Jello"                      # the same memory, not a copy
    del mv
    q.put(memoryview(b"ro"))
    assert q.get().readonly
    interp = pep734.create()
    interp.prepare_main(q=q)
    q.put(memoryview(buf))
    interp.exec("mv = q.get(); mv[1] = ord('E'); del mv")
    assert buf == b"JEllo"                      # written from the other interpreter
    interp.exec("b = bytearray(b'sub'); q.put(memoryview(b))")
    mv = q.get()
    assert bytes(mv) == b"sub"
    with pytest.raises(pep734.InterpreterError, match="held"):
        interp.close()                          # its buffer is still held here
    del mv
    interp.close()
    with pytest.raises(pep734.NotShareableError, match="contiguous"):
        q.put(memoryview(b"abcdef")[::2])
    with pytest.raises(pep734.NotShareableError):
        q.put((memoryview(b"x"),))
    assert q.empty()


# -- queues ---------------------------------------------------------------------------

def test_create_queue():
    q = pep734.create_queue()
    assert q.maxsize == 0 and q.unbounditems is _queues.UNBOUND
    assert q.empty() and not q.full() and q.qsize() == 0
    q2 = pep734.create_queue(2, unbounditems=_queues.UNBOUND_ERROR)
    assert q2.maxsize == 2 and q2.unbounditems is _queues.UNBOUND_ERROR
    with pytest.raises(NotImplementedError):
        pep734.create_queue(unbounditems="nope")
    assert {q, q2} <= set(_queues.list_all())
    with pytest.raises(TypeError):
        pep734.create_queue(maxsize=1, unbounditems=_queues.UNBOUND, extra=1)


def test_create_queue_maxsize():
    # 3.14 gives a bound of 0 or less back as given (test_queues: create(-10).maxsize)
    for m in (0, -1, -10):
        q = pep734.create_queue(m)
        assert q.maxsize == m
        for i in range(20):
            q.put_nowait(i)               # unbounded
        assert not q.full() and q.qsize() == 20
        assert interpreters.Queue._received(q.id, received=False).maxsize == 0
    with pytest.raises(TypeError):
        pep734.create_queue("1")
    q = pep734.create_queue(3)
    with pytest.raises(AttributeError):
        q.maxsize = 5
    with pytest.raises(AttributeError):
        q.id = 5


def test_queue_by_bare_id_in_another_interpreter():
    q = pep734.create_queue()
    q.put(b"spam")
    interp = pep734.create()
    interp.exec("""if True:
        from interpreters.pep734 import Queue
        q = Queue(%d)
        assert q.qsize() == 1
        assert q.get() == b"spam"
        q.put(b"eggs")
        """ % q.id)
    assert q.get_nowait() == b"eggs"
    interp.close()


def test_queue_ids():
    q = pep734.create_queue()
    assert pep734.Queue(q.id) is q
    assert hash(q) == hash(q.id)
    assert pickle.loads(pickle.dumps(q)) is q
    for bad in ["1", 1.0, None]:
        with pytest.raises(TypeError):
            pep734.Queue(bad)
    with pytest.raises(_queues.QueueNotFoundError):
        pep734.Queue(1_000_000)
    rch, sch = interpreters.create_channel()    # a channel is not a queue
    with pytest.raises(_queues.QueueNotFoundError):
        pep734.Queue(rch.id)
    assert rch.id not in [x.id for x in _queues.list_all()]


def test_queue_put_get():
    q = pep734.create_queue()
    items = [None, True, 7, 1.5, "s", b"b", (1, "x"), [1, 2], {"a": 1}, 2 ** 100]
    for x in items:
        q.put(x)
    assert q.qsize() == len(items) and not q.empty()
    got = [q.get() for _ in items]
    assert got == items
    d = {"a": 1}
    q.put(d)
    out = q.get()
    assert out == d and out is not d            # pickled: a copy
    with pytest.raises(pep734.NotShareableError):
        q.put(threading.Lock())
    assert q.empty()


def test_queue_empty_full():
    q = pep734.create_queue(1)
    with pytest.raises(pep734.QueueEmpty):
        q.get_nowait()
    with pytest.raises(pep734.QueueEmpty):
        q.get(block=False)
    with pytest.raises(pep734.QueueEmpty):
        q.get(timeout=0.05)
    q.put_nowait(1)
    assert q.full()
    with pytest.raises(pep734.QueueFull):
        q.put_nowait(2)
    with pytest.raises(pep734.QueueFull):
        q.put(2, timeout=0.05)
    with pytest.raises(ValueError):
        q.get(timeout=-1)
    assert q.get() == 1


def test_queue_blocking_get_is_woken_across_interpreters():
    q = pep734.create_queue()
    interp = pep734.create()
    t = in_thread(q.get, timeout=WAIT)         # a float timeout (3.14 truncates to int)
    t.join(0.2)
    assert t.is_alive()                          # it is waiting
    interp.prepare_main(q=q)
    interp.exec("q.put(('from', 'sub'))")
    assert finish(t) == ("from", "sub")
    interp.close()


def test_queue_blocking_put_waits_for_room():
    q = pep734.create_queue(1)
    q.put(1)
    t = in_thread(q.put, 2, timeout=WAIT)
    t.join(0.2)
    assert t.is_alive()
    assert q.get() == 1
    finish(t)
    assert q.get() == 2


def test_queue_travels_as_queue():
    q = pep734.create_queue()
    inner = pep734.create_queue()
    q.put(inner)
    q.put((inner, 1))
    assert q.get() is inner
    assert q.get() == (inner, 1)
    interp = pep734.create()
    interp.prepare_main(q=q, inner=inner)
    interp.exec("q.put(inner); q.put(type(inner).__module__)")
    assert q.get() is inner
    assert q.get() == "interpreters.pep734._queues"
    interp.close()


@pytest.mark.parametrize("default", ["UNBOUND", "UNBOUND_ERROR", "UNBOUND_REMOVE"])
def test_unbound_items(default):
    default = getattr(_queues, default)
    q = pep734.create_queue(unbounditems=default)
    interp = pep734.create()
    interp.prepare_main(q=q)
    interp.exec("""if True:
        from interpreters.pep734 import _queues
        assert q.unbounditems is _queues.%s
        q.put("dflt")
        q.put("u", unbounditems=_queues.UNBOUND)
        q.put("e", unbounditems=_queues.UNBOUND_ERROR)
        q.put("r", unbounditems=_queues.UNBOUND_REMOVE)
        """ % {id(_queues.UNBOUND): "UNBOUND", id(_queues.UNBOUND_ERROR): "UNBOUND_ERROR",
               id(_queues.UNBOUND_REMOVE): "UNBOUND_REMOVE"}[id(default)])
    q.put("main")
    interp.close()
    results = []
    while True:
        try:
            results.append(q.get_nowait())
        except pep734.QueueEmpty:
            break
        except _queues.ItemInterpreterDestroyed:
            results.append("error")
    first = {id(_queues.UNBOUND): [_queues.UNBOUND], id(_queues.UNBOUND_ERROR): ["error"],
             id(_queues.UNBOUND_REMOVE): []}[id(default)]
    assert results == first + [_queues.UNBOUND, "error", "main"]


def test_unbound_remove_happens_at_destroy():
    # 3.14's test_put_cleared_with_subinterpreter_mixed: qsize() drops at once
    q = pep734.create_queue()
    q.put(b"ham", unbounditems=_queues.UNBOUND_REMOVE)     # main's: never removed
    interp = pep734.create()
    interp.prepare_main(q=q)
    interp.exec("""if True:
        from interpreters.pep734 import _queues as queues
        q.put(1, unbounditems=queues.UNBOUND)
        q.put(2, unbounditems=queues.UNBOUND_ERROR)
        q.put(3)
        q.put(4, unbounditems=queues.UNBOUND_REMOVE)
        q.put([5], unbounditems=queues.UNBOUND_REMOVE)
        q.put(6, unbounditems=queues.UNBOUND)
        """)
    assert q.qsize() == 7
    interp.close()
    assert q.qsize() == 5
    assert q.get() == b"ham"
    assert q.get() is _queues.UNBOUND
    with pytest.raises(_queues.ItemInterpreterDestroyed):
        q.get()
    assert q.qsize() == 2
    assert q.get() is _queues.UNBOUND and q.get() is _queues.UNBOUND
    assert q.qsize() == 0


def test_unbound_remove_frees_room_in_a_full_queue():
    q = pep734.create_queue(2, unbounditems=_queues.UNBOUND_REMOVE)
    interp = pep734.create()
    interp.prepare_main(q=q)
    interp.exec("q.put(1); q.put(2)")
    assert q.full()
    interp.close()
    assert q.qsize() == 0 and not q.full()
    q.put_nowait(3)
    assert q.get_nowait() == 3


def test_interpreter_destroyed_when_its_object_is_collected():
    # 3.14: create() returns the owning object; `del interp` destroys it
    # (3.14's test_put_cleared_with_subinterpreter relies on it)
    q = pep734.create_queue()
    interp = pep734.create()
    iid = interp.id
    interp.prepare_main(q=q)
    interp.exec("from interpreters.pep734 import _queues as queues\n"
                "q.put(b'spam', unbounditems=queues.UNBOUND_REMOVE)")
    assert q.qsize() == 1
    del interp
    assert not interpreters._interp.exists(iid)
    assert q.qsize() == 0
    # an object for an interpreter made otherwise owns nothing
    core = interpreters.create()
    other = pep734.Interpreter(core.id)
    del other
    assert pep734.Interpreter(core.id).id == core.id
    core.destroy()


def test_collected_inside_the_package_is_deferred_to_the_next_call():
    interp = pep734.create()
    iid = interp.id
    # The last reference dropped with a frame of the package on the stack (as a
    # GC pass inside a queue operation would): __del__ only records the id.
    ns = {"__name__": "interpreters._frame_of_the_package"}
    exec("def drop(box):\n    box.clear()\n", ns)
    box = [interp]
    del interp
    ns["drop"](box)
    assert pep734._pending == [iid] and interpreters._interp.exists(iid)
    pep734.list_all()                            # the next call destroys it
    assert not interpreters._interp.exists(iid) and not pep734._pending


def test_collection_never_destroys_a_running_interpreter():
    interp = pep734.create()
    iid = interp.id
    q = pep734.create_queue()
    interp.prepare_main(q=q)
    core = interpreters.Interpreter(iid)
    t = threading.Thread(target=core.run, args=("q.get()",))
    t.start()
    while not core.is_running():
        time.sleep(0.005)
    del interp
    assert pep734._pending == [iid] and interpreters._interp.exists(iid)
    q.put(None)
    t.join()
    pep734.list_all()
    assert not interpreters._interp.exists(iid) and not pep734._pending


def test_collection_in_a_subinterpreter_and_at_exit_never_crash():
    out, err = assert_python_ok("""if True:
        import gc
        from interpreters import pep734
        outer = pep734.create()
        outer.exec('''if True:
            from interpreters import pep734, _interp
            inner = pep734.create()
            kept = pep734.create()
            iid = inner.id
            del inner                       # destroyed from the subinterpreter
            assert not _interp.exists(iid)
            ''')
        del outer                           # its own 'kept' is left to exit
        cycle = [pep734.create()]
        cycle.append(cycle)
        del cycle
        gc.collect()
        held = pep734.create()              # at exit: reported, then ended
        print("ok")
        """)
    assert out == "ok\n"
    assert "Fatal" not in err and err.count("remaining subinterpreters") == 1, err


def test_collection_under_thread_and_gc_stress():
    # Owners dropped by several threads and collected by a GC thread at any moment
    # (tiny switch interval), while other interpreters are created and run.
    out, err = assert_python_ok("""if True:
        import gc, sys, threading
        sys.setswitchinterval(1e-5)
        from interpreters import pep734, _interp
        q = pep734.create_queue()
        made = []
        lock = threading.Lock()
        def worker(n):
            for i in range(6):
                interp = pep734.create()
                with lock:
                    made.append(interp.id)
                interp.prepare_main(q=q)
                interp.exec("q.put(1)")
                q.get()
                if i % 2:
                    box = [interp]; box.append(box)     # left to the cyclic GC
                del interp
                q.put(b"x"); q.get()
        def collector():
            for _ in range(200):
                gc.collect()
        ts = [threading.Thread(target=worker, args=(n,)) for n in range(3)]
        ts.append(threading.Thread(target=collector))
        for t in ts: t.start()
        for t in ts: t.join()
        gc.collect()
        pep734.list_all()                                 # runs deferred destroys
        left = [i for i in made if _interp.exists(i)]
        print(len(made), left)
        """)
    assert out == "18 []\n", (out, err)
    assert "Traceback" not in err, err


def test_unbound_before_destroy_items_are_normal():
    q = pep734.create_queue(unbounditems=_queues.UNBOUND_ERROR)
    interp = pep734.create()
    interp.prepare_main(q=q)
    interp.exec("q.put(1)")
    assert q.get() == 1
    interp.close()


def test_unbound_markers_pickle():
    for marker in (_queues.UNBOUND, _queues.UNBOUND_ERROR, _queues.UNBOUND_REMOVE):
        assert pickle.loads(pickle.dumps(marker)) is marker
    assert repr(_queues.UNBOUND) == "interpreters.pep734._queues.UNBOUND"


@pytest.mark.skipif(PYVER != (3, 12), reason="the own-GIL queue rule is 3.12's only")
def test_queue_into_own_gil_interpreter_on_312():
    q = pep734.create_queue()
    interp = pep734.Interpreter(interpreters.create(isolated=True).id)
    assert interp.own_gil
    with pytest.raises(pep734.NotShareableError, match="3.12"):
        interp.prepare_main(q=q)
    with pytest.raises(pep734.NotShareableError, match="3.12"):
        interp.call(_add, q)
    interp.prepare_main(x=1)                    # other values still pass
    interp.close()


# -- the two faces --------------------------------------------------------------------

def test_interpreter_from_either_face():
    core = interpreters.create()
    face = pep734.Interpreter(core.id)
    face.exec("made_by = 'pep 554'")
    assert face.call(_add, 1, 1) == 2
    assert face.whence == "_interpreters module"
    other = pep734.create()
    interpreters.Interpreter(other.id).run("assert 1")
    assert interpreters.Interpreter(other.id) in interpreters.list_all()
    face.close()
    with pytest.raises(interpreters.InterpreterNotFoundError):
        core.destroy()
    interpreters.Interpreter(other.id).destroy()
    with pytest.raises(pep734.InterpreterNotFoundError):
        other.close()


def test_queue_from_either_face():
    core = interpreters.Queue()
    face = pep734.Queue(core.id)
    core.put(5)
    assert face.get() == 5                       # a PEP 554 item, as it is
    face.put(6)
    assert face.get() == 6
    assert face.maxsize == 0


# -- the executor ---------------------------------------------------------------------

def test_executor_signature():
    from interpreters.pep734 import InterpreterPoolExecutor
    params = inspect.signature(InterpreterPoolExecutor).parameters
    assert [(p.name, p.default) for p in params.values()] == [
        ("max_workers", None), ("thread_name_prefix", ""), ("initializer", None),
        ("initargs", ())]
    assert issubclass(pep734.BrokenInterpreterPool, concurrent.futures.thread.BrokenThreadPool)
    with InterpreterPoolExecutor() as ex:
        assert ex._max_workers == min(32, (os.cpu_count() or 1) + 4)
    with pytest.raises(ValueError):
        InterpreterPoolExecutor(0)


def test_executor_runs_tasks():
    with pep734.InterpreterPoolExecutor(2, thread_name_prefix="pool") as ex:
        assert ex.submit(_add, 1, b=2).result(WAIT) == 3
        assert list(ex.map(abs, [-1, -2, 3])) == [1, 2, 3]
        assert list(ex.map(abs, range(-5, 0), chunksize=2)) == [5, 4, 3, 2, 1]
        assert ex._threads and all(t.name.startswith("pool_") for t in ex._threads)
        ids = ex.interpreter_ids
        assert ids and all(pep734.Interpreter(i).own_gil is OWN_GIL_EXECUTOR for i in ids)


def test_executor_reraises_the_original():
    with pep734.InterpreterPoolExecutor(1) as ex:
        with pytest.raises(KeyError) as info:
            ex.submit(_fail, KeyError, "k").result(WAIT)
        assert type(info.value) is KeyError
        assert isinstance(info.value.__cause__, pep734.ExecutionFailed)
        assert "Uncaught in the interpreter" in str(info.value.__cause__)
        display = info.value.__cause__.excinfo.errdisplay
        assert ", in _fail\n" in display and "_capture" not in display, display
        with pytest.raises(pep734.ExecutionFailed) as info2:
            ex.submit(_raise_unpicklable).result(WAIT)
        assert info2.value.excinfo.type.__name__ == "_Unpicklable"


def test_no_teardown_noise_after_a_task_used_threading():
    # A task that logs (threading.current_thread() in a worker thread) left a marker
    # whose teardown printed "Exception ignored ... TypeError" on 3.13.
    out, err = assert_python_ok("""
        import threading
        from interpreters import pep734

        def task():
            import logging, threading
            logging.getLogger("t").warning("in %s", threading.current_thread().name)
            return 1

        with pep734.InterpreterPoolExecutor(1) as ex:
            assert ex.submit(task).result() == 1
        interp = pep734.create()
        t = threading.Thread(target=lambda: (interp.call(task), interp.close()))
        t.start()
        t.join()
        assert interp not in pep734.list_all()
        print("ok")
    """)
    assert out == "ok\n"
    assert "Exception ignored" not in err and "Traceback" not in err, err


def test_executor_broken_by_initializer():
    with pep734.InterpreterPoolExecutor(1, initializer=_fail,
                                        initargs=(RuntimeError, "init")) as ex:
        with pytest.raises(pep734.BrokenInterpreterPool):
            ex.submit(_add, 1).result(WAIT)


def test_pyproject_installs_the_subpackage():
    with open(os.path.join(REPO_ROOT, "pyproject.toml"), encoding="utf-8") as f:
        text = f.read()
    packages = re.search(r"^packages = \[(.*)\]$", text, re.M).group(1)
    assert '"interpreters.pep734"' in packages, packages


# -- examples -------------------------------------------------------------------------

EXAMPLES = sorted(glob.glob(os.path.join(REPO_ROOT, "examples", "pep734", "*.py")))


def test_examples_exist():
    names = {os.path.basename(p) for p in EXAMPLES}
    assert {"exec_code.py", "call_function.py", "queues.py", "executor.py"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=[os.path.basename(p) for p in EXAMPLES])
def test_example_runs_unchanged(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    assert ("try:\n    from concurrent import interpreters\nexcept ImportError:\n"
            "    from interpreters import pep734 as interpreters\n") in text
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    p = subprocess.run([sys.executable, "-X", "faulthandler", path], cwd=REPO_ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "Fatal Python error" not in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert p.stdout.strip()
