"""Command line: ``python -m interpreters [demo | features | run FILE [ARG ...]]``.

    python -m interpreters              show the features of this Python, then a live demo
    python -m interpreters features     only the feature report
    python -m interpreters run FILE ..  run a script (file, zip archive or directory with a
                                        __main__.py) in a fresh subinterpreter and exit with
                                        its status
    python -m interpreters --version    the package and Python versions
    python -m interpreters --help       this text

Works from a checkout without installing: run it from the repository root.
The demo is a list of small functions registered with ``@demo``; one that needs a
feature this Python lacks is skipped with the reason, so a new demo (a channel round
trip, say) is one decorated function.
"""

from __future__ import annotations

import os
import sys
import textwrap
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, List, Optional, Sequence, TextIO, Tuple

    import interpreters

    Feature = Tuple[str, bool, str]             # (name, available, detail)
    DemoFn = Callable[[interpreters.Interpreter], None]
else:
    # The package this file belongs to, whatever its name: a vendored copy
    # (``python -m yourpkg._vendor.interpreters``) must not run the installed one.
    import importlib
    interpreters = importlib.import_module(__package__ or "interpreters")

USAGE = """\
usage: python -m interpreters [demo | features | run FILE [ARG ...] | --version | --help]

PEP 554 multiple interpreters for CPython 3.8-3.13, in pure Python (ctypes).

commands:
  (none), demo         print this Python's version and features, then run a short
                       live demo: create an interpreter, run code in it, show that
                       its __main__ persists, catch an exception raised in it, time
                       run(); everything created is destroyed.  Exits 0.
  features             print only the version and the feature report.
  run FILE [ARG ...]   run FILE in a fresh subinterpreter, like `python FILE ARG ...`:
                       sys.argv is [FILE, ARG, ...] there; FILE may be a .py file, a
                       zip archive or a directory with a __main__.py.  Exits with the
                       script's status: 0, the code given to sys.exit(), or 1 (with
                       the traceback on stderr) for an uncaught exception; after
                       Ctrl-C it prints the script's traceback and ends by SIGINT,
                       as python does.
  --version            print the package's version and the Python running it.
  -h, --help           show this help.
"""


# ------------------------------------------------------------------------------------
# feature report

def features() -> List[Feature]:
    """Return [(name, available, detail)] for the running Python."""
    ver = sys.version_info[:2]
    rows = [
        ("interpreters (create/run/destroy)", True,
         "legacy subinterpreters sharing the main GIL"),
        ("run() from any thread", True, "run() blocks the calling thread only"),
        ("exception proxy", True,
         "RunFailedError, also an instance of a builtin original (KeyError...)"),
    ]
    rows.append(_channels_feature())
    rows.append(("queues, pipes, select()", True,
                 "Queue(maxsize) like queue.Queue, Pipe() like multiprocessing's, select(); "
                 "sockets and files travel as duplicates"))
    rows.append(("asyncio", True, "await recv_async()/send_async()/get_async()/select_async(): "
                 "the loop is woken through a pipe, never polls"))
    if ver < (3, 12):
        rows.append(("isolated interpreters (own GIL)", False,
                     "needs CPython 3.12+ (PEP 684, Py_NewInterpreterFromConfig); this is %d.%d"
                     % ver))
    elif _isolated_supported():
        rows.append(("isolated interpreters (own GIL)", True,
                     "create(isolated=True): parallel CPU-bound work"
                     + ("; channels cannot be used inside on 3.12 (ctypes refused there)"
                        if ver == (3, 12) else "")))
    else:
        rows.append(("isolated interpreters (own GIL)", False,
                     "possible on %d.%d but not implemented in this package yet (planned)" % ver))
    if (3, 9) <= ver <= (3, 12):
        rows.append(("GIL starvation avoided", True,
                     "worked around: on %d.%d a busy thread of one interpreter could "
                     "starve the others, Ctrl-C included (a CPython bug)" % ver))
    else:
        rows.append(("GIL starvation avoided", True,
                     "CPython %d.%d is not affected" % ver))
    rows.append(("os.fork() with live subinterpreters", False,
                 "refused with InterpreterError (CPython's child would hang or crash)"))
    rows.append(("exit with live subinterpreters", True,
                 "all are ended at exit (one still running is abandoned)"))
    return rows


