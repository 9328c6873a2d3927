package symbols

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// ErrNoCFI reports an address without call-frame information.
var ErrNoCFI = errors.New("no call-frame information")

// numRegs bounds the DWARF register numbers the unwinder tracks (enough
// for the integer registers and return-address column of every
// architecture in package arch).
const numRegs = 33

// cie is a decoded Common Information Entry.
type cie struct {
	codeAlign  uint64
	dataAlign  int64
	raReg      uint64
	asize      int
	fdeEnc     byte // .eh_frame pointer encoding of FDE addresses
	hasAugData bool
	initial    []byte
}

// fde is a decoded Frame Description Entry.
type fde struct {
	cie    *cie
	lo, hi uint64
	instrs []byte
}

// frameSection is .debug_frame or .eh_frame with its FDE index.
type frameSection struct {
	name  string
	data  []byte
	addr  uint64 // load address (for .eh_frame pc-relative pointers)
	eh    bool
	order binary.ByteOrder
	asize int

	once  sync.Once
	fdes  []arange // lo, hi, FDE offset; sorted by lo
	err   error
	mu    sync.Mutex
	cies  map[uint64]*cie
	elfSz int
}

// frameSections returns the image's CFI sections, .debug_frame first.
func (t *Table) frameSections() ([]*frameSection, error) {
	d, err := t.dwarf()
	if err != nil && !errors.Is(err, ErrNoDWARF) {
		return nil, err
	}
	t.cfiOnce.Do(func() {
		asize := 8
		if t.elf.Class == elf.ELFCLASS32 {
			asize = 4
		}
		var debugFrame, ehFrame []byte
		var ehAddr uint64
		if d != nil {
			debugFrame, ehFrame, ehAddr = d.frame, d.eh, d.ehAddr
		} else {
			debugFrame, _ = t.sectionData(".debug_frame")
			ehFrame, _ = t.sectionData(".eh_frame")
			if s := t.elf.Section(".eh_frame"); s != nil {
				ehAddr = s.Addr
			}
		}
		if len(debugFrame) > 0 {
			fs := &frameSection{name: ".debug_frame", data: debugFrame, order: t.order, asize: asize, cies: map[uint64]*cie{}}
			if t.idx != nil && t.idx.fdes != nil {
				fs.once.Do(func() { fs.fdes = t.idx.fdes })
			}
			t.cfi = append(t.cfi, fs)
		}
		if len(ehFrame) > 0 {
			t.cfi = append(t.cfi, &frameSection{name: ".eh_frame", data: ehFrame, addr: ehAddr, eh: true, order: t.order, asize: asize, cies: map[uint64]*cie{}})
		}
	})
	if len(t.cfi) == 0 {
		return nil, fmt.Errorf("symbols: %s: %w (no .debug_frame or .eh_frame)", t.path, ErrNoCFI)
	}
	return t.cfi, nil
}

// index builds the sorted FDE table.
func (fs *frameSection) index() ([]arange, error) {
	fs.once.Do(func() {
		var out []arange
		for off := 0; off < len(fs.data); {
			b := makeBuf(fs.name, fs.data, off, fs.order)
			length, dwarf64 := b.unitLength()
			if b.err != nil {
				fs.err = b.err
				break
			}
			if length == 0 { // .eh_frame terminator
				if fs.eh {
					break
				}
				off = b.off
				continue
			}
			end := b.off + int(length)
			if end > len(fs.data) || end < b.off {
				fs.err = fmt.Errorf("%s: entry at %#x overruns the section", fs.name, off)
				break
			}
			if !fs.isCIE(&b, dwarf64) {
				if f, err := fs.parseFDE(uint64(off)); err == nil && f.hi > f.lo && f.lo != 0 {
					out = append(out, arange{f.lo, f.hi, uint64(off)})
				}
			}
			off = end
		}
		slices.SortFunc(out, arange.byLo)
		fs.fdes = out
	})
	return fs.fdes, fs.err
}

