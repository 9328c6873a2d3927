package symbols

import (
	"debug/dwarf"
	"fmt"
)

// GDBInfoLine formats the answer to gdb's `info line` for a location
// looked up by LineAt or FunctionLine, in gdb's words, for example
//
//	Line 4169 of "fs/namei.c" starts at address 0xffffffff813632a0 <do_mkdirat> and ends at 0xffffffff813632a5 <do_mkdirat+5>.
//
// It is meant for comparing answers with gdb.
func (t *Table) GDBInfoLine(loc Location) string {
	if loc.End == 0 || loc.End == loc.Addr {
		return fmt.Sprintf("Line %d of %q is at address %s but contains no code.", loc.Line, loc.File, t.gdbAddr(loc.Addr))
	}
	return fmt.Sprintf("Line %d of %q starts at address %s and ends at %s.", loc.Line, loc.File, t.gdbAddr(loc.Addr), t.gdbAddr(loc.End))
}

// gdbAddr formats addr like gdb's print_address_symbolic: 0x... <name+off>,
// naming the DWARF function that contains addr unless an ELF symbol
// starts closer to it.
func (t *Table) gdbAddr(addr uint64) string {
	name, base, ok := "", uint64(0), false
	if sym, _, err := t.SymbolAt(addr); err == nil {
		name, base, ok = sym.Name, sym.Addr, true
	}
	if fn, entry, found := t.dwarfFunctionAt(addr); found && (!ok || base <= entry) {
		name, base, ok = fn, entry, true
	}
	switch {
	case !ok:
		return fmt.Sprintf("%#x", addr)
	case addr == base:
		return fmt.Sprintf("%#x <%s>", addr, name)
	}
	return fmt.Sprintf("%#x <%s+%d>", addr, name, addr-base)
}

// dwarfFunctionAt returns the (non-inlined) DWARF function containing
// addr and its entry address.
func (t *Table) dwarfFunctionAt(addr uint64) (string, uint64, bool) {
	if err := t.enter(); err != nil {
		return "", 0, false
	}
	defer t.mu.RUnlock()
	d, err := t.dwarf()
	if err != nil {
		return "", 0, false
	}
	u, err := d.unitForAddr(addr)
	if err != nil || u == nil {
		return "", 0, false
	}
	chain, err := d.scopesAt(u, addr)
	if err != nil || len(chain) == 0 || chain[0].tag != dwarf.TagSubprogram || chain[0].name == "" {
		return "", 0, false
	}
	return chain[0].name, chain[0].entry, true
}