def _channels_feature() -> Feature:
    name = "channels (create_channel)"
    try:
        from interpreters import _channels  # noqa: F401
    except ImportError:
        return (name, False, "not available yet (interpreters._channels does not import)")
    except Exception as exc:   # a broken module should be reported, not crash the report
        return (name, False, "interpreters._channels failed to import: %s: %s"
                % (type(exc).__name__, exc))
    if not hasattr(interpreters, "create_channel"):
        return (name, False, "interpreters._channels imports but create_channel is not exported")
    return (name, True, "bytes, str, int, ..., channel ends; send_buffer() zero-copy")


def _isolated_supported() -> bool:
    # XXX: the spelling of the own-GIL API is not settled; accept either form.
    if hasattr(interpreters, "create_isolated"):
        return True
    try:
        import inspect
        return "isolated" in inspect.signature(interpreters.create).parameters
    except (TypeError, ValueError):
        return False


def available(feature_prefix: str) -> Tuple[bool, str]:
    """Return (available, detail) for the first feature whose name starts with the prefix."""
    for name, ok, detail in features():
        if name.startswith(feature_prefix):
            return ok, detail
    raise KeyError(feature_prefix)


def print_report(out: TextIO = sys.stdout) -> None:
    print("interpreters %s on CPython %s (%s)" % (
        interpreters.__version__, sys.version.split()[0], sys.executable), file=out)
    print("", file=out)
    print("features ([x] available in this Python, [ ] not available: the reason "
          "follows):", file=out)
    for name, ok, detail in features():
        print("  [%s] %-38s %s" % ("x" if ok else " ", name, detail), file=out)


# ------------------------------------------------------------------------------------
# demo: each step is a function registered in order; ``needs`` names a feature

_DEMOS: List[Tuple[str, Optional[str], DemoFn]] = []


def demo(title: str, needs: Optional[str] = None) -> Callable[[DemoFn], DemoFn]:
    """Register a demo step: ``fn(interp)`` gets the demo's interpreter."""
    def register(fn: DemoFn) -> DemoFn:
        _DEMOS.append((title, needs, fn))
        return fn
    return register


def _show(src: str) -> None:
    print(textwrap.indent(textwrap.dedent(src).strip("\n"), "    >>> "))


@demo("run code in a new interpreter")
def demo_run(interp: interpreters.Interpreter) -> None:
    src = """
        import interpreters
        print("    hello from interpreter", interpreters.get_current().id)
        """
    _show(src)
    interp.run(textwrap.dedent(src))
    sys.stdout.flush()


@demo("__main__ persists between run() calls; nothing is shared with the caller")
def demo_main_persists(interp: interpreters.Interpreter) -> None:
    interp.run("counter = 1")
    interp.run("counter += 41")
    src = 'print("    counter =", counter)'
    _show("counter = 1")
    _show("counter += 41")
    _show(src)
    interp.run(src)
    sys.stdout.flush()
    interp.run("assert counter == 42")
    assert "counter" not in globals()
    print("    (and this interpreter has no 'counter': objects are never shared)")


@demo("an exception in the interpreter comes back as RunFailedError")
def demo_exception(interp: interpreters.Interpreter) -> None:
    src = 'raise KeyError("no such user")'
    _show(src)
    try:
        interp.run(src)
    except KeyError as exc:          # RunFailedError is also a KeyError here
        assert isinstance(exc, interpreters.RunFailedError)
        print("    caught %s: %s" % (type(exc).__name__, exc))
        info = exc.excinfo
        assert info is not None          # run() sets it on every RunFailedError
        print("    excinfo: %r" % (info,))
        print(textwrap.indent(info.formatted.rstrip(), "    | "))
    else:
        raise AssertionError("run() did not raise")


@demo("run() timing")
def demo_timing(interp: interpreters.Interpreter) -> None:
    n = 2000
    interp.run("pass")
    t0 = time.perf_counter()
    for _ in range(n):
        interp.run("pass")
    per_run = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    other = interpreters.create()
    try:
        created = time.perf_counter() - t0
    finally:
        t0 = time.perf_counter()
        other.destroy()
    destroyed = time.perf_counter() - t0
    print("    run('pass'): %.1f us per call (mean of %d)" % (per_run * 1e6, n))
    print("    create(): %.1f ms, destroy(): %.1f ms" % (created * 1e3, destroyed * 1e3))