// isCIE reads the CIE id / CIE pointer field at b and reports whether the
// entry is a CIE; b is left after the field.
func (fs *frameSection) isCIE(b *buf, dwarf64 bool) bool {
	if fs.eh {
		return b.u32() == 0
	}
	id := b.offset(dwarf64)
	if dwarf64 {
		return id == ^uint64(0)
	}
	return id == 0xffffffff
}

// cieAt decodes (and caches) the CIE at off.
func (fs *frameSection) cieAt(off uint64) (*cie, error) {
	fs.mu.Lock()
	c := fs.cies[off]
	fs.mu.Unlock()
	if c != nil {
		return c, nil
	}
	b := makeBuf(fs.name, fs.data, int(off), fs.order)
	length, dwarf64 := b.unitLength()
	end := b.off + int(length)
	if end > len(fs.data) || end < b.off || !fs.isCIE(&b, dwarf64) {
		return nil, fmt.Errorf("%s: no CIE at %#x", fs.name, off)
	}
	b.data = fs.data[:end]
	c = &cie{asize: fs.asize}
	version := b.u8()
	aug := string(b.cstr())
	if version >= 4 {
		c.asize = int(b.u8())
		b.u8() // segment size
	}
	c.codeAlign = b.uleb()
	c.dataAlign = b.sleb()
	if version == 1 {
		c.raReg = uint64(b.u8())
	} else {
		c.raReg = b.uleb()
	}
	if len(aug) > 0 && aug[0] == 'z' {
		n := int(b.uleb())
		augEnd := b.off + n
		c.hasAugData = true
		for _, ch := range aug[1:] {
			switch ch {
			case 'R':
				c.fdeEnc = b.u8()
			case 'P':
				enc := b.u8()
				fs.readEncoded(&b, enc, c.asize)
			case 'L':
				b.u8()
			}
		}
		b.off = augEnd
	} else if aug != "" && aug != "eh" {
		return nil, fmt.Errorf("%s: CIE at %#x has unsupported augmentation %q", fs.name, off, aug)
	}
	if b.err != nil {
		return nil, b.err
	}
	c.initial = fs.data[b.off:end]
	fs.mu.Lock()
	fs.cies[off] = c
	fs.mu.Unlock()
	return c, nil
}

// Pointer encodings of .eh_frame.
const (
	peAbsptr  = 0x00
	peUleb128 = 0x01
	peUdata2  = 0x02
	peUdata4  = 0x03
	peUdata8  = 0x04
	peSleb128 = 0x09
	peSdata2  = 0x0a
	peSdata4  = 0x0b
	peSdata8  = 0x0c
	pePcrel   = 0x10
	peOmit    = 0xff
)

// readEncoded reads an .eh_frame-encoded pointer.
func (fs *frameSection) readEncoded(b *buf, enc byte, asize int) uint64 {
	if enc == peOmit {
		return 0
	}
	pos := uint64(b.off)
	var v uint64
	switch enc & 0x0f {
	case peAbsptr:
		v = b.uint(asize)
	case peUleb128:
		v = b.uleb()
	case peUdata2:
		v = uint64(b.u16())
	case peUdata4:
		v = uint64(b.u32())
	case peUdata8:
		v = b.u64()
	case peSleb128:
		v = uint64(b.sleb())
	case peSdata2:
		v = uint64(int64(int16(b.u16())))
	case peSdata4:
		v = uint64(int64(int32(b.u32())))
	case peSdata8:
		v = b.u64()
	default:
		b.fail("unsupported pointer encoding %#x", enc)
	}
	if enc&0x70 == pePcrel {
		v += fs.addr + pos
	}
	return v
}

