"""Channels: association and close(), in the words of PEP 554.

"An interpreter gets associated with a channel by calling its send() or recv()
method.  That association gets dropped by calling close() on the channel."
"Once an interpreter is no longer associated with the channel, subsequent (or
current) send() and recv() calls from that interpreter will raise ValueError (or
EOFError if the channel is actually marked as closed).  Once the number of
associated interpreters on both ends drops to 0, the channel is actually marked as
closed."

Tests of a call blocked in another thread first wait until its waiter is in the
channel (read from the arena under its lock), and fail if it never gets there.
"""

import asyncio
import time

import pytest

from support import (  # noqa: F401 (destroy_leftovers is an autouse fixture)
    WAIT, destroy_leftovers, finish, in_thread, run_output,
)

import interpreters
from interpreters import ChannelClosedError, RecvChannel, SendChannel, _channels


def _slot(cid, word):
    with _channels._locked as R:
        base = (cid % _channels.NCSLOTS) * _channels.CSLOT_WORDS
        if R.T[base + _channels.CID] != cid:
            return None
        return R.T[base + word]


def wait_until(pred, what):
    deadline = time.monotonic() + WAIT
    while not pred():
        assert time.monotonic() < deadline, "timed out waiting until " + what
        time.sleep(0.002)


def wait_receiver_blocked(r):
    wait_until(lambda: _slot(r.id, _channels.RWHEAD), "a recv() waits on channel %d" % r.id)


def wait_sender_blocked(s):
    wait_until(lambda: _slot(s.id, _channels.QLEN), "a send() waits on channel %d" % s.id)


def wait_watched(end):
    wait_until(lambda: _slot(end.id, _channels.WHEAD), "a wait watches channel %d" % end.id)


def listed(end):
    return end.id in [r.id for r, _ in interpreters.list_all_channels()]


def still_blocked(t):
    return t.is_alive() and t.result is None


# ---------------------------------------------------------------------------------
# current calls: close() wakes this interpreter's calls waiting on that end

