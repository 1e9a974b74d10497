"""Channels: PEP 554's create_channel(), RecvChannel and SendChannel (issue 3, sections 3-5).

Each test states one rule in the PEP's words (section "API for sharing data")
or one decision recorded in ``interpreters/_channels.py``.  Tests that can hang
or crash when the rule is broken (signals, destroy) run in a subprocess.
"""

import array
import gc
import math
import threading
import time
import weakref

import pytest

from support import (  # noqa: F401 (destroy_leftovers is an autouse fixture)
    PYVER, assert_python_ok, destroy_leftovers, run_output,
)
from support import WAIT, finish, in_thread

import interpreters
from interpreters import (
    ChannelClosedError, ChannelNotFoundError, InterpreterError, NotReceivedError,
    RecvChannel, SendChannel,
)



def send_when_waiting(s, obj, nowait="send_nowait"):
    """send_nowait() as soon as a receiver is blocked in recv() (retrying until then)."""
    deadline = time.monotonic() + WAIT
    while True:
        try:
            getattr(s, nowait)(obj)
            return
        except NotReceivedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.001)


ECHO = """
while True:
    _x = r.recv()
    if _x == "__stop__":
        break
    s.send(_x)
"""


class Echo:
    """A subinterpreter, running in its own thread, that sends back what it receives."""

    def __init__(self):
        self.interp = interpreters.create()
        self.to_r, self.to_s = interpreters.create_channel()
        self.back_r, self.back_s = interpreters.create_channel()
        self.thread = in_thread(self.interp.run, ECHO,
                                channels={"r": self.to_r, "s": self.back_s})

    def roundtrip(self, obj):
        self.to_s.send(obj)
        return self.back_r.recv()

    def stop(self):
        self.to_s.send("__stop__")
        finish(self.thread)
        self.interp.destroy()


# ---------------------------------------------------------------------------------
# create_channel(), list_all_channels(), the end objects

class TestCreate:
    def test_returns_ends_of_one_new_channel(self):
        r, s = interpreters.create_channel()
        assert type(r) is RecvChannel and type(s) is SendChannel
        assert r.id == s.id and isinstance(r.id, int)
        r2, s2 = interpreters.create_channel()
        assert r2.id != r.id

    def test_listed_while_open(self):
        r, s = interpreters.create_channel()
        assert (r, s) in interpreters.list_all_channels()
        r.close()
        s.close()
        assert r.id not in [c.id for c, _ in interpreters.list_all_channels()]

    def test_ends_compare_hash_and_repr_by_id(self):
        r, s = interpreters.create_channel()
        assert RecvChannel(r.id) == r and hash(RecvChannel(r.id)) == hash(r)
        assert SendChannel(s.id) == s
        assert r != s                      # different ends of the same channel
        assert str(r.id) in repr(r) and "RecvChannel" in repr(r)
        assert str(s.id) in repr(s) and "SendChannel" in repr(s)
        with pytest.raises(AttributeError):
            r.id = 5

    def test_unknown_id_is_a_clear_error(self):
        with pytest.raises(ChannelNotFoundError) as info:
            RecvChannel(10 ** 9)
        assert str(10 ** 9) in str(info.value)
        with pytest.raises(ValueError):          # ChannelNotFoundError is a ValueError
            SendChannel(10 ** 9 + 1)
        with pytest.raises(ChannelNotFoundError):
            RecvChannel(-3)

    @pytest.mark.parametrize("bad", ["x", 1.5, None, b"1", True])
    def test_wrong_id_type_is_type_error(self, bad):
        for cls in (RecvChannel, SendChannel):
            with pytest.raises(TypeError) as info:
                cls(bad)
            assert type(bad).__name__ in str(info.value)

    def test_end_usable_after_bad_input(self):
        for bad in ("x", 10 ** 9):
            with pytest.raises((TypeError, ValueError)):
                RecvChannel(bad)
        r, s = interpreters.create_channel()
        t = in_thread(s.send, b"still fine")
        assert r.recv() == b"still fine"
        finish(t)


# ---------------------------------------------------------------------------------
# send / recv semantics

