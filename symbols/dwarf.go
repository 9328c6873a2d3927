package symbols

import (
	"cmp"
	"debug/dwarf"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
)

// DWARF attribute forms (DWARF 5, section 7.5.6, plus GNU extensions).
const (
	formAddr          = 0x01
	formBlock2        = 0x03
	formBlock4        = 0x04
	formData2         = 0x05
	formData4         = 0x06
	formData8         = 0x07
	formString        = 0x08
	formBlock         = 0x09
	formBlock1        = 0x0a
	formData1         = 0x0b
	formFlag          = 0x0c
	formSdata         = 0x0d
	formStrp          = 0x0e
	formUdata         = 0x0f
	formRefAddr       = 0x10
	formRef1          = 0x11
	formRef2          = 0x12
	formRef4          = 0x13
	formRef8          = 0x14
	formRefUdata      = 0x15
	formIndirect      = 0x16
	formSecOffset     = 0x17
	formExprloc       = 0x18
	formFlagPresent   = 0x19
	formStrx          = 0x1a
	formAddrx         = 0x1b
	formRefSup4       = 0x1c
	formStrpSup       = 0x1d
	formData16        = 0x1e
	formLineStrp      = 0x1f
	formRefSig8       = 0x20
	formImplicitConst = 0x21
	formLoclistx      = 0x22
	formRnglistx      = 0x23
	formRefSup8       = 0x24
	formStrx1         = 0x25
	formStrx2         = 0x26
	formStrx3         = 0x27
	formStrx4         = 0x28
	formAddrx1        = 0x29
	formAddrx2        = 0x2a
	formAddrx3        = 0x2b
	formAddrx4        = 0x2c
	formGNUAddrIndex  = 0x1f01
	formGNUStrIndex   = 0x1f02
	formGNURefAlt     = 0x1f20
	formGNUStrpAlt    = 0x1f21
)

// valClass says how to interpret a decoded attribute value.
type valClass uint8

const (
	classNone      valClass = iota
	classConst              // u (and s for signed forms)
	classAddr               // u is an address
	classAddrx              // u is an index into .debug_addr
	classRef                // u is an absolute .debug_info offset
	classString             // b holds the bytes
	classStrx               // u is an index into .debug_str_offsets
	classBlock              // b holds the block or expression
	classFlag               // u is 0 or 1
	classSecOffset          // u is an offset into another section
	classRnglistx           // u is an index into the unit's range list table
	classLoclistx           // u is an index into the unit's location list table
	classSig                // u is a type signature
)

// field is one decoded attribute.
type field struct {
	attr   dwarf.Attr
	form   uint16
	class  valClass
	signed bool
	u      uint64
	s      int64
	b      []byte
}

// attrSpec is one attribute of an abbreviation.
type attrSpec struct {
	attr     dwarf.Attr
	form     uint16
	implicit int64
}

// abbrev describes the shape of a debugging information entry.
type abbrev struct {
	tag      dwarf.Tag
	children bool
	specs    []attrSpec
}

// abbrevTable maps abbreviation codes to abbreviations.
type abbrevTable struct {
	dense  []*abbrev // by code, when codes are small
	sparse map[uint64]*abbrev
}

func (t *abbrevTable) get(code uint64) *abbrev {
	if code < uint64(len(t.dense)) {
		return t.dense[code]
	}
	return t.sparse[code]
}

// unit is one unit of .debug_info.
type unit struct {
	off      uint64 // header offset
	end      uint64 // end of the unit
	die      uint64 // offset of the unit DIE
	version  uint16
	utype    uint8
	asize    int
	dwarf64  bool
	infoOnce sync.Once
	infoErr  error

	abbrevOff  uint64
	abbrevOnce sync.Once
	abbrevs    *abbrevTable // loaded by dwarfData.unitAbbrevs
	abbrevErr  error

	// From the unit DIE.
	tag          dwarf.Tag
	name         []byte
	compDir      []byte
	producer     []byte
	lowPC        uint64
	stmtList     uint64
	hasLines     bool
	strOffBase   uint64
	addrBase     uint64
	rnglistsBase uint64
	loclistsBase uint64
	language     uint64
	rangesField  field // DW_AT_ranges or low/high pc, for unitRanges
	highPC       field
}

