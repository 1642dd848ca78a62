#!/usr/bin/env bash
# Benchmark of `upkeep logs` (issue: speed and memory).
#
#   bench/logs-bench.sh            # 2 GiB error log, 100 MiB error log, 1 GiB access log
#   SIZE=512M bench/logs-bench.sh  # smaller main error log
#
# Generates the logs under $BENCH_DIR (default /tmp/upkeep-logs-bench, kept
# between runs), reads each once to have it in the page cache, then reports:
#   - single-threaded throughput on the big error log, and the ratio to
#     `rg -c upstream` on the same file (goal: >= 1 GB/s and within 2x of rg);
#   - throughput with --threads 0 (all cores);
#   - peak RSS on the 100 MiB and the big file (goal: the same);
#   - the access-log path against GoAccess on the 1 GiB access log.
# The error-log comparison runs ERROR_RUNS (default 15) interleaved rounds
# and reports the median per-round ratio to rg; the access-log timings are
# the median of RUNS (default 5) hyperfine runs. Needs ripgrep, hyperfine,
# goaccess and GNU time (/usr/bin/time).
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE=${SIZE:-2G}
SMALL=${SMALL:-100M}
ACCESS_SIZE=${ACCESS_SIZE:-1G}
RUNS=${RUNS:-5}
BENCH_DIR=${BENCH_DIR:-/tmp/upkeep-logs-bench}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}

for tool in rg hyperfine goaccess /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing" >&2; exit 1; }
done

cargo build --release -q -p upkeep-cli
cargo build --release -q -p upkeep-logs --example gen_logs
UPKEEP="$CARGO_TARGET_DIR/release/upkeep"
GEN="$CARGO_TARGET_DIR/release/examples/gen_logs"

mkdir -p "$BENCH_DIR"
BIG="$BENCH_DIR/error-$SIZE.log"
SMALLF="$BENCH_DIR/error-$SMALL.log"
ACCESS="$BENCH_DIR/access-$ACCESS_SIZE.log"
[ -s "$BIG" ] || { echo "generating $BIG"; "$GEN" error "$SIZE" "$BIG"; }
[ -s "$SMALLF" ] || { echo "generating $SMALLF"; "$GEN" error "$SMALL" "$SMALLF"; }
[ -s "$ACCESS" ] || { echo "generating $ACCESS"; "$GEN" access "$ACCESS_SIZE" "$ACCESS"; }
FORMAT=$("$GEN" access-format)

for f in "$BIG" "$SMALLF" "$ACCESS"; do cat "$f" >/dev/null; done
bytes() { stat -c %s "$1"; }

# median seconds of a command, via hyperfine's JSON export
median() {
  local json
  json=$(mktemp)
  hyperfine --style none --ignore-failure --warmup 1 --runs "$RUNS" --export-json "$json" "$@" >/dev/null
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["median"])' "$json"
  rm -f "$json"
}

# (upkeep exits 1 when it finds failure signatures: not an error here)
peak_rss_kib() {
  { /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null || true; } | tail -1
}

rate() { python3 -c "import sys; print(f'{int(sys.argv[1])/float(sys.argv[2])/1e9:.2f}')" "$1" "$2"; }
ratio() { python3 -c "import sys; print(f'{float(sys.argv[1])/float(sys.argv[2]):.2f}')" "$1" "$2"; }

echo "== inputs"
ls -l "$BIG" "$SMALLF" "$ACCESS"
echo "upkeep: $("$UPKEEP" --version)   rg: $(rg --version | head -1)   cores: $(nproc)"

ERROR_RUNS=${ERROR_RUNS:-15}
echo "== error log, $(bytes "$BIG") bytes ($ERROR_RUNS rounds, interleaved; median wall and CPU seconds)"
# Each round runs rg, then upkeep single-threaded, then upkeep on all
# cores, back to back. The ratio to rg is taken within each round, so the
# machine's drift between rounds (large on a shared VM) cancels out; the
# median of the per-round ratios is the figure, with the middle half of
# them as its spread.
out=$(mktemp -d)
for i in $(seq "$ERROR_RUNS"); do
  n=0
  for cmd in "rg -c upstream '$BIG'" \
    "'$UPKEEP' logs --no-progress --format json '$BIG'" \
    "'$UPKEEP' logs --no-progress --format json --threads 0 '$BIG'"; do
    n=$((n + 1))
    /usr/bin/time -a -o "$out/$n" -f '%e %U %S' bash -c "$cmd" >/dev/null 2>&1 || true
  done
