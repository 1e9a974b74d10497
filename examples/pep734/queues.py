"""PEP 734 (Python 3.14 concurrent.interpreters): pass data between interpreters with queues.

Workers in other interpreters (each in its own thread) take tasks from one queue and
put results on another.  Run it from the repository root:  python examples/pep734/queues.py
"""

try:
    from concurrent import interpreters
except ImportError:
    from interpreters import pep734 as interpreters

import threading


def worker():
    # Runs in a worker interpreter: `tasks` and `results` were bound there by
    # prepare_main(); None means stop.
    while True:
        n = tasks.get()  # noqa: F821
        if n is None:
            break
        results.put((n, n * n))  # noqa: F821


def main():
    tasks = interpreters.create_queue()
    results = interpreters.create_queue()
    workers = [interpreters.create() for _ in range(2)]
    try:
        threads = []
        for interp in workers:
            interp.prepare_main(tasks=tasks, results=results)
            t = threading.Thread(target=interp.exec, args=(worker,))
            t.start()
            threads.append(t)
        for n in range(10):
            tasks.put(n)
        squares = dict(results.get(timeout=30) for _ in range(10))
        for _ in workers:
            tasks.put(None)
        for t in threads:
            t.join()
        print(sorted(squares.items()))
        assert squares == {n: n * n for n in range(10)}

        # Anything picklable travels too (as a copy); queues travel as queues.
        results.put({'spam': [1, 2, 3]})
        print(results.get())
    finally:
        for interp in workers:
            interp.close()


if __name__ == "__main__":
    main()
