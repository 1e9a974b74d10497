"""Sockets and files sent between interpreters through channels, queues and pipes.

The sender's object is duplicated (os.dup) into the message: the receiver gets its
own object around its own descriptor for the same open file (or socket), so data
written through one is read through the other, the file offset is shared, and
closing one object leaves the other usable.  A message that is never received
(withdrawn, discarded with its channel or queue) closes its duplicate: the
process's descriptor count (/proc/self/fd) returns to where it was.
"""

import gc
import io
import os
import select as _select
import socket
import threading
import time

import pytest

from support import (  # noqa: F401 (destroy_leftovers is an autouse fixture)
    PYVER, assert_python_ok, destroy_leftovers,
)
from support import WAIT, finish, in_thread

import interpreters
from interpreters import ChannelClosedError, Pipe, Queue


pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"),
                                reason="needs /proc/self/fd to count descriptors")


def fd_count():
    """Open descriptors in this process (the baseline tests compare against)."""
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


def copies(*objs):
    """How many descriptors of this process refer to the files/sockets of *objs*.

    Precise where fd_count() is not: interpreters and call() threads keep
    descriptors of their own (memfds), which come and go with them.
    """
    gc.collect()
    targets = {os.readlink("/proc/self/fd/%d" % o.fileno()) for o in objs}
    n = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink("/proc/self/fd/" + name) in targets
        except OSError:            # the listing's own descriptor, or one just closed
            pass
    return n