done
python3 - "$out" "$(bytes "$BIG")" "$(nproc)" <<'PY'
import statistics, sys
out, size, cores = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def rows(n):
    return [list(map(float, l.split())) for l in open(f"{out}/{n}") if l[0].isdigit()]
rg, one, all_ = rows(1), rows(2), rows(3)
def quartiles(xs):
    q = statistics.quantiles(xs, n=4)
    return f"{statistics.median(xs):.2f}x (middle half {q[0]:.2f}-{q[2]:.2f})"
print(f"{'':34} {'wall s':>8} {'cpu s':>8} {'GB/s':>8}   wall vs rg, per round")
for name, r in [("rg -c upstream", rg), ("upkeep logs (1 thread)", one),
                (f"upkeep logs --threads 0 ({cores})", all_)]:
    wall = statistics.median(x[0] for x in r)
    cpu = statistics.median(x[1] + x[2] for x in r)
    ratio = "" if r is rg else quartiles([a[0] / b[0] for a, b in zip(r, rg)])
    print(f"{name:34} {wall:8.2f} {cpu:8.2f} {size / wall / 1e9:8.2f}   {ratio}")
PY
rm -rf "$out"

echo "== peak RSS (KiB)"
rss_small=$(peak_rss_kib "$UPKEEP" logs --no-progress --format json "$SMALLF")
rss_big=$(peak_rss_kib "$UPKEEP" logs --no-progress --format json "$BIG")
rss_big_mt=$(peak_rss_kib "$UPKEEP" logs --no-progress --format json --threads 0 "$BIG")
printf '%-34s %8s\n' "error log $SMALL" "$rss_small" "error log $SIZE" "$rss_big" "error log $SIZE, all cores" "$rss_big_mt"

echo "== access log, $(bytes "$ACCESS") bytes"
GOACCESS_FORMAT='%h - %^ [%d:%t %^] "%r" %s %b "%R" "%u" %^'
# GoAccess takes minutes on this file, so it runs once (no warm-up), and
# SKIP_GOACCESS=1 reuses the figures of the last run.
if [ "${SKIP_GOACCESS:-0}" != 1 ] || [ ! -s "$BENCH_DIR/goaccess.time" ]; then
  /usr/bin/time -o "$BENCH_DIR/goaccess.time" -f '%e %M' goaccess "$ACCESS" --log-format="$GOACCESS_FORMAT" \
    --date-format=%d/%b/%Y --time-format=%T -o "$BENCH_DIR/goaccess.json" --no-global-config >/dev/null 2>&1 || true
fi
read -r t_goaccess rss_goaccess < <(tail -1 "$BENCH_DIR/goaccess.time")
t_access=$(median "'$UPKEEP' logs --no-progress --format json --access-log '$ACCESS' --log-format '$FORMAT' </dev/null")
t_join=$(median "'$UPKEEP' logs --no-progress --format json '$SMALLF' --access-log '$ACCESS' --log-format '$FORMAT'")
mbps() { python3 -c "import sys; print(f'{int(sys.argv[1])/float(sys.argv[2])/1e6:.1f}')" "$1" "$2"; }
printf '%-34s %9.2f s  %7s MB/s\n' "goaccess (JSON report, 1 run)" "$t_goaccess" "$(mbps "$(bytes "$ACCESS")" "$t_goaccess")"
printf '%-34s %9.2f s  %7s MB/s  (%sx faster than goaccess)\n' "upkeep logs --access-log" "$t_access" "$(mbps "$(bytes "$ACCESS")" "$t_access")" "$(ratio "$t_goaccess" "$t_access")"
printf '%-34s %8.3f s\n' "upkeep logs $SMALL + access join" "$t_join"
rss_access=$(peak_rss_kib "$UPKEEP" logs --no-progress --format json --access-log "$ACCESS" --log-format "$FORMAT" </dev/null)
printf '%-34s %8s KiB\n' "peak RSS upkeep --access-log" "$rss_access" "peak RSS goaccess" "$rss_goaccess"
