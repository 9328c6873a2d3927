package symbols

import (
	"debug/dwarf"
	"debug/elf"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
)

// Value is an object named by an expression: where it is, how big it is
// and its C type.
type Value struct {
	// Expr is the expression as given.
	Expr string
	// Addr is the object's address; for bit fields, the address of the
	// storage unit that holds the field.
	Addr uint64
	// Size is the size in bytes (sizeof).
	Size uint64
	// TypeName is the C type as gdb's whatis prints it, e.g. "char [65]".
	TypeName string
	// BitOffset and BitSize locate a bit field within the bytes at Addr
	// (BitSize 0: not a bit field).
	BitOffset, BitSize int
}

// String formats the value like "init_uts_ns.name.nodename: char [65] at 0xffffffff82bf9ba1 (65 bytes)".
func (v Value) String() string {
	return fmt.Sprintf("%s: %s at %#x (%d bytes)", v.Expr, v.TypeName, v.Addr, v.Size)
}

// ErrBadExpr reports an expression Expr cannot evaluate.
var ErrBadExpr = errors.New("bad expression")

// exprStep is one accessor of an expression: .member or [index].
type exprStep struct {
	member string
	index  uint64
	isIdx  bool
}

// parseExpr splits "var.a.b[3].c" into the variable name and accessors.
func parseExpr(s string) (string, []exprStep, error) {
	s = strings.TrimSpace(s)
	ident := func(i int) int {
		j := i
		for j < len(s) && (s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || j > i && s[j] >= '0' && s[j] <= '9') {
			j++
		}
		return j
	}
	end := ident(0)
	if end == 0 {
		return "", nil, fmt.Errorf("%w %q: want a variable name first", ErrBadExpr, s)
	}
	name := s[:end]
	var steps []exprStep
	for i := end; i < len(s); {
		switch {
		case s[i] == ' ':
			i++
		case s[i] == '.':
			j := ident(i + 1)
			if j == i+1 {
				return "", nil, fmt.Errorf("%w %q: want a member name after '.' at %d", ErrBadExpr, s, i)
			}
			steps = append(steps, exprStep{member: s[i+1 : j]})
			i = j
		case s[i] == '[':
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				return "", nil, fmt.Errorf("%w %q: unclosed '['", ErrBadExpr, s)
			}
			n, err := strconv.ParseUint(strings.TrimSpace(s[i+1:i+j]), 0, 64)
			if err != nil {
				return "", nil, fmt.Errorf("%w %q: index %q: want a constant", ErrBadExpr, s, s[i+1:i+j])
			}
			steps = append(steps, exprStep{index: n, isIdx: true})
			i += j + 1
		case strings.HasPrefix(s[i:], "->"):
			return "", nil, fmt.Errorf("%w %q: '->' needs target memory; Expr only computes static addresses", ErrBadExpr, s)
		default:
			return "", nil, fmt.Errorf("%w %q: unexpected %q at %d", ErrBadExpr, s, s[i], i)
		}
	}
	return name, steps, nil
}

// typeRef names a type entry; dims counts array dimensions already
// indexed away.
type typeRef struct {
	u    *unit
	off  uint64
	dims int
	void bool
}

