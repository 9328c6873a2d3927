#!/usr/bin/env bash
# Compare package symbols with gdb on random functions of a vmlinux.
#
#   scripts/symbols-vs-gdb.sh [VMLINUX] [N] [SEED]
#
# Picks N random function symbols whose names are unique and N random
# addresses inside functions, asks gdb for `info line NAME` and
# `info line *ADDR` (ADDR = each function's address, then the random ones)
# and asks symbols.FunctionLine / symbols.LineAt the same, formatted like gdb.
# A name matches when our line is one of gdb's answers (gdb also lists
# inlined instances of a function); an address must match exactly.
# Prints mismatches and the match rates; SHOW_SYMBOL_DIFFS=1 also prints
# answers that differ only in a <symbol+offset> annotation. VMLINUX defaults
# to $KSPEC_SYMBOLS.
set -euo pipefail
cd "$(dirname "$0")/.."
vmlinux=${1:-${KSPEC_SYMBOLS:?set KSPEC_SYMBOLS or pass the vmlinux path}}
n=${2:-50}
seed=${3:-1}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

go build -o "$tmp/symtool" ./symbols/internal/symtool
"$tmp/symtool" random-funcs "$vmlinux" "$n" "$seed" >"$tmp/names"
{
	"$tmp/symtool" resolve "$vmlinux" $(cat "$tmp/names") | awk '{print $1}'
	# The same number of addresses inside functions, off their first row.
	"$tmp/symtool" random-addrs "$vmlinux" "$n" "$seed"
} >"$tmp/addrs"

gdbargs=()
while read -r name; do gdbargs+=(-ex "echo @@@ $name\\n" -ex "info line $name"); done <"$tmp/names"
while read -r addr; do gdbargs+=(-ex "echo @@@ *$addr\\n" -ex "info line *$addr"); done <"$tmp/addrs"
gdb -nx -batch "${gdbargs[@]}" "$vmlinux" >"$tmp/gdb.out" 2>&1 || true

# Our answers, one per query, in the same order.
"$tmp/symtool" info-line "$vmlinux" $(cat "$tmp/names") >"$tmp/ours.names"
"$tmp/symtool" info-line "$vmlinux" $(sed 's/^/*/' "$tmp/addrs") >"$tmp/ours.addrs"
paste -d'\t' "$tmp/names" "$tmp/ours.names" >"$tmp/ours"
paste -d'\t' <(sed 's/^/*/' "$tmp/addrs") "$tmp/ours.addrs" >>"$tmp/ours"

awk -F'\t' -v gdbout="$tmp/gdb.out" -v showsym="${SHOW_SYMBOL_DIFFS:-0}" '
# strip removes the <symbol+offset> annotations: gdb names addresses after
# DWARF functions (blk_mq_cancel_work_sync), we after ELF symbols
# (blk_mq_cancel_work_sync.part.0).
function strip(s) { gsub(/ <[^>]*>/, "", s); return s }
BEGIN {
	while ((getline line < gdbout) > 0) {
		if (line ~ /^@@@ /) { q = substr(line, 5); nq[q] = 0; continue }
		if (q == "") continue
		ans[q, ++nq[q]] = line
	}
}
{
	q = $1; ours = $2; kind = (q ~ /^\*/) ? "addr" : "name"
	total[kind]++
	ok = 0; full = 0
	for (i = 1; i <= nq[q]; i++) {
		if (kind == "addr" && nq[q] != 1) break
		if (ans[q, i] == ours) full = 1
		if (strip(ans[q, i]) == strip(ours)) ok = 1
	}
	if (full) exact[kind]++
	if (ok && !full && showsym) {
		printf "SYMBOL-NAMING %s\n  ours: %s\n", q, ours
		for (i = 1; i <= nq[q]; i++) printf "  gdb:  %s\n", ans[q, i]
	}
	if (ok) { match_[kind]++; next }
	printf "MISMATCH %s\n  ours: %s\n", q, ours
	for (i = 1; i <= nq[q]; i++) printf "  gdb:  %s\n", ans[q, i]
}
END {
	for (k in total) printf "%s queries: %d/%d match gdb in line, file and address range (%.1f%%); %d also in every <symbol+offset>\n", k, match_[k], total[k], 100 * match_[k] / total[k], exact[k]
}' "$tmp/ours"
