// Package symbols answers questions about a kernel image's ELF symbol table
// and DWARF debug information: names to addresses, addresses to
// function+offset, addresses, functions and source lines to each other (the
// way gdb prints them), backtraces with inlined frames, and the addresses,
// sizes and types of static expressions.
//
// The image is memory-mapped and everything is read lazily, straight from
// the mapping: Open reads the ELF header and the section headers and
// nothing else. A file:line lookup reads the symbol table, .debug_aranges,
// the header and first entry of one compilation unit, and that unit's line
// program. A 590 MB Debian vmlinux therefore answers its first lookup in
// milliseconds, where debug/dwarf would first copy and parse hundreds of
// megabytes and gdb needs more than a second.
//
// The main entry points:
//
//   - Lookup, LookupAll, SymbolAt: ELF symbols (unknown names come back as
//     an *UnknownSymbolError with suggestions).
//   - LineAt, FunctionLine, LineAddrs, Resolve: source lines, matching gdb's
//     `info line *ADDR`, `info line NAME` and `break FILE:LINE`.
//   - InlinedAt, Unwind, UnwindStep: inlined-call chains and .debug_frame
//     unwinding, matching gdb's `bt`.
//   - Expr, Offsetof: static lvalues such as "init_uts_ns.name.nodename"
//     and struct member offsets, matching gdb's `p &E`, `sizeof` and
//     `whatis`.
//
// An optional on-disk index (OpenIndexed), keyed by the image's GNU
// build-id and stored under $KSPEC_CACHE/symbols (default
// ~/.cache/kspec/symbols), keeps the symbol hash table, the address-sorted
// symbol list, the address-to-unit maps and the frame-description index so
// that later processes skip that work too.
//
// File names are reported the way gdb 13 prints them ("fs/namei.c",
// "include/linux/sched/debug.h", or an absolute path for assembler units),
// and line lookups follow gdb's line-table rules (rows at one address,
// is_stmt, file switches, discriminators), so results can be compared with
// `gdb -batch -ex 'info line NAME' vmlinux` directly;
// scripts/symbols-vs-gdb.sh does that for random functions.
//
// A Table is safe for concurrent use. Strings returned by a Table are
// copies and stay valid after Close.
//
// Tests that need a real kernel read its path from $KSPEC_SYMBOLS; without
// it they fail with instructions, or skip when KSPEC_SKIP_MISSING=1.
package symbols