// dwarfData is the set of DWARF sections of an image, read lazily.
type dwarfData struct {
	order                              binary.ByteOrder
	info, abbrev, line, lineStr, str   []byte
	strOffsets, addr, rnglists, ranges []byte
	loclists, loc, aranges, frame, eh  []byte
	ehAddr                             uint64
	// readInfo, if set, reads .debug_info bytes at a section offset with
	// pread: scans over every unit header use it so that they do not map
	// (and count as resident) a page per unit.
	readInfo func(p []byte, off uint64) (int, error)

	mu             sync.Mutex
	abbrevCache    map[uint64]*abbrevTable
	units          map[uint64]*unit
	arOnce         sync.Once
	ar             []arange
	arErr          error
	allUnitsOnce   sync.Once
	allUnits       []*unit
	allUnitsErr    error
	unitRangesOnce sync.Once
	unitRanges     []arange
	unitRangesErr  error
	structDefs     map[string]typeRef // complete struct definitions by tag+name
	unitNamesOnce  sync.Once
	unitNames      []unitName // every unit's offset and DW_AT_name
	unitNamesErr   error
	inlined        map[string][]InlinedCopy // InlinedCopies answers by name
}

// unitName is a unit's offset and name, enough to choose units by file.
type unitName struct {
	off  uint64
	name string
}

// arange maps an address range to the unit that covers it.
type arange struct {
	lo, hi uint64 // [lo, hi)
	unit   uint64 // unit header offset in .debug_info
}

// byLo orders aranges by start address (for slices.SortFunc).
func (a arange) byLo(b arange) int { return cmp.Compare(a.lo, b.lo) }

// dwarf returns the image's DWARF sections.
func (t *Table) dwarf() (*dwarfData, error) {
	t.dwOnce.Do(func() {
		d := &dwarfData{order: t.order, abbrevCache: map[uint64]*abbrevTable{}, units: map[uint64]*unit{}}
		for _, s := range []struct {
			name string
			dst  *[]byte
		}{
			{".debug_info", &d.info}, {".debug_abbrev", &d.abbrev}, {".debug_line", &d.line},
			{".debug_line_str", &d.lineStr}, {".debug_str", &d.str}, {".debug_str_offsets", &d.strOffsets},
			{".debug_addr", &d.addr}, {".debug_rnglists", &d.rnglists}, {".debug_ranges", &d.ranges},
			{".debug_loclists", &d.loclists}, {".debug_loc", &d.loc}, {".debug_aranges", &d.aranges},
			{".debug_frame", &d.frame}, {".eh_frame", &d.eh},
		} {
			b, err := t.sectionData(s.name)
			if err != nil {
				t.dwErr = fmt.Errorf("symbols: %s: %w", t.path, err)
				return
			}
			*s.dst = b
		}
		if s := t.elf.Section(".eh_frame"); s != nil {
			d.ehAddr = s.Addr
		}
		if len(d.info) == 0 {
			t.dwErr = fmt.Errorf("symbols: %s: %w (no .debug_info section)", t.path, ErrNoDWARF)
			return
		}
		if s := t.elf.Section(".debug_info"); s != nil && s.Flags&elf.SHF_COMPRESSED == 0 && t.file != nil {
			base := int64(s.Offset)
			d.readInfo = func(p []byte, off uint64) (int, error) { return t.file.ReadAt(p, base+int64(off)) }
		}
		t.dw = d
	})
	return t.dw, t.dwErr
}

