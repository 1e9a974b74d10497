"""PEP 734 (Python 3.14 concurrent.interpreters) "Basic usage": call a function in an interpreter.

call() runs a function there and returns its result; call_in_thread() does it in a
new OS thread.  Run it from the repository root:  python examples/pep734/call_function.py
"""

try:
    from concurrent import interpreters
except ImportError:
    from interpreters import pep734 as interpreters


def run(arg):
    return arg


def greet():
    print('spam!')


def main():
    interp = interpreters.create()
    try:
        res = interp.call(run, 'spam!')
        print(res)
        assert res == 'spam!'

        interp.call(greet)

        # Run in a new OS thread.
        t = interp.call_in_thread(greet)
        t.join()

        # The function's exception comes back as ExecutionFailed.
        try:
            interp.call(int, 'not a number')
        except interpreters.ExecutionFailed as exc:
            print('caught:', exc.excinfo.formatted)
    finally:
        interp.close()


if __name__ == "__main__":
    main()
