"""Channels under load: nothing lost, nothing duplicated, never a crash (issue 3, section 6).

Every scenario runs in its own subprocess (a crash or a hang fails one test, not
the run) with interleavings forced: sys.setswitchinterval(1e-5), more runnable
threads than cores (a CPU spinner), and a thread churning the cyclic GC.
"""

from support import assert_python_ok

PRELUDE = r"""
import faulthandler, gc, os, random, sys, threading, time
import interpreters

faulthandler.dump_traceback_later(100, exit=True)   # a hang shows every thread's stack

sys.setswitchinterval(1e-5)
_stop_noise = threading.Event()

def _gc_churn():
    while not _stop_noise.is_set():
        junk = []
        for _ in range(200):
            a = []; a.append(a); junk.append(a)
        del junk
        gc.collect()
        time.sleep(0.0005)

def _spin():
    while not _stop_noise.is_set():
        sum(range(500))

_noise = [threading.Thread(target=_gc_churn, daemon=True),
          threading.Thread(target=_spin, daemon=True)]
for _t in _noise:
    _t.start()

def run_sub(code, **channels):
    interp = interpreters.create()
    def target():
        try:
            interp.run(code, channels=channels)
        except BaseException as exc:
            errors.append(exc)
    t = threading.Thread(target=target)
    t.start()
    return interp, t

def in_thread(fn, *args):
    def target():
        try:
            fn(*args)
        except BaseException as exc:
            errors.append(exc)
    t = threading.Thread(target=target)
    t.start()
    return t

errors = []

def finish(threads, interps=()):
    for t in threads:
        t.join(60)
        assert not t.is_alive(), 'a thread hung'
    _stop_noise.set()
    for i in interps:
        i.destroy()
    assert not errors, errors
"""


def test_10000_in_order_between_two_subinterpreters():
    out, _ = assert_python_ok(PRELUDE + r"""
N = 10000
r, s = interpreters.create_channel()
res_r, res_s = interpreters.create_channel()
a, ta = run_sub('''
for i in range(NMSG):
    s.send((i, b'%d' % i * 3))
'''.replace('NMSG', str(N)), s=s)
b, tb = run_sub('''
bad = None
for i in range(NMSG):
    got = r.recv()
    if got != (i, b'%d' % i * 3):
        bad = (i, got)
        break
res.send(('done', bad))
'''.replace('NMSG', str(N)), r=r, res=res_s)
assert res_r.recv() == ('done', None)
finish([ta, tb], [a, b])
print('OK')
""", timeout=120)
    assert out.strip() == "OK"


MANY = PRELUDE + r"""
M = 600
r, s = interpreters.create_channel()
res_r, res_s = interpreters.create_channel()
SENDER = '''
for i in range(NMSG):
    s.send((SID, i))
'''.replace('NMSG', str(M))
RECEIVER = '''
got = []
while True:
    x = r.recv()
    if x is None:
        break
    got.append(x)
res.send(tuple(got))
'''
threads, interps = [], []
main_got = [[], []]

def main_receiver(k):
    while True:
        x = r.recv()
        if x is None:
            return
        main_got[k].append(x)

def main_sender(sid):
    for i in range(M):
        s.send((sid, i))

senders = [in_thread(main_sender, 0), in_thread(main_sender, 1)]
for sid in (2, 3):
    i, t = run_sub(SENDER.replace('SID', str(sid)), s=s)
    interps.append(i); senders.append(t)
receivers = [in_thread(main_receiver, 0), in_thread(main_receiver, 1)]
for _ in range(2):
    i, t = run_sub(RECEIVER, r=r, res=res_s)
    interps.append(i); receivers.append(t)
for t in senders:
    t.join(60)
    assert not t.is_alive(), 'a sender hung'
for _ in range(4):           # every sender returned: stop each receiver
    s.send(None)
sub_got = [res_r.recv(), res_r.recv()]
finish(receivers, interps)
all_got = main_got[0] + main_got[1] + list(sub_got[0]) + list(sub_got[1])
expected = [(sid, i) for sid in range(4) for i in range(M)]
assert len(all_got) == len(expected), (len(all_got), len(expected))
assert sorted(all_got) == expected
# each sender's messages arrive in its own order at every receiver
for got in main_got + [list(g) for g in sub_got]:
    for sid in range(4):
        seq = [i for (k, i) in got if k == sid]
        assert seq == sorted(seq)
print('OK', [len(g) for g in main_got], [len(g) for g in sub_got])
"""


def test_4_senders_4_receivers_exactly_once():
    out, _ = assert_python_ok(MANY, timeout=120)
    assert out.startswith("OK")