// abbrevs returns the abbreviation table at off in .debug_abbrev.
func (d *dwarfData) abbrevs(off uint64) (*abbrevTable, error) {
	d.mu.Lock()
	tab := d.abbrevCache[off]
	d.mu.Unlock()
	if tab != nil {
		return tab, nil
	}
	if off >= uint64(len(d.abbrev)) {
		return nil, fmt.Errorf(".debug_abbrev offset %#x out of range", off)
	}
	b := makeBuf(".debug_abbrev", d.abbrev, int(off), d.order)
	// Decode into two flat slices to keep allocations per table constant.
	type span struct {
		code       uint64
		start, end int
	}
	var specs []attrSpec
	var abbrs []abbrev
	var spans []span
	maxCode := uint64(0)
	for {
		code := b.uleb()
		if code == 0 || b.err != nil {
			break
		}
		a := abbrev{tag: dwarf.Tag(b.uleb()), children: b.u8() != 0}
		sp := span{code: code, start: len(specs)}
		for {
			at, form := b.uleb(), b.uleb()
			var ic int64
			if form == formImplicitConst {
				ic = b.sleb()
			}
			if at == 0 && form == 0 || b.err != nil {
				break
			}
			specs = append(specs, attrSpec{dwarf.Attr(at), uint16(form), ic})
		}
		sp.end = len(specs)
		abbrs = append(abbrs, a)
		spans = append(spans, sp)
		maxCode = max(maxCode, code)
	}
	tab = &abbrevTable{}
	if maxCode < 1<<16 {
		tab.dense = make([]*abbrev, maxCode+1)
	} else {
		tab.sparse = make(map[uint64]*abbrev, len(abbrs))
	}
	for i := range abbrs {
		a := &abbrs[i]
		a.specs = specs[spans[i].start:spans[i].end:spans[i].end]
		if tab.dense != nil {
			tab.dense[spans[i].code] = a
		} else {
			tab.sparse[spans[i].code] = a
		}
	}
	if b.err != nil {
		return nil, b.err
	}
	d.mu.Lock()
	d.abbrevCache[off] = tab
	d.mu.Unlock()
	return tab, nil
}

// unitAt parses the unit header at off in .debug_info.
func (d *dwarfData) unitAt(off uint64) (*unit, error) {
	d.mu.Lock()
	u := d.units[off]
	d.mu.Unlock()
	if u == nil {
		var err error
		if u, err = d.parseUnitHeader(off); err != nil {
			return nil, err
		}
		d.mu.Lock()
		if prev := d.units[off]; prev != nil {
			u = prev
		} else {
			d.units[off] = u
		}
		d.mu.Unlock()
	}
	u.infoOnce.Do(func() { u.infoErr = d.readUnitInfo(u) })
	if u.infoErr != nil {
		return nil, u.infoErr
	}
	return u, nil
}

// infoWindow returns up to n bytes of .debug_info at off: read with pread
// when possible, else a slice of the mapping.
func (d *dwarfData) infoWindow(off uint64, n int) []byte {
	if off >= uint64(len(d.info)) {
		return nil
	}
	n = int(min(uint64(n), uint64(len(d.info))-off))
	if d.readInfo != nil {
		p := make([]byte, n)
		if m, err := d.readInfo(p, off); err == nil || m == n {
			return p
		}
	}
	return d.info[off : off+uint64(n)]
}

// parseUnitHeader decodes a unit header without reading any DIE.
func (d *dwarfData) parseUnitHeader(off uint64) (*unit, error) {
	if off >= uint64(len(d.info)) {
		return nil, fmt.Errorf(".debug_info: unit offset %#x out of range", off)
	}
	// Positions in b are relative to off.
	b := makeBuf(".debug_info", d.infoWindow(off, 64), 0, d.order)
	length, dwarf64 := b.unitLength()
	start := off + uint64(b.off)
	u := &unit{off: off, end: start + length, dwarf64: dwarf64}
	if u.end > uint64(len(d.info)) || u.end < start {
		return nil, fmt.Errorf(".debug_info: unit at %#x overruns the section", off)
	}
	u.version = b.u16()
	var abbrevOff uint64
	switch {
	case u.version >= 5:
		u.utype = b.u8()
		u.asize = int(b.u8())
		abbrevOff = b.offset(dwarf64)
		switch u.utype {
		case 0x04, 0x05: // skeleton, split_compile: dwo_id
			b.skip(8)
		case 0x02, 0x06: // type, split_type: signature, type offset
			b.skip(8)
			b.offset(dwarf64)
		}
	case u.version >= 2:
		u.utype = 0x01
		abbrevOff = b.offset(dwarf64)
		u.asize = int(b.u8())
	default:
		return nil, fmt.Errorf(".debug_info: unit at %#x has unsupported version %d", off, u.version)
	}
	if b.err != nil {
		return nil, b.err
	}
	u.die = off + uint64(b.off)
	u.abbrevOff = abbrevOff
	return u, nil
}