// Expr evaluates a static C lvalue made of a global variable, member
// accesses and constant array indexes, such as
// "init_uts_ns.name.nodename" or "init_task.comm[2]". The variable's
// address comes from the symbol table; its type from the DWARF entries
// of the unit that defines it (found lazily, without reading the whole
// .debug_info).
func (t *Table) Expr(expr string) (Value, error) {
	if err := t.enter(); err != nil {
		return Value{}, err
	}
	defer t.mu.RUnlock()
	name, steps, err := parseExpr(expr)
	if err != nil {
		return Value{}, err
	}
	s, err := t.nameIndex()
	if err != nil {
		return Value{}, err
	}
	symIdx, best := -1, -1
	s.find(name, func(i int) bool {
		e := s.entry(i)
		r := e.rank()
		if kindOf(elf.ST_TYPE(e.info)) == Object {
			r += 8
		}
		if r > best {
			symIdx, best = i, r
		}
		return true
	})
	if symIdx < 0 {
		return Value{}, fmt.Errorf("symbols: expression %q: %w", expr, &UnknownSymbolError{Name: name, Suggestions: s.suggest(name, 6)})
	}
	sym := s.symbol(symIdx)
	d, err := t.dwarf()
	if err != nil {
		return Value{}, err
	}
	tr, err := t.variableType(d, s, symIdx, sym)
	if err != nil {
		return Value{}, fmt.Errorf("symbols: expression %q: %w", expr, err)
	}
	v := Value{Expr: expr, Addr: sym.Addr}
	for _, st := range steps {
		if st.isIdx {
			elem, stride, count, err := d.arrayElem(tr)
			if err != nil {
				return Value{}, fmt.Errorf("symbols: expression %q: [%d]: %w", expr, st.index, err)
			}
			if count > 0 && st.index >= count {
				return Value{}, fmt.Errorf("symbols: expression %q: %w: index %d out of range [0, %d)", expr, ErrBadExpr, st.index, count)
			}
			v.Addr += st.index * stride
			tr = elem
			continue
		}
		m, err := d.member(tr, st.member)
		if err != nil {
			return Value{}, fmt.Errorf("symbols: expression %q: .%s: %w", expr, st.member, err)
		}
		v.Addr += m.off
		v.BitOffset, v.BitSize = m.bitOff, m.bitSize
		tr = m.typ
	}
	if v.Size, err = d.sizeOf(tr); err != nil {
		return Value{}, fmt.Errorf("symbols: expression %q: %w", expr, err)
	}
	v.TypeName = d.typeName(tr)
	return v, nil
}

// variableType finds the DWARF type of the variable behind a symbol.
func (t *Table) variableType(d *dwarfData, s *symtab, symIdx int, sym Symbol) (typeRef, error) {
	units, err := t.candidateUnits(d, s, symIdx)
	if err != nil {
		return typeRef{}, err
	}
	var decl *typeRef
	try := func(u *unit) (typeRef, bool) {
		tr, isDef, ok := d.findVariable(u, sym.Name, sym.Addr)
		if ok && isDef {
			return tr, true
		}
		if ok && decl == nil {
			decl = &tr
		}
		return typeRef{}, false
	}
	for _, u := range units {
		if tr, ok := try(u); ok {
			return tr, nil
		}
	}
	if decl != nil {
		return *decl, nil
	}
	// Last resort: every unit.
	all, err := d.allUnitList()
	if err != nil {
		return typeRef{}, err
	}
	for _, u := range all {
		if tr, ok := try(u); ok {
			return tr, nil
		}
	}
	if decl != nil {
		return *decl, nil
	}
	return typeRef{}, fmt.Errorf("no DWARF variable %s", sym.Name)
}

// candidateUnits guesses the units likely to define the symbol: those
// whose source file is the STT_FILE of the symbol or of its neighbours in
// the same section (the linker keeps each object's data together).
func (t *Table) candidateUnits(d *dwarfData, s *symtab, symIdx int) ([]*unit, error) {
	files := t.neighbourFiles(s, symIdx, 64)
	if len(files) == 0 {
		return nil, nil
	}
	names, err := d.unitNameList()
	if err != nil {
		return nil, err
	}
	var out []*unit
	for _, f := range files {
		for _, un := range names {
			if path.Base(un.name) == f {
				if u, err := d.unitAt(un.off); err == nil {
					out = append(out, u)
				}
			}
		}
	}
	return out, nil
}

