"""An asyncio TCP server whose requests are computed by subinterpreter workers.

The event loop only does I/O.  Each request goes into a Queue; two worker
interpreters (each in its own thread) take requests, compute, and put answers in
a second Queue, which the loop awaits with get_async(): the loop is never
blocked and never polls.

An extra example: not one of PEP 554's.

Run it from the repository root:  python examples/asyncio_server.py
"""

import asyncio
import itertools
import os
import sys
import threading

try:
    import interpreters
except ImportError:   # a checkout that is not installed: use the package next to us
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import interpreters

WORKER = """
def count_primes(limit):
    sieve = bytearray([1]) * limit
    sieve[:2] = b"\\0\\0"
    for i in range(2, int(limit ** 0.5) + 1):
        if sieve[i]:
            sieve[i * i::i] = bytes(len(range(i * i, limit, i)))
    return sum(sieve)

while (job := jobs.get()) is not None:
    request_id, limit = job
    answers.put((request_id, count_primes(limit)))
"""


async def serve(workers):
    jobs = interpreters.Queue(maxsize=8)      # back-pressure: put_async() waits when full
    answers = interpreters.Queue()
    threads = [threading.Thread(target=w.run, args=(WORKER,),
                                kwargs={"channels": {"jobs": jobs, "answers": answers}},
                                daemon=True)          # on an error, exit does not wait
               for w in workers]
    for t in threads:
        t.start()

    pending = {}                              # request id -> future of its answer
    ids = itertools.count()

    async def dispatch_answers():
        while True:
            request_id, result = await answers.get_async()
            pending.pop(request_id).set_result(result)

    async def handle(reader, writer):
        loop = asyncio.get_running_loop()
        while line := await reader.readline():
            request_id = next(ids)
            pending[request_id] = answer = loop.create_future()
            await jobs.put_async((request_id, int(line)))
            writer.write(b"%d\n" % await answer)
            await writer.drain()
        writer.close()

    dispatcher = asyncio.ensure_future(dispatch_answers())
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    async def client(limits):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        results = []
        for limit in limits:
            writer.write(b"%d\n" % limit)
            await writer.drain()
            results.append(int(await reader.readline()))
        writer.close()
        return results

    got = await asyncio.gather(*(client([10, 100, 1000, 10000 + c]) for c in range(5)))
    print("answers:", got)
    assert all(r[:3] == [4, 25, 168] for r in got), got

    server.close()
    await server.wait_closed()
    for _ in workers:
        await jobs.put_async(None)            # one stop marker per worker
    loop = asyncio.get_running_loop()
    for t in threads:
        await loop.run_in_executor(None, t.join)
    dispatcher.cancel()
    print("served %d requests with %d worker interpreters" % (sum(map(len, got)), len(workers)))


def main():
    workers = [interpreters.create() for _ in range(2)]
    try:
        asyncio.run(serve(workers))
    finally:
        for w in workers:
            w.destroy()


if __name__ == "__main__":
    main()