class TestUnbuffered:
    def test_send_returns_only_after_recv(self):
        r, s = interpreters.create_channel()
        returned = threading.Event()

        def sender():
            s.send(b"spam")
            returned.set()
        t = in_thread(sender)
        # Nobody received yet: send() must still be waiting (a negative check:
        # it can only fail if send() returned without a receiver).
        assert not returned.wait(0.2)
        assert r.recv() == b"spam"
        finish(t)
        assert returned.is_set()

    def test_send_without_receiver_times_out(self):
        r, s = interpreters.create_channel()
        with pytest.raises(TimeoutError):
            s.send(b"nobody", timeout=0.05)

    def test_send_to_subinterpreter_waits_for_its_recv(self):
        interp = interpreters.create()
        r, s = interpreters.create_channel()
        rb, sb = interpreters.create_channel()
        t = in_thread(interp.run, "sb.send(r.recv() + b'!')", channels={"r": r, "sb": sb})
        s.send(b"hi")              # returns once the sub took it
        assert rb.recv() == b"hi!"
        finish(t)

    def test_fifo_order(self):
        r, s = interpreters.create_channel()

        def sender():
            for i in range(200):
                s.send(i)
        t = in_thread(sender)
        assert [r.recv() for _ in range(200)] == list(range(200))
        finish(t)


class TestNowait:
    def test_send_nowait_without_receiver_raises_runtime_error(self):
        r, s = interpreters.create_channel()
        with pytest.raises(RuntimeError) as info:
            s.send_nowait(b"x")
        assert isinstance(info.value, NotReceivedError)
        # nothing was left behind
        assert r.recv_nowait() is None

    def test_send_buffer_nowait_without_receiver_raises_runtime_error(self):
        r, s = interpreters.create_channel()
        with pytest.raises(RuntimeError):
            s.send_buffer_nowait(bytearray(b"x"))
        assert r.recv_nowait() is None

    def test_send_nowait_to_receiver_blocked_in_thread(self):
        r, s = interpreters.create_channel()
        t = in_thread(r.recv)
        send_when_waiting(s, b"eggs")
        assert finish(t) == b"eggs"

    def test_send_nowait_to_receiver_blocked_in_subinterpreter(self):
        interp = interpreters.create()
        r, s = interpreters.create_channel()
        rb, sb = interpreters.create_channel()
        t = in_thread(interp.run, "_x = r.recv()\nsb.send(_x * 2)", channels={"r": r, "sb": sb})
        send_when_waiting(s, "ab")
        assert rb.recv() == "abab"
        finish(t)

    def test_recv_nowait_default(self):
        r, s = interpreters.create_channel()
        assert r.recv_nowait() is None
        sentinel = object()
        assert r.recv_nowait(sentinel) is sentinel
        assert r.recv_nowait(default=42) == 42

    def test_recv_nowait_takes_a_waiting_send(self):
        r, s = interpreters.create_channel()
        t = in_thread(s.send, b"pending")
        deadline = time.monotonic() + WAIT
        got = None
        while got is None and time.monotonic() < deadline:
            got = r.recv_nowait()
            time.sleep(0.001)
        assert got == b"pending"
        finish(t)
        assert r.recv_nowait() is None


class TestTimeout:
    def test_recv_timeout_then_later_message_flows(self):
        r, s = interpreters.create_channel()
        with pytest.raises(TimeoutError):
            r.recv(timeout=0.05)
        with pytest.raises(TimeoutError):
            r.recv(timeout=0)
        t = in_thread(s.send, b"later")
        assert r.recv(timeout=WAIT) == b"later"
        finish(t)
        # The timed-out waits left no waiter behind: send_nowait finds none.
        with pytest.raises(NotReceivedError):
            s.send_nowait(b"x")

    def test_timed_out_send_is_never_received(self):
        r, s = interpreters.create_channel()
        with pytest.raises(TimeoutError):
            s.send(b"withdrawn", timeout=0.05)
        assert r.recv_nowait("empty") == "empty"
        t = in_thread(s.send, b"second")
        assert r.recv() == b"second"
        finish(t)
        assert r.recv_nowait("empty") == "empty"

    def test_timed_out_send_buffer_is_never_received(self):
        r, s = interpreters.create_channel()
        with pytest.raises(TimeoutError):
            s.send_buffer(bytearray(b"withdrawn"), timeout=0.05)
        assert r.recv_nowait("empty") == "empty"

    def test_timed_out_send_of_end_keeps_channel_accounting(self):
        # An end inside a withdrawn message must not keep its channel open forever.
        r, s = interpreters.create_channel()
        r2, s2 = interpreters.create_channel()
        cid = r2.id
        with pytest.raises(TimeoutError):
            s.send(s2, timeout=0.05)
        del r2, s2
        gc.collect()
        assert cid not in [c.id for c, _ in interpreters.list_all_channels()]

    @pytest.mark.parametrize("bad", ["1", [1]])
    def test_bad_timeout_type(self, bad):
        r, s = interpreters.create_channel()
        with pytest.raises(TypeError):
            r.recv(timeout=bad)
        with pytest.raises(TypeError):
            s.send(b"x", timeout=bad)

    def test_negative_timeout(self):
        r, s = interpreters.create_channel()
        with pytest.raises(ValueError):
            r.recv(timeout=-1)
        with pytest.raises(ValueError):
            s.send(b"x", timeout=-1)


