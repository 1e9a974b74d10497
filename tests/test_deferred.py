"""Items from the PEP's "Deferred Functionality" list: channel context managers,
iteration over a RecvChannel, poisoning (close(force=True)), and reset_main()."""

import threading

import pytest

import interpreters

from support import destroy_leftovers  # noqa: F401  (autouse fixture)


def sender(s, items, then_close=True):
    def go():
        for item in items:
            s.send(item)
        if then_close:
            s.close()
    t = threading.Thread(target=go)
    t.start()
    return t


def test_ends_are_context_managers_that_close():
    r, s = interpreters.create_channel()
    with r as got_r, s as got_s:
        assert got_r is r and got_s is s
    # both ends closed by this interpreter: using them is refused
    with pytest.raises((ValueError, EOFError)):
        s.send_nowait(b"x")
    with pytest.raises((ValueError, EOFError)):
        r.recv_nowait()
    assert r.close() is False and s.close() is False      # already closed


def test_iterating_a_recvchannel_stops_when_the_channel_closes():
    interp = interpreters.create()
    r, s = interpreters.create_channel()
    t = threading.Thread(target=interp.run, args=("""
for n in range(5):
    out.send(n)
out.close()
""",), kwargs={"channels": {"out": s}})
    t.start()
    items = iter(r)
    got = [next(items)]        # the sub holds its end by now
    s.close()                  # this interpreter will not send: only the sub is attached
    got.extend(items)          # ends once the sub closed its end and nothing is left
    t.join(30)
    assert not t.is_alive()
    assert got == [0, 1, 2, 3, 4]
    interp.destroy()


def test_plain_recv_keeps_waiting_when_senders_are_gone():
    # Unlike iteration, recv() follows the PEP: the channel is not closed while
    # this interpreter still holds the receiving end, so it waits (here: times out).
    r, s = interpreters.create_channel()
    s.close()
    with pytest.raises(TimeoutError):
        r.recv(timeout=0.2)
    assert list(r) == []


def test_force_close_wakes_a_blocked_receiver_with_eoferror():
    r, s = interpreters.create_channel()
    errors = []

    def receive():
        try:
            r.recv(timeout=30)
        except EOFError as exc:
            errors.append(exc)
    t = threading.Thread(target=receive)
    t.start()
    while not _receiver_waiting(s):
        pass
    assert s.close(force=True) is True
    t.join(30)
    assert not t.is_alive() and len(errors) == 1
    assert isinstance(errors[0], interpreters.ChannelClosedError)
    with pytest.raises(EOFError):
        s.send(b"x")
    assert r.poison() is False             # already closed


def _receiver_waiting(s):
    try:
        s.send_nowait(None)                # only succeeds when a receiver waits
    except interpreters.NotReceivedError:
        return False
    return True


def test_force_close_discards_what_was_not_received_and_fails_blocked_sender():
    r, s = interpreters.create_channel()
    outcome = []

    def blocked_send():
        try:
            s.send(b"never received", timeout=30)
            outcome.append("sent")
        except EOFError:
            outcome.append("eof")
    t = threading.Thread(target=blocked_send)
    t.start()
    import time
    deadline = time.monotonic() + 30
    while t.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
        if _queued(r):
            break
    assert r.close(force=True) is True
    t.join(30)
    assert outcome == ["eof"]
    with pytest.raises(EOFError):
        r.recv_nowait()


def _queued(r):
    from interpreters import _channels
    with _channels._locked as R:
        base = (r.id % _channels.NCSLOTS) * _channels.CSLOT_WORDS
        return R.T[base + _channels.QLEN] > 0


def test_poison_from_a_subinterpreter_ends_its_peers_loop():
    interp = interpreters.create()
    r, s = interpreters.create_channel()
    t = sender(s, [1, 2, 3], then_close=False)
    got = []
    for item in r:
        got.append(item)
        if item == 3:
            interp.run("ch.poison()", channels={"ch": r})
    t.join()
    assert got == [1, 2, 3]
    with pytest.raises(EOFError):
        s.send(4)
    interp.destroy()


def test_reset_main_clears_names_but_keeps_dunders_and_modules():
    interp = interpreters.create()
    interp.run("import json\nx = 1\ndef f(): return 2\n")
    interp.reset_main()
    interp.run("""
import sys
names = [k for k in dir() if not k.startswith('__')]
assert names == ['sys'], names
assert __name__ == '__main__'
assert 'json' in sys.modules
""")
    interp.destroy()


def test_reset_main_drops_channel_ends_so_they_close():
    interp = interpreters.create()
    r, s = interpreters.create_channel()
    interp.run("pass", channels={"inbox": r})
    assert r.id in [c.id for c, _ in interpreters.list_all_channels()]
    interp.reset_main()
    interp.run("assert 'inbox' not in dir()")
    interp.destroy()
