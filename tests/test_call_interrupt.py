"""Ctrl-C (a real SIGINT) and timeouts while a call is waited for.

Each SIGINT test runs in a child process: a timer thread sends SIGINT to the
process while the main thread waits for a call that cannot end by itself (it
blocks reading a pipe until the test writes to it).  Waiting on a handle, a
future or an await is cut short by KeyboardInterrupt; the call goes on, and once
released it finishes, the interpreter is usable again and is destroyed cleanly.
A plain call() or run() runs in the main thread itself: there Ctrl-C raises
KeyboardInterrupt inside the other interpreter (at its next bytecode, so a blocking
C call such as time.sleep() finishes first), then here.
"""

import os
import time

import pytest

from support import (  # noqa: F401 (destroy_leftovers is an autouse fixture)
    assert_python_ok, destroy_leftovers,
)

import interpreters

# Shared by every child: a pipe the call blocks on, a SIGINT timer, and the checks
# made after the KeyboardInterrupt.
PRELUDE = """
import os, signal, sys, threading, time
import interpreters

r, w = os.pipe()

def interrupt_soon():
    threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()

def wait_idle(interp):
    deadline = time.monotonic() + 30
    while interp.is_running():
        assert time.monotonic() < deadline, "still running"
        time.sleep(0.01)

def release_and_check(interp):
    os.write(w, b"x")              # now the call can end
    wait_idle(interp)
    assert interp.call(pow, 2, 5) == 32
    interp.destroy()
    assert interpreters.list_all() == [interpreters.get_main()], interpreters.list_all()

def report(t0, what):
    elapsed = time.monotonic() - t0
    assert elapsed < 5, (what, elapsed)      # the call itself never ends by itself
    print(what, "interrupted")
"""


def run_child(body, expect):
    out, err = assert_python_ok(PRELUDE + body, timeout=60)
    assert out.split("\n")[:-1] == expect, (out, err)


@pytest.mark.parametrize("how", ["result", "result_timeout", "join", "join_timeout",
                                 "exception"])
def test_sigint_while_waiting_on_call_in_thread(how):
    run_child("""
interp = interpreters.create()
h = interp.call_in_thread(os.read, r, 1)
how = %r
interrupt_soon()
t0 = time.monotonic()
try:
    if how == "result":
        h.result()
    elif how == "result_timeout":
        h.result(timeout=60)
    elif how == "join":
        h.join()
    elif how == "join_timeout":
        h.join(60)
    else:
        h.exception(timeout=60)
except KeyboardInterrupt:
    report(t0, how)
assert h.is_alive()                 # the call goes on
os.write(w, b"x")
assert h.result(timeout=30) == b"x"
h.join()
assert not h.is_alive()
release_and_check(interp)
print("ok")
""" % how, [how + " interrupted", "ok"])


def test_sigint_while_waiting_on_run_in_thread():
    run_child("""
interp = interpreters.create()
h = interp.run_in_thread("import os; os.read(%d, 1)" % r)
interrupt_soon()
t0 = time.monotonic()
try:
    h.join()
except KeyboardInterrupt:
    report(t0, "run_in_thread")
os.write(w, b"x")
h.join(30)
assert not h.is_alive()
wait_idle(interp)
interp.run("pass")
interp.destroy()
assert interpreters.list_all() == [interpreters.get_main()]
print("ok")
""", ["run_in_thread interrupted", "ok"])


def test_sigint_while_waiting_on_executor_future():
    run_child("""
with interpreters.InterpreterPoolExecutor(max_workers=1) as pool:
    fut = pool.submit(os.read, r, 1)
    interrupt_soon()
    t0 = time.monotonic()
    try:
        fut.result(timeout=60)
    except KeyboardInterrupt:
        report(t0, "future")
    assert not fut.done()
    os.write(w, b"x")
    assert fut.result(timeout=30) == b"x"
    assert pool.submit(pow, 2, 5).result(timeout=30) == 32
assert interpreters.list_all() == [interpreters.get_main()]
print("ok")
""", ["future interrupted", "ok"])


