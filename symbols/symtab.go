package symbols

import (
	"bytes"
	"cmp"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
)

// SymbolKind classifies a symbol-table entry.
type SymbolKind uint8

// Symbol kinds.
const (
	// Other is any symbol that is neither a function nor an object
	// (assembler labels, untyped symbols).
	Other SymbolKind = iota
	// Func is a function (STT_FUNC).
	Func
	// Object is a data object (STT_OBJECT, STT_TLS, STT_COMMON).
	Object
)

// String returns "func", "object" or "other".
func (k SymbolKind) String() string {
	switch k {
	case Func:
		return "func"
	case Object:
		return "object"
	}
	return "other"
}

// Symbol is one ELF symbol-table entry.
type Symbol struct {
	Name string
	Addr uint64
	Size uint64
	Kind SymbolKind
	// Global is true for global and weak symbols, false for file-local
	// (static) ones.
	Global bool
}

// String returns the name.
func (s Symbol) String() string { return s.Name }

// Contains reports whether addr lies in [Addr, Addr+Size).
func (s Symbol) Contains(addr uint64) bool { return addr >= s.Addr && addr-s.Addr < s.Size }

// UnknownSymbolError is returned by Lookup for a name that is not in the
// symbol table. It matches ErrUnknownSymbol under errors.Is.
type UnknownSymbolError struct {
	Name string
	// Suggestions are existing names close to Name, best first.
	Suggestions []string
}

// Error names the symbol and lists the suggestions.
func (e *UnknownSymbolError) Error() string {
	msg := fmt.Sprintf("unknown symbol %q", e.Name)
	if len(e.Suggestions) > 0 {
		msg += " (did you mean " + strings.Join(e.Suggestions, ", ") + "?)"
	}
	return msg
}

// Unwrap returns ErrUnknownSymbol.
func (e *UnknownSymbolError) Unwrap() error { return ErrUnknownSymbol }

// symtab reads ELF symbols straight from the mapped .symtab/.strtab.
type symtab struct {
	raw     []byte // the symbol table section
	str     []byte // its string table
	is64    bool
	entSize int
	n       int
	order   binary.ByteOrder

	// byName is an open-addressing hash table of symbol index+1 (0 =
	// empty slot) keyed by fnv1a(name); len is a power of two.
	byName []uint32
	// byAddr lists the indices of addressable symbols sorted by address;
	// at equal addresses the preferred symbol comes last.
	byAddr []uint32
}

// rawSym is a decoded symbol-table entry.
type rawSym struct {
	name  uint32
	info  uint8
	shndx uint16
	value uint64
	size  uint64
}

func (s *symtab) entry(i int) rawSym {
	b := s.raw[i*s.entSize:]
	if s.is64 {
		return rawSym{
			name:  s.order.Uint32(b),
			info:  b[4],
			shndx: s.order.Uint16(b[6:]),
			value: s.order.Uint64(b[8:]),
			size:  s.order.Uint64(b[16:]),
		}
	}
	return rawSym{
		name:  s.order.Uint32(b),
		value: uint64(s.order.Uint32(b[4:])),
		size:  uint64(s.order.Uint32(b[8:])),
		info:  b[12],
		shndx: s.order.Uint16(b[14:]),
	}
}

