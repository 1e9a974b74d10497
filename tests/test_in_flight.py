"""Channel ends, queues and connections inside call() arguments and results are in flight.

While a pickle made by the call() transport is on its way, what it carries counts as
in flight, as inside a channel message: closing (or dropping) the sender's object
right after cannot close it for the receiver.  A pickle that is never loaded (a busy
interpreter, a pickling error) takes its counts back, so nothing is kept open.
"""

import gc
import threading
import time

import pytest

import interpreters
from interpreters import _channels
from support import destroy_leftovers  # noqa: F401 (autouse fixture)


def transit(cid):
    with _channels._locked as R:
        base = (cid % _channels.NCSLOTS) * _channels.CSLOT_WORDS
        if R.T[base + _channels.CID] != cid:
            return None                        # the channel is gone
        return (R.T[base + _channels.TRANSIT_R], R.T[base + _channels.TRANSIT_S])


def open_ids():
    return {r.id for r, _ in interpreters.list_all_channels()}


def make_queue():
    import interpreters
    q = interpreters.Queue()
    q.put("made in the sub")
    return q                                   # the sub's last reference goes here


def make_channel():
    import interpreters
    r, s = interpreters.create_channel()
    return r                                   # only the receiving end comes back


def test_queue_created_in_a_call_survives_the_return():
    interp = interpreters.create()
    q = interp.call(make_queue)
    assert q.get(timeout=5) == "made in the sub"
    assert transit(q.id) == (0, 0)             # counted once, taken back once
    interp.destroy()
    q.put(1)                                   # ours alone now, still usable
    assert q.get_nowait() == 1


def test_end_created_in_a_call_survives_the_return():
    interp = interpreters.create()
    r = interp.call(make_channel)
    assert isinstance(r, interpreters.RecvChannel)
    assert transit(r.id) == (0, 0)
    assert r.recv_nowait("nothing") == "nothing"
    interp.destroy()


def echo_twice(conn):
    conn.send(conn.recv() * 2)
    conn.close()


def test_connection_closed_right_after_call_in_thread():
    interp = interpreters.create()
    a, b = interpreters.Pipe()
    t = interp.call_in_thread(echo_twice, b)
    b.close()                                  # in flight: the sub still gets it
    a.send(21)
    assert a.recv(timeout=30) == 42
    t.result(30)
    with pytest.raises(EOFError):              # the sub closed its end when done
        a.recv(timeout=30)
    interp.destroy()


def test_busy_interpreter_takes_the_counts_back():
    interp = interpreters.create()
    r, s = interpreters.create_channel()
    cid = r.id
    busy = threading.Thread(target=interp.run, args=("import time; time.sleep(0.5)",))
    busy.start()
    time.sleep(0.1)
    with pytest.raises(interpreters.InterpreterError):
        interp.call(print, r, s)
    busy.join()
    assert transit(cid) == (0, 0)
    del r, s
    gc.collect()
    assert cid not in open_ids()              # nothing kept it open
    interp.destroy()


def test_pickling_error_takes_the_counts_back():
    interp = interpreters.create()
    q = interpreters.Queue()
    with pytest.raises(interpreters.NotSendableError):
        interp.call(print, q, threading.Lock())
    assert transit(q.id) == (0, 0)
    a, b = interpreters.Pipe()
    with pytest.raises(interpreters.NotSendableError):
        interp.call(print, (a, b), threading.Lock())
    assert transit(a._rid) == (0, 0) and transit(a._sid) == (0, 0)
    interp.destroy()


def test_closed_end_cannot_travel_in_a_call():
    interp = interpreters.create()
    r, s = interpreters.create_channel()
    s.close(force=True)
    with pytest.raises(interpreters.NotSendableError) as info:
        interp.call(print, r)
    assert "closed" in str(info.value)
    interp.destroy()


def test_executor_passes_a_queue_to_every_task():
    q = interpreters.Queue()
    with interpreters.InterpreterPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(q.put, i) for i in range(20)]
        for f in futures:
            f.result(30)
    assert sorted(q.get_nowait() for _ in range(20)) == list(range(20))
    assert transit(q.id) == (0, 0)