@pytest.mark.parametrize("how", ["await", "wait_for"])
def test_sigint_under_asyncio_run(how):
    # 3.8-3.10: KeyboardInterrupt leaves the loop's select() and asyncio.run cancels
    # the task; 3.11+: asyncio.run's own SIGINT handler cancels the main task.
    run_child("""
import asyncio
interp = interpreters.create()
how = %r

async def main():
    if how == "await":
        await interp.call_async(os.read, r, 1)
    else:
        await asyncio.wait_for(interp.call_async(os.read, r, 1), 60)

interrupt_soon()
t0 = time.monotonic()
try:
    asyncio.run(main())
except KeyboardInterrupt:
    report(t0, how)
assert interp.is_running()           # the call goes on, its outcome will be dropped
release_and_check(interp)
print("ok")
""" % how, [how + " interrupted", "ok"])


def test_sigint_during_plain_call_waits_for_the_call():
    # call() runs f in the calling (main) thread, inside the other interpreter.
    # Ctrl-C makes f raise KeyboardInterrupt at its next bytecode: a C call that
    # blocks (time.sleep here) finishes first.  Then KeyboardInterrupt is raised
    # here instead of returning the result.  Same on 3.8-3.13.
    run_child("""
interp = interpreters.create()
t0 = time.monotonic()
interrupt_soon()
try:
    interp.call(time.sleep, 1.0)
except KeyboardInterrupt:
    elapsed = time.monotonic() - t0
    assert elapsed >= 0.95, elapsed        # not during the call: after it
    print("KeyboardInterrupt after the call")
else:
    print("returned")
assert not interp.is_running()
assert interp.call(pow, 2, 5) == 32
interp.destroy()
assert interpreters.list_all() == [interpreters.get_main()]
print("ok")
""", ["KeyboardInterrupt after the call", "ok"])


def test_sigint_during_plain_call_that_raises():
    # f is interrupted right after its blocking C call, before it raises: the
    # caller gets KeyboardInterrupt (older orders, the ValueError first and the
    # KeyboardInterrupt a few bytecodes later, are still accepted).  Never lost.
    run_child("""
interp = interpreters.create()
seen = []
def late():        # (not exec() of a string: CPython makes a process whose exec'd
    time.sleep(1.0)     # string raised KeyboardInterrupt exit with status 130)
    raise ValueError('late')
interrupt_soon()
t0 = time.monotonic()
try:
    try:
        interp.call(late)
    except ValueError:
        seen.append("ValueError")
        for _ in range(100):
            time.sleep(0.01)
except KeyboardInterrupt:
    seen.append("KeyboardInterrupt")
assert time.monotonic() - t0 >= 0.95
assert seen in (["KeyboardInterrupt"], ["ValueError", "KeyboardInterrupt"]), seen
assert interp.call(pow, 2, 5) == 32
interp.destroy()
print("ok")
""", ["ok"])


# ---------------------------------------------------------------------------------
# timeouts (no signal: in this process)

@pytest.fixture
def pipe():
    r, w = os.pipe()
    yield r, w
    os.close(r)
    os.close(w)


def test_call_thread_timeouts(pipe):
    r, w = pipe
    interp = interpreters.create()
    h = interp.call_in_thread(os.read, r, 1)
    for wait in (lambda: h.result(timeout=0.2), lambda: h.exception(timeout=0.2)):
        t = time.monotonic()
        with pytest.raises(TimeoutError, match="still running"):
            wait()
        assert time.monotonic() - t < 5
    t = time.monotonic()
    assert h.join(0.2) is None and h.is_alive()
    assert time.monotonic() - t < 5
    assert "running" in repr(h)
    os.write(w, b"x")
    assert h.result(timeout=30) == b"x"
    assert h.exception() is None and not h.is_alive() and "done" in repr(h)
    interp.destroy()


# ---------------------------------------------------------------------------------
# Ctrl-C reaches Python code running in a subinterpreter from the main thread

