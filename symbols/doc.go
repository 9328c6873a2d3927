// Package symbols answers questions about a kernel image's ELF symbol table
// and DWARF debug information: names to addresses, addresses to
// function+offset, addresses and functions to file:line (the way gdb prints
// them), call-frame unwinding and simple typed expressions.
//
// The image is memory-mapped and everything is read lazily, straight from
// the mapping: Open reads the ELF header and the section headers and
// nothing else. A file:line lookup reads the symbol table,
// .debug_aranges, the header and first entry of one compilation unit, and
// that unit's line program. A 590 MB Debian vmlinux therefore answers its
// first lookup in milliseconds, where debug/dwarf would first copy and
// parse hundreds of megabytes.
//
// An optional on-disk index (see OpenIndexed), keyed by the image's GNU
// build-id, keeps the sorted symbol tables and the address-to-unit map so
// that later processes skip even that work.
//
// File names are reported the way gdb 13 prints them ("fs/namei.c",
// "include/linux/sched/debug.h", or an absolute path for assembler units),
// and line lookups follow gdb's line-table rules, so results can be
// compared with `gdb -batch -ex 'info line NAME' vmlinux` directly.
//
// A Table is safe for concurrent use. Strings returned by a Table are
// copies and stay valid after Close.
package symbols
