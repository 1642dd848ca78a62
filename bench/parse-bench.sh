#!/usr/bin/env bash
# Parse benchmark: upkeep vs crossplane vs nginx -t on one large config.
#
# What it does:
#   1. builds `upkeep` in release mode (unless UPKEEP=/path/to/upkeep is set);
#   2. generates, in a temporary directory, a large valid config with
#      bench/gen-large-config.py: 2,000 upstream blocks and 5,000 server
#      blocks with 3 locations each, split across 70 files included with
#      globs (~165,000 lines); and the same at half size;
#   3. runs, RUNS times each (default 5), on both sizes:
#        upkeep parse CONF            (follows includes, prints crossplane JSON)
#        crossplane parse CONF        (pip package crossplane, same output)
#        nginx -t -q -p DIR/ -c CONF  (Debian's nginx; every path the config
#                                      names is inside DIR, -e keeps the
#                                      error log there too)
#      measuring wall time, CPU time (user + system) and peak RSS with GNU
#      time;
#   4. prints the medians per tool and size, each tool's time and memory
#      relative to upkeep's, and how each tool's memory grows from half to
#      full size (2.0 = linear in the input). CPU time is printed next to
#      wall time because on a busy machine wall time mostly measures the
#      wait for a core.
#
# Requirements: python3, crossplane (`pip install crossplane`), nginx,
# GNU time (/usr/bin/time, Debian package `time`), bc, cargo.
#
# Usage: bench/parse-bench.sh            (RUNS=5 by default)
#        RUNS=9 bench/parse-bench.sh
#
# Targets: upkeep at least 50x faster than crossplane and faster than
# nginx -t, with at most half of nginx -t's peak memory.
set -euo pipefail

cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
CROSSPLANE=${CROSSPLANE:-crossplane}

for tool in python3 bc "$CROSSPLANE" "$NGINX" /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 2; }
done

# shellcheck source=bench/lib.sh
. bench/lib.sh
upkeep_release_binary

work=$(mktemp -d "${TMPDIR:-/tmp}/upkeep-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

# run_one TOOL DIR -> prints "wall_us cpu_us rss_kb"
run_one() {
    local tool=$1 dir=$2 start end
    local conf="$dir/nginx.conf"
    local cmd
    case $tool in
        upkeep) cmd=("$UPKEEP" parse "$conf") ;;
        crossplane) cmd=("$CROSSPLANE" parse "$conf") ;;
        nginx) cmd=("$NGINX" -t -q -p "$dir/" -c "$conf" -e "$dir/logs/error.log") ;;
    esac
    start=$(date +%s%N)
    /usr/bin/time -f '%M %U %S' -o "$work/rss" "${cmd[@]}" >/dev/null 2>"$work/stderr" || {
        echo "$tool failed:" >&2; cat "$work/stderr" >&2; exit 1; }
    end=$(date +%s%N)
    read -r kb user sys < <(tail -n 1 "$work/rss")
    echo "$(( (end - start) / 1000 )) $(echo "($user + $sys) * 1000000 / 1" | bc) $kb"
}

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

declare -A TIME CPU RSS LINES
for scale in 1 0.5; do
    dir="$work/scale-$scale"
    python3 bench/gen-large-config.py "$dir" --scale "$scale"
    lines=$(cat "$dir"/nginx.conf "$dir"/upstreams/*.conf "$dir"/servers/*.conf | wc -l)
    LINES[$scale]=$lines
    files=$(( 1 + $(ls "$dir"/upstreams "$dir"/servers | grep -c '\.conf$') ))
    echo "scale $scale: $lines lines in $files files ($(du -sh "$dir" | cut -f1))" >&2
    for tool in upkeep crossplane nginx; do
        : > "$work/t"; : > "$work/c"; : > "$work/m"
        for _ in $(seq "$RUNS"); do
            read -r us cpu kb < <(run_one "$tool" "$dir")
            echo "$us" >> "$work/t"; echo "$cpu" >> "$work/c"; echo "$kb" >> "$work/m"
        done
        TIME[$tool,$scale]=$(median < "$work/t")
        CPU[$tool,$scale]=$(median < "$work/c")
        RSS[$tool,$scale]=$(median < "$work/m")
    done
done

echo "load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf '%-11s %5s %11s %10s %10s %12s %11s %11s\n' tool size "wall" "CPU" "peak RSS" \
    "wall/upkeep" "CPU/upkeep" "RSS/upkeep"
for scale in 1 0.5; do
    for tool in upkeep crossplane nginx; do
        t=${TIME[$tool,$scale]} c=${CPU[$tool,$scale]} m=${RSS[$tool,$scale]}
        printf '%-11s %5s %8.0f ms %7.0f ms %7.1f MB %11.1fx %10.1fx %10.2fx\n' "$tool" "$scale" \
            "$(echo "$t / 1000" | bc -l)" "$(echo "$c / 1000" | bc -l)" "$(echo "$m / 1024" | bc -l)" \
            "$(echo "$t / ${TIME[upkeep,$scale]}" | bc -l)" \
            "$(echo "$c / ${CPU[upkeep,$scale]}" | bc -l)" \
            "$(echo "$m / ${RSS[upkeep,$scale]}" | bc -l)"
    done
done
echo
# Peak RSS = fixed part + cost per line: the two sizes give both.
for tool in upkeep crossplane nginx; do
    per_line=$(echo "(${RSS[$tool,1]} - ${RSS[$tool,0.5]}) * 1024 / (${LINES[1]} - ${LINES[0.5]})" | bc -l)
    fixed=$(echo "(${RSS[$tool,1]} * 1024 - $per_line * ${LINES[1]}) / 1048576" | bc -l)
    printf 'memory %-10s half -> full size: %.2fx; about %.1f MB + %.0f bytes per line\n' "$tool" \
        "$(echo "${RSS[$tool,1]} / ${RSS[$tool,0.5]}" | bc -l)" "$fixed" "$per_line"
done
echo
ratio() { echo "${1} / ${2}" | bc -l; }
printf 'upkeep vs crossplane: %.1fx faster wall, %.1fx less CPU (target >= 50x)\n' \
    "$(ratio "${TIME[crossplane,1]}" "${TIME[upkeep,1]}")" "$(ratio "${CPU[crossplane,1]}" "${CPU[upkeep,1]}")"
printf 'upkeep vs nginx -t:   %.1fx faster wall, %.1fx less CPU (target > 1x)\n' \
    "$(ratio "${TIME[nginx,1]}" "${TIME[upkeep,1]}")" "$(ratio "${CPU[nginx,1]}" "${CPU[upkeep,1]}")"
printf 'upkeep peak RSS:      %.2f of nginx -t'"'"'s (target <= 0.50)\n' \
    "$(ratio "${RSS[upkeep,1]}" "${RSS[nginx,1]}")"