// parseFDE decodes the FDE at off.
func (fs *frameSection) parseFDE(off uint64) (*fde, error) {
	b := makeBuf(fs.name, fs.data, int(off), fs.order)
	length, dwarf64 := b.unitLength()
	end := b.off + int(length)
	if end > len(fs.data) || end < b.off {
		return nil, fmt.Errorf("%s: FDE at %#x overruns the section", fs.name, off)
	}
	b.data = fs.data[:end]
	idPos := uint64(b.off)
	var cieOff uint64
	if fs.eh {
		cieOff = idPos - uint64(b.u32())
	} else {
		cieOff = b.offset(dwarf64)
	}
	c, err := fs.cieAt(cieOff)
	if err != nil {
		return nil, err
	}
	f := &fde{cie: c}
	if fs.eh {
		f.lo = fs.readEncoded(&b, c.fdeEnc, c.asize)
		f.hi = f.lo + fs.readEncoded(&b, c.fdeEnc&0x0f, c.asize)
		if c.hasAugData {
			b.skip(int(b.uleb()))
		}
	} else {
		f.lo = b.uint(c.asize)
		f.hi = f.lo + b.uint(c.asize)
	}
	if b.err != nil {
		return nil, b.err
	}
	f.instrs = fs.data[b.off:end]
	return f, nil
}

// findFDE returns the FDE covering pc.
func (t *Table) findFDE(pc uint64) (*fde, error) {
	secs, err := t.frameSections()
	if err != nil {
		return nil, err
	}
	for _, fs := range secs {
		tab, err := fs.index()
		if err != nil && len(tab) == 0 {
			continue
		}
		if r, ok := lookupRange(tab, pc); ok {
			return fs.parseFDE(r.unit)
		}
	}
	return nil, fmt.Errorf("symbols: %w for %#x", ErrNoCFI, pc)
}

// Register rules.
type ruleKind uint8

const (
	ruleSame      ruleKind = iota // unspecified or same value
	ruleUndefined                 // not recoverable
	ruleOffset                    // saved at CFA+off
	ruleValOffset                 // value is CFA+off
	ruleRegister                  // in register reg
	ruleExpr                      // saved at the address expr computes
	ruleValExpr                   // value is what expr computes
)

type regRule struct {
	kind ruleKind
	off  int64
	reg  uint64
	expr []byte
}

// cfaRule defines the canonical frame address.
type cfaRule struct {
	reg  uint64
	off  int64
	expr []byte // non-nil: CFA is the value expr computes
}

// frameRow is the unwind rule set at one address.
type frameRow struct {
	cfa  cfaRule
	regs [numRegs]regRule
}

// rowFor runs the CIE and FDE programs up to pc.
func (f *fde) rowFor(pc uint64, order binary.ByteOrder) (frameRow, error) {
	var row frameRow
	var initial frameRow
	if err := runCFA(f.cie, f.cie.initial, f.lo, ^uint64(0), &row, nil, order); err != nil {
		return row, err
	}
	initial = row
	err := runCFA(f.cie, f.instrs, f.lo, pc, &row, &initial, order)
	return row, err
}

