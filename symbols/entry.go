package symbols

// FunctionEntry returns where the function sym begins according to its
// debug information: sym.Addr itself, except for a function compiled with
// a patchable entry (Linux's arm64 ftrace, -fpatchable-function-entry),
// whose ELF symbol starts at the NOPs of the patch site while its DWARF
// subprogram, and so gdb's `break` and `info line`, start after them. When
// the DWARF does not say, it is sym.Addr.
func (t *Table) FunctionEntry(sym Symbol) uint64 {
	if sym.Kind != Func {
		return sym.Addr
	}
	if v, ok := t.entries.Load(sym.Addr); ok {
		return v.(uint64)
	}
	entry := t.functionEntry(sym)
	t.entries.Store(sym.Addr, entry)
	return entry
}

// functionEntry is FunctionEntry without the cache.
func (t *Table) functionEntry(sym Symbol) uint64 {
	if _, _, ok := t.dwarfFunctionAt(sym.Addr); ok {
		return sym.Addr
	}
	// The patch site is covered by the row of the code before the function
	// (it has no line of its own); the function's first row starts where
	// that row ends.
	loc, err := t.LineAt(sym.Addr)
	if err != nil || loc.End <= sym.Addr || (sym.Size > 0 && loc.End >= sym.Addr+sym.Size) {
		return sym.Addr
	}
	name, entry, ok := t.dwarfFunctionAt(loc.End)
	// Only the function of the same name: gdb does not take a compiler
	// clone's DWARF ("foo" for "foo.isra.0") for the symbol either.
	if !ok || entry != loc.End || name != sym.Name {
		return sym.Addr
	}
	return entry
}