// unitAbbrevs loads the abbreviation table of u.
func (d *dwarfData) unitAbbrevs(u *unit) (*abbrevTable, error) {
	u.abbrevOnce.Do(func() {
		u.abbrevs, u.abbrevErr = d.abbrevs(u.abbrevOff)
		if u.abbrevErr != nil {
			u.abbrevErr = fmt.Errorf("unit at %#x: %w", u.off, u.abbrevErr)
		}
	})
	return u.abbrevs, u.abbrevErr
}

// findAbbrev decodes the single abbreviation code from the table at off,
// without building (or caching) the whole table.
func (d *dwarfData) findAbbrev(off, code uint64) (*abbrev, error) {
	b := makeBuf(".debug_abbrev", d.abbrev, int(off), d.order)
	for b.err == nil {
		c := b.uleb()
		if c == 0 {
			break
		}
		a := &abbrev{tag: dwarf.Tag(b.uleb()), children: b.u8() != 0}
		for b.err == nil {
			at, form := b.uleb(), b.uleb()
			var ic int64
			if form == formImplicitConst {
				ic = b.sleb()
			}
			if at == 0 && form == 0 {
				break
			}
			if c == code {
				a.specs = append(a.specs, attrSpec{dwarf.Attr(at), uint16(form), ic})
			}
		}
		if c == code && b.err == nil {
			return a, nil
		}
	}
	if b.err != nil {
		return nil, b.err
	}
	return nil, fmt.Errorf(".debug_abbrev: no code %d in the table at %#x", code, off)
}

// readUnitInfo reads the unit DIE's attributes into u.
func (d *dwarfData) readUnitInfo(u *unit) error {
	// Most unit entries fit in a small window; retry from the mapping
	// if this one does not.
	if err := d.readUnitInfoFrom(u, d.infoWindow(u.die, 512)); err == nil || d.readInfo == nil {
		return err
	}
	return d.readUnitInfoFrom(u, d.info[u.die:u.end])
}

// readUnitInfoFrom decodes the unit entry from data, which starts at the
// entry.
func (d *dwarfData) readUnitInfoFrom(u *unit, data []byte) error {
	b := makeBuf(".debug_info", data, 0, d.order)
	code := b.uleb()
	if b.err != nil || code == 0 {
		return fmt.Errorf(".debug_info: unit at %#x has no unit entry", u.off)
	}
	a, err := d.findAbbrev(u.abbrevOff, code)
	if err != nil {
		return fmt.Errorf("unit at %#x: %w", u.off, err)
	}
	e := entry{off: u.die, tag: a.tag, children: a.children}
	for _, s := range a.specs {
		f := field{attr: s.attr, form: s.form}
		d.readValue(u, &b, &f, s.implicit)
		e.fields = append(e.fields, f)
	}
	if b.err != nil {
		return b.err
	}
	u.tag = e.tag
	// Bases first: other attributes of this DIE may depend on them.
	if u.version >= 5 {
		u.strOffBase = 8
		if u.dwarf64 {
			u.strOffBase = 16
		}
		u.addrBase = u.strOffBase
	}
	for _, f := range e.fields {
		switch f.attr {
		case dwarf.AttrStrOffsetsBase:
			u.strOffBase = f.u
		case dwarf.AttrAddrBase, 0x2131: // DW_AT_GNU_addr_base
			u.addrBase = f.u
		case dwarf.AttrRnglistsBase:
			u.rnglistsBase = f.u
		case dwarf.AttrLoclistsBase:
			u.loclistsBase = f.u
		}
	}
	for _, f := range e.fields {
		switch f.attr {
		case dwarf.AttrName:
			u.name = d.fieldString(u, f)
		case dwarf.AttrCompDir:
			u.compDir = d.fieldString(u, f)
		case dwarf.AttrProducer:
			u.producer = d.fieldString(u, f)
		case dwarf.AttrLowpc:
			u.lowPC = d.fieldAddr(u, f)
		case dwarf.AttrHighpc:
			u.highPC = f
		case dwarf.AttrRanges:
			u.rangesField = f
		case dwarf.AttrStmtList:
			u.stmtList, u.hasLines = f.u, true
		case dwarf.AttrLanguage:
			u.language = f.u
		}
	}
	return nil
}