# ---------------------------------------------------------------------------------
# association, close(), EOFError

class TestAssociation:
    def test_not_associated_until_used(self):
        r, s = interpreters.create_channel()
        assert r.interpreters == []
        assert s.interpreters == []

    def test_recv_associates(self):
        r, s = interpreters.create_channel()
        r.recv_nowait()
        assert r.interpreters == [interpreters.get_main()]
        assert s.interpreters == []

    def test_send_associates(self):
        r, s = interpreters.create_channel()
        t = in_thread(r.recv)
        s.send(b"x")
        finish(t)
        assert s.interpreters == [interpreters.get_main()]
        assert r.interpreters == [interpreters.get_main()]

    def test_subinterpreter_associates_by_use(self):
        interp = interpreters.create()
        r, s = interpreters.create_channel()
        interp.run("pass", channels={"r": r})
        assert r.interpreters == []              # bound, but not used yet
        interp.run("r.recv_nowait()")
        assert r.interpreters == [interp]
        r.recv_nowait()
        assert set(r.interpreters) == {interp, interpreters.get_main()}

    def test_close_drops_association(self):
        interp = interpreters.create()
        r, s = interpreters.create_channel()
        interp.run("r.recv_nowait()", channels={"r": r})
        r.recv_nowait()
        assert r.close() is True
        assert r.interpreters == [interp]
        interp.run("assert r.close() is True")
        # The main interpreter still holds the sending end but never used it: no
        # interpreter is associated any more, so the channel is closed (PEP 554).
        assert r.id not in [c.id for c, _ in interpreters.list_all_channels()]
        with pytest.raises(EOFError):
            s.send_nowait(b"x")

    def test_interpreters_seen_from_sub(self):
        interp = interpreters.create()
        r, s = interpreters.create_channel()
        r.recv_nowait()
        interp.run("r.recv_nowait()\nids = sorted(i.id for i in r.interpreters)",
                   channels={"r": r})
        assert run_output(interp, "print(ids)") == "[0, %d]\n" % interp.id


