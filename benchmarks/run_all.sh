#!/bin/sh
# Run benchmarks/bench_interp.py, then benchmarks/bench_queues.py, on every CPython
# 3.8-3.13 installed through pyenv and print markdown tables.  Each version runs in
# its own process, one after the other (never in parallel: they would disturb each
# other's timings).  Extra arguments are passed to bench_interp.py (e.g. --cycles 60).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
pythons=""
found=0
for minor in 8 9 10 11 12 13; do
    # the newest 3.<minor>.<patch> (plain releases only: no 3.13.0t, -dev, ...)
    dir=$(ls -d "$root"/versions/3."$minor".* 2>/dev/null \
          | grep -E "/3\.$minor\.[0-9]+$" | sort -V | tail -n 1)
    [ -n "$dir" ] && [ -x "$dir/bin/python" ] || continue
    pythons="$pythons $dir"
    found=$((found + 1))
done

echo "| CPython | run ours us | run C us | ratio | create+destroy ours ms | C ms | ratio | load |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for dir in $pythons; do
    timeout 120 "$dir/bin/python" "$here/bench_interp.py" --row "$@" \
        || echo "| $(basename "$dir") | failed (rc $?) | | | | | | |"
done
echo
echo "run: median us per run('pass') over interleaved batches; create+destroy: median ms per cycle."
echo "Targets: run ratio <= 1.5x, create+destroy ratio <= 1.2x.  load: 1-minute load average."

# bench_queues.py prints its rows tagged rt|, iso|, pipe|, tp|, aio|: one table each.
rows=$(mktemp)
trap 'rm -f "$rows"' EXIT
for dir in $pythons; do
    out=$(timeout 120 "$dir/bin/python" "$here/bench_queues.py" --rows)
    rc=$?
    printf '%s\n' "$out" | grep -E "^(rt|iso|pipe|tp|aio)\\|" >> "$rows"
    [ "$rc" -eq 0 ] || echo "rt| $(basename "$dir") | failed (rc $rc) |" >> "$rows"
done
table() {   # tag, header, separator
    echo
    echo "$2"
    echo "$3"
    grep "^$1|" "$rows" | sed "s/^$1|/|/"
}
table rt "| CPython | Queue RT 64 B ours us | mp.Queue us | queue.Queue us | C sleep(0) us | C yield us | ours/mp | ours/C yield | tuple ours us | mp.Queue us | queue.Queue us | C sleep(0) us | C yield us | ours/mp | ours/C yield | load before/after |" \
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
table iso "| CPython | isolated Queue RT 64 B ours us | C yield us | ours/C | tuple ours us | C us | ours/C | load before/after |" \
    "|---|---:|---:|---:|---:|---:|---:|---:|"
table pipe "| CPython | Pipe RT 64 B ours us | mp.Pipe us | ours/mp | tuple ours us | mp.Pipe us | ours/mp | load before/after |" \
    "|---|---:|---:|---:|---:|---:|---:|---:|"
table tp "| CPython | 10k via Queue(64) ours us/item | mp.Queue(64) | queue.Queue(64) | C | ours/mp | ours/C | load before/after |" \
    "|---|---:|---:|---:|---:|---:|---:|---:|"
table aio "| CPython | recv_async us/msg | run_in_executor(recv) | asyncio.Queue (thread) | Queue.get_async | Connection.recv_async | recv_async/executor | recv_async/asyncio.Queue | load before/after |" \
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
echo
echo "Queues: median us per round trip (RT) main <-> peer (subinterpreter thread, child"
echo "process, thread); C: 3.13 _interpqueues, else the C channels, polled with time.sleep(0)"
echo "or os.sched_yield(); isolated: 3.13 only, both peers with their own GIL; throughput: us"
echo "per item, 10,000 items; asyncio: us per message, 1,000 messages.  Ratios: ours / peer"
echo "(times: above 1, ours is slower).  load: 1-minute load average before/after."
[ "$found" -eq 6 ] || { echo "expected 6 CPython versions (3.8-3.13), found $found" >&2; exit 1; }