def test_sigint_interrupts_python_code_in_run_and_call():
    # The code loops in Python (with short sleeps, so it also runs on 3.9-3.12 where
    # a CPU-bound sub starves main-interpreter threads): Ctrl-C raises
    # KeyboardInterrupt there, run()/call() raise KeyboardInterrupt here, promptly,
    # and the interpreter is usable right after, with nothing left pending.
    run_child("""
interp = interpreters.create()
def loop_forever():    # (not exec() of a string: CPython makes a process whose exec'd
    while True:        # string raised KeyboardInterrupt exit with status 130)
        time.sleep(0.01)
for how in ("run", "call"):
    interrupt_soon()
    t0 = time.monotonic()
    try:
        if how == "run":
            interp.run("import time\\nwhile True: time.sleep(0.01)")
        else:
            interp.call(loop_forever)
    except KeyboardInterrupt:
        report(t0, how)
    assert not interp.is_running()
for _ in range(200):               # no KeyboardInterrupt left pending for later runs
    interp.run("x = 1")
assert interp.call(pow, 2, 5) == 32
interp.destroy()
assert interpreters.list_all() == [interpreters.get_main()]
print("ok")
""", ["run interrupted", "call interrupted", "ok"])


@pytest.mark.parametrize("how", ["run", "call"])
def test_sigint_interrupts_a_cpu_bound_loop(how):
    # Pure-Python busy loop, never releasing the GIL.  On 3.9-3.12 the watchdog
    # gets the GIL only thanks to the subinterpreter's yielder thread.
    run_child("""
interp = interpreters.create()
def spin():
    while True:
        pass
for _ in range(2):                 # twice: the interpreter stays usable
    interrupt_soon()
    t0 = time.monotonic()
    try:
        if %r == "run":
            interp.run("while True: pass")
        else:
            interp.call(spin)
    except KeyboardInterrupt:
        report(t0, "spin")
    assert not interp.is_running()
    assert interp.call(pow, 2, 5) == 32
interp.destroy()
print("ok")
""" % how, ["spin interrupted", "spin interrupted", "ok"])


# A loop that holds the GIL until the test stores 1 in a shared memfd byte.
SPIN_UNTIL = """
import mmap
flag_fd = os.memfd_create("flag")
os.ftruncate(flag_fd, 1)
flag = mmap.mmap(flag_fd, 1)
SPIN = "import mmap\\nf = mmap.mmap(%d, 1)\\nwhile f[0] == 0:\\n    pass\\n" % flag_fd
def spin_started(interp):
    deadline = time.monotonic() + 30
    while not interp.is_running():
        assert time.monotonic() < deadline
        time.sleep(0.01)
"""


@pytest.mark.parametrize("how", ["call_in_thread_result", "call_in_thread_join",
                                 "run_in_thread_join", "thread_inside"])
def test_sigint_while_main_waits_and_a_subinterpreter_thread_spins(how):
    # The main thread waits; a thread of the subinterpreter never releases the GIL
    # (on 3.9-3.12 the main thread would never run again without the yielder).
    run_child(SPIN_UNTIL + """
interp = interpreters.create()
how = %r
if how == "call_in_thread_result":
    h = interp.call_in_thread(exec, SPIN, {})
elif how == "call_in_thread_join":
    h = interp.call_in_thread(exec, SPIN, {})
elif how == "run_in_thread_join":
    h = interp.run_in_thread(SPIN)
else:       # a thread started by code in the subinterpreter; run() has returned
    interp.run("import threading\\nt = threading.Thread(target=exec, args=(%%r, {}))\\nt.start()"
               %% SPIN)
if how != "thread_inside":
    spin_started(interp)
interrupt_soon()
t0 = time.monotonic()
try:
    if how == "call_in_thread_result":
        h.result()
    elif how == "thread_inside":
        while True:
            time.sleep(0.01)
    else:
        h.join()
except KeyboardInterrupt:
    report(t0, "wait")
flag[0] = 1
if how == "thread_inside":
    # The watchdog read the SIGINT byte but waited for the GIL behind the spinner;
    # a run() entered before it got there would receive that Ctrl-C a second time.
    time.sleep(0.5)
    interp.run("t.join()")
else:
    h.join()
interp.destroy()
print("ok")
""" % how, ["wait interrupted", "ok"])