CLOSE_RACE = PRELUDE + r"""
# Senders and receivers in main-interpreter threads and in two subinterpreters;
# the main interpreter closes its ends at a random moment.  Every send() that
# returned must be received exactly once, and nothing else may be received.
SUB_SENDER = '''
res.send(('ready', None))          # bound: the close below cannot precede our attach
accepted = []
i = 0
while ctl.recv_nowait() is None:       # main's stop token (a pending send)
    try:
        s.send(('sub', i), timeout=0.01)
    except TimeoutError:
        continue
    except (EOFError, ValueError):
        break
    accepted.append(('sub', i))
    i += 1
res.send(('sent', tuple(accepted)))
s.close()
'''
SUB_RECEIVER = '''
res.send(('ready', None))
got = []
while ctl.recv_nowait() is None:
    try:
        got.append(r.recv(timeout=0.01))
    except TimeoutError:
        pass
    except (EOFError, ValueError):
        break
res.send(('got', tuple(got)))
r.close()
'''

def one_round(seed):
    random.seed(seed)
    r, s = interpreters.create_channel()
    ctl_r, ctl_s = interpreters.create_channel()
    res_r, res_s = interpreters.create_channel()
    accepted, received = [], []

    def sender(k):
        i = 0
        while True:
            try:
                s.send(('main%d' % k, i))
            except (EOFError, ValueError):
                return
            accepted.append(('main%d' % k, i))
            i += 1

    def receiver():
        while True:
            try:
                received.append(r.recv())
            except (EOFError, ValueError):
                return

    threads = [in_thread(sender, k) for k in range(3)] + [in_thread(receiver) for _ in range(3)]
    a, ta = run_sub(SUB_SENDER, s=s, ctl=ctl_r, res=res_s)
    b, tb = run_sub(SUB_RECEIVER, r=r, ctl=ctl_r, res=res_s)
    assert res_r.recv() == res_r.recv() == ('ready', None)
    time.sleep(random.uniform(0.01, 0.2))
    order = random.choice(((r, s), (s, r)))
    order[0].close()
    order[1].close()
    for t in threads:
        t.join(60)
        assert not t.is_alive(), 'a main thread hung after close'
    # now stop the subs: each takes one stop token
    for _ in range(2):
        while True:
            try:
                ctl_s.send(True, timeout=0.5)
                break
            except TimeoutError:
                assert not errors, errors       # a sub failed: report it, do not hang
    reports = dict([res_r.recv(), res_r.recv()])
    for t in (ta, tb):
        t.join(60)
        assert not t.is_alive(), 'a sub hung'
    a.destroy(); b.destroy()
    all_sent = accepted + list(reports['sent'])
    all_got = received + list(reports['got'])
    assert len(all_got) == len(set(all_got)), 'duplicate delivery'
    assert sorted(all_got) == sorted(all_sent), (
        'lost', set(all_sent) - set(all_got), 'unexpected', set(all_got) - set(all_sent))
    # the channel is really closed now (no interpreter holds it)
    try:
        s.send(b'x', timeout=1)
    except EOFError:
        pass
    else:
        raise AssertionError('channel still open')
    return len(all_got)

counts = [one_round(seed) for seed in range(ROUNDS)]
finish([])
print('OK', counts)
"""


def test_close_racing_with_send_and_recv_loses_nothing():
    out, _ = assert_python_ok(CLOSE_RACE.replace("ROUNDS", "6"), timeout=120)
    assert out.startswith("OK")


NOWAIT_RACE = PRELUDE + r"""
# send_nowait() racing with receivers that time out: a send_nowait() that did
# not raise is received exactly once; one that raised is never received.
r, s = interpreters.create_channel()
accepted, received = [], []
done = threading.Event()

def receiver():
    while not done.is_set():
        try:
            received.append(r.recv(timeout=0.001))
        except TimeoutError:
            pass
    while True:                   # drain
        x = r.recv_nowait('empty')
        if x == 'empty':
            return
        received.append(x)

def sender(k):
    for i in range(3000):
        try:
            s.send_nowait((k, i))
        except interpreters.NotReceivedError:
            continue
        accepted.append((k, i))

rs = [in_thread(receiver) for _ in range(3)]
ss = [in_thread(sender, k) for k in range(3)]
for t in ss:
    t.join(60)
    assert not t.is_alive()
done.set()
finish(rs)
assert len(received) == len(set(received)), 'duplicate'
assert sorted(received) == sorted(accepted), (len(received), len(accepted))
print('OK', len(accepted))
"""


def test_send_nowait_racing_with_timeouts():
    out, _ = assert_python_ok(NOWAIT_RACE, timeout=120)
    assert out.startswith("OK")


ENDS_CHURN = PRELUDE + r"""
# Channels created, passed through channels and dropped, from many threads:
# every channel eventually closes and nothing crashes.
before = {c.id for c, _ in interpreters.list_all_channels()}
carrier_r, carrier_s = interpreters.create_channel()
back_r, back_s = interpreters.create_channel()
sub, t = run_sub('''
import threading
while True:
    x = r.recv()
    if x is None:
        break
    rr, ss = x
    t = threading.Thread(target=ss.send, args=(b'ping',))
    t.start()
    assert rr.recv() == b'ping'
    t.join()
    back.send(ss)
    del x, rr, ss, t
''', r=carrier_r, back=back_s)
for k in range(300):
    rr, ss = interpreters.create_channel()
    carrier_s.send((rr, ss))
    assert back_r.recv() is ss
    del rr, ss
carrier_s.send(None)
finish([t])
gc.collect()
last = interpreters.create_channel()     # processes closes deferred by the GC
left = {c.id for c, _ in interpreters.list_all_channels()} - before
assert left == {carrier_r.id, back_r.id, last[0].id}, left
sub.destroy()
print('OK', len(left))
"""


def test_ends_passed_around_and_dropped():
    out, _ = assert_python_ok(ENDS_CHURN, timeout=120)
    assert out.startswith("OK")