// entry is a decoded debugging information entry.
type entry struct {
	off      uint64
	tag      dwarf.Tag // 0 for a null entry
	children bool
	fields   []field
}

func (e *entry) field(a dwarf.Attr) (field, bool) {
	for _, f := range e.fields {
		if f.attr == a {
			return f, true
		}
	}
	return field{}, false
}

// readEntry decodes the entry at b.off into e (reusing e.fields). It
// returns false at the end of the unit or on error (b.err); a null entry
// returns true with e.tag == 0.
func (d *dwarfData) readEntry(u *unit, b *buf, e *entry) bool {
	e.off = uint64(b.off)
	e.fields = e.fields[:0]
	e.tag, e.children = 0, false
	if e.off >= u.end {
		return false
	}
	code := b.uleb()
	if b.err != nil {
		return false
	}
	if code == 0 {
		return true
	}
	tab, err := d.unitAbbrevs(u)
	if err != nil {
		b.fail("%v", err)
		return false
	}
	a := tab.get(code)
	if a == nil {
		b.fail("unknown abbreviation code %d", code)
		return false
	}
	e.tag, e.children = a.tag, a.children
	for _, s := range a.specs {
		f := field{attr: s.attr, form: s.form}
		d.readValue(u, b, &f, s.implicit)
		e.fields = append(e.fields, f)
	}
	return b.err == nil
}

// skipEntry advances b past the entry at b.off without decoding values
// into fields. It returns the abbreviation (nil for a null entry).
func (d *dwarfData) skipEntry(u *unit, b *buf) (*abbrev, bool) {
	code := b.uleb()
	if b.err != nil {
		return nil, false
	}
	if code == 0 {
		return nil, true
	}
	tab, err := d.unitAbbrevs(u)
	if err != nil {
		b.fail("%v", err)
		return nil, false
	}
	a := tab.get(code)
	if a == nil {
		b.fail("unknown abbreviation code %d", code)
		return nil, false
	}
	var f field
	for _, s := range a.specs {
		f.form = s.form
		d.readValue(u, b, &f, s.implicit)
	}
	return a, b.err == nil
}