@demo("a channel round trip (main -> subinterpreter in a thread -> main)", needs="channels")
def demo_channel(interp: interpreters.Interpreter) -> None:
    import threading
    from_main, to_sub = interpreters.create_channel()   # (recv end, send end)
    from_sub, to_main = interpreters.create_channel()
    src = """
        while True:                      # echo until None arrives
            msg = inbox.recv()
            if msg is None:
                break
            outbox.send(msg)
        """
    _show(src)
    errors: List[BaseException] = []

    def serve() -> None:
        try:
            interp.run(textwrap.dedent(src), channels={"inbox": from_main, "outbox": to_main})
        except BaseException as exc:
            errors.append(exc)
    t = threading.Thread(target=serve)
    t.start()
    n, payload = 300, b"x" * 64
    times: List[float] = []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            to_sub.send(payload)
            assert from_sub.recv() == payload
            times.append(time.perf_counter() - t0)
    finally:
        to_sub.send(None)
        t.join()
    assert not errors, errors
    times.sort()
    print("    64-byte round trip: %.1f us median of %d (send() returns once received)"
          % (times[n // 2] * 1e6, n))


@demo("two isolated interpreters (own GIL) run CPU-bound code in parallel", needs="isolated")
def demo_parallel(interp: interpreters.Interpreter) -> None:
    import threading
    src = "s = 0\nfor i in range(2000000):\n    s += i * i"
    _show(src)
    pair = [interpreters.create(isolated=True) for _ in range(2)]
    try:
        def timed(workers: List[interpreters.Interpreter]) -> Tuple[float, float]:
            threads = [threading.Thread(target=w.run, args=(src,)) for w in workers]
            c0, w0 = time.process_time(), time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return time.perf_counter() - w0, time.process_time() - c0
        one, _ = timed(pair[:1])
        two, cpu = timed(pair)
    finally:
        for w in pair:
            w.destroy()
    print("    1 interpreter: %.2f s; 2 in parallel: %.2f s (speedup %.2fx, %.2f CPU-seconds "
          "per second; load average %.1f on %s CPUs)"
          % (one, two, 2 * one / two, cpu / two, os.getloadavg()[0], os.cpu_count()))


def run_demo() -> int:
    print_report()
    print("")
    interp = interpreters.create()
    try:
        print("created %r; list_all() = %r" % (interp, interpreters.list_all()))
        for title, needs, fn in _DEMOS:
            print("")
            print("== %s" % title)
            if needs is not None:
                ok, detail = available(needs)
                if not ok:
                    print("    skipped: %s" % detail)
                    continue
            fn(interp)
            sys.stdout.flush()
    finally:
        interp.destroy()
    print("")
    print("destroyed %r; list_all() = %r" % (interp, interpreters.list_all()))
    assert interpreters.list_all() == [interpreters.get_main()]
    return 0


# ------------------------------------------------------------------------------------
# run FILE: the script runs in a fresh subinterpreter, as `python FILE` would run it

# Executed in the subinterpreter.  It exits the way the interpreter would: join
# non-daemon threads, print an uncaught exception (without this wrapper's and runpy's
# frames), and turn every outcome into an int status, reported as SystemExit(status);
# a KeyboardInterrupt (Ctrl-C) is printed, then raised again (python exits by SIGINT).
_RUNNER = '''\
def __interpreters_run_file__(path, argv):
    import builtins, os, runpy, select, sys, threading, traceback, zipfile
    sys.argv = list(argv)
    real_input = builtins.input

    def input(prompt=""):
        # Ctrl-C reaches the code here at its next bytecode, so a read() blocked
        # in C would hold it back until a line is typed: from a terminal, wait for
        # the line in short select() slices first (the terminal hands over one
        # whole line per read, so nothing is left waiting in a buffer).
        try:
            fd = sys.stdin.fileno()
            tty = sys.stdin is sys.__stdin__ and os.isatty(fd)
        except (AttributeError, OSError, ValueError):
            tty = False
        if not tty:
            return real_input(prompt)
        if prompt:
            sys.stdout.write(str(prompt))
        sys.stdout.flush()
        while not select.select([fd], [], [], 0.05)[0]:
            pass
        return real_input()

    input.__doc__ = real_input.__doc__
    builtins.input = input
    if os.path.isfile(path) and not zipfile.is_zipfile(path):
        sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    status = 0
    interrupted = False
    try:
        try:
            runpy.run_path(path, run_name="__main__")
        finally:
            me = threading.current_thread()
            for t in threading.enumerate():
                if t is not me and not t.daemon and t is not threading.main_thread():
                    t.join()
    except SystemExit as exc:
        code = exc.code
        if code is None:
            status = 0
        elif isinstance(code, int):
            status = code
        else:
            print(code, file=sys.stderr)
            status = 1
    except BaseException as exc:
        tb = exc.__traceback__
        while tb is not None and (tb.tb_frame.f_code is __interpreters_run_file__.__code__
                                  or tb.tb_frame.f_globals.get("__name__") == "runpy"):
            tb = tb.tb_next
        traceback.print_exception(type(exc), exc, tb)
        status = 1
        interrupted = isinstance(exc, KeyboardInterrupt)
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
    if interrupted:
        raise KeyboardInterrupt
    if status:
        raise SystemExit(status)
'''

INTERRUPTED = 130          # run_file()'s status after Ctrl-C (the shell's 128 + SIGINT)


def run_file(path: str, args: Sequence[str]) -> int:
    """Run *path* in a fresh subinterpreter; return its exit status."""
    if not os.path.exists(path):
        print("python -m interpreters run: can't open file %r: No such file or directory"
              % path, file=sys.stderr)
        return 2
    interp = interpreters.create()
    try:
        interp.run(_RUNNER)
        try:
            interp.run("__interpreters_run_file__(%r, %r)" % (path, [path] + list(args)))
        except KeyboardInterrupt as exc:
            # Ctrl-C: the script's traceback is printed there, when it stopped there
            if getattr(exc, "_interpreters_excinfo", None) is None:
                print("KeyboardInterrupt", file=sys.stderr)
            return INTERRUPTED
        except interpreters.RunFailedError as exc:
            info = exc.excinfo
            if info is not None and info.type_name == "SystemExit":
                return int(info.msg)
            if info is not None and info.type_name == "KeyboardInterrupt":
                return INTERRUPTED          # raised by the script itself; printed there
            print(info.formatted if info is not None else exc, file=sys.stderr)
            return 1
        return 0
    finally:
        try:
            interp.destroy()
        except interpreters.InterpreterError as exc:
            # Daemon threads still running in it: it is abandoned at exit.
            print("python -m interpreters run: %s" % exc, file=sys.stderr)


# ------------------------------------------------------------------------------------

def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv == ["demo"]:
        return run_demo()
    if argv == ["--version"]:
        print("interpreters %s on CPython %s" % (interpreters.__version__,
                                                 sys.version.split()[0]))
        return 0
    if argv[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0
    if argv == ["features"]:
        print_report()
        return 0
    if argv[0] == "run":
        if len(argv) < 2:
            print("python -m interpreters run: missing FILE\n", file=sys.stderr)
            print(USAGE, end="", file=sys.stderr)
            return 2
        return run_file(argv[1], argv[2:])
    print("python -m interpreters: unknown arguments %s\n" % " ".join(argv), file=sys.stderr)
    print(USAGE, end="", file=sys.stderr)
    return 2


def _exit_by_sigint() -> None:
    """End the process by SIGINT, as python does after an uncaught KeyboardInterrupt."""
    import signal
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)


def _main_quiet_on_broken_pipe() -> int:
    """main(), ending quietly when stdout is closed early (``... | head``)."""
    try:
        status = main()
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        # Nothing more can be shown: point fd 1 at /dev/null so that the flushes at
        # exit (of this and of every interpreter, they share fd 1) do not complain.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
        return 1


if __name__ == "__main__":
    _status = _main_quiet_on_broken_pipe()
    if _status == INTERRUPTED and sys.argv[1:2] == ["run"]:
        _exit_by_sigint()
    sys.exit(_status)
