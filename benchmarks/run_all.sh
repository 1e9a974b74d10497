#!/bin/sh
# Run benchmarks/bench_interp.py on every CPython 3.8-3.13 installed through pyenv
# and print one markdown table.  Each version runs in its own process, one after
# the other (never in parallel: they would disturb each other's timings).
# Extra arguments are passed to bench_interp.py (e.g. --cycles 60).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
found=0
echo "| CPython | run ours us | run C us | ratio | create+destroy ours ms | C ms | ratio | load |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for minor in 8 9 10 11 12 13; do
    # the newest 3.<minor>.<patch> (plain releases only: no 3.13.0t, -dev, ...)
    dir=$(ls -d "$root"/versions/3."$minor".* 2>/dev/null \
          | grep -E "/3\.$minor\.[0-9]+$" | sort -V | tail -n 1)
    py="$dir/bin/python"
    [ -n "$dir" ] && [ -x "$py" ] || continue
    found=$((found + 1))
    timeout 120 "$py" "$here/bench_interp.py" --row "$@" \
        || echo "| $(basename "$dir") | failed (rc $?) | | | | | | |"
done
echo
echo "run: median us per run('pass') over interleaved batches; create+destroy: median ms per cycle."
echo "Targets: run ratio <= 1.5x, create+destroy ratio <= 1.2x.  load: 1-minute load average."
[ "$found" -eq 6 ] || { echo "expected 6 CPython versions (3.8-3.13), found $found" >&2; exit 1; }
