"""The call()/executor layer as users reach it: through the public names."""

import concurrent.futures

import pytest

import interpreters


def triple(x):
    return 3 * x


def fail(key):
    return {}[key]


@pytest.fixture
def interp():
    it = interpreters.create()
    yield it
    it.destroy()


def test_interpreter_call_returns_result(interp):
    assert interp.call(triple, 14) == 42
    assert interp.call(lambda *a, **k: (a, k), 1, x=2) == ((1,), {"x": 2})


def test_interpreter_call_reraises_builtin_type(interp):
    with pytest.raises(KeyError) as info:
        interp.call(fail, "missing")
    assert isinstance(info.value, interpreters.RunFailedError)
    assert info.value.excinfo.type_name == "KeyError"


def test_interpreter_call_refuses_unsendable_argument(interp):
    import threading
    with pytest.raises(interpreters.NotSendableError):
        interp.call(triple, threading.Lock())
    assert interp.call(triple, 1) == 3            # still usable afterwards


def test_call_in_thread_and_run_in_thread(interp):
    handle = interp.call_in_thread(triple, 5)
    assert handle.result(timeout=30) == 15
    handle = interp.run_in_thread("raise ValueError('boom')")
    with pytest.raises(ValueError):
        handle.join()


def test_public_executor_is_an_executor():
    with interpreters.InterpreterPoolExecutor(max_workers=2) as pool:
        assert isinstance(pool, concurrent.futures.Executor)
        assert list(pool.map(triple, range(6), chunksize=2)) == [0, 3, 6, 9, 12, 15]
        with pytest.raises(KeyError):
            pool.submit(fail, "k").result(timeout=30)
    assert interpreters.InterpreterPoolExecutor.__module__ == "interpreters"
    assert "InterpreterPoolExecutor" in interpreters.__all__