// readValue decodes one attribute value of form f.form.
func (d *dwarfData) readValue(u *unit, b *buf, f *field, implicit int64) {
	form := f.form
	for form == formIndirect {
		form = uint16(b.uleb())
		f.form = form
	}
	switch form {
	case formAddr:
		f.class, f.u = classAddr, b.uint(u.asize)
	case formAddrx, formGNUAddrIndex:
		f.class, f.u = classAddrx, b.uleb()
	case formAddrx1:
		f.class, f.u = classAddrx, uint64(b.u8())
	case formAddrx2:
		f.class, f.u = classAddrx, uint64(b.u16())
	case formAddrx3:
		f.class, f.u = classAddrx, uint64(b.u24())
	case formAddrx4:
		f.class, f.u = classAddrx, uint64(b.u32())
	case formBlock1:
		f.class, f.b = classBlock, b.bytes(int(b.u8()))
	case formBlock2:
		f.class, f.b = classBlock, b.bytes(int(b.u16()))
	case formBlock4:
		f.class, f.b = classBlock, b.bytes(int(b.u32()))
	case formBlock, formExprloc:
		f.class, f.b = classBlock, b.bytes(int(b.uleb()))
	case formData1:
		f.class, f.u = classConst, uint64(b.u8())
		f.s = int64(int8(f.u))
	case formData2:
		f.class, f.u = classConst, uint64(b.u16())
		f.s = int64(int16(f.u))
	case formData4:
		f.class, f.u = classConst, uint64(b.u32())
		f.s = int64(int32(f.u))
	case formData8:
		f.class, f.u = classConst, b.u64()
		f.s = int64(f.u)
	case formData16:
		f.class, f.b = classBlock, b.bytes(16)
	case formSdata:
		f.s = b.sleb()
		f.class, f.u, f.signed = classConst, uint64(f.s), true
	case formUdata:
		f.class, f.u = classConst, b.uleb()
		f.s = int64(f.u)
	case formImplicitConst:
		f.class, f.s, f.u, f.signed = classConst, implicit, uint64(implicit), true
	case formFlag:
		f.class, f.u = classFlag, uint64(b.u8())
	case formFlagPresent:
		f.class, f.u = classFlag, 1
	case formString:
		f.class, f.b = classString, b.cstr()
	case formStrp, formLineStrp, formStrpSup, formGNUStrpAlt:
		off := b.offset(u.dwarf64)
		sec := d.str
		if form == formLineStrp {
			sec = d.lineStr
		}
		f.class = classString
		if form == formStrpSup || form == formGNUStrpAlt {
			f.b = nil // supplementary files are not supported
		} else if s, ok := cstrAt(sec, off); ok {
			f.b = s
		}
	case formStrx, formGNUStrIndex:
		f.class, f.u = classStrx, b.uleb()
	case formStrx1:
		f.class, f.u = classStrx, uint64(b.u8())
	case formStrx2:
		f.class, f.u = classStrx, uint64(b.u16())
	case formStrx3:
		f.class, f.u = classStrx, uint64(b.u24())
	case formStrx4:
		f.class, f.u = classStrx, uint64(b.u32())
	case formRef1:
		f.class, f.u = classRef, u.off+uint64(b.u8())
	case formRef2:
		f.class, f.u = classRef, u.off+uint64(b.u16())
	case formRef4:
		f.class, f.u = classRef, u.off+uint64(b.u32())
	case formRef8:
		f.class, f.u = classRef, u.off+b.u64()
	case formRefUdata:
		f.class, f.u = classRef, u.off+b.uleb()
	case formRefAddr:
		if u.version <= 2 {
			f.class, f.u = classRef, b.uint(u.asize)
		} else {
			f.class, f.u = classRef, b.offset(u.dwarf64)
		}
	case formRefSig8:
		f.class, f.u = classSig, b.u64()
	case formRefSup4:
		f.class, f.u = classNone, uint64(b.u32())
	case formRefSup8:
		f.class, f.u = classNone, b.u64()
	case formGNURefAlt:
		f.class, f.u = classNone, b.offset(u.dwarf64)
	case formSecOffset:
		f.class, f.u = classSecOffset, b.offset(u.dwarf64)
	case formLoclistx:
		f.class, f.u = classLoclistx, b.uleb()
	case formRnglistx:
		f.class, f.u = classRnglistx, b.uleb()
	default:
		b.fail("unknown attribute form %#x", form)
	}
}

// fieldString returns the string value of f, resolving string offsets.
func (d *dwarfData) fieldString(u *unit, f field) []byte {
	switch f.class {
	case classString:
		return f.b
	case classStrx:
		size := uint64(4)
		if u.dwarf64 {
			size = 8
		}
		pos := u.strOffBase + f.u*size
		if pos+size > uint64(len(d.strOffsets)) {
			return nil
		}
		var off uint64
		if size == 4 {
			off = uint64(d.order.Uint32(d.strOffsets[pos:]))
		} else {
			off = d.order.Uint64(d.strOffsets[pos:])
		}
		s, _ := cstrAt(d.str, off)
		return s
	}
	return nil
}

// fieldAddr returns the address value of f, resolving address indexes.
func (d *dwarfData) fieldAddr(u *unit, f field) uint64 {
	switch f.class {
	case classAddr, classConst:
		return f.u
	case classAddrx:
		pos := u.addrBase + f.u*uint64(u.asize)
		if pos+uint64(u.asize) > uint64(len(d.addr)) {
			return 0
		}
		b := makeBuf(".debug_addr", d.addr, int(pos), d.order)
		return b.uint(u.asize)
	}
	return 0
}