class TestCurrentCalls:
    def test_blocked_recv_gets_value_error_when_channel_stays_open(self):
        interp = interpreters.create()
        r, s = interpreters.create_channel()
        interp.run("r.recv_nowait()", channels={"r": r})      # the sub stays associated
        t = in_thread(r.recv, timeout=WAIT)
        wait_receiver_blocked(r)
        assert r.close() is True
        with pytest.raises(ValueError) as info:
            finish(t)
        assert not isinstance(info.value, EOFError)
        assert str(r.id) in str(info.value)
        # still open for the others: the sub receives what the main interpreter sends
        assert listed(r)
        t2 = in_thread(s.send, b"for the sub", timeout=WAIT)
        assert run_output(interp, "print(r.recv(timeout=%d))" % WAIT) == "b'for the sub'\n"
        finish(t2)

    def test_blocked_recv_gets_eof_when_that_close_closed_the_channel(self):
        r, s = interpreters.create_channel()
        t = in_thread(r.recv, timeout=WAIT)
        wait_receiver_blocked(r)
        assert r.close() is True               # the only association: now closed
        with pytest.raises(EOFError):
            finish(t)
        assert not listed(r)

    def test_blocked_send_gets_value_error_and_is_withdrawn(self):
        interp = interpreters.create()
        r, s = interpreters.create_channel()
        interp.run("r.recv_nowait()", channels={"r": r})
        t = in_thread(s.send, b"never received", timeout=WAIT)
        wait_sender_blocked(s)
        assert s.close() is True
        with pytest.raises(ValueError) as info:
            finish(t)
        assert not isinstance(info.value, EOFError)
        assert listed(s)
        assert run_output(interp, "print(r.recv_nowait('nothing'))") == "nothing\n"

    def test_blocked_send_buffer_gets_value_error(self):
        interp = interpreters.create()
        r, s = interpreters.create_channel()
        interp.run("r.recv_nowait()", channels={"r": r})
        t = in_thread(s.send_buffer, bytearray(b"never received"), timeout=WAIT)
        wait_sender_blocked(s)
        s.close()
        with pytest.raises(ValueError) as info:
            finish(t)
        assert not isinstance(info.value, EOFError)
        assert run_output(interp, "print(r.recv_nowait('nothing'))") == "nothing\n"

    def test_blocked_send_gets_eof_when_that_close_closed_the_channel(self):
        r, s = interpreters.create_channel()
        t = in_thread(s.send, b"x", timeout=WAIT)
        wait_sender_blocked(s)
        assert s.close() is True
        with pytest.raises(EOFError):
            finish(t)
        assert not listed(s)

    def test_close_of_the_other_end_does_not_wake(self):
        # main is associated with both ends; closing the sending end here does not
        # concern a recv() waiting on the receiving end (the sub may still send).
        interp = interpreters.create()
        r, s = interpreters.create_channel()
        interp.run("pass", channels={"s": s})
        first = in_thread(r.recv, timeout=WAIT)
        wait_receiver_blocked(r)
        s.send_nowait(b"first")                   # main now uses both ends
        assert finish(first) == b"first"
        t = in_thread(r.recv, timeout=WAIT)
        wait_receiver_blocked(r)
        s.close()
        assert still_blocked(t)
        interp.run("s.send_nowait(b'from the sub')")
        assert finish(t) == b"from the sub"

    def test_close_in_another_interpreter_only_drops_its_association(self):
        interp = interpreters.create()
        r, s = interpreters.create_channel()
        interp.run("r.recv_nowait()", channels={"r": r})
        t = in_thread(r.recv, timeout=WAIT)
        wait_receiver_blocked(r)
        interp.run("assert r.close() is True")
        assert still_blocked(t) and _slot(r.id, _channels.RWHEAD)
        s.send_nowait(b"still mine")
        assert finish(t) == b"still mine"

    def test_force_close_from_another_interpreter_gives_eof(self):
        interp = interpreters.create()
        r, s = interpreters.create_channel()
        interp.run("pass", channels={"r": r})
        t = in_thread(r.recv, timeout=WAIT)
        wait_receiver_blocked(r)
        interp.run("assert r.close(force=True) is True")
        with pytest.raises(ChannelClosedError):
            finish(t)
        assert not listed(r)

    def test_sub_thread_blocked_recv_woken_by_close_in_that_sub(self):
        interp = interpreters.create()
        r, s = interpreters.create_channel()
        r.recv_nowait()                          # main associated: stays open
        interp.run("""if True:
            import threading
            out = []
            def receive():
                try:
                    r.recv(timeout=%d)
                except ValueError as exc:
                    out.append(type(exc).__name__)
            t = threading.Thread(target=receive)
            t.start()
        """ % WAIT, channels={"r": r})
        wait_receiver_blocked(r)
        interp.run("r.close(); t.join(%d); assert not t.is_alive()" % WAIT)
        assert run_output(interp, "print(out)") == "['ValueError']\n"
        assert listed(r)

    def test_select_waiting_on_a_closed_end_returns_it(self):
        interp = interpreters.create()
        r, s = interpreters.create_channel()
        interp.run("r.recv_nowait()", channels={"r": r})
        t = in_thread(interpreters.select, [r], timeout=WAIT)
        wait_watched(r)
        r.close()
        assert finish(t) == [r]
        with pytest.raises(ValueError):
            r.recv_nowait()

    def test_recv_async_gets_value_error(self):
        interp = interpreters.create()
        r, s = interpreters.create_channel()
        interp.run("r.recv_nowait()", channels={"r": r})

        async def main():
            task = asyncio.ensure_future(r.recv_async(timeout=WAIT))
            deadline = time.monotonic() + WAIT
            while not _slot(r.id, _channels.WHEAD):
                assert time.monotonic() < deadline, "recv_async() never waited"
                await asyncio.sleep(0.002)
            r.close()
            return await asyncio.wait_for(task, WAIT)

        with pytest.raises(ValueError) as info:
            asyncio.run(main())
        assert not isinstance(info.value, EOFError)

    def test_send_async_gets_value_error_and_is_withdrawn(self):
        interp = interpreters.create()
        r, s = interpreters.create_channel()
        interp.run("r.recv_nowait()", channels={"r": r})

        async def main():
            task = asyncio.ensure_future(s.send_async(b"never received", timeout=WAIT))
            deadline = time.monotonic() + WAIT
            while not _slot(s.id, _channels.QLEN):
                assert time.monotonic() < deadline, "send_async() never queued"
                await asyncio.sleep(0.002)
            s.close()
            return await asyncio.wait_for(task, WAIT)

        with pytest.raises(ValueError) as info:
            asyncio.run(main())
        assert not isinstance(info.value, EOFError)
        assert run_output(interp, "print(r.recv_nowait('nothing'))") == "nothing\n"


# ---------------------------------------------------------------------------------
# association is by use

