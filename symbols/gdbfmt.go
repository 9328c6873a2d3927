package symbols

import (
	"errors"
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

// gdbAddr formats addr like gdb: 0x... <sym+off>.
func (t *Table) gdbAddr(addr uint64) string {
	sym, off, err := t.SymbolAt(addr)
	switch {
	case errors.Is(err, ErrNoSymbol) || err != nil:
		return fmt.Sprintf("%#x", addr)
	case off == 0:
		return fmt.Sprintf("%#x <%s>", addr, sym.Name)
	}
	return fmt.Sprintf("%#x <%s+%d>", addr, sym.Name, off)
}