// nameBytes returns the NUL-terminated string at off in the string table,
// without copying.
func (s *symtab) nameBytes(off uint32) []byte {
	if int(off) >= len(s.str) {
		return nil
	}
	b := s.str[off:]
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

func (s *symtab) symbol(i int) Symbol {
	e := s.entry(i)
	return Symbol{
		Name:   string(s.nameBytes(e.name)),
		Addr:   e.value,
		Size:   e.size,
		Kind:   kindOf(elf.ST_TYPE(e.info)),
		Global: elf.ST_BIND(e.info) != elf.STB_LOCAL,
	}
}

func kindOf(t elf.SymType) SymbolKind {
	switch t {
	case elf.STT_FUNC, elf.STT_GNU_IFUNC:
		return Func
	case elf.STT_OBJECT, elf.STT_TLS, elf.STT_COMMON:
		return Object
	}
	return Other
}

// named reports whether e is a real, defined, named symbol.
func (e rawSym) named() bool {
	t := elf.ST_TYPE(e.info)
	return e.name != 0 && e.shndx != uint16(elf.SHN_UNDEF) && t != elf.STT_SECTION && t != elf.STT_FILE
}

// addressable reports whether e names a location in an allocated section.
func (e rawSym) addressable() bool {
	return e.named() && e.shndx < uint16(elf.SHN_LORESERVE)
}

// rank orders symbols at the same address: higher is preferred.
func (e rawSym) rank() int {
	r := 0
	if e.size > 0 {
		r += 4
	}
	if elf.ST_BIND(e.info) != elf.STB_LOCAL {
		r += 2
	}
	if k := kindOf(elf.ST_TYPE(e.info)); k != Other {
		r++
	}
	return r
}

// fnv1a hashes a symbol name.
func fnv1a(b []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range b {
		h ^= uint32(c)
		h *= 16777619
	}
	return h
}

// loadSymtab locates .symtab (or .dynsym) and its string table.
func (t *Table) loadSymtab() (*symtab, error) {
	t.symOnce.Do(func() {
		t.syms, t.symErr = t.readSymtab()
	})
	return t.syms, t.symErr
}

func (t *Table) readSymtab() (*symtab, error) {
	var sec *elf.Section
	for _, typ := range []elf.SectionType{elf.SHT_SYMTAB, elf.SHT_DYNSYM} {
		for _, s := range t.elf.Sections {
			if s.Type == typ {
				sec = s
				break
			}
		}
		if sec != nil {
			break
		}
	}
	if sec == nil {
		return nil, fmt.Errorf("symbols: %s has no symbol table", t.path)
	}
	if int(sec.Link) >= len(t.elf.Sections) {
		return nil, fmt.Errorf("symbols: %s: symbol table links to missing section %d", t.path, sec.Link)
	}
	raw, err := t.sectionBytes(sec)
	if err != nil {
		return nil, fmt.Errorf("symbols: %s: %w", t.path, err)
	}
	str, err := t.sectionBytes(t.elf.Sections[sec.Link])
	if err != nil {
		return nil, fmt.Errorf("symbols: %s: %w", t.path, err)
	}
	s := &symtab{raw: raw, str: str, is64: t.elf.Class == elf.ELFCLASS64, order: t.order}
	s.entSize = 16
	if s.is64 {
		s.entSize = 24
	}
	s.n = len(raw) / s.entSize
	return s, nil
}

// buildNameIndex fills s.byName.
func (s *symtab) buildNameIndex() {
	size := 1
	for size < 2*s.n {
		size <<= 1
	}
	tab := make([]uint32, size)
	mask := uint32(size - 1)
	for i := 1; i < s.n; i++ {
		e := s.entry(i)
		if !e.named() {
			continue
		}
		h := fnv1a(s.nameBytes(e.name)) & mask
		for tab[h] != 0 {
			h = (h + 1) & mask
		}
		tab[h] = uint32(i + 1)
	}
	s.byName = tab
}

// buildAddrIndex fills s.byAddr.
func (s *symtab) buildAddrIndex() {
	type ent struct {
		addr uint64
		key  uint32 // rank<<24 | index order, for a total order
		idx  uint32
	}
	ents := make([]ent, 0, s.n)
	for i := 1; i < s.n; i++ {
		e := s.entry(i)
		if e.addressable() {
			ents = append(ents, ent{e.value, uint32(e.rank()), uint32(i)})
		}
	}
	slices.SortFunc(ents, func(a, b ent) int {
		if a.addr != b.addr {
			return cmp.Compare(a.addr, b.addr)
		}
		if a.key != b.key {
			return cmp.Compare(a.key, b.key)
		}
		return cmp.Compare(a.idx, b.idx)
	})
	idx := make([]uint32, len(ents))
	for i, e := range ents {
		idx[i] = e.idx
	}
	s.byAddr = idx
}

// scan calls fn for each symbol index named name until fn returns false,
// by a linear pass over the table (no index needed).
func (s *symtab) scan(name string, fn func(i int) bool) {
	n := uint64(len(name))
	for i := 1; i < s.n; i++ {
		var off uint64
		if s.is64 {
			off = uint64(s.order.Uint32(s.raw[i*24:]))
		} else {
			off = uint64(s.order.Uint32(s.raw[i*16:]))
		}
		if off == 0 || off+n >= uint64(len(s.str)) || s.str[off+n] != 0 || string(s.str[off:off+n]) != name {
			continue
		}
		if s.entry(i).named() && !fn(i) {
			return
		}
	}
}

// find calls fn for each symbol index named name until fn returns false.
func (s *symtab) find(name string, fn func(i int) bool) {
	if len(s.byName) == 0 {
		s.scan(name, fn)
		return
	}
	mask := uint32(len(s.byName) - 1)
	for h := fnv1a([]byte(name)) & mask; s.byName[h] != 0; h = (h + 1) & mask {
		i := int(s.byName[h] - 1)
		if i >= s.n {
			continue
		}
		if string(s.nameBytes(s.entry(i).name)) == name && !fn(i) {
			return
		}
	}
}

// linearLookups is the number of name lookups answered by a linear scan
// before the hash index is built.
const linearLookups = 4

// nameIndex returns the symbol table, with its name index built once
// enough lookups have been made to pay for it.
func (t *Table) nameIndex() (*symtab, error) {
	s, err := t.loadSymtab()
	if err != nil {
		return nil, err
	}
	// A linear scan costs about a tenth of building the hash index, so
	// the first few lookups scan; later ones pay for the index once.
	if t.nameLookups.Add(1) <= linearLookups {
		return s, nil
	}
	t.symIdxOnce.name.Do(func() {
		if s.byName == nil {
			s.buildNameIndex()
		}
	})
	return s, nil
}

// addrIndex returns the symbol table with its address index built.
func (t *Table) addrIndex() (*symtab, error) {
	s, err := t.loadSymtab()
	if err != nil {
		return nil, err
	}
	t.symIdxOnce.addr.Do(func() {
		if s.byAddr == nil {
			s.buildAddrIndex()
		}
	})
	return s, nil
}

// Lookup returns the symbol called name. When several symbols share the
// name, a global one is preferred over a static one, and a function or
// object over an untyped label. An unknown name yields an
// *UnknownSymbolError (matching ErrUnknownSymbol) that suggests close
// names.
func (t *Table) Lookup(name string) (Symbol, error) {
	if err := t.enter(); err != nil {
		return Symbol{}, err
	}
	defer t.mu.RUnlock()
	s, err := t.nameIndex()
	if err != nil {
		return Symbol{}, err
	}
	best, bestRank := -1, -1
	s.find(name, func(i int) bool {
		if r := s.entry(i).rank(); r > bestRank {
			best, bestRank = i, r
		}
		return true
	})
	if best < 0 {
		return Symbol{}, &UnknownSymbolError{Name: name, Suggestions: s.suggest(name, 6)}
	}
	return s.symbol(best), nil
}

// LookupAll returns every symbol called name (static functions of the same
// name in different files, for example), preferred first.
func (t *Table) LookupAll(name string) ([]Symbol, error) {
	if err := t.enter(); err != nil {
		return nil, err
	}
	defer t.mu.RUnlock()
	s, err := t.nameIndex()
	if err != nil {
		return nil, err
	}
	var idx []int
	s.find(name, func(i int) bool { idx = append(idx, i); return true })
	if len(idx) == 0 {
		return nil, &UnknownSymbolError{Name: name, Suggestions: s.suggest(name, 6)}
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		if c := cmp.Compare(s.entry(b).rank(), s.entry(a).rank()); c != 0 {
			return c
		}
		return cmp.Compare(s.entry(a).value, s.entry(b).value)
	})
	out := make([]Symbol, len(idx))
	for k, i := range idx {
		out[k] = s.symbol(i)
	}
	return out, nil
}

