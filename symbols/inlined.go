package symbols

import (
	"debug/dwarf"
	"errors"
	"fmt"
	"slices"
)

// InlinedCopy is one place where the compiler put a copy of a function's
// code into another function (DW_TAG_inlined_subroutine), or an
// out-of-line copy the linker names differently (foo.isra.0).
type InlinedCopy struct {
	// Entry is the copy's entry address: DW_AT_entry_pc, else the start
	// of its first range (gdb's BLOCK_ENTRY_PC).
	Entry uint64
	// Inlined is false for an out-of-line copy.
	Inlined bool
}

// InlinedCopies returns every copy of the function name that the DWARF
// describes apart from an ELF symbol of that name, in address order: the
// places gdb's `break name` sets a location for a function the compiler
// inlined into its callers. A function that has no copy at all, or no
// DWARF description, is an *UnknownSymbolError. The first call for a name
// reads the whole .debug_info (seconds on a distribution vmlinux); the
// answer is kept.
func (t *Table) InlinedCopies(name string) ([]InlinedCopy, error) {
	if err := t.enter(); err != nil {
		return nil, err
	}
	defer t.mu.RUnlock()
	d, err := t.dwarf()
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	cached, ok := d.inlined[name]
	d.mu.Unlock()
	if !ok {
		if cached, err = d.findInlinedCopies(name); err != nil {
			return nil, fmt.Errorf("symbols: inlined copies of %s: %w", name, err)
		}
		d.mu.Lock()
		if d.inlined == nil {
			d.inlined = map[string][]InlinedCopy{}
		}
		d.inlined[name] = cached
		d.mu.Unlock()
	}
	if len(cached) == 0 {
		return nil, &UnknownSymbolError{Name: name}
	}
	return slices.Clone(cached), nil
}

// findInlinedCopies scans every unit: first for subprogram entries named
// name (the abstract instance a copy refers to), then, in the units that
// have one, for the entries whose DW_AT_abstract_origin is one of them.
// Without LTO a static function's copies live in its own unit.
func (d *dwarfData) findInlinedCopies(name string) ([]InlinedCopy, error) {
	us, err := d.allUnitList()
	if err != nil {
		return nil, err
	}
	want := []byte(name)
	var out []InlinedCopy
	var e entry
	for _, u := range us {
		// C functions are children of the unit entry: look at those
		// only, skipping each one's children.
		origins := map[uint64]bool{}
		b := makeBuf(".debug_info", d.info, int(u.die), d.order)
		b.data = d.info[:u.end]
		if !d.readEntry(u, &b, &e) || !e.children {
			continue
		}
		for d.readEntry(u, &b, &e) && e.tag != 0 {
			if e.tag == dwarf.TagSubprogram {
				if f, ok := e.field(dwarf.AttrName); ok && string(d.fieldString(u, f)) == string(want) {
					origins[e.off] = true
				}
			}
			if e.children {
				if err := d.skipChildren(u, &b, &e); err != nil {
					return nil, fmt.Errorf("unit at %#x: %w", u.off, err)
				}
			}
		}
		if b.err != nil {
			return nil, fmt.Errorf("unit at %#x: %w", u.off, b.err)
		}
		if len(origins) == 0 {
			continue
		}
		b = makeBuf(".debug_info", d.info, int(u.die), d.order)
		b.data = d.info[:u.end]
		for d.readEntry(u, &b, &e) {
			if e.tag != dwarf.TagInlinedSubroutine && e.tag != dwarf.TagSubprogram {
				continue
			}
			f, ok := e.field(dwarf.AttrAbstractOrigin)
			if !ok || f.class != classRef || !origins[f.u] {
				continue
			}
			entry, ok, err := d.entryPC(u, &e)
			if err != nil {
				return nil, fmt.Errorf("entry at %#x: %w", e.off, err)
			}
			if ok {
				out = append(out, InlinedCopy{Entry: entry, Inlined: e.tag == dwarf.TagInlinedSubroutine})
			}
		}
		if b.err != nil {
			return nil, fmt.Errorf("unit at %#x: %w", u.off, b.err)
		}
	}
	slices.SortFunc(out, func(a, b InlinedCopy) int {
		switch {
		case a.Entry < b.Entry:
			return -1
		case a.Entry > b.Entry:
			return 1
		}
		return 0
	})
	return slices.CompactFunc(out, func(a, b InlinedCopy) bool { return a.Entry == b.Entry }), nil
}

// entryPC returns an entry's entry address, false for an entry without
// code (a declaration, a copy optimised away).
func (d *dwarfData) entryPC(u *unit, e *entry) (uint64, bool, error) {
	rs, err := d.pcRanges(u, e)
	if err != nil {
		return 0, false, err
	}
	if len(rs) == 0 {
		return 0, false, nil
	}
	if f, ok := e.field(dwarf.AttrEntrypc); ok {
		switch f.class {
		case classAddr, classAddrx:
			return d.fieldAddr(u, f), true, nil
		case classConst: // DWARF 5: an offset from the entity's base address
			return rs[0][0] + f.u, true, nil
		}
	}
	return rs[0][0], true, nil
}

// FirstOf returns the first of names that this kernel has as a function:
// an ELF symbol, or a function that exists only as inlined copies (see
// InlinedCopies). It is how a spec names a function that was renamed:
// FirstOf("do_mkdirat", "filename_mkdirat"). When none exists the error
// is an *UnknownSymbolError for the first name listing the others.
func (t *Table) FirstOf(names ...string) (string, error) {
	if len(names) == 0 {
		return "", fmt.Errorf("symbols: FirstOf needs at least one name: %w", ErrBadExpr)
	}
	var firstErr error
	for _, n := range names {
		if _, err := t.Lookup(n); err == nil {
			return n, nil
		} else if !errors.Is(err, ErrUnknownSymbol) {
			return "", err
		} else if firstErr == nil {
			firstErr = err
		}
	}
	for _, n := range names {
		if _, err := t.InlinedCopies(n); err == nil {
			return n, nil
		} else if !errors.Is(err, ErrUnknownSymbol) {
			return "", err
		}
	}
	if len(names) == 1 {
		return "", firstErr
	}
	return "", fmt.Errorf("symbols: none of %q is a function of this kernel: %w", names, firstErr)
}