// pcRanges returns the address ranges of an entry from its
// DW_AT_low_pc/DW_AT_high_pc or DW_AT_ranges attributes.
func (d *dwarfData) pcRanges(u *unit, e *entry) ([][2]uint64, error) {
	var low, high, ranges field
	var hasLow, hasHigh, hasRanges bool
	for _, f := range e.fields {
		switch f.attr {
		case dwarf.AttrLowpc:
			low, hasLow = f, true
		case dwarf.AttrHighpc:
			high, hasHigh = f, true
		case dwarf.AttrRanges:
			ranges, hasRanges = f, true
		}
	}
	if hasLow && hasHigh {
		lo := d.fieldAddr(u, low)
		hi := d.fieldAddr(u, high)
		if high.class == classConst {
			hi = lo + high.u
		}
		if hi > lo {
			return [][2]uint64{{lo, hi}}, nil
		}
		return nil, nil
	}
	if hasRanges {
		return d.rangeList(u, ranges)
	}
	return nil, nil
}

// rangeList decodes a DW_AT_ranges value.
func (d *dwarfData) rangeList(u *unit, f field) ([][2]uint64, error) {
	base := u.lowPC
	if u.version < 5 {
		if f.class != classSecOffset && f.class != classConst {
			return nil, nil
		}
		b := makeBuf(".debug_ranges", d.ranges, int(f.u), d.order)
		var out [][2]uint64
		maxAddr := ^uint64(0)
		if u.asize == 4 {
			maxAddr = 0xffffffff
		}
		for b.err == nil {
			lo, hi := b.uint(u.asize), b.uint(u.asize)
			if lo == 0 && hi == 0 {
				break
			}
			if lo == maxAddr {
				base = hi
				continue
			}
			if hi > lo {
				out = append(out, [2]uint64{base + lo, base + hi})
			}
		}
		return out, b.err
	}
	off := f.u
	if f.class == classRnglistx {
		size := uint64(4)
		if u.dwarf64 {
			size = 8
		}
		pos := u.rnglistsBase + f.u*size
		if pos+size > uint64(len(d.rnglists)) {
			return nil, fmt.Errorf(".debug_rnglists: index %d out of range", f.u)
		}
		b := makeBuf(".debug_rnglists", d.rnglists, int(pos), d.order)
		off = u.rnglistsBase + b.offset(u.dwarf64)
	}
	b := makeBuf(".debug_rnglists", d.rnglists, int(off), d.order)
	addrx := func(i uint64) uint64 { return d.fieldAddr(u, field{class: classAddrx, u: i}) }
	var out [][2]uint64
	add := func(lo, hi uint64) {
		if hi > lo {
			out = append(out, [2]uint64{lo, hi})
		}
	}
	for b.err == nil {
		switch kind := b.u8(); kind {
		case 0: // DW_RLE_end_of_list
			return out, b.err
		case 1: // base_addressx
			base = addrx(b.uleb())
		case 2: // startx_endx
			lo := addrx(b.uleb())
			add(lo, addrx(b.uleb()))
		case 3: // startx_length
			lo := addrx(b.uleb())
			add(lo, lo+b.uleb())
		case 4: // offset_pair
			lo := b.uleb()
			add(base+lo, base+b.uleb())
		case 5: // base_address
			base = b.uint(u.asize)
		case 6: // start_end
			lo := b.uint(u.asize)
			add(lo, b.uint(u.asize))
		case 7: // start_length
			lo := b.uint(u.asize)
			add(lo, lo+b.uleb())
		default:
			b.fail("unknown range list entry kind %d", kind)
		}
	}
	return out, b.err
}

// loadAranges parses .debug_aranges into a sorted table.
func (d *dwarfData) loadAranges() ([]arange, error) {
	d.arOnce.Do(func() { d.ar, d.arErr = parseAranges(d.aranges, d.order) })
	return d.ar, d.arErr
}

