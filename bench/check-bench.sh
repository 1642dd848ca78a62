#!/usr/bin/env bash
# Check benchmark: `upkeep check` against `upkeep parse` on the parser
# benchmark's generated config (bench/gen-large-config.py: ~165,000 lines,
# 2,000 upstreams, 5,000 servers, 70 included files). Target: check takes
# at most 2x the parse time.
#
# `upkeep parse` loads the config (every include, parsed on all cores) and
# prints crossplane's JSON; `upkeep check` loads the same config, builds the
# effective-config model, runs every rule and prints the findings (2,000
# infos and 2 warnings on this config). Both are timed with hyperfine as
# whole processes, alternating, and the ratio of the means is printed with
# its uncertainty. Wall time is the figure that counts; on a busy or shared
# machine it wanders, so the script also prints the load average.
#
# Usage: bench/check-bench.sh             (RUNS=30 by default; MEMORY=0 skips
#                                          the peak-memory part at the end,
#                                          MEMORY_ONLY=1 runs only that part)
# Requirements: python3, hyperfine, cargo.
set -euo pipefail

cd "$(dirname "$0")/.."
RUNS=${RUNS:-30}
if [ "${MEMORY_ONLY:-0}" != 1 ]; then
    command -v hyperfine >/dev/null || { echo "missing: hyperfine" >&2; exit 2; }
fi

# shellcheck source=bench/lib.sh
. bench/lib.sh
upkeep_release_binary

work=$(mktemp -d "${TMPDIR:-/tmp}/upkeep-check-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg)"

json="$work/results.json"
if [ "${MEMORY_ONLY:-0}" != 1 ]; then
python3 bench/gen-large-config.py "$work/conf" >/dev/null
conf="$work/conf/nginx.conf"
echo "config: $(cat "$work"/conf/nginx.conf "$work"/conf/*/*.conf | wc -l) lines" >&2
# check exits 1 when it reports findings: not a failure here (-i).
hyperfine -N -i --style basic --warmup 3 --runs "$RUNS" --export-json "$json" \
    -n parse "$UPKEEP parse $conf" \
    -n "check (human)" "$UPKEEP check $conf --nginx-version 1.28.0" \
    -n "check (json)" "$UPKEEP check $conf --nginx-version 1.28.0 --format json" >&2

python3 - "$json" <<'EOF'
import json, math, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
parse = results["parse"]
print(f"{'command':<15} {'mean':>9} {'median':>9} {'min':>9}  ratio to parse (mean ± σ)")
for name, r in results.items():
    ratio = r["mean"] / parse["mean"]
    # Relative errors of a quotient add in quadrature.
    err = ratio * math.hypot(r["stddev"] / r["mean"], parse["stddev"] / parse["mean"])
    print(f"{name:<15} {r['mean']*1e3:7.1f}ms {r['median']*1e3:7.1f}ms {r['min']*1e3:7.1f}ms  "
          f"{ratio:.2f} ± {err:.2f}")
print("target: check <= 2.00x parse")
EOF
fi

# Peak memory on one 200 MB file (gen-large-config.py --scale 43
# --single-file; MEMORY_SCALE=5 gives a 23 MB file, for a quick look):
# `check` (human, JSON and SARIF output), `fix` (diff only) and `fix --write`
# (without `nginx -t`, on a fresh copy of the file each run) with GNU time,
# as a multiple of the input size. Target: check at most 4x the input, fix
# at most 6x (fix checks each fixed text as check does, then holds the
# original and the fixed text to diff or write them). See the figures
# measured in README.md ("Benchmarks"). Peak
# RSS varies from run to run (the allocator's per-thread pages depend on
# how the rule threads interleave; up to a tenth for `fix`), so each
# command runs MEMORY_RUNS times (3 by default) and the lowest and highest
# peaks are printed, with the median time.
# MEMORY=0 skips this part; MEMORY_ONLY=1 skips the timing part.
if [ "${MEMORY:-1}" != 0 ]; then
    [ -x /usr/bin/time ] || { echo "missing: /usr/bin/time (Debian package time)" >&2; exit 2; }
    python3 bench/gen-large-config.py "$work/big" --scale "${MEMORY_SCALE:-43}" --single-file >/dev/null
    big="$work/big/nginx.conf"
    size=$(stat -c %s "$big")
    runs=${MEMORY_RUNS:-3}
    echo "peak RSS on one $((size / 1000000)) MB file ($runs runs each):"
    for cmd in check check-json check-sarif fix fix-write; do
        input=$big
        case $cmd in
            check-json) run=(check --format json) ;;
            check-sarif) run=(check --format sarif) ;;
            fix-write) run=(fix --write --no-nginx-test); input="$work/write/nginx.conf" ;;
            *) run=("$cmd") ;;
        esac
        : >"$work/rss-all"
        for _ in $(seq "$runs"); do
            if [ "$cmd" = fix-write ]; then
                rm -rf "$work/write" && mkdir "$work/write" && cp "$big" "$input"
            fi
            /usr/bin/time -f "%M %e" -o "$work/rss" "$UPKEEP" "${run[@]}" "$input" --nginx-version 1.28.0 \
                >/dev/null 2>&1 || true
            # A --write that wrote nothing (no backup, or the file as it was)
            # would not measure a write.
            if [ "$cmd" = fix-write ] \
                && { [ ! -e "$input.upkeep.bak" ] || cmp -s "$input" "$input.upkeep.bak"; }; then
                echo "fix --write wrote nothing: its figure would not be a write's" >&2
                exit 1
            fi
            # GNU time writes "Command exited with non-zero status 1" first
            # when findings make the exit code 1: the figures are the last line.
            tail -n 1 "$work/rss" >>"$work/rss-all"
        done
        python3 - "$cmd" "$size" "$work/rss-all" <<'EOF'
import statistics, sys
cmd, size = sys.argv[1], int(sys.argv[2])
rows = [line.split() for line in open(sys.argv[3]) if line.strip()]
kib = sorted(int(k) for k, _ in rows)
secs = statistics.median(float(s) for _, s in rows)
lo, hi = kib[0], kib[-1]
print(f"{cmd:<10} {lo / 1024:6.0f} to {hi / 1024:6.0f} MiB  "
      f"{lo * 1024 / size:4.1f}x to {hi * 1024 / size:4.1f}x the input  {secs:6.1f} s")
EOF
    done
    echo "target: check <= 4x, fix <= 6x the input"
fi