class TestClose:
    def test_idempotent_true_only_first_time(self):
        r, s = interpreters.create_channel()
        assert r.close() is True
        assert r.close() is False
        assert s.close() is True
        assert s.close() is False
        assert r.close() is False

    def test_close_never_associated_still_blocks_future_association(self):
        interp = interpreters.create()
        r, s = interpreters.create_channel()
        interp.run("pass", channels={"r": r, "s": s})   # keeps the channel open
        assert r.close() is True
        with pytest.raises(ValueError) as info:
            r.recv()
        assert not isinstance(info.value, EOFError)
        with pytest.raises(ValueError):
            r.recv_nowait()

    def test_value_error_after_this_interpreter_closed_send_end(self):
        interp = interpreters.create()
        r, s = interpreters.create_channel()
        interp.run("pass", channels={"r": r, "s": s})
        s.close()
        for call in (lambda: s.send(b"x"), lambda: s.send_nowait(b"x"),
                     lambda: s.send_buffer(b"x"), lambda: s.send_buffer_nowait(b"x")):
            with pytest.raises(ValueError) as info:
                call()
            assert not isinstance(info.value, EOFError)
            assert str(s.id) in str(info.value)

    def test_other_interpreter_unaffected_by_my_close(self):
        interp = interpreters.create()
        r, s = interpreters.create_channel()
        rb, sb = interpreters.create_channel()
        interp.run("pass", channels={"r": r, "s": s, "sb": sb})
        r.close()
        # the sub can still receive on the end the main interpreter closed
        t = in_thread(interp.run, "sb.send(r.recv())")
        s.send(b"through")
        assert rb.recv() == b"through"
        finish(t)

    def test_eof_once_both_ends_have_no_interpreters(self):
        interp = interpreters.create()
        r, s = interpreters.create_channel()
        interp.run("r.recv_nowait()", channels={"r": r, "s": s})
        r.close()
        s.close()
        with pytest.raises(ValueError):          # we closed; the sub still holds it
            r.recv_nowait()
        assert r.id in [c.id for c, _ in interpreters.list_all_channels()]
        interp.run("r.close(); s.close()")
        assert r.id not in [c.id for c, _ in interpreters.list_all_channels()]
        for call in (r.recv, r.recv_nowait, lambda: s.send(b"x"),
                     lambda: s.send_nowait(b"x")):
            with pytest.raises(EOFError):
                call()
        interp.run("""if True:
            for call in (r.recv, lambda: s.send(b'x')):
                try:
                    call()
                except EOFError:
                    pass
                else:
                    raise AssertionError('no EOFError')
        """)

    def test_eof_for_new_handles_of_closed_channel(self):
        r, s = interpreters.create_channel()
        cid = r.id
        r.close()
        s.close()
        with pytest.raises(EOFError):
            SendChannel(cid).send(b"x")
        with pytest.raises(EOFError):
            RecvChannel(cid).recv()

    def test_blocked_recv_gets_eof_when_channel_closes(self):
        r, s = interpreters.create_channel()
        t = in_thread(r.recv)
        time.sleep(0.05)           # let it block (the outcome is the same if it has not)
        r.close()
        s.close()
        with pytest.raises(EOFError):
            finish(t)

    def test_blocked_send_gets_eof_when_channel_closes(self):
        r, s = interpreters.create_channel()
        t = in_thread(s.send, b"never")
        time.sleep(0.05)           # let it block (the outcome is the same if it has not)
        r.close()
        s.close()
        with pytest.raises(EOFError):
            finish(t)

    def test_nowait_messages_survive_sender_close(self):
        # send_nowait() handed the object to a waiting receiver: it arrives even if
        # the sender closes right after.
        r, s = interpreters.create_channel()
        t = in_thread(r.recv)
        send_when_waiting(s, b"handed over")
        s.close()
        assert finish(t) == b"handed over"


class TestAutoClose:
    def test_last_handle_collected_closes(self):
        r, s = interpreters.create_channel()
        cid = r.id
        del r
        gc.collect()
        assert cid in [c.id for c, _ in interpreters.list_all_channels()]
        del s
        gc.collect()
        assert cid not in [c.id for c, _ in interpreters.list_all_channels()]
        with pytest.raises(EOFError):            # still nameable; using it is EOF
            RecvChannel(cid).recv()

    def test_collected_in_reference_cycle(self):
        r, s = interpreters.create_channel()
        cid = r.id
        cycle = [r, s]
        cycle.append(cycle)
        del r, s, cycle
        gc.collect()
        interpreters.create_channel()             # channel ops process deferred closes
        assert cid not in [c.id for c, _ in interpreters.list_all_channels()]

    def test_sub_dropping_its_handle_drops_its_association(self):
        interp = interpreters.create()
        r, s = interpreters.create_channel()
        interp.run("r.recv_nowait()", channels={"r": r})
        assert r.interpreters == [interp]
        interp.run("del r\nimport gc; gc.collect()")
        assert r.interpreters == []

    def test_destroy_closes_the_interpreters_ends(self):
        interp = interpreters.create()
        r, s = interpreters.create_channel()
        interp.run("r.recv_nowait()", channels={"r": r, "s": s})
        assert r.interpreters == [interp]
        r.close()
        s.close()
        assert r.id in [c.id for c, _ in interpreters.list_all_channels()]
        interp.destroy()
        assert r.id not in [c.id for c, _ in interpreters.list_all_channels()]
        with pytest.raises(EOFError):
            s.send(b"x")

    def test_destroy_drops_association_but_channel_stays_open(self):
        interp = interpreters.create()
        r, s = interpreters.create_channel()
        interp.run("r.recv_nowait()", channels={"r": r})
        r.recv_nowait()
        interp.destroy()
        assert r.interpreters == [interpreters.get_main()]
        t = in_thread(s.send, b"ok")
        assert r.recv() == b"ok"
        finish(t)


# ---------------------------------------------------------------------------------
# passing ends around

