package symbols

import (
	"fmt"
)

// Location is a source position, as gdb reports it for an address.
type Location struct {
	// Function is the symbol containing Addr ("" if none).
	Function string
	// File is the source file as gdb prints it, e.g. "fs/namei.c".
	File string
	// Dir is the compilation directory of the unit.
	Dir string
	// Line and Column are 1-based; Column is 0 when unknown.
	Line   int
	Column int
	// Addr is the start of the line-table row that covers the queried
	// address; End is the end of that row (0 if unknown).
	Addr uint64
	End  uint64
	// IsStmt reports whether the row is a recommended breakpoint location.
	IsStmt bool
}

// String formats the location as FILE:LINE.
func (l Location) String() string { return fmt.Sprintf("%s:%d", l.File, l.Line) }

// LineAt returns the source line covering addr, from the line table of the
// compilation unit that contains addr: the same answer as gdb's
// `info line *ADDR`.
func (t *Table) LineAt(addr uint64) (Location, error) {
	if err := t.enter(); err != nil {
		return Location{}, err
	}
	defer t.mu.RUnlock()
	loc, err := t.lineAt(addr)
	if err != nil {
		return loc, err
	}
	if i, err := t.symbolIndexAt(addr); err == nil {
		loc.Function = string(t.syms.nameBytes(t.syms.entry(i).name))
	}
	return loc, nil
}

// lineAt finds the line row for addr; it leaves Location.Function empty.
func (t *Table) lineAt(addr uint64) (Location, error) {
	d, err := t.dwarf()
	if err != nil {
		return Location{}, err
	}
	u, err := d.unitForAddr(addr)
	if err != nil {
		return Location{}, fmt.Errorf("symbols: line for %#x: %w", addr, err)
	}
	if u == nil {
		return Location{}, fmt.Errorf("symbols: %w for %#x: no compilation unit covers it", ErrNoLine, addr)
	}
	l, err := t.unitLines(d, u)
	if err != nil {
		return Location{}, fmt.Errorf("symbols: line for %#x: %w", addr, err)
	}
	r, ok := l.find(addr)
	if !ok {
		return Location{}, fmt.Errorf("symbols: %w for %#x in unit %s", ErrNoLine, addr, u.name)
	}
	loc := Location{
		File:   r.sf.name,
		Dir:    l.compDir,
		Line:   int(r.row.line),
		Column: int(r.row.col),
		Addr:   r.row.pc,
		IsStmt: r.row.isStmt,
	}
	if r.hasEnd {
		loc.End = r.end
	}
	return loc, nil
}

// FunctionLine returns the line-table row at the entry address of the
// function called name: the answer of gdb's `info line NAME`.
func (t *Table) FunctionLine(name string) (Location, error) {
	sym, err := t.Lookup(name)
	if err != nil {
		return Location{}, fmt.Errorf("symbols: %w", err)
	}
	entry := t.FunctionEntry(sym)
	if err := t.enter(); err != nil {
		return Location{}, err
	}
	defer t.mu.RUnlock()
	loc, err := t.lineAt(entry)
	if err != nil {
		return Location{}, err
	}
	if loc.Addr < entry {
		// Like gdb: a row that starts before the function belongs to
		// code before it, so the function has no line of its own.
		return Location{}, fmt.Errorf("symbols: %w for %s at %#x: the covering row (%s) starts before it, at %#x",
			ErrNoLine, sym.Name, entry, loc, loc.Addr)
	}
	loc.Function = sym.Name
	return loc, nil
}

// Unit is a compilation unit as its DWARF names it.
type Unit struct {
	// Name is DW_AT_name: the primary source file, relative
	// ("fs/namei.c") or absolute.
	Name string
	// CompDir is DW_AT_comp_dir, the compilation directory (may itself be
	// relative in reproducible builds, e.g. the kernel's
	// "debian/build/build_amd64_none_cloud-amd64").
	CompDir string
}

// Units calls yield with the compilation units in .debug_info order until
// it returns false. A unit's compilation directory is read only when it
// is reached, so a caller that stops early reads few units.
func (t *Table) Units(yield func(Unit) bool) error {
	if err := t.enter(); err != nil {
		return err
	}
	defer t.mu.RUnlock()
	d, err := t.dwarf()
	if err != nil {
		return err
	}
	names, err := d.unitNameList()
	if err != nil {
		return fmt.Errorf("symbols: listing units: %w", err)
	}
	for _, un := range names {
		u, err := d.unitAt(un.off)
		if err != nil {
			return fmt.Errorf("symbols: unit at %#x: %w", un.off, err)
		}
		if !yield(Unit{Name: string(u.name), CompDir: string(u.compDir)}) {
			return nil
		}
	}
	return nil
}