def test_main_interpreter_threads_run_while_a_subinterpreter_thread_spins():
    # No timing claim: the main interpreter's threads make progress at all.
    run_child(SPIN_UNTIL + """
interp = interpreters.create()
h = interp.run_in_thread(SPIN)
spin_started(interp)
ticks = [0, 0]
def ticker(i):
    while ticks[i] < 20:
        time.sleep(0.01)
        ticks[i] += 1
threads = [threading.Thread(target=ticker, args=(i,)) for i in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join(60)
print(ticks, h.is_alive())
flag[0] = 1
h.join()
interp.destroy()
""", ["[20, 20] True"])


def test_guard_word_holds_the_interrupt_back():
    # keyboard_interrupt_at(guard=addr) sends nothing while the word is not 0 (any
    # bit pattern), tested inside the crossing; once it is 0 the code is interrupted.
    run_child("""
from interpreters import _capi, _interp
word = _capi.raw_alloc(8)
view = _capi.raw_view(word, 8).cast("q")
interp = interpreters.create()
slot = _interp.slot_of(interp.id)
main = threading.get_ident()
sent = []
def injector():
    while not interp.is_running():
        time.sleep(0.01)
    ts = _interp._tstate_of(slot, threading.get_ident())
    for value in (1, -1, 1 << 32, -(1 << 63)):
        view[0] = value
        sent.append(_capi.keyboard_interrupt_at(ts, main, guard=word))
        time.sleep(0.05)
        sent.append(interp.is_running())
    view[0] = 0
    sent.append(_capi.keyboard_interrupt_at(ts, main, guard=word))
threading.Thread(target=injector).start()
try:
    interp.run("while True: pass")
except interpreters.RunFailedError as exc:
    print(exc.excinfo.type_name)
print(sent)
interp.destroy()
""", ["KeyboardInterrupt", "[False, True, False, True, False, True, False, True, True]"])


def test_sigint_with_a_handler_of_ones_own_is_left_to_it():
    # A SIGINT handler other than the default one is not bypassed: the code in the
    # subinterpreter is not interrupted, and the handler runs once run() returns.
    run_child("""
seen = []
signal.signal(signal.SIGINT, lambda *a: seen.append("handler"))
interp = interpreters.create()
interrupt_soon()
t0 = time.monotonic()
interp.run("import time\\nfor _ in range(60): time.sleep(0.01)")
assert time.monotonic() - t0 >= 0.55
for _ in range(100):
    if seen:
        break
    time.sleep(0.01)
print(seen)
interp.destroy()
""", ["['handler']"])


def test_sigint_wakeup_fd_of_ones_own_still_gets_the_signal():
    # Once the main thread has run code in a subinterpreter, the package's pipe is
    # the signal wake-up fd; what arrives is passed on to the one set before.
    run_child("""
mine_r, mine_w = os.pipe()
os.set_blocking(mine_w, False)
signal.set_wakeup_fd(mine_w)
interp = interpreters.create()
interrupt_soon()
try:
    interp.run("import time\\nwhile True: time.sleep(0.01)")
except KeyboardInterrupt:
    print("interrupted")
import select
ready, _, _ = select.select([mine_r], [], [], 10)   # passed on by the watchdog thread
print(bool(ready) and signal.SIGINT in os.read(mine_r, 100))
interp.destroy()
""", ["interrupted", "True"])


def test_forked_child_gets_its_wakeup_fd_back_and_its_own_ctrl_c():
    # The Ctrl-C pipe belongs to the parent (its watchdog reads it): a child forked
    # after a main-thread run() has the previous wake-up fd again, and Ctrl-C there
    # works as usual, with and without new subinterpreters.
    run_child("""
i = interpreters.create(); i.run("pass"); i.destroy()
pid = os.fork()
if pid == 0:
    try:
        assert signal.set_wakeup_fd(-1) == -1
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except KeyboardInterrupt:
            pass
        else:
            os._exit(3)
        j = interpreters.create(); j.run("x = 1"); j.destroy()
    except BaseException:
        os._exit(4)
    os._exit(0)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status >> 8)
""", ["0"])
