#!/usr/bin/env bash
# Compare kspec with gdb 13 in one run, on the same vmlinux and the same
# booted gdbstub, and print the ratios:
#
#   scripts/bench-vs-gdb.sh [MIB] [ROUNDS] [RUNS]
#
#   1. stub: one guest is booted; gdb and kspec take turns on its stub
#      (ROUNDS rounds, medians): `dump binary memory` of MIB MiB of kernel
#      text vs rsp ReadMemory, and `info registers rip` after a register
#      cache flush vs rsp ReadRegister (scripts/benchvsgdb).
#   2. symbols: gdb -batch -ex 'info line do_mkdirat' vs kspec's symbol
#      package cold, building its index, and warm (scripts/bench-symbols.sh,
#      RUNS runs each), then whole `kspec sym` processes cold (--no-index)
#      and warm (index present).
#
# Needs the prepared default guest (kspec guest prepare), QEMU and gdb.
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-8}
rounds=${2:-3}
runs=${3:-5}

go build -o bin/kspec ./cmd/kspec
eval "$(bin/kspec guest env)"
vmlinux=$KSPEC_SYMBOLS
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== gdbstub: memory reads and register round trips (gdb $(gdb --version | head -1 | awk '{print $NF}'))"
go run ./scripts/benchvsgdb -mib "$mib" -rounds "$rounds" | tee "$tmp/stub"

echo
echo "== symbols: first file:line lookup on $(basename "$vmlinux")"
scripts/bench-symbols.sh "$vmlinux" "$runs" do_mkdirat | tee "$tmp/syms"

# Whole kspec sym processes, timed like bench-symbols.sh (median wall time,
# peak RSS).
sym_measure() {
	local name=$1
	shift
	local times=() rss=0
	for _ in $(seq "$runs"); do
		local t0 t1 kb
		t0=$(date +%s%N)
		/usr/bin/time -v "$@" >"$tmp/out" 2>"$tmp/time"
		t1=$(date +%s%N)
		times+=("$(echo "($t1 - $t0) / 1000000000" | bc -l)")
		kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tmp/time")
		((kb > rss)) && rss=$kb
	done
	local median
	median=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
	echo "$name $median $rss" >>"$tmp/symproc"
	printf '%-22s %6.3f s  %7.1f MB  | %s\n' "$name" "$median" "$(echo "$rss / 1024" | bc -l)" "$(head -n 1 "$tmp/out")"
}
bin/kspec sym --symbols "$vmlinux" do_mkdirat >/dev/null # make sure the index exists
sym_measure "kspec-sym-cold" bin/kspec sym --no-index --symbols "$vmlinux" do_mkdirat
sym_measure "kspec-sym-warm" bin/kspec sym --symbols "$vmlinux" do_mkdirat
sym_measure "kspec-sym-expr-warm" bin/kspec sym --symbols "$vmlinux" init_uts_ns.name.nodename

gdb_s=$(awk '$1 == "gdb" {print $2}' "$tmp/syms")
echo
echo "== ratios, this run (how many times faster than gdb 13)"
awk -v g="$gdb_s" '
FILENAME ~ /stub$/ && $1 == "RATIO" { goal = ($2 == "memory") ? "  (goal >= 4x)" : ""; printf "%-36s %6.1fx%s\n", "stub " $2, $3, goal }
FILENAME ~ /syms$/ && ($1 == "cold" || $1 == "warm" || $1 == "index-build") && $3 == "s" && $4 != "=" { printf "%-36s %6.1fx  (%.3f s vs gdb %.3f s)\n", "symbols " $1 " (symtool)", g / $2, $2, g }
FILENAME ~ /symproc$/ { printf "%-36s %6.1fx  (%.3f s vs gdb %.3f s, %.0f MB)\n", "symbols " $1, g / $2, $2, g, $3 / 1024 }
' "$tmp/stub" "$tmp/syms" "$tmp/symproc"
echo "goals: memory >= 4x gdb; first lookup <= 1/4 of gdb (>= 4x); a warm kspec sym process <= 0.2 s; peak RSS <= 200 MB"