class TestPassingEnds:
    def test_run_channels_binds_ends_in_main(self):
        interp = interpreters.create()
        r, s = interpreters.create_channel()
        interp.run("pass", channels={"rr": r, "ss": s})
        out = run_output(interp, "print(type(rr).__name__, rr.id, type(ss).__name__, ss.id)")
        assert out.split() == ["RecvChannel", str(r.id), "SendChannel", str(s.id)]

    @pytest.mark.parametrize("bad", [{"x": 1}, {"x": b"x"}, {"1x": None}])
    def test_run_channels_rejects_non_ends(self, bad):
        interp = interpreters.create()
        if "1x" in bad:
            r, _ = interpreters.create_channel()
            bad = {"1x": r}
        with pytest.raises(ValueError):
            interp.run("pass", channels=bad)

    def test_send_an_end_through_a_channel(self):
        interp = interpreters.create()
        r, s = interpreters.create_channel()
        reply_r, reply_s = interpreters.create_channel()
        t = in_thread(interp.run, "_reply = r.recv()\n_reply.send(('got', type(_reply).__name__))",
                      channels={"r": r})
        s.send(reply_s)
        assert reply_r.recv() == ("got", "SendChannel")
        finish(t)

    def test_received_end_is_the_same_object_in_same_interpreter(self):
        r, s = interpreters.create_channel()
        r2, s2 = interpreters.create_channel()
        t = in_thread(s.send, (r2, s2))
        got = r.recv()
        finish(t)
        assert got == (r2, s2) and got[0] is r2 and got[1] is s2

    def test_end_in_flight_keeps_channel_open(self):
        # The only handle of s2 is inside a message: the channel must not close.
        interp = interpreters.create()
        r, s = interpreters.create_channel()
        rb, sb = interpreters.create_channel()
        r2, s2 = interpreters.create_channel()
        cid = r2.id
        t = in_thread(s.send, (s2,))
        del s2
        gc.collect()
        interp.run("(s2,) = r.recv()", channels={"r": r})
        finish(t)
        t2 = in_thread(interp.run, "s2.send(b'via received end')")
        assert r2.recv() == b"via received end"
        finish(t2)
        assert cid in [c.id for c, _ in interpreters.list_all_channels()]

    def test_closed_end_cannot_travel(self):
        interp = interpreters.create()
        r, s = interpreters.create_channel()
        r2, s2 = interpreters.create_channel()
        r2.close()
        s2.close()
        with pytest.raises(EOFError):
            s.send(r2, timeout=1)
        # nothing half-updated: the channel still carries a message
        t = in_thread(s.send, b"after")
        assert r.recv() == b"after"
        finish(t)


# ---------------------------------------------------------------------------------
# shareable data

SHAREABLE = [
    None, b"", b"bytes\x00\xff", "", "str \u20ac \U0001f600", 0, 1, -1, 2 ** 63 - 1, 2 ** 63,
    -2 ** 64, 10 ** 400, -(7 ** 300), 0.0, -0.0, 1.5, 1e308, float("inf"), float("-inf"),
    True, False, (), (1,), (b"a", "b", (None, (2 ** 100, 1.25), ((),)), True),
]

NOT_SHAREABLE = [[], [1], {}, {"a": 1}, bytearray(b"x"), object(), {1}, 1j,
                 memoryview(b"x"), (1, [2]), type("IntSub", (int,), {})(5),
                 type("StrSub", (str,), {})("s"), type("TupleSub", (tuple,), {})((1,)),
                 Ellipsis, int]


def same(a, b):
    """Equal with identical types all the way down (bool stays bool, -0.0 stays -0.0)."""
    if type(a) is not type(b):
        return False
    if type(a) is tuple:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if type(a) is float:
        return (math.isnan(a) and math.isnan(b)) or (a == b and
                                                    math.copysign(1, a) == math.copysign(1, b))
    return a == b


@pytest.fixture(scope="class")
def echo():
    e = Echo()
    yield e
    e.stop()


