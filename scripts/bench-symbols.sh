#!/usr/bin/env bash
# Time gdb's `info line do_mkdirat` against package symbols on the same
# vmlinux, each in a fresh process, and report ratios and peak RSS.
#
#   scripts/bench-symbols.sh [VMLINUX] [RUNS] [FUNCTION]
#
# Cases (median wall time of RUNS runs, peak RSS from /usr/bin/time -v):
#   gdb          gdb -nx -batch -ex 'info line FUNCTION' VMLINUX
#   cold         symbols.Open + FunctionLine: nothing cached
#   index-build  symbols.OpenIndexed with an empty cache: builds and writes the index
#   warm         symbols.OpenIndexed with the index present
# The page cache is warm for every case (the script reads the file first).
# VMLINUX defaults to $KSPEC_SYMBOLS.
set -euo pipefail
cd "$(dirname "$0")/.."
vmlinux=${1:-${KSPEC_SYMBOLS:?set KSPEC_SYMBOLS or pass the vmlinux path}}
runs=${2:-5}
fn=${3:-do_mkdirat}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

go build -o "$tmp/symtool" ./symbols/internal/symtool
cat "$vmlinux" >/dev/null # warm the page cache for everyone

# measure NAME PREP CMD...: runs PREP then CMD RUNS times; prints
# "NAME median_seconds max_rss_kb" and the last output line of CMD.
measure() {
	local name=$1 prep=$2
	shift 2
	local times=() rss=0
	for _ in $(seq "$runs"); do
		eval "$prep"
		local t0 t1 wall kb
		t0=$(date +%s%N)
		/usr/bin/time -v "$@" >"$tmp/out" 2>"$tmp/time"
		t1=$(date +%s%N)
		# /usr/bin/time's wall clock has 10 ms steps: time it ourselves.
		wall=$(echo "($t1 - $t0) / 1000000000" | bc -l)
		kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tmp/time")
		times+=("$wall")
		((kb > rss)) && rss=$kb
	done
	local median
	median=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
	echo "$name $median $rss" >>"$tmp/results"
	printf '%-12s %6.3f s  %7.1f MB  | %s\n' "$name" "$median" "$(echo "$rss / 1024" | bc -l)" "$(tail -n 1 "$tmp/out")"
}

echo "vmlinux: $vmlinux ($(du -h "$vmlinux" | cut -f1)), $runs runs each, function $fn"
measure gdb : gdb -nx -batch -ex "info line $fn" "$vmlinux"
measure cold : "$tmp/symtool" info-line "$vmlinux" "$fn"
measure index-build "rm -rf '$tmp/cache'" "$tmp/symtool" -index "$tmp/cache" info-line "$vmlinux" "$fn"
measure warm : "$tmp/symtool" -index "$tmp/cache" info-line "$vmlinux" "$fn"

awk '
$1 == "gdb" { g = $2 }
{ t[$1] = $2 }
END {
	for (k in t) if (k != "gdb") printf "%-12s %6.3f s = 1/%.0f of gdb\n", k, t[k], g / t[k]
}' "$tmp/results" | sort
echo "goals: cold <= 1/4 of gdb, warm <= 0.2 s, peak RSS <= 200 MB"
