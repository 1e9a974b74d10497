"""PEP 734 (Python 3.14): concurrent.futures.InterpreterPoolExecutor.

Each worker thread owns an interpreter (own GIL where the Python has it), so
CPU-bound functions run in parallel.  Run it from the repository root:
python examples/pep734/executor.py
"""

try:
    from concurrent import interpreters
except ImportError:
    from interpreters import pep734 as interpreters

try:
    from concurrent.futures import InterpreterPoolExecutor
except ImportError:
    from interpreters.pep734 import InterpreterPoolExecutor


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def main():
    with InterpreterPoolExecutor(max_workers=4) as executor:
        try:
            results = list(executor.map(fib, [20, 21, 22, 23]))
            print(results)
            assert results == [6765, 10946, 17711, 28657]

            # An exception is re-raised as itself, its traceback there chained.
            future = executor.submit(int, 'spam')
            try:
                future.result()
            except ValueError as exc:
                print('caught:', exc)
                assert isinstance(exc.__cause__, interpreters.ExecutionFailed)
        finally:
            executor.shutdown()


if __name__ == "__main__":
    main()