class TestShareable:

    @pytest.mark.parametrize("obj", SHAREABLE, ids=repr)
    def test_round_trip_through_subinterpreter(self, echo, obj):
        assert interpreters.is_shareable(obj)
        back = echo.roundtrip(obj)
        assert same(back, obj), (back, obj)

    def test_nan_round_trip(self, echo):
        assert math.isnan(echo.roundtrip(float("nan")))

    def test_ends_round_trip(self, echo):
        r, s = interpreters.create_channel()
        back = echo.roundtrip((r, (s,)))
        assert back == (r, (s,)) and back[0] is r

    def test_received_bytes_are_a_copy(self, echo):
        data = b"x" * 100
        back = echo.roundtrip(data)
        assert back == data and back is not data

    @pytest.mark.parametrize("obj", NOT_SHAREABLE, ids=lambda o: type(o).__name__)
    def test_not_shareable_value_error_names_type(self, obj):
        assert not interpreters.is_shareable(obj)
        r, s = interpreters.create_channel()
        for call in (s.send, s.send_nowait):
            with pytest.raises(ValueError) as info:
                call(obj)
            assert not isinstance(info.value, EOFError)
            bad = obj
            if type(obj) is tuple:
                bad = obj[1]
            assert type(bad).__name__ in str(info.value)
        # nothing half-updated: the channel works and holds nothing
        assert r.recv_nowait("empty") == "empty"
        t = in_thread(s.send, b"after")
        assert r.recv() == b"after"
        finish(t)

    def test_not_shareable_inside_tuple_sends_nothing(self):
        r, s = interpreters.create_channel()
        r2, s2 = interpreters.create_channel()
        cid = r2.id
        with pytest.raises(ValueError):
            s.send((s2, []))              # an end before the bad item
        del r2, s2
        gc.collect()
        interpreters.create_channel()
        # the end was not counted as in flight: its channel could close
        assert cid not in [c.id for c, _ in interpreters.list_all_channels()]
        assert r.recv_nowait("empty") == "empty"

    @pytest.mark.parametrize("obj", SHAREABLE + NOT_SHAREABLE, ids=lambda o: type(o).__name__)
    def test_is_shareable_agrees_with_send(self, obj):
        r, s = interpreters.create_channel()
        t = in_thread(r.recv)
        try:
            send_when_waiting(s, obj)
            accepted = True
        except ValueError:
            accepted = False
        if not accepted:                          # the receiver still waits: release it
            send_when_waiting(s, None)
        finish(t)
        assert interpreters.is_shareable(obj) is accepted

    def test_shareable_in_sub(self):
        interp = interpreters.create()
        out = run_output(interp, """
            import interpreters
            print(interpreters.is_shareable(b'x'), interpreters.is_shareable([]))
        """)
        assert out == "True False\n"


# ---------------------------------------------------------------------------------
# send_buffer(): zero-copy, lifetime-safe