// parseAranges decodes a .debug_aranges section into ranges sorted by
// start address; empty ranges are dropped.
func parseAranges(data []byte, order binary.ByteOrder) ([]arange, error) {
	var out []arange
	b := makeBuf(".debug_aranges", data, 0, order)
	for b.off < len(data) && b.err == nil {
		start := b.off
		length, dwarf64 := b.unitLength()
		end := b.off + int(length)
		if end > len(data) || end < b.off {
			return out, fmt.Errorf(".debug_aranges: set at %#x overruns the section", start)
		}
		version := b.u16()
		cu := b.offset(dwarf64)
		asize := int(b.u8())
		segSize := int(b.u8())
		if version != 2 && version != 3 || asize == 0 {
			b.off = end
			continue
		}
		tuple := 2*asize + segSize
		if pad := (b.off - start) % tuple; pad != 0 {
			b.skip(tuple - pad)
		}
		for b.off+tuple <= end && b.err == nil {
			b.skip(segSize)
			lo, n := b.uint(asize), b.uint(asize)
			if lo == 0 && n == 0 {
				break
			}
			if n != 0 {
				out = append(out, arange{lo, lo + n, cu})
			}
		}
		b.off = end
	}
	slices.SortFunc(out, arange.byLo)
	return out, b.err
}

// lookupRange finds the range covering addr in a table sorted by lo.
func lookupRange(tab []arange, addr uint64) (arange, bool) {
	i, _ := slices.BinarySearchFunc(tab, addr+1, func(r arange, a uint64) int {
		if r.lo < a {
			return -1
		}
		if r.lo > a {
			return 1
		}
		return 0
	})
	// Ranges rarely overlap; look back a little in case they do.
	for j := i - 1; j >= 0 && j >= i-16; j-- {
		if addr >= tab[j].lo && addr < tab[j].hi {
			return tab[j], true
		}
	}
	return arange{}, false
}

// unitForAddr returns the compilation unit covering addr, from
// .debug_aranges, falling back to the units' own address ranges.
func (d *dwarfData) unitForAddr(addr uint64) (*unit, error) {
	ar, err := d.loadAranges()
	if err == nil {
		if r, ok := lookupRange(ar, addr); ok {
			return d.unitAt(r.unit)
		}
	}
	ur, err := d.loadUnitRanges()
	if err != nil {
		return nil, err
	}
	if r, ok := lookupRange(ur, addr); ok {
		return d.unitAt(r.unit)
	}
	return nil, nil
}

// units returns every unit of .debug_info (headers and unit DIEs only).
func (d *dwarfData) allUnitList() ([]*unit, error) {
	d.allUnitsOnce.Do(func() {
		for off := uint64(0); off < uint64(len(d.info)); {
			u, err := d.unitAt(off)
			if err != nil {
				d.allUnitsErr = err
				return
			}
			d.allUnits = append(d.allUnits, u)
			off = u.end
		}
	})
	return d.allUnits, d.allUnitsErr
}

// unitNameList returns the offset and name of every unit, from the
// on-disk index if it has them.
func (d *dwarfData) unitNameList() ([]unitName, error) {
	d.unitNamesOnce.Do(func() {
		us, err := d.allUnitList()
		if err != nil {
			d.unitNamesErr = err
			return
		}
		for _, u := range us {
			d.unitNames = append(d.unitNames, unitName{u.off, string(u.name)})
		}
	})
	return d.unitNames, d.unitNamesErr
}

// loadUnitRanges builds an address map from every unit's own ranges; it
// covers units missing from .debug_aranges.
func (d *dwarfData) loadUnitRanges() ([]arange, error) {
	d.unitRangesOnce.Do(func() {
		us, err := d.allUnitList()
		if err != nil {
			d.unitRangesErr = err
			return
		}
		var out []arange
		for _, u := range us {
			rs, err := d.unitPCRanges(u)
			if err != nil {
				continue
			}
			for _, r := range rs {
				out = append(out, arange{r[0], r[1], u.off})
			}
		}
		slices.SortFunc(out, arange.byLo)
		d.unitRanges = out
	})
	return d.unitRanges, d.unitRangesErr
}

// unitPCRanges returns the address ranges of a unit DIE.
func (d *dwarfData) unitPCRanges(u *unit) ([][2]uint64, error) {
	e := entry{}
	if u.highPC.attr != 0 {
		e.fields = append(e.fields, field{attr: dwarf.AttrLowpc, class: classAddr, u: u.lowPC}, u.highPC)
	}
	if u.rangesField.attr != 0 {
		e.fields = append(e.fields, u.rangesField)
	}
	return d.pcRanges(u, &e)
}