class TestAssociationByUse:
    def test_creating_and_binding_associates_nobody(self):
        interp = interpreters.create()
        r, s = interpreters.create_channel()
        interp.run("pass", channels={"r": r, "s": s})
        assert r.interpreters == [] and s.interpreters == []
        assert run_output(interp, "print(r.interpreters, s.interpreters)") == "[] []\n"

    def test_unused_channel_stays_open_while_ends_are_held(self):
        # Nobody used it: closing (or dropping) ends that were never used does not
        # close it for an interpreter still holding ends.
        interp = interpreters.create()
        r, s = interpreters.create_channel()
        interp.run("pass", channels={"r": r, "s": s})
        r.close()
        s.close()
        assert listed(r)
        interp.run("""if True:
            import threading
            t = threading.Thread(target=s.send, args=(b"sub to sub", %d))
            t.start()
            assert r.recv(timeout=%d) == b"sub to sub"
            t.join(%d)
            assert not t.is_alive()
        """ % (WAIT, WAIT, WAIT))

    def test_holding_an_unused_end_does_not_keep_a_channel_open(self):
        interp = interpreters.create()
        r, s = interpreters.create_channel()
        interp.run("pass", channels={"s": s})         # the sub only holds s
        r.recv_nowait()                               # the only association
        assert r.close() is True
        assert not listed(r)
        assert run_output(interp, """if True:
            try:
                s.send(b"x", timeout=%d)
            except EOFError as exc:
                print(type(exc).__name__)
        """ % WAIT) == "ChannelClosedError\n"

    def test_destroying_the_last_associated_interpreter_closes(self):
        interp = interpreters.create()
        r, s = interpreters.create_channel()
        interp.run("r.recv_nowait()", channels={"r": r, "s": s})
        assert r.interpreters == [interp]
        assert listed(r)                              # main holds both ends, unused
        interp.destroy()
        assert not listed(r)
        assert r.interpreters == [] and s.interpreters == []
        with pytest.raises(EOFError):
            r.recv(timeout=WAIT)
        with pytest.raises(EOFError):
            s.send(b"x", timeout=WAIT)

    def test_destroyed_senders_association_dropped(self):
        sender = interpreters.create()
        receiver = interpreters.create()
        r, s = interpreters.create_channel()
        t = in_thread(receiver.run, "got = r.recv(timeout=%d)" % WAIT, channels={"r": r})
        wait_receiver_blocked(r)
        sender.run("s.send_nowait(b'hello')", channels={"s": s})
        finish(t)
        assert s.interpreters == [sender] and r.interpreters == [receiver]
        sender.destroy()
        assert listed(r)                              # the receiver is still associated
        receiver.destroy()
        assert not listed(r)


# ---------------------------------------------------------------------------------
# closed channels stay nameable; fresh handles of a closed channel

class TestClosedChannels:
    def _closed(self):
        r, s = interpreters.create_channel()
        t = in_thread(r.recv, timeout=WAIT)
        wait_receiver_blocked(r)
        s.send_nowait(b"x")
        finish(t)
        r.close()
        s.close()
        assert not listed(r)
        return r, s

    def test_run_binds_ends_of_a_closed_channel(self):
        r, s = self._closed()
        interp = interpreters.create()
        interp.run("pass", channels={"r": r, "s": s})
        out = run_output(interp, """if True:
            for call in (lambda: r.recv(timeout=%d), r.recv_nowait,
                         lambda: s.send(b'x', timeout=%d), lambda: s.send_nowait(b'x')):
                try:
                    call()
                except EOFError as exc:
                    print(type(exc).__name__)
            print(r.interpreters)
        """ % (WAIT, WAIT))
        assert out == "ChannelClosedError\n" * 4 + "[]\n"

    def test_run_binds_ends_of_a_force_closed_channel(self):
        r, s = interpreters.create_channel()
        r.close(force=True)
        interp = interpreters.create()
        interp.run("pass", channels={"r": r})
        assert run_output(interp, """if True:
            try:
                r.recv(timeout=%d)
            except EOFError:
                print("EOF")
        """ % WAIT) == "EOF\n"

    def test_fresh_handle_after_every_associated_interpreter_closed(self):
        interp = interpreters.create()
        r, s = interpreters.create_channel()
        cid = r.id
        t = in_thread(interp.run, "got = r.recv(timeout=%d); r.close()" % WAIT,
                      channels={"r": r})
        wait_receiver_blocked(r)
        s.send(b"once", timeout=WAIT)
        finish(t)
        assert listed(r)                              # main still associated (sending)
        s.close()
        del r, s
        assert cid not in [c.id for c, _ in interpreters.list_all_channels()]
        with pytest.raises(EOFError):
            RecvChannel(cid).recv(timeout=WAIT)
        with pytest.raises(EOFError):
            RecvChannel(cid).recv_nowait()
        with pytest.raises(EOFError):
            SendChannel(cid).send(b"x", timeout=WAIT)
        assert RecvChannel(cid).interpreters == []

    def test_unknown_id_still_an_error(self):
        with pytest.raises(interpreters.ChannelNotFoundError):
            RecvChannel(10 ** 12)