class TestSendBuffer:
    def test_receiver_writes_are_visible_to_sender(self):
        interp = interpreters.create()
        r, s = interpreters.create_channel()
        data = bytearray(b"hello world")
        t = in_thread(interp.run, """if True:
            v = r.recv()
            assert bytes(v) == b'hello world', bytes(v)
            v[0:5] = b'HELLO'
            v.release()
            del v
        """, channels={"r": r})
        s.send_buffer(data)
        finish(t)
        assert data == bytearray(b"HELLO world")

    def test_same_interpreter_other_thread(self):
        r, s = interpreters.create_channel()
        data = bytearray(b"abc")
        t = in_thread(s.send_buffer, data)
        view = r.recv()
        finish(t)
        assert isinstance(view, memoryview)
        view[1] = ord("X")
        assert data == bytearray(b"aXc")
        view.release()

    def test_readonly_stays_readonly(self):
        r, s = interpreters.create_channel()
        t = in_thread(s.send_buffer, b"immutable")
        view = r.recv()
        finish(t)
        assert bytes(view) == b"immutable"
        assert view.readonly
        with pytest.raises(TypeError):
            view[0] = 1
        view.release()

    def test_non_buffer_is_value_error(self):
        r, s = interpreters.create_channel()
        for bad in ("str", 5, None, object()):
            with pytest.raises(ValueError) as info:
                s.send_buffer(bad)
            assert type(bad).__name__ in str(info.value)
        assert r.recv_nowait("empty") == "empty"

    def test_64_mib(self):
        interp = interpreters.create()
        r, s = interpreters.create_channel()
        n = 64 * 1024 * 1024
        data = bytearray(n)
        data[0], data[n // 2], data[-1] = 1, 2, 3
        t = in_thread(interp.run, """if True:
            v = r.recv()
            assert len(v) == %d and (v[0], v[%d], v[-1]) == (1, 2, 3)
            v[-2] = 9
            v.release()
            del v
        """ % (n, n // 2), channels={"r": r})
        s.send_buffer(data)
        finish(t)
        assert data[-2] == 9

    def test_exporter_outlives_senders_references(self):
        r, s = interpreters.create_channel()

        def sender():
            a = array.array("i", range(1000))
            ref = weakref.ref(a)
            s.send_buffer(a)
            return ref
        t = in_thread(sender)
        view = r.recv()
        ref = finish(t)
        gc.collect()
        assert ref() is not None                  # kept alive by the export
        assert view.cast("i").tolist() == list(range(1000))
        view.release()
        del view
        gc.collect()
        r.recv_nowait()                           # channel ops reap released exports
        assert ref() is None

    def test_exporter_in_sub_outlives_its_references(self):
        interp = interpreters.create()
        r, s = interpreters.create_channel()
        t = in_thread(interp.run, """if True:
            import gc
            _b = bytearray(b'from the sub' * 1000)
            s.send_buffer(_b)
            del _b
            gc.collect()
        """, channels={"s": s})
        view = r.recv()
        finish(t)
        interp.run("import gc; gc.collect(); _junk = [bytearray(100) for _ in range(1000)]")
        assert bytes(view) == b"from the sub" * 1000
        view.release()

    def test_destroy_refused_while_view_held(self):
        interp = interpreters.create()
        r, s = interpreters.create_channel()
        t = in_thread(interp.run, "s.send_buffer(bytearray(b'held'))", channels={"s": s})
        view = r.recv()
        finish(t)
        with pytest.raises(InterpreterError) as info:
            interp.destroy()
        assert "buffer" in str(info.value)
        assert interp in interpreters.list_all()
        assert bytes(view) == b"held"             # memory still valid
        view.release()
        del view
        gc.collect()
        interp.destroy()
        assert interp not in interpreters.list_all()


# ---------------------------------------------------------------------------------
# Ctrl-C (subprocesses: a broken wait would hang or kill the test run)

SIGNAL_PRELUDE = """
import os, signal, sys, threading, time
import interpreters
r, s = interpreters.create_channel()
"""

SIGNAL_AFTER = """
# the channel still works afterwards
t = threading.Thread(target=s.send, args=(b'after',))
t.start()
assert r.recv() == b'after'
t.join()
# and no waiter was left behind
try:
    s.send_nowait(b'x')
except interpreters.NotReceivedError:
    pass
else:
    raise AssertionError('stale waiter')
print('OK')
"""


class TestCtrlC:
    def test_setitimer_interrupts_recv(self):
        out, _ = assert_python_ok(SIGNAL_PRELUDE + """
def handler(signum, frame):
    raise KeyboardInterrupt
signal.signal(signal.SIGALRM, handler)
signal.setitimer(signal.ITIMER_REAL, 0.1)
try:
    r.recv()
except KeyboardInterrupt:
    print('interrupted')
else:
    raise AssertionError('recv returned')
""" + SIGNAL_AFTER, timeout=60)
        assert out.split() == ["interrupted", "OK"]

    def test_sigint_from_thread_interrupts_recv(self):
        out, _ = assert_python_ok(SIGNAL_PRELUDE + """
threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT)).start()
try:
    r.recv()
except KeyboardInterrupt:
    print('interrupted')
""" + SIGNAL_AFTER, timeout=60)
        assert out.split() == ["interrupted", "OK"]

    def test_sigint_interrupts_send_and_withdraws_it(self):
        out, _ = assert_python_ok(SIGNAL_PRELUDE + """
threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT)).start()
try:
    s.send(b'withdrawn')
except KeyboardInterrupt:
    print('interrupted')
assert r.recv_nowait('empty') == 'empty'
""" + SIGNAL_AFTER, timeout=60)
        assert out.split() == ["interrupted", "OK"]

    def test_sigint_while_sub_thread_waits(self):
        # The main thread is interrupted while a subinterpreter blocks in recv()
        # in another thread; both keep working afterwards.
        out, _ = assert_python_ok(SIGNAL_PRELUDE + """
sub = interpreters.create()
r2, s2 = interpreters.create_channel()
rb, sb = interpreters.create_channel()
t = threading.Thread(target=sub.run, args=('sb.send(r2.recv())',),
                     kwargs={'channels': {'r2': r2, 'sb': sb}})
t.start()
threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT)).start()
try:
    r.recv()
except KeyboardInterrupt:
    print('interrupted')
s2.send(b'to sub')
assert rb.recv() == b'to sub'
t.join()
sub.destroy()
""" + SIGNAL_AFTER, timeout=60)
        assert out.split() == ["interrupted", "OK"]