// SymbolAt returns the symbol covering addr and addr's offset into it,
// choosing like gdb's `info symbol`: the closest sized symbol at or below
// addr in the same section if it contains addr, else the closest
// zero-sized label.
func (t *Table) SymbolAt(addr uint64) (Symbol, uint64, error) {
	if err := t.enter(); err != nil {
		return Symbol{}, 0, err
	}
	defer t.mu.RUnlock()
	i, err := t.symbolIndexAt(addr)
	if err != nil {
		return Symbol{}, 0, err
	}
	sym := t.syms.symbol(i)
	return sym, addr - sym.Addr, nil
}

// symbolIndexAt implements SymbolAt; the caller holds the read lock.
func (t *Table) symbolIndexAt(addr uint64) (int, error) {
	s, err := t.addrIndex()
	if err != nil {
		return 0, err
	}
	sec := t.sectionForAddr(addr)
	if sec < 0 {
		return 0, fmt.Errorf("%w %#x: outside every allocated section", ErrNoSymbol, addr)
	}
	secStart := t.elf.Sections[sec].Addr
	hi, _ := slices.BinarySearchFunc(s.byAddr, addr+1, func(i uint32, a uint64) int {
		return cmp.Compare(s.entry(int(i)).value, a)
	})
	hi-- // last symbol with value <= addr
	bestZero := -1
	for ; hi >= 0; hi-- {
		e := s.entry(int(s.byAddr[hi]))
		if e.value < secStart {
			hi = -1
			break
		}
		if int(e.shndx) != sec {
			continue
		}
		if e.size == 0 {
			if bestZero < 0 {
				bestZero = hi
			}
			continue
		}
		break
	}
	if hi >= 0 {
		if e := s.entry(int(s.byAddr[hi])); addr-e.value >= e.size {
			hi = -1 // the closest sized symbol ends before addr
		}
	}
	if hi < 0 {
		hi = bestZero
	}
	if hi < 0 {
		return 0, fmt.Errorf("%w %#x (section %s)", ErrNoSymbol, addr, t.elf.Sections[sec].Name)
	}
	return int(s.byAddr[hi]), nil
}

