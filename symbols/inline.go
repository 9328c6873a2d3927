package symbols

import (
	"debug/dwarf"
	"fmt"
	"slices"
)

// scope is a function or inlined call active at an address.
type scope struct {
	tag      dwarf.Tag
	off      uint64 // DIE offset
	entry    uint64 // gdb's BLOCK_ENTRY_PC: low_pc, or the first range's start
	name     string
	callFile uint64
	callLine int
	callCol  int
	hasCall  bool
}

// scopesAt returns the functions active at pc within u, outermost first:
// the DW_TAG_subprogram, then each DW_TAG_inlined_subroutine nested in it.
func (d *dwarfData) scopesAt(u *unit, pc uint64) ([]scope, error) {
	b := makeBuf(".debug_info", d.info, int(u.die), d.order)
	b.data = d.info[:u.end]
	var e entry
	if !d.readEntry(u, &b, &e) || e.tag == 0 {
		return nil, b.err
	}
	if !e.children {
		return nil, nil
	}
	var chain []scope
	for {
		if !d.readEntry(u, &b, &e) {
			return chain, b.err
		}
		if e.tag == 0 {
			// End of the children of the innermost matching scope (or of
			// the unit): nothing deeper covers pc.
			return chain, nil
		}
		switch e.tag {
		case dwarf.TagSubprogram, dwarf.TagInlinedSubroutine, dwarf.TagLexDwarfBlock:
			rs, err := d.pcRanges(u, &e)
			if err != nil {
				return chain, err
			}
			if rangesContain(rs, pc) {
				if e.tag != dwarf.TagLexDwarfBlock {
					sc := d.scopeOf(u, &e)
					sc.entry = rs[0][0]
					chain = append(chain, sc)
				}
				if !e.children {
					return chain, nil
				}
				continue // descend
			}
		}
		if e.children {
			if err := d.skipChildren(u, &b, &e); err != nil {
				return chain, err
			}
		}
	}
}

func rangesContain(rs [][2]uint64, pc uint64) bool {
	for _, r := range rs {
		if pc >= r[0] && pc < r[1] {
			return true
		}
	}
	return false
}

// skipChildren moves b past the children of e, using DW_AT_sibling when
// the producer gave one.
func (d *dwarfData) skipChildren(u *unit, b *buf, e *entry) error {
	if f, ok := e.field(dwarf.AttrSibling); ok && f.class == classRef && f.u > uint64(b.off) && f.u <= u.end {
		b.off = int(f.u)
		return nil
	}
	for depth := 1; depth > 0; {
		a, ok := d.skipEntry(u, b)
		if !ok {
			if b.err != nil {
				return b.err
			}
			return fmt.Errorf(".debug_info: unit at %#x ends inside an entry", u.off)
		}
		if a == nil {
			depth--
		} else if a.children {
			depth++
		}
	}
	return nil
}

// scopeOf describes a subprogram or inlined-subroutine entry.
func (d *dwarfData) scopeOf(u *unit, e *entry) scope {
	s := scope{tag: e.tag, off: e.off, name: d.entryName(u, e)}
	for _, f := range e.fields {
		switch f.attr {
		case dwarf.AttrCallFile:
			s.callFile, s.hasCall = f.u, true
		case dwarf.AttrCallLine:
			s.callLine = int(f.u)
		case dwarf.AttrCallColumn:
			s.callCol = int(f.u)
		}
	}
	return s
}

// entryName returns the name of e, following DW_AT_abstract_origin and
// DW_AT_specification.
func (d *dwarfData) entryName(u *unit, e *entry) string {
	cur := *e
	cur.fields = slices.Clone(e.fields)
	for range 8 {
		if f, ok := cur.field(dwarf.AttrName); ok {
			return string(d.fieldString(u, f))
		}
		ref, ok := cur.field(dwarf.AttrAbstractOrigin)
		if !ok {
			if ref, ok = cur.field(dwarf.AttrSpecification); !ok {
				return ""
			}
		}
		if ref.class != classRef {
			return ""
		}
		ru, err := d.unitContaining(u, ref.u)
		if err != nil {
			return ""
		}
		b := makeBuf(".debug_info", d.info, int(ref.u), d.order)
		if !d.readEntry(ru, &b, &cur) || cur.tag == 0 {
			return ""
		}
		u = ru
	}
	return ""
}

