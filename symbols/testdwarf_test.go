package symbols

import (
	"debug/elf"
	"encoding/binary"
)

// lineProg assembles a DWARF line-number program body.
type lineProg struct{ b []byte }

func (p *lineProg) uleb(v uint64) {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			c |= 0x80
		}
		p.b = append(p.b, c)
		if v == 0 {
			return
		}
	}
}

func (p *lineProg) sleb(v int64) {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		done := v == 0 && c&0x40 == 0 || v == -1 && c&0x40 != 0
		if !done {
			c |= 0x80
		}
		p.b = append(p.b, c)
		if done {
			return
		}
	}
}

func (p *lineProg) setAddress(a uint64) *lineProg {
	p.b = append(p.b, 0, 9, 2)
	p.b = binary.LittleEndian.AppendUint64(p.b, a)
	return p
}
func (p *lineProg) advancePC(n uint64) *lineProg  { p.b = append(p.b, 2); p.uleb(n); return p }
func (p *lineProg) advanceLine(d int64) *lineProg { p.b = append(p.b, 3); p.sleb(d); return p }
func (p *lineProg) setFile(f uint64) *lineProg    { p.b = append(p.b, 4); p.uleb(f); return p }
func (p *lineProg) setColumn(c uint64) *lineProg  { p.b = append(p.b, 5); p.uleb(c); return p }
func (p *lineProg) negateStmt() *lineProg         { p.b = append(p.b, 6); return p }
func (p *lineProg) copyRow() *lineProg            { p.b = append(p.b, 1); return p }
func (p *lineProg) endSequence() *lineProg        { p.b = append(p.b, 0, 1, 1); return p }
func (p *lineProg) discriminator(d uint64) *lineProg {
	p.b = append(p.b, 0, byte(1+ulebLen(d)), 4)
	p.uleb(d)
	return p
}

// row advances the address by addr and the line by line and emits a row.
func (p *lineProg) row(addr uint64, line int64) *lineProg {
	return p.advancePC(addr).advanceLine(line).copyRow()
}

func ulebLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// testCU describes one compilation unit of a synthetic image.
type testCU struct {
	name, compDir string
	low, high     uint64
	dirs          []string
	files         []struct {
		name string
		dir  uint64
	}
	prog *lineProg
}

// dwarfSections assembles DWARF 5 .debug_abbrev, .debug_info,
// .debug_line and (if withAranges) .debug_aranges for cus.
func dwarfSections(cus []testCU, withAranges bool) []testSection {
	le := binary.LittleEndian
	// One abbreviation: a compile unit without children.
	abbrev := []byte{1, 0x11, 0, // code 1, DW_TAG_compile_unit, no children
		0x03, formString, // name
		0x1b, formString, // comp_dir
		0x10, formSecOffset, // stmt_list
		0x11, formAddr, // low_pc
		0x12, formData8, // high_pc (length)
		0, 0, 0}
	var info, line, aranges []byte
	for _, cu := range cus {
		// Line program header.
		var hdr lineProg
		hdr.b = append(hdr.b, 8, 0, 1, 1, 1, byte(0xfb), 14, 13) // asize, seg, min_inst, max_ops, is_stmt, line_base -5, line_range, opcode_base
		hdr.b = append(hdr.b, 0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1)
		hdr.b = append(hdr.b, 1, lnctPath, formString)
		hdr.uleb(uint64(len(cu.dirs)))
		for _, d := range cu.dirs {
			hdr.b = append(append(hdr.b, d...), 0)
		}
		hdr.b = append(hdr.b, 2, lnctPath, formString, lnctDirectoryIndex, formUdata)
		hdr.uleb(uint64(len(cu.files)))
		for _, f := range cu.files {
			hdr.b = append(append(hdr.b, f.name...), 0)
			hdr.uleb(f.dir)
		}
		stmt := uint32(len(line))
		// version 5, address size, segment selector size, header_length
		// (counted from after itself to the program), rest of the header.
		body := []byte{5, 0, 8, 0}
		rest := hdr.b[2:]
		body = le.AppendUint32(body, uint32(len(rest)))
		body = append(body, rest...)
		body = append(body, cu.prog.b...)
		line = le.AppendUint32(line, uint32(len(body)))
		line = append(line, body...)

		// Unit.
		unitOff := uint32(len(info))
		var u []byte
		u = append(u, 5, 0, 1, 8) // version 5, DW_UT_compile, address size
		u = le.AppendUint32(u, 0) // abbrev offset
		u = append(u, 1)
		u = append(append(u, cu.name...), 0)
		u = append(append(u, cu.compDir...), 0)
		u = le.AppendUint32(u, stmt)
		u = le.AppendUint64(u, cu.low)
		u = le.AppendUint64(u, cu.high-cu.low)
		info = le.AppendUint32(info, uint32(len(u)))
		info = append(info, u...)

		// Address ranges.
		var a []byte
		a = append(a, 2, 0)
		a = le.AppendUint32(a, unitOff)
		a = append(a, 8, 0, 0, 0, 0, 0) // asize, seg size, padding to 16
		a = le.AppendUint64(a, cu.low)
		a = le.AppendUint64(a, cu.high-cu.low)
		a = append(a, make([]byte, 16)...)
		aranges = le.AppendUint32(aranges, uint32(len(a)))
		aranges = append(aranges, a...)
	}
	secs := []testSection{
		{name: ".debug_abbrev", typ: elf.SHT_PROGBITS, data: abbrev},
		{name: ".debug_info", typ: elf.SHT_PROGBITS, data: info},
		{name: ".debug_line", typ: elf.SHT_PROGBITS, data: line},
	}
	if withAranges {
		secs = append(secs, testSection{name: ".debug_aranges", typ: elf.SHT_PROGBITS, data: aranges})
	}
	return secs
}