// Symbols calls fn for every named, defined symbol in table order until fn
// returns false. fn must not call Close.
func (t *Table) Symbols(fn func(Symbol) bool) error {
	if err := t.enter(); err != nil {
		return err
	}
	defer t.mu.RUnlock()
	s, err := t.loadSymtab()
	if err != nil {
		return err
	}
	for i := 1; i < s.n; i++ {
		if s.entry(i).named() && !fn(s.symbol(i)) {
			break
		}
	}
	return nil
}

// syscallPrefixes are the wrappers Linux generates around a system call
// body; a name with one prefix often exists with another.
var syscallPrefixes = []string{"__x64_sys_", "__ia32_sys_", "__do_sys_", "__se_sys_", "__sys_", "sys_", "ksys_", "do_", "__"}

// suggest returns up to max existing names close to name, best first.
func (s *symtab) suggest(name string, max int) []string {
	type cand struct {
		name  string
		score int // lower is better
	}
	seen := map[string]bool{name: true}
	var cands []cand
	add := func(n string, score int) {
		if !seen[n] {
			seen[n] = true
			cands = append(cands, cand{n, score})
		}
	}
	exists := func(n string) bool {
		found := false
		s.find(n, func(int) bool { found = true; return false })
		return found
	}
	// Syscall wrapper variants: strip any known prefix, then try all.
	stem := name
	for _, p := range syscallPrefixes {
		if strings.HasPrefix(stem, p) && len(stem) > len(p) {
			stem = stem[len(p):]
			break
		}
	}
	for k, p := range append([]string{""}, syscallPrefixes...) {
		if n := p + stem; exists(n) {
			add(n, k)
		}
	}
	// One pass over all names for clones, prefixes, suffixes and typos.
	lname := strings.ToLower(name)
	for i := 1; i < s.n; i++ {
		e := s.entry(i)
		if !e.named() {
			continue
		}
		b := s.nameBytes(e.name)
		if len(b) == 0 || bytes.Equal(b, []byte(name)) {
			continue
		}
		switch {
		case len(b) > len(name) && string(b[:len(name)]) == name && b[len(name)] == '.':
			add(string(b), 10) // compiler clone: name.isra.0, name.cold, ...
		case len(name) >= 4 && bytes.HasPrefix(b, []byte(name)):
			add(string(b), 20+len(b)-len(name))
		case len(name) >= 4 && bytes.HasSuffix(b, []byte(name)):
			add(string(b), 30+len(b)-len(name))
		case abs(len(b)-len(name)) <= 2 && len(name) >= 3:
			if d := editDistance(strings.ToLower(string(b)), lname, 2); d <= 2 {
				add(string(b), 15+d)
			}
		}
	}
	slices.SortStableFunc(cands, func(a, b cand) int {
		if c := cmp.Compare(a.score, b.score); c != 0 {
			return c
		}
		return cmp.Compare(a.name, b.name)
	})
	var out []string
	for _, c := range cands {
		if len(out) == max {
			break
		}
		out = append(out, c.name)
	}
	return out
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// editDistance returns the Levenshtein distance of a and b, or limit+1 if
// it exceeds limit.
func editDistance(a, b string, limit int) int {
	if abs(len(a)-len(b)) > limit {
		return limit + 1
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c = 1 + min(prev[j-1], prev[j], cur[j-1])
			}
			cur[j] = c
			rowMin = min(rowMin, c)
		}
		if rowMin > limit {
			return limit + 1
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