// runCFA executes call-frame instructions starting at location loc and
// stops before the first row that starts after pc.
func runCFA(c *cie, prog []byte, loc, pc uint64, row *frameRow, initial *frameRow, order binary.ByteOrder) error {
	b := makeBuf("CFA program", prog, 0, order)
	var stack []frameRow
	setReg := func(r uint64, rule regRule) {
		if r < numRegs {
			row.regs[r] = rule
		}
	}
	restore := func(r uint64) {
		if r < numRegs {
			if initial != nil {
				row.regs[r] = initial.regs[r]
			} else {
				row.regs[r] = regRule{}
			}
		}
	}
	advance := func(delta uint64) bool {
		loc += delta * c.codeAlign
		return loc > pc
	}
	for b.off < len(prog) && b.err == nil {
		op := b.u8()
		switch op >> 6 {
		case 1: // DW_CFA_advance_loc
			if advance(uint64(op & 0x3f)) {
				return nil
			}
			continue
		case 2: // DW_CFA_offset
			setReg(uint64(op&0x3f), regRule{kind: ruleOffset, off: int64(b.uleb()) * c.dataAlign})
			continue
		case 3: // DW_CFA_restore
			restore(uint64(op & 0x3f))
			continue
		}
		switch op {
		case 0x00: // nop
		case 0x01: // set_loc
			loc = b.uint(c.asize)
			if loc > pc {
				return nil
			}
		case 0x02:
			if advance(uint64(b.u8())) {
				return nil
			}
		case 0x03:
			if advance(uint64(b.u16())) {
				return nil
			}
		case 0x04:
			if advance(uint64(b.u32())) {
				return nil
			}
		case 0x05: // offset_extended
			r := b.uleb()
			setReg(r, regRule{kind: ruleOffset, off: int64(b.uleb()) * c.dataAlign})
		case 0x06: // restore_extended
			restore(b.uleb())
		case 0x07: // undefined
			setReg(b.uleb(), regRule{kind: ruleUndefined})
		case 0x08: // same_value
			setReg(b.uleb(), regRule{kind: ruleSame})
		case 0x09: // register
			r := b.uleb()
			setReg(r, regRule{kind: ruleRegister, reg: b.uleb()})
		case 0x0a: // remember_state
			stack = append(stack, *row)
		case 0x0b: // restore_state
			if len(stack) == 0 {
				return errors.New("CFA program: restore_state without remember_state")
			}
			// The saved state includes the CFA rule (as in gdb and
			// DWARF 5's clarification).
			*row = stack[len(stack)-1]
			stack = stack[:len(stack)-1]
		case 0x0c: // def_cfa
			row.cfa = cfaRule{reg: b.uleb(), off: int64(b.uleb())}
		case 0x0d: // def_cfa_register
			row.cfa.reg, row.cfa.expr = b.uleb(), nil
		case 0x0e: // def_cfa_offset
			row.cfa.off = int64(b.uleb())
		case 0x0f: // def_cfa_expression
			row.cfa = cfaRule{expr: b.bytes(int(b.uleb()))}
		case 0x10: // expression
			r := b.uleb()
			setReg(r, regRule{kind: ruleExpr, expr: b.bytes(int(b.uleb()))})
		case 0x11: // offset_extended_sf
			r := b.uleb()
			setReg(r, regRule{kind: ruleOffset, off: b.sleb() * c.dataAlign})
		case 0x12: // def_cfa_sf
			r := b.uleb()
			row.cfa = cfaRule{reg: r, off: b.sleb() * c.dataAlign}
		case 0x13: // def_cfa_offset_sf
			row.cfa.off = b.sleb() * c.dataAlign
		case 0x14: // val_offset
			r := b.uleb()
			setReg(r, regRule{kind: ruleValOffset, off: int64(b.uleb()) * c.dataAlign})
		case 0x15: // val_offset_sf
			r := b.uleb()
			setReg(r, regRule{kind: ruleValOffset, off: b.sleb() * c.dataAlign})
		case 0x16: // val_expression
			r := b.uleb()
			setReg(r, regRule{kind: ruleValExpr, expr: b.bytes(int(b.uleb()))})
		case 0x2d: // AARCH64_negate_ra_state (GNU_window_save's number)
			// The return address is signed from here on (or no longer).
			// The unwinder strips a PAC from every return address
			// (arch.Arch.CodeAddress, idempotent on unsigned ones), so
			// the state needs no tracking; SPARC's register windows,
			// the other meaning of 0x2d, are not a kspec target.
		case 0x2e: // GNU_args_size
			b.uleb()
		case 0x2f: // GNU_negative_offset_extended
			r := b.uleb()
			setReg(r, regRule{kind: ruleOffset, off: -int64(b.uleb()) * c.dataAlign})
		default:
			return fmt.Errorf("CFA program: unknown instruction %#x", op)
		}
	}
	return b.err
}