def same_file(fd1, fd2):
    a, b = os.fstat(fd1), os.fstat(fd2)
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def recv_exactly(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "EOF after %r" % data
        data += chunk
    return data


@pytest.fixture(scope="module")
def sub():
    i = interpreters.create()
    yield i
    i.destroy()


@pytest.fixture
def sockpair():
    a, b = socket.socketpair()
    a.settimeout(WAIT)
    yield a, b
    a.close()
    b.close()


# ---------------------------------------------------------------------------------
# sockets

class TestSockets:
    def test_same_interpreter_gets_its_own_duplicate(self, sockpair):
        a, b = sockpair
        q = Queue()
        q.put(b)
        b2 = q.get()
        assert isinstance(b2, socket.socket) and b2 is not b
        assert b2.fileno() != b.fileno() and same_file(b2.fileno(), b.fileno())
        assert (b2.family, b2.type) == (b.family, b.type)
        b2.sendall(b"via the copy")
        assert recv_exactly(a, 12) == b"via the copy"
        b2.close()
        b.sendall(b"original still open")
        assert recv_exactly(a, 19) == b"original still open"

    def test_socketpair_to_a_subinterpreter_through_a_channel(self, sockpair):
        interp = interpreters.create()
        a, b = sockpair
        r, s = interpreters.create_channel()
        rep_r, rep_s = interpreters.create_channel()
        t = in_thread(interp.run, """if True:
            import os
            k = r.recv()
            rep.send((k.fileno(), os.fstat(k.fileno()).st_ino, int(k.family), k.gettimeout()))
            k.sendall(b'hello from the sub')
            rep.send(k.recv(100))
            k.close()
            rep.send('closed')
        """, channels={"r": r, "rep": rep_s})
        b.settimeout(7.5)
        s.send(b)
        fileno, ino, family, timeout = rep_r.recv()
        assert fileno != b.fileno() and ino == os.fstat(b.fileno()).st_ino
        assert family == socket.AF_UNIX and timeout == 7.5
        assert recv_exactly(a, 18) == b"hello from the sub"
        a.sendall(b"to the sub")
        assert rep_r.recv() == b"to the sub"
        assert rep_r.recv() == "closed"
        finish(t)
        # the sub closed its copy: this one still works, both ways
        b.sendall(b"main's copy")
        assert recv_exactly(a, 11) == b"main's copy"
        a.sendall(b"back")
        assert recv_exactly(b, 4) == b"back"

    def test_sender_closes_its_socket_right_after_sending(self, sockpair, sub):
        a, b = sockpair
        q = Queue()
        q.put(b)
        b.close()                             # the queued duplicate is independent

        def use(q):
            k = q.get()
            k.sendall(b"after the sender closed")
            k.close()
        sub.call(use, q)
        assert recv_exactly(a, 23) == b"after the sender closed"

    def test_tcp_connection_and_listener(self, sub):
        listener = _tcp_listener()
        port = listener.getsockname()[1]
        q = Queue()
        q.put(listener)

        def serve_one(q):
            srv = q.get()
            conn, _ = srv.accept()             # the listener works in the sub
            srv.close()
            conn.settimeout(30)
            q.put(conn)                        # and the accepted socket comes back
            conn.sendall(b"greetings from the sub")
            conn.close()
            return srv.family == conn.family
        t = sub.call_in_thread(serve_one, q)
        client = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        with client:
            assert recv_exactly(client, 22) == b"greetings from the sub"
            assert t.result(WAIT) is True
            conn = q.get(timeout=WAIT)            # the sub's accepted socket, duplicated
            assert conn.type == socket.SOCK_STREAM and conn.gettimeout() == 30
            assert conn.getpeername() == client.getsockname()
            client.sendall(b"ping")
            assert recv_exactly(conn, 4) == b"ping"
            conn.close()
        listener.close()
        with pytest.raises(OSError):             # the sub closed its listener copy too
            socket.create_connection(("127.0.0.1", port), timeout=1).close()

    def test_tcp_echo_in_a_subinterpreter_over_a_pipe(self, sub):
        listener = _tcp_listener()
        client = socket.create_connection(listener.getsockname(), timeout=WAIT)
        server_side, _ = listener.accept()
        listener.close()
        a, b = Pipe()
        carrier = Queue()
        carrier.put(b)
        b.close()

        def echo(carrier):
            conn = carrier.get()
            k = conn.recv()                   # a socket through a Pipe connection
            conn.close()
            while True:
                data = k.recv(1024)
                if not data:
                    break
                k.sendall(data.upper())
            k.close()
            return "eof"
        t = sub.call_in_thread(echo, carrier)
        a.send(server_side)
        server_side.close()
        with client:
            for word in (b"alpha", b"beta", b"gamma"):
                client.sendall(word)
                assert recv_exactly(client, len(word)) == word.upper()
            client.shutdown(socket.SHUT_WR)
            assert t.result(WAIT) == "eof"
            assert client.recv(10) == b""     # the sub's copy was the last one: closed


def _tcp_listener():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(4)
    return s


# ---------------------------------------------------------------------------------
# files

class TestFiles:
    def test_binary_write_shares_the_offset(self, tmp_path, sub):
        path = str(tmp_path / "out.bin")
        f = open(path, "wb")
        f.write(b"main1 ")                    # still in the buffer: send() flushes it
        q = Queue()
        q.put(f)

        def write(q):
            g = q.get()
            kind = (type(g).__name__, g.mode, g.fileno() != -1)
            g.write(b"sub ")
            g.close()
            return kind
        assert sub.call(write, q) == ("BufferedWriter", "wb", True)
        f.write(b"main2")                     # the sub's close() did not close ours
        f.close()
        with open(path, "rb") as check:
            assert check.read() == b"main1 sub main2"

    def test_raw_read_shares_the_offset(self, tmp_path, sub):
        path = str(tmp_path / "in.bin")
        with open(path, "wb") as w:
            w.write(b"0123456789")
        f = open(path, "rb", buffering=0)
        q = Queue()
        q.put(f)

        def read5(q):
            g = q.get()
            return type(g).__name__, g.mode, g.read(5)
        assert sub.call(read5, q) == ("FileIO", "rb", b"01234")
        assert f.read() == b"56789"           # the sub read through the same open file
        f.close()

    def test_text_keeps_encoding_and_errors(self, tmp_path, sub):
        path = str(tmp_path / "out.txt")
        f = open(path, "w", encoding="latin-1", errors="replace")
        f.write("caf\xe9 ")
        q = Queue()
        q.put(f)

        def write(q):
            g = q.get()
            info = (type(g).__name__, g.mode, g.encoding, g.errors)
            g.write("cr\xe8me \u20ac")        # not latin-1: replaced with '?'
            g.close()
            return info
        assert sub.call(write, q) == ("TextIOWrapper", "w", "latin-1", "replace")
        f.close()
        with open(path, "rb") as check:
            assert check.read() == b"caf\xe9 cr\xe8me ?"

    def test_text_read(self, tmp_path):
        path = str(tmp_path / "lines.txt")
        with open(path, "w", encoding="utf-8") as w:
            w.write("\u03b1\n\u03b2\n")
        f = open(path, encoding="utf-8")
        q = Queue()
        q.put(f)
        g = q.get()
        assert g is not f and g.encoding == "utf-8"
        assert g.read() == "\u03b1\n\u03b2\n"
        g.close()
        assert not f.closed
        f.close()

    def test_pipe_fd_opened_with_closefd_false(self, sub):
        rfd, wfd = os.pipe()
        try:
            w = open(wfd, "wb", closefd=False)
            q = Queue()
            q.put(w)

            def write(q):
                g = q.get()
                g.write(b"through the pipe")
                g.close()                     # closes the sub's duplicate only
            sub.call(write, q)
            w.close()                         # closefd=False: wfd stays open
            os.fstat(wfd)
            os.write(wfd, b" and more")
            os.close(wfd)
            wfd = -1
            # every write end is closed now (the sub's and the queue's duplicates
            # included): the reader sees the data, then end-of-file, not a wait
            os.set_blocking(rfd, False)
            data = b""
            deadline = time.monotonic() + WAIT
            while True:
                _select.select([rfd], [], [], 1)
                try:
                    chunk = os.read(rfd, 100)
                except BlockingIOError:
                    assert time.monotonic() < deadline, "a write end was leaked"
                    continue
                if not chunk:
                    break
                data += chunk
            assert data == b"through the pipe and more"
        finally:
            os.close(rfd)
            if wfd >= 0:
                os.close(wfd)

    def test_file_through_a_channel(self, tmp_path):
        interp = interpreters.create()
        path = str(tmp_path / "chan.bin")
        r, s = interpreters.create_channel()
        t = in_thread(interp.run, "f = r.recv()\nf.write(b'x' * 10)\nf.close()",
                      channels={"r": r})
        with open(path, "wb") as f:
            s.send(f)
            finish(t)
        assert os.path.getsize(path) == 10


# ---------------------------------------------------------------------------------
# not shareable

class TestNotShareable:
    def test_closed_socket(self):
        q = Queue()
        k = socket.socket()
        k.close()
        assert not interpreters.is_shareable(k)
        with pytest.raises(ValueError) as info:
            q.put(k)
        assert "closed" in str(info.value)
        with pytest.raises(ValueError):
            q.put((b"header", k))
        assert q.empty()

    def test_closed_file(self, tmp_path):
        q = Queue()
        r, s = interpreters.create_channel()
        f = open(str(tmp_path / "f"), "wb")
        f.close()
        assert not interpreters.is_shareable(f)
        with pytest.raises(ValueError):
            q.put(f)
        with pytest.raises(ValueError):
            s.send(f, timeout=1)
        assert q.empty()

    @pytest.mark.parametrize("make", [io.BytesIO, io.StringIO,
                                      lambda: io.TextIOWrapper(io.BytesIO()),
                                      lambda: io.BufferedReader(io.BytesIO(b"x"))],
                             ids=["BytesIO", "StringIO", "TextIOWrapper(BytesIO)",
                                  "BufferedReader(BytesIO)"])
    def test_in_memory_files(self, make):
        obj = make()
        q = Queue()
        assert not interpreters.is_shareable(obj)
        with pytest.raises(ValueError) as info:
            q.put(obj)
        assert "not shareable" in str(info.value)
        assert q.empty()

    def test_open_socket_and_file_are_shareable(self, sockpair, tmp_path):
        with open(str(tmp_path / "f"), "wb") as f:
            assert interpreters.is_shareable(f)
            assert interpreters.is_shareable((sockpair[0], f))

    def test_is_shareable_duplicates_nothing(self, sockpair):
        before = fd_count()
        for _ in range(20):
            interpreters.is_shareable(sockpair[0])
        assert fd_count() == before

    def test_refused_tuple_closes_the_duplicates_it_made(self, sockpair):
        q = Queue()
        before = fd_count()
        with pytest.raises(ValueError):
            q.put((sockpair[0], sockpair[1], io.BytesIO()))
        assert fd_count() == before
        assert q.empty()


# ---------------------------------------------------------------------------------
# messages never received close their duplicates

class TestDiscardedDuplicates:
    def test_received_and_closed(self, sockpair):
        q = Queue()
        before = fd_count()
        q.put(sockpair[0])
        assert fd_count() == before + 1       # the queued duplicate
        k = q.get()
        assert fd_count() == before + 1       # now owned by k
        k.close()
        assert fd_count() == before

    def test_queue_dropped_while_holding_sockets_and_files(self, sockpair, tmp_path):
        f = open(str(tmp_path / "f"), "wb")
        q = Queue()
        before = fd_count()
        q.put(sockpair[0])
        q.put((b"header", sockpair[1], f))
        assert fd_count() == before + 3
        assert copies(f) == 2 and copies(*sockpair) == 4
        del q
        gc.collect()
        Queue()                                # processes closes deferred by the GC
        assert fd_count() == before
        assert copies(f) == 1 and copies(*sockpair) == 2
        f.close()

    def test_queue_closed_by_its_last_holder(self, sockpair):
        q = Queue(2)
        before = fd_count()
        q.put(sockpair[0])
        q.put(sockpair[1])
        q.close()
        assert fd_count() == before

    def test_queue_freed_when_the_last_holding_interpreter_is_destroyed(self, sockpair):
        interp = interpreters.create()
        q = Queue()

        def keep(q):
            import __main__
            __main__.kept = q
        interp.call(keep, q)
        q.put(sockpair[0])
        q.close()
        assert copies(sockpair[0]) == 2       # the sub still holds the queue
        interp.destroy()
        assert copies(sockpair[0]) == 1

    def test_queue_closed_in_a_subinterpreter(self, sockpair, sub):
        q = Queue()
        q.put(sockpair[0])
        carrier = Queue()
        carrier.put(q)
        q.close()
        del q
        assert copies(sockpair[0]) == 2
        sub.call(lambda c: c.get().close(), carrier)
        assert copies(sockpair[0]) == 1

    def test_channel_force_closed_under_a_blocked_send(self, sockpair):
        r, s = interpreters.create_channel()
        before = fd_count()
        t = in_thread(s.send, (sockpair[0], b"payload"))
        assert interpreters.select([r], timeout=WAIT) == [r]    # queued
        assert fd_count() == before + 1
        r.close(force=True)
        with pytest.raises(ChannelClosedError):
            finish(t)
        assert fd_count() == before

    def test_channel_force_closed_from_a_subinterpreter(self, sockpair, sub):
        r, s = interpreters.create_channel()
        t = in_thread(s.send, sockpair[0])
        assert interpreters.select([r], timeout=WAIT) == [r]
        assert copies(sockpair[0]) == 2
        sub.call(lambda r: r.close(force=True), r)
        with pytest.raises(ChannelClosedError):
            finish(t)
        assert copies(sockpair[0]) == 1

    def test_send_that_times_out(self, sockpair, tmp_path):
        r, s = interpreters.create_channel()
        before = fd_count()
        with open(str(tmp_path / "f"), "wb") as f:
            with pytest.raises(TimeoutError):
                s.send((sockpair[0], f), timeout=0.05)
            assert fd_count() == before + 1   # only f itself
            assert copies(f) == 1 and copies(sockpair[0]) == 1
        assert fd_count() == before
        assert r.recv_nowait("nothing") == "nothing"

    def test_pipe_closed_with_sockets_in_it(self, sockpair):
        a, b = Pipe()
        before = fd_count()
        a.send(sockpair[0])
        b.send(sockpair[1])
        assert fd_count() == before + 2
        a.close()
        b.close()
        assert fd_count() == before

    def test_interpreter_destroyed_holding_a_received_socket(self, sockpair):
        interp = interpreters.create()
        q = Queue()
        q.put(sockpair[1])
        interp.call(lambda q: setattr(__import__("__main__"), "kept", q.get()), q)
        assert copies(sockpair[1]) == 2
        interp.destroy()                      # its socket object goes with it
        assert copies(sockpair[1]) == 1


# ---------------------------------------------------------------------------------
# isolated interpreters (3.13+)

@pytest.mark.skipif(PYVER < (3, 13),
                    reason="sockets through queues inside isolated interpreters need ctypes "
                           "there: CPython 3.13+ (3.12 refuses _ctypes in isolated subs, "
                           "older versions have no isolated interpreters)")
def test_socket_into_an_isolated_interpreter():
    out, _ = assert_python_ok("""
        import os, socket, interpreters
        a, b = socket.socketpair()
        sub = interpreters.create(isolated=True)
        q = interpreters.Queue()
        q.put(b)
        b.close()
        def echo(q):
            k = q.get()
            k.sendall(k.recv(100)[::-1])
            k.close()
        t = sub.call_in_thread(echo, q)
        a.sendall(b'olleh')
        a.settimeout(60)
        print(a.recv(100).decode(), a.recv(100) == b'')
        t.result(60)
        sub.destroy()
        """, timeout=120)
    assert out.split() == ["hello", "True"]