// neighbourFiles returns the STT_FILE names of the symbol and of the local
// symbols around it in address order, nearest first.
func (t *Table) neighbourFiles(s *symtab, symIdx, radius int) []string {
	fileOf := t.symbolFiles(s)
	if _, err := t.addrIndex(); err != nil {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	add := func(i int) {
		if i < len(fileOf) && fileOf[i] > 0 {
			n := string(s.nameBytes(s.entry(int(fileOf[i])).name))
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	add(symIdx)
	e := s.entry(symIdx)
	pos := -1
	for lo, hi := 0, len(s.byAddr); lo < hi; {
		m := (lo + hi) / 2
		if s.entry(int(s.byAddr[m])).value < e.value {
			lo = m + 1
		} else {
			hi = m
		}
		pos = lo
	}
	for k := 1; k <= radius && pos >= 0; k++ {
		for _, p := range []int{pos - k, pos + k - 1} {
			if p >= 0 && p < len(s.byAddr) {
				if n := s.entry(int(s.byAddr[p])); n.shndx == e.shndx {
					add(int(s.byAddr[p]))
				}
			}
		}
	}
	return out
}

// symbolFiles maps each local symbol index to the index of the STT_FILE
// symbol before it (0 if none).
func (t *Table) symbolFiles(s *symtab) []uint32 {
	t.fileOnce.Do(func() {
		out := make([]uint32, s.n)
		cur := uint32(0)
		for i := 1; i < s.n; i++ {
			e := s.entry(i)
			switch {
			case elf.ST_TYPE(e.info) == elf.STT_FILE:
				cur = uint32(i)
			case elf.ST_BIND(e.info) == elf.STB_LOCAL:
				out[i] = cur
			}
		}
		t.symFiles = out
	})
	return t.symFiles
}

// findVariable scans the top-level entries of u for the variable name:
// a definition at addr (isDef) or, failing that, a declaration.
func (d *dwarfData) findVariable(u *unit, name string, addr uint64) (tr typeRef, isDef, ok bool) {
	b := makeBuf(".debug_info", d.info, int(u.die), d.order)
	b.data = d.info[:u.end]
	var e entry
	if !d.readEntry(u, &b, &e) || !e.children {
		return typeRef{}, false, false
	}
	var declTR *typeRef
	for d.readEntry(u, &b, &e) && e.tag != 0 {
		if e.tag == dwarf.TagVariable {
			if tr, def, match := d.matchVariable(u, &e, name, addr); match {
				if def {
					return tr, true, true
				}
				if declTR == nil {
					declTR = &tr
				}
			}
		}
		if e.children {
			if d.skipChildren(u, &b, &e) != nil {
				break
			}
		}
	}
	if declTR != nil {
		return *declTR, false, true
	}
	return typeRef{}, false, false
}

// matchVariable checks whether e is the variable name; def reports a
// definition whose location is DW_OP_addr addr.
func (d *dwarfData) matchVariable(u *unit, e *entry, name string, addr uint64) (tr typeRef, def, ok bool) {
	var typ, spec, loc field
	var hasTyp, hasSpec, hasLoc bool
	nameOK := false
	for _, f := range e.fields {
		switch f.attr {
		case dwarf.AttrName:
			nameOK = string(d.fieldString(u, f)) == name
		case dwarf.AttrType:
			typ, hasTyp = f, true
		case dwarf.AttrSpecification:
			spec, hasSpec = f, true
		case dwarf.AttrLocation:
			loc, hasLoc = f, true
		}
	}
	if hasSpec && spec.class == classRef {
		se, su, err := d.entryAt(u, spec.u)
		if err != nil {
			return typeRef{}, false, false
		}
		if !nameOK {
			if f, ok := se.field(dwarf.AttrName); ok {
				nameOK = string(d.fieldString(su, f)) == name
			}
		}
		if !hasTyp {
			typ, hasTyp = se.field(dwarf.AttrType)
			u = su
		}
	}
	if !nameOK || !hasTyp || typ.class != classRef {
		return typeRef{}, false, false
	}
	tu, err := d.unitContaining(u, typ.u)
	if err != nil {
		return typeRef{}, false, false
	}
	tr = typeRef{u: tu, off: typ.u}
	if hasLoc && loc.class == classBlock && len(loc.b) == 1+u.asize && loc.b[0] == 0x03 {
		b := makeBuf("location", loc.b[1:], 0, d.order)
		if b.uint(u.asize) == addr {
			return tr, true, true
		}
		return typeRef{}, false, false // a different variable of the same name
	}
	return tr, false, true
}

// entryAt decodes the entry at .debug_info offset off.
func (d *dwarfData) entryAt(hint *unit, off uint64) (*entry, *unit, error) {
	u, err := d.unitContaining(hint, off)
	if err != nil {
		return nil, nil, err
	}
	b := makeBuf(".debug_info", d.info, int(off), d.order)
	b.data = d.info[:u.end]
	e := &entry{}
	if !d.readEntry(u, &b, e) || e.tag == 0 {
		if b.err != nil {
			return nil, nil, b.err
		}
		return nil, nil, fmt.Errorf(".debug_info: no entry at %#x", off)
	}
	return e, u, nil
}

// typeEntry decodes the entry of tr.
func (d *dwarfData) typeEntry(tr typeRef) (*entry, error) {
	e, _, err := d.entryAt(tr.u, tr.off)
	return e, err
}

// next returns the type an entry's DW_AT_type names (void if none).
func (d *dwarfData) next(tr typeRef, e *entry) typeRef {
	f, ok := e.field(dwarf.AttrType)
	if !ok || f.class != classRef {
		return typeRef{void: true}
	}
	u, err := d.unitContaining(tr.u, f.u)
	if err != nil {
		return typeRef{void: true}
	}
	return typeRef{u: u, off: f.u}
}

// isQualifier reports tags that do not change the layout of their type.
func isQualifier(tag dwarf.Tag) bool {
	switch tag {
	case dwarf.TagTypedef, dwarf.TagConstType, dwarf.TagVolatileType, dwarf.TagRestrictType, 0x47 /* atomic */, 0x48 /* immutable */ :
		return true
	}
	return false
}

// strip follows typedefs and qualifiers to the underlying type.
func (d *dwarfData) strip(tr typeRef) (typeRef, *entry, error) {
	for range 64 {
		if tr.void {
			return tr, nil, nil
		}
		e, err := d.typeEntry(tr)
		if err != nil {
			return tr, nil, err
		}
		if tr.dims > 0 || !isQualifier(e.tag) {
			return tr, e, nil
		}
		tr = d.next(tr, e)
	}
	return tr, nil, errors.New("type chain too long")
}

// completeStruct replaces a struct declaration by its definition from the
// same unit or, failing that, any unit.
func (d *dwarfData) completeStruct(tr typeRef, e *entry) (typeRef, *entry) {
	if _, ok := e.field(dwarf.AttrDeclaration); !ok {
		return tr, e
	}
	nf, ok := e.field(dwarf.AttrName)
	if !ok {
		return tr, e
	}
	name := string(d.fieldString(tr.u, nf))
	d.mu.Lock()
	if c, ok := d.structDefs[string(rune(e.tag))+name]; ok {
		d.mu.Unlock()
		if ce, err := d.typeEntry(c); err == nil {
			return c, ce
		}
		return tr, e
	}
	d.mu.Unlock()
	units := []*unit{tr.u}
	if all, err := d.allUnitList(); err == nil {
		units = append(units, all...)
	}
	for _, u := range units {
		if c, ok := d.findStruct(u, e.tag, name); ok {
			d.mu.Lock()
			if d.structDefs == nil {
				d.structDefs = map[string]typeRef{}
			}
			d.structDefs[string(rune(e.tag))+name] = c
			d.mu.Unlock()
			if ce, err := d.typeEntry(c); err == nil {
				return c, ce
			}
		}
	}
	return tr, e
}

// findStruct looks for a top-level definition of a struct/union/enum.
func (d *dwarfData) findStruct(u *unit, tag dwarf.Tag, name string) (typeRef, bool) {
	b := makeBuf(".debug_info", d.info, int(u.die), d.order)
	b.data = d.info[:u.end]
	var e entry
	if !d.readEntry(u, &b, &e) || !e.children {
		return typeRef{}, false
	}
	for d.readEntry(u, &b, &e) && e.tag != 0 {
		if e.tag == tag {
			if _, decl := e.field(dwarf.AttrDeclaration); !decl {
				if f, ok := e.field(dwarf.AttrName); ok && string(d.fieldString(u, f)) == name {
					return typeRef{u: u, off: e.off}, true
				}
			}
		}
		if e.children && d.skipChildren(u, &b, &e) != nil {
			break
		}
	}
	return typeRef{}, false
}

// memberInfo is a located struct or union member.
type memberInfo struct {
	off             uint64
	typ             typeRef
	bitOff, bitSize int
}

// member finds a member of a struct or union type, looking into anonymous
// members.
func (d *dwarfData) member(tr typeRef, name string) (memberInfo, error) {
	tr, e, err := d.strip(tr)
	if err != nil {
		return memberInfo{}, err
	}
	if tr.void || tr.dims > 0 || e.tag != dwarf.TagStructType && e.tag != dwarf.TagUnionType && e.tag != dwarf.TagClassType {
		return memberInfo{}, fmt.Errorf("%w: %s is not a struct or union", ErrBadExpr, d.typeName(tr))
	}
	tr, e = d.completeStruct(tr, e)
	if !e.children {
		return memberInfo{}, fmt.Errorf("%w: %s is incomplete", ErrBadExpr, d.typeName(tr))
	}
	b := makeBuf(".debug_info", d.info, 0, d.order)
	b.data = d.info[:tr.u.end]
	// Position after the struct entry itself.
	if _, _, err := d.entryAt(tr.u, tr.off); err != nil {
		return memberInfo{}, err
	}
	b.off = int(tr.off)
	var me entry
	d.readEntry(tr.u, &b, &me)
	var anon []memberInfo
	for d.readEntry(tr.u, &b, &me) && me.tag != 0 {
		if me.tag == dwarf.TagMember {
			m, mname := d.memberOf(tr, &me)
			if mname == name {
				return m, nil
			}
			if mname == "" {
				anon = append(anon, m)
			}
		}
		if me.children && d.skipChildren(tr.u, &b, &me) != nil {
			break
		}
	}
	for _, a := range anon {
		if m, err := d.member(a.typ, name); err == nil {
			m.off += a.off
			return m, nil
		}
	}
	return memberInfo{}, fmt.Errorf("%w: %s has no member %q", ErrBadExpr, d.typeName(tr), name)
}

// memberOf decodes a DW_TAG_member entry.
func (d *dwarfData) memberOf(parent typeRef, e *entry) (memberInfo, string) {
	m := memberInfo{typ: d.next(parent, e)}
	var name string
	var byteSize uint64
	oldBitOff := -1
	for _, f := range e.fields {
		switch f.attr {
		case dwarf.AttrName:
			name = string(d.fieldString(parent.u, f))
		case dwarf.AttrDataMemberLoc:
			if f.class == classConst {
				m.off = f.u
			} else if f.class == classBlock && len(f.b) > 1 && f.b[0] == 0x23 { // DW_OP_plus_uconst
				b := makeBuf("member location", f.b[1:], 0, d.order)
				m.off = b.uleb()
			}
		case dwarf.AttrDataBitOffset:
			m.bitOff = int(f.u)
		case dwarf.AttrBitOffset:
			oldBitOff = int(f.u)
		case dwarf.AttrBitSize:
			m.bitSize = int(f.u)
		case dwarf.AttrByteSize:
			byteSize = f.u
		}
	}
	if m.bitSize > 0 {
		if oldBitOff >= 0 && byteSize > 0 { // DWARF 2/3, little-endian numbering
			m.bitOff = int(byteSize*8) - oldBitOff - m.bitSize
		}
		m.off += uint64(m.bitOff / 8)
		m.bitOff %= 8
	}
	return m, name
}

// arrayElem returns the element type of an array type (or the array of
// the remaining dimensions), its stride and the first dimension's count
// (0 if unknown).
func (d *dwarfData) arrayElem(tr typeRef) (typeRef, uint64, uint64, error) {
	tr, e, err := d.strip(tr)
	if err != nil {
		return typeRef{}, 0, 0, err
	}
	if tr.void || e.tag != dwarf.TagArrayType {
		return typeRef{}, 0, 0, fmt.Errorf("%w: %s is not an array (pointers need target memory)", ErrBadExpr, d.typeName(tr))
	}
	dims := d.arrayDims(tr, e)
	if tr.dims >= len(dims) {
		return typeRef{}, 0, 0, fmt.Errorf("%w: too many indexes", ErrBadExpr)
	}
	var elem typeRef
	if tr.dims+1 < len(dims) {
		elem = typeRef{u: tr.u, off: tr.off, dims: tr.dims + 1}
	} else {
		elem = d.next(tr, e)
	}
	stride, err := d.sizeOf(elem)
	if err != nil {
		return typeRef{}, 0, 0, err
	}
	if f, ok := e.field(dwarf.AttrStride); ok && tr.dims+1 == len(dims) {
		stride = f.u
	}
	return elem, stride, dims[tr.dims], nil
}

// arrayDims returns the element counts of an array type's dimensions
// (0 for an unknown count, as in a flexible array member).
func (d *dwarfData) arrayDims(tr typeRef, e *entry) []uint64 {
	var dims []uint64
	if !e.children {
		return []uint64{0}
	}
	b := makeBuf(".debug_info", d.info, 0, d.order)
	b.data = d.info[:tr.u.end]
	b.off = int(tr.off)
	var se entry
	d.readEntry(tr.u, &b, &se)
	for d.readEntry(tr.u, &b, &se) && se.tag != 0 {
		if se.tag == dwarf.TagSubrangeType || se.tag == dwarf.TagEnumerationType {
			var n uint64
			lower := uint64(0)
			if f, ok := se.field(dwarf.AttrLowerBound); ok && f.class == classConst {
				lower = f.u
			}
			if f, ok := se.field(dwarf.AttrCount); ok && f.class == classConst {
				n = f.u
			} else if f, ok := se.field(dwarf.AttrUpperBound); ok && f.class == classConst {
				n = f.u - lower + 1
				if f.signed && f.s < 0 {
					n = 0
				}
			}
			dims = append(dims, n)
		}
		if se.children && d.skipChildren(tr.u, &b, &se) != nil {
			break
		}
	}
	if len(dims) == 0 {
		dims = []uint64{0}
	}
	return dims
}

// sizeOf returns the size in bytes of a type.
func (d *dwarfData) sizeOf(tr typeRef) (uint64, error) {
	for range 64 {
		if tr.void {
			return 1, nil // gdb's sizeof(void)
		}
		e, err := d.typeEntry(tr)
		if err != nil {
			return 0, err
		}
		if tr.dims == 0 && e.tag != dwarf.TagArrayType {
			if f, ok := e.field(dwarf.AttrByteSize); ok && f.class == classConst {
				return f.u, nil
			}
		}
		switch {
		case e.tag == dwarf.TagPointerType || e.tag == 0x10 /* reference */ || e.tag == 0x42 /* rvalue reference */ :
			return uint64(tr.u.asize), nil
		case e.tag == dwarf.TagArrayType:
			dims := d.arrayDims(tr, e)
			n := uint64(1)
			for _, c := range dims[min(tr.dims, len(dims)):] {
				n *= c
			}
			es, err := d.sizeOf(d.next(tr, e))
			if err != nil {
				return 0, err
			}
			return n * es, nil
		case isQualifier(e.tag):
			tr = d.next(tr, e)
		case e.tag == dwarf.TagStructType || e.tag == dwarf.TagUnionType || e.tag == dwarf.TagEnumerationType:
			c, ce := d.completeStruct(tr, e)
			if f, ok := ce.field(dwarf.AttrByteSize); ok && c.off != tr.off {
				return f.u, nil
			}
			return 0, fmt.Errorf("%w: sizeof incomplete type %s", ErrBadExpr, d.typeName(tr))
		default:
			return 0, fmt.Errorf("%w: no size for %s", ErrBadExpr, d.typeName(tr))
		}
	}
	return 0, errors.New("type chain too long")
}

// typeName spells a type the way gdb's whatis does.
func (d *dwarfData) typeName(tr typeRef) string {
	return d.declarator(tr, "", 0)
}

// declarator formats type tr around the declarator text inner (C's
// inside-out declarator syntax).
func (d *dwarfData) declarator(tr typeRef, inner string, depth int) string {
	join := func(base, decl string) string {
		if decl == "" {
			return base
		}
		return base + " " + decl
	}
	if depth > 32 {
		return "?"
	}
	if tr.void {
		return join("void", inner)
	}
	e, err := d.typeEntry(tr)
	if err != nil {
		return "?"
	}
	name := ""
	if f, ok := e.field(dwarf.AttrName); ok {
		name = string(d.fieldString(tr.u, f))
	}
	switch {
	case tr.dims > 0 || e.tag == dwarf.TagArrayType:
		dims := d.arrayDims(tr, e)
		var sb strings.Builder
		for _, n := range dims[min(tr.dims, len(dims)):] {
			if n == 0 {
				sb.WriteString("[]")
			} else {
				fmt.Fprintf(&sb, "[%d]", n)
			}
		}
		if inner != "" && !strings.HasPrefix(inner, "[") {
			inner = "(" + inner + ")"
		}
		return d.declarator(d.next(tr, e), inner+sb.String(), depth+1)
	case e.tag == dwarf.TagPointerType:
		return d.declarator(d.next(tr, e), "*"+inner, depth+1)
	case e.tag == dwarf.TagConstType || e.tag == dwarf.TagVolatileType || e.tag == dwarf.TagRestrictType:
		q := map[dwarf.Tag]string{dwarf.TagConstType: "const", dwarf.TagVolatileType: "volatile", dwarf.TagRestrictType: "restrict"}[e.tag]
		nt := d.next(tr, e)
		if strings.HasPrefix(inner, "*") || inner == "" && d.isPointer(nt) {
			// A qualified pointer: "char * const".
			return d.declarator(nt, strings.TrimSpace(" "+q+" "+inner), depth+1)
		}
		return q + " " + d.declarator(nt, inner, depth+1)
	case e.tag == dwarf.TagSubroutineType:
		params := d.params(tr, e, depth)
		if inner != "" {
			inner = "(" + inner + ")"
		}
		return d.declarator(d.next(tr, e), inner+"("+params+")", depth+1)
	case e.tag == dwarf.TagStructType:
		return join(tagged("struct", name), inner)
	case e.tag == dwarf.TagUnionType:
		return join(tagged("union", name), inner)
	case e.tag == dwarf.TagEnumerationType:
		return join(tagged("enum", name), inner)
	case e.tag == dwarf.TagClassType:
		return join(tagged("class", name), inner)
	}
	if name == "" {
		name = "?"
	}
	if e.tag == dwarf.TagBaseType {
		if c, ok := gdbBaseNames[name]; ok {
			name = c
		}
	}
	return join(name, inner)
}

// gdbBaseNames maps GCC's spellings of integer types to the shorter ones
// gdb prints.
var gdbBaseNames = map[string]string{
	"long unsigned int":      "unsigned long",
	"long int":               "long",
	"long long unsigned int": "unsigned long long",
	"long long int":          "long long",
	"short unsigned int":     "unsigned short",
	"short int":              "short",
}

func tagged(kw, name string) string {
	if name == "" {
		return kw + " {...}"
	}
	return kw + " " + name
}

func (d *dwarfData) isPointer(tr typeRef) bool {
	if tr.void {
		return false
	}
	e, err := d.typeEntry(tr)
	return err == nil && e.tag == dwarf.TagPointerType
}

// params formats the parameter list of a subroutine type.
func (d *dwarfData) params(tr typeRef, e *entry, depth int) string {
	if !e.children {
		if _, ok := e.field(dwarf.AttrPrototyped); ok {
			return "void"
		}
		return ""
	}
	b := makeBuf(".debug_info", d.info, 0, d.order)
	b.data = d.info[:tr.u.end]
	b.off = int(tr.off)
	var pe entry
	d.readEntry(tr.u, &b, &pe)
	var ps []string
	for d.readEntry(tr.u, &b, &pe) && pe.tag != 0 {
		switch pe.tag {
		case dwarf.TagFormalParameter:
			ps = append(ps, d.declarator(d.next(tr, &pe), "", depth+1))
		case dwarf.TagUnspecifiedParameters:
			ps = append(ps, "...")
		}
		if pe.children && d.skipChildren(tr.u, &b, &pe) != nil {
			break
		}
	}
	return strings.Join(ps, ", ")
}

// Offsetof locates a member path inside a struct or union type, as
// offsetof(TYPE, PATH) would, e.g. Offsetof("struct task_struct", "comm")
// or Offsetof("task_struct", "se.load"). TYPE may omit the "struct" or
// "union" keyword; PATH is members and constant indexes. The result's
// Addr is the offset; Size and TypeName describe the member. The type's
// definition is searched unit by unit until found, so the first call
// for a type may take a while on a large image.
func (t *Table) Offsetof(typeName, memberPath string) (Value, error) {
	if err := t.enter(); err != nil {
		return Value{}, err
	}
	defer t.mu.RUnlock()
	d, err := t.dwarf()
	if err != nil {
		return Value{}, err
	}
	kw, name, ok := strings.Cut(strings.TrimSpace(typeName), " ")
	tags := []dwarf.Tag{dwarf.TagStructType, dwarf.TagUnionType}
	switch {
	case ok && kw == "struct":
		tags = tags[:1]
	case ok && kw == "union":
		tags = tags[1:]
	case ok:
		return Value{}, fmt.Errorf("symbols: offsetof(%s): %w: want [struct|union] NAME", typeName, ErrBadExpr)
	default:
		name = kw
	}
	name = strings.TrimSpace(name)
	_, steps, err := parseExpr("x" + prefixDot(memberPath))
	if err != nil {
		return Value{}, fmt.Errorf("symbols: offsetof(%s, %s): %w", typeName, memberPath, err)
	}
	var tr typeRef
	found := false
	for _, tag := range tags {
		if c, ok := d.findStructAnywhere(tag, name); ok {
			tr, found = c, true
			break
		}
	}
	if !found {
		return Value{}, fmt.Errorf("symbols: offsetof(%s): %w: no definition of the type", typeName, ErrBadExpr)
	}
	expr := fmt.Sprintf("offsetof(%s, %s)", typeName, memberPath)
	v := Value{Expr: expr}
	for _, st := range steps {
		if st.isIdx {
			elem, stride, count, err := d.arrayElem(tr)
			if err != nil {
				return Value{}, fmt.Errorf("symbols: %s: %w", expr, err)
			}
			if count > 0 && st.index >= count {
				return Value{}, fmt.Errorf("symbols: %s: %w: index %d out of range [0, %d)", expr, ErrBadExpr, st.index, count)
			}
			v.Addr += st.index * stride
			tr = elem
			continue
		}
		m, err := d.member(tr, st.member)
		if err != nil {
			return Value{}, fmt.Errorf("symbols: %s: %w", expr, err)
		}
		v.Addr += m.off
		v.BitOffset, v.BitSize = m.bitOff, m.bitSize
		tr = m.typ
	}
	if v.Size, err = d.sizeOf(tr); err != nil {
		return Value{}, fmt.Errorf("symbols: %s: %w", expr, err)
	}
	v.TypeName = d.typeName(tr)
	return v, nil
}

// prefixDot turns a member path into accessor syntax: "a.b" -> ".a.b",
// "[2].a" stays.
func prefixDot(p string) string {
	p = strings.TrimSpace(p)
	if p == "" || strings.HasPrefix(p, "[") || strings.HasPrefix(p, ".") {
		return p
	}
	return "." + p
}

// findStructAnywhere returns the first complete definition of a
// struct/union called name, scanning units in order (and caching).
func (d *dwarfData) findStructAnywhere(tag dwarf.Tag, name string) (typeRef, bool) {
	key := string(rune(tag)) + name
	d.mu.Lock()
	c, ok := d.structDefs[key]
	d.mu.Unlock()
	if ok {
		return c, true
	}
	all, err := d.allUnitList()
	if err != nil {
		return typeRef{}, false
	}
	for _, u := range all {
		if c, ok := d.findStruct(u, tag, name); ok {
			d.mu.Lock()
			if d.structDefs == nil {
				d.structDefs = map[string]typeRef{}
			}
			d.structDefs[key] = c
			d.mu.Unlock()
			return c, true
		}
	}
	return typeRef{}, false
}