// unitContaining returns the unit that contains .debug_info offset off,
// trying hint first.
func (d *dwarfData) unitContaining(hint *unit, off uint64) (*unit, error) {
	if hint != nil && off >= hint.off && off < hint.end {
		return hint, nil
	}
	us, err := d.allUnitList()
	if err != nil {
		return nil, err
	}
	i, _ := slices.BinarySearchFunc(us, off+1, func(u *unit, o uint64) int {
		switch {
		case u.off < o:
			return -1
		case u.off > o:
			return 1
		}
		return 0
	})
	if i > 0 && off < us[i-1].end {
		return us[i-1], nil
	}
	return nil, fmt.Errorf(".debug_info: no unit contains offset %#x", off)
}

// InlinedFrame is one function active at an address: the physical
// function or a call inlined into it.
type InlinedFrame struct {
	// Function is the name of the function whose code is running.
	Function string
	// File and Line locate the current position inside Function: the
	// line-table row for the innermost frame, the call site of the next
	// inner frame for the others.
	File   string
	Line   int
	Column int
	// Inlined is true when Function was inlined into the next (outer)
	// frame.
	Inlined bool
}

// InlinedAt returns the functions active at addr, innermost first: for an
// address inside __do_sys_mkdir inlined into __x64_sys_mkdir, the frames
// __do_sys_mkdir (inlined), __se_sys_mkdir (inlined), __x64_sys_mkdir,
// as gdb's backtrace shows them. The last frame is the physical
// function. Addresses without DWARF function information yield a single
// frame named after the ELF symbol.
func (t *Table) InlinedAt(addr uint64) ([]InlinedFrame, error) {
	if err := t.enter(); err != nil {
		return nil, err
	}
	defer t.mu.RUnlock()
	return t.inlinedAt(addr)
}

func (t *Table) inlinedAt(addr uint64) ([]InlinedFrame, error) {
	loc, lineErr := t.lineAt(addr)
	inner := InlinedFrame{File: loc.File, Line: loc.Line, Column: loc.Column}
	fallback := func() ([]InlinedFrame, error) {
		if i, err := t.symbolIndexAt(addr); err == nil {
			inner.Function = string(t.syms.nameBytes(t.syms.entry(i).name))
		} else if lineErr != nil {
			return nil, fmt.Errorf("symbols: nothing known about %#x: %w", addr, err)
		}
		return []InlinedFrame{inner}, nil
	}
	d, err := t.dwarf()
	if err != nil {
		return fallback()
	}
	u, err := d.unitForAddr(addr)
	if err != nil || u == nil {
		return fallback()
	}
	chain, err := d.scopesAt(u, addr)
	if err != nil || len(chain) == 0 {
		return fallback()
	}
	var hdr *lineHeader
	if l, err := t.unitLines(d, u); err == nil {
		hdr = l.hdr
	}
	frames := make([]InlinedFrame, len(chain))
	for k := range chain {
		s := chain[len(chain)-1-k]
		f := InlinedFrame{Function: s.name, Inlined: s.tag == dwarf.TagInlinedSubroutine}
		if k == 0 {
			f.File, f.Line, f.Column = inner.File, inner.Line, inner.Column
		} else if callee := chain[len(chain)-k]; callee.hasCall && hdr != nil {
			f.File, _ = hdr.fileName(callee.callFile)
			f.Line, f.Column = callee.callLine, callee.callCol
		}
		frames[k] = f
	}
	return frames, nil
}
