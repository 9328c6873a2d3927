package symbols

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
)

// lineHeader is a decoded line-number program header.
type lineHeader struct {
	version       uint16
	dwarf64       bool
	asize         int
	minInstLen    uint8
	maxOpsPerInst uint8
	defaultIsStmt bool
	lineBase      int8
	lineRange     uint8
	opcodeBase    uint8
	stdLens       []uint8
	dirs          [][]byte
	files         []lineFile
	progStart     int // offset of the program in .debug_line
	end           int // end of the unit in .debug_line
}

// lineFile is one entry of the file name table.
type lineFile struct {
	name []byte
	dir  uint64
}

// DW_LNCT content types of DWARF 5 entry formats.
const (
	lnctPath           = 1
	lnctDirectoryIndex = 2
)

// parseLineHeader decodes the line program header at off.
func (d *dwarfData) parseLineHeader(u *unit, off uint64) (*lineHeader, error) {
	if off >= uint64(len(d.line)) {
		return nil, fmt.Errorf(".debug_line: offset %#x out of range", off)
	}
	b := makeBuf(".debug_line", d.line, int(off), d.order)
	h := &lineHeader{asize: u.asize}
	length, dwarf64 := b.unitLength()
	h.dwarf64 = dwarf64
	h.end = b.off + int(length)
	if h.end > len(d.line) || h.end < b.off {
		return nil, fmt.Errorf(".debug_line: unit at %#x overruns the section", off)
	}
	h.version = b.u16()
	if h.version < 2 || h.version > 5 {
		return nil, fmt.Errorf(".debug_line: unit at %#x has unsupported version %d", off, h.version)
	}
	if h.version >= 5 {
		h.asize = int(b.u8())
		b.u8() // segment selector size
	}
	hlen := b.offset(dwarf64)
	h.progStart = b.off + int(hlen)
	h.minInstLen = b.u8()
	h.maxOpsPerInst = 1
	if h.version >= 4 {
		h.maxOpsPerInst = b.u8()
	}
	h.defaultIsStmt = b.u8() != 0
	h.lineBase = int8(b.u8())
	h.lineRange = b.u8()
	h.opcodeBase = b.u8()
	if h.lineRange == 0 {
		return nil, fmt.Errorf(".debug_line: unit at %#x has line_range 0", off)
	}
	if h.maxOpsPerInst == 0 {
		h.maxOpsPerInst = 1
	}
	if h.opcodeBase > 0 {
		h.stdLens = b.bytes(int(h.opcodeBase) - 1)
	}
	if h.version < 5 {
		for b.err == nil {
			s := b.cstr()
			if len(s) == 0 {
				break
			}
			h.dirs = append(h.dirs, s)
		}
		for b.err == nil {
			s := b.cstr()
			if len(s) == 0 {
				break
			}
			f := lineFile{name: s, dir: b.uleb()}
			b.uleb() // mtime
			b.uleb() // length
			h.files = append(h.files, f)
		}
	} else {
		readEntries := func(each func(f lineFile)) {
			nfmt := int(b.u8())
			type pair struct{ ct, form uint64 }
			fmts := make([]pair, 0, nfmt)
			for i := 0; i < nfmt && b.err == nil; i++ {
				fmts = append(fmts, pair{b.uleb(), b.uleb()})
			}
			n := b.uleb()
			for i := uint64(0); i < n && b.err == nil; i++ {
				var f lineFile
				for _, p := range fmts {
					v := field{form: uint16(p.form)}
					d.readValue(u, &b, &v, 0)
					switch p.ct {
					case lnctPath:
						f.name = d.fieldString(u, v)
					case lnctDirectoryIndex:
						f.dir = v.u
					}
				}
				each(f)
			}
		}
		readEntries(func(f lineFile) { h.dirs = append(h.dirs, f.name) })
		readEntries(func(f lineFile) { h.files = append(h.files, f) })
	}
	if b.err != nil {
		return nil, b.err
	}
	if h.progStart > h.end {
		return nil, fmt.Errorf(".debug_line: unit at %#x: header overruns the unit", off)
	}
	return h, nil
}

// fileName returns the file name of file index i as gdb 13 names the
// corresponding symtab, and whether the index is valid.
func (h *lineHeader) fileName(i uint64) (string, bool) {
	idx := int(i)
	if h.version < 5 {
		idx--
	}
	if idx < 0 || idx >= len(h.files) {
		return "", false
	}
	f := h.files[idx]
	name := string(f.name)
	if path.IsAbs(name) {
		return name, true
	}
	di := int(f.dir)
	if h.version < 5 {
		di-- // 0 means the compilation directory: no prefix
	}
	if di < 0 || di >= len(h.dirs) {
		return name, true
	}
	return joinPath(string(h.dirs[di]), name), true
}

// joinPath joins dir and name like gdb's path_join: with one slash, and
// without cleaning "." or ".." elements.
func joinPath(dir, name string) string {
	if dir == "" || strings.HasSuffix(dir, "/") {
		return dir + name
	}
	return dir + "/" + name
}

// lineRow is one row of a gdb-style line table.
type lineRow struct {
	pc     uint64
	line   int32 // 0 ends a sequence
	col    int32
	isStmt bool
}

// subfile is the line table of one source file within a unit.
type subfile struct {
	name string
	rows []lineRow
}

// cuLines is a unit's line information, split by source file and sorted
// the way gdb builds its symtabs.
type cuLines struct {
	unit     *unit
	hdr      *lineHeader
	compDir  string
	subfiles []*subfile // gdb's filetab order: primary file first
}

// lineCache keeps recently decoded line tables.
type lineCache struct {
	mu    sync.Mutex
	max   int
	order []uint64
	m     map[uint64]*cuLines
}

func (c *lineCache) init(max int) { c.max, c.m = max, map[uint64]*cuLines{} }

func (c *lineCache) get(off uint64) *cuLines {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[off]
}

func (c *lineCache) put(off uint64, l *cuLines) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[off]; ok {
		return
	}
	if len(c.order) >= c.max {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
	c.order = append(c.order, off)
	c.m[off] = l
}

// unitLines returns the decoded line table of u.
func (t *Table) unitLines(d *dwarfData, u *unit) (*cuLines, error) {
	if l := t.cache.get(u.off); l != nil {
		return l, nil
	}
	l, err := d.decodeLines(u)
	if err != nil {
		return nil, err
	}
	t.cache.put(u.off, l)
	return l, nil
}

// lineBuilder accumulates subfiles the way gdb's buildsym does.
type lineBuilder struct {
	compDir  string
	subfiles []*subfile // creation order
	byName   map[string]*subfile
	main     *subfile
}

// start returns the subfile called name, creating it if needed. Like
// gdb 13, an absolute name matches a relative subfile name joined to the
// compilation directory.
func (lb *lineBuilder) start(name string) *subfile {
	if sf := lb.byName[name]; sf != nil {
		return sf
	}
	if path.IsAbs(name) && lb.compDir != "" {
		for _, sf := range lb.subfiles {
			if !path.IsAbs(sf.name) && joinPath(lb.compDir, sf.name) == name {
				lb.byName[name] = sf
				return sf
			}
		}
	}
	sf := &subfile{name: name}
	lb.subfiles = append(lb.subfiles, sf)
	lb.byName[name] = sf
	return sf
}

// record adds a row to sf like buildsym_compunit::record_line.
func (sf *subfile) record(line int32, col int32, pc uint64, isStmt bool) {
	if line == 0 {
		var last int32
		had := false
		for n := len(sf.rows); n > 0; n = len(sf.rows) {
			r := sf.rows[n-1]
			last, had = r.line, true
			if r.pc != pc {
				break
			}
			sf.rows = sf.rows[:n-1]
		}
		if !had || last == 0 {
			return // an end marker of an empty sequence
		}
	}
	sf.rows = append(sf.rows, lineRow{pc: pc, line: line, col: col, isStmt: isStmt})
}

// decodeLines runs u's line-number program and builds gdb-style tables.
func (d *dwarfData) decodeLines(u *unit) (*cuLines, error) {
	if !u.hasLines {
		return nil, fmt.Errorf("%w: unit %q has no line table", ErrNoLine, u.name)
	}
	h, err := d.parseLineHeader(u, u.stmtList)
	if err != nil {
		return nil, err
	}
	lb := &lineBuilder{compDir: string(u.compDir), byName: map[string]*subfile{}}
	lb.main = lb.start(string(u.name))

	fileSubfile := map[uint64]*subfile{}
	subfileOf := func(i uint64) *subfile {
		if sf, ok := fileSubfile[i]; ok {
			return sf
		}
		var sf *subfile
		if name, ok := h.fileName(i); ok {
			sf = lb.start(name)
		}
		fileSubfile[i] = sf
		return sf
	}

	b := makeBuf(".debug_line", d.line, h.progStart, d.order)
	b.data = d.line[:h.end]
	for b.off < h.end && b.err == nil {
		// One sequence; the state machine resets for each.
		sm := lineState{h: h, file: 1, line: 1, isStmt: h.defaultIsStmt, recording: true}
		sm.cur = subfileOf(1)
		endSeq := false
		for b.off < h.end && !endSeq && b.err == nil {
			op := b.u8()
			if op >= h.opcodeBase {
				adj := op - h.opcodeBase
				sm.advance(uint64(adj / h.lineRange))
				sm.advanceLine(int64(h.lineBase) + int64(adj%h.lineRange))
				sm.record(false)
				sm.discriminator = 0
				continue
			}
			switch op {
			case 0: // extended
				n := int(b.uleb())
				end := b.off + n
				if n == 0 {
					continue
				}
				switch ext := b.u8(); ext {
				case 1: // DW_LNE_end_sequence
					endSeq = true
				case 2: // DW_LNE_set_address
					addr := b.uint(n - 1)
					if addr == 0 && addr < u.lowPC || addr == ^uint64(0) || addr == ^uint64(0)-1 {
						sm.recording = false // code discarded by the linker
					}
					sm.addr, sm.opIndex = addr, 0
				case 3: // DW_LNE_define_file
					name := b.cstr()
					dir := b.uleb()
					b.uleb()
					b.uleb()
					h.files = append(h.files, lineFile{name: name, dir: dir})
				case 4: // DW_LNE_set_discriminator
					sm.setDiscriminator(b.uleb())
				}
				if b.err == nil {
					b.off = end
				}
			case 1: // DW_LNS_copy
				sm.record(false)
				sm.discriminator = 0
			case 2: // DW_LNS_advance_pc
				sm.advance(b.uleb())
			case 3: // DW_LNS_advance_line
				sm.advanceLine(b.sleb())
			case 4: // DW_LNS_set_file
				sm.file = b.uleb()
				sf := subfileOf(sm.file)
				if sf != nil && sm.cur != nil {
					// gdb 13 (not later gdbs) takes the file being left
					// as the last one recorded, even if its last row was
					// ignored; the next row then ends it.
					sm.lastSubfile = sm.cur
				}
				sm.lineHasNonZeroDiscriminator = sm.discriminator != 0
				sm.cur = sf // nil: no rows until a valid file
			case 5: // DW_LNS_set_column
				sm.col = int32(b.uleb())
			case 6: // DW_LNS_negate_stmt
				sm.isStmt = !sm.isStmt
			case 7: // DW_LNS_set_basic_block
			case 8: // DW_LNS_const_add_pc
				sm.advance(uint64((255 - h.opcodeBase) / h.lineRange))
			case 9: // DW_LNS_fixed_advance_pc
				sm.addr += uint64(b.u16())
				sm.opIndex = 0
			case 10, 11: // prologue_end, epilogue_begin
			case 12: // DW_LNS_set_isa
				b.uleb()
			default:
				if int(op)-1 < len(h.stdLens) {
					for i := 0; i < int(h.stdLens[op-1]); i++ {
						b.uleb()
					}
				}
			}
		}
		sm.record(true)
	}
	if b.err != nil {
		return nil, b.err
	}

	// gdb sorts each table by address, end markers first at equal
	// addresses, keeping the order of the rest.
	for _, sf := range lb.subfiles {
		slices.SortStableFunc(sf.rows, func(a, b lineRow) int {
			switch {
			case a.pc < b.pc:
				return -1
			case a.pc > b.pc:
				return 1
			case (a.line == 0) != (b.line == 0):
				if a.line == 0 {
					return -1
				}
				return 1
			}
			return 0
		})
	}
	// Filetab order: the primary file first, then the files of the line
	// header in table order, then any other subfile.
	l := &cuLines{unit: u, hdr: h, compDir: string(u.compDir)}
	seen := map[*subfile]bool{}
	addSF := func(sf *subfile) {
		if sf != nil && !seen[sf] {
			seen[sf] = true
			l.subfiles = append(l.subfiles, sf)
		}
	}
	addSF(lb.main)
	first := uint64(1)
	if h.version >= 5 {
		first = 0
	}
	for i := first; i < first+uint64(len(h.files)); i++ {
		addSF(subfileOf(i))
	}
	for _, sf := range lb.subfiles {
		addSF(sf)
	}
	return l, nil
}

// lineState is gdb's lnp_state_machine for one sequence.
type lineState struct {
	h             *lineHeader
	addr          uint64
	opIndex       uint64
	file          uint64
	line          int64
	col           int32
	isStmt        bool
	discriminator uint64
	cur           *subfile

	recording                   bool
	lastSubfile                 *subfile
	lastLine                    int64
	lastAddr                    uint64
	stmtAtAddr                  bool
	lineHasNonZeroDiscriminator bool
}

func (s *lineState) advance(opAdv uint64) {
	m := uint64(s.h.maxOpsPerInst)
	s.addr += (s.opIndex + opAdv) / m * uint64(s.h.minInstLen)
	s.opIndex = (s.opIndex + opAdv) % m
}

func (s *lineState) advanceLine(delta int64) {
	s.line += delta
	if delta != 0 {
		s.lineHasNonZeroDiscriminator = s.discriminator != 0
	}
}

func (s *lineState) setDiscriminator(v uint64) {
	s.discriminator = v
	if v != 0 {
		s.lineHasNonZeroDiscriminator = true
	}
}

// record is lnp_state_machine::record_line.
func (s *lineState) record(endSeq bool) {
	if s.cur != nil && (s.opIndex == 0 || endSeq) {
		fileChanged := s.lastSubfile != s.cur
		ignore := (fileChanged && !endSeq && s.lastAddr == s.addr && !s.isStmt && s.stmtAtAddr) ||
			(!endSeq && s.line == 0)
		if (fileChanged && !ignore) || endSeq {
			s.finish()
		}
		if !endSeq && !ignore {
			if s.recordP() {
				s.lastSubfile = s.cur
				if s.recording {
					s.lastSubfile.record(int32(s.line), s.col, s.addr, s.isStmt)
				}
				s.lastLine = s.line
			}
		}
	}
	if s.lastAddr != s.addr {
		s.stmtAtAddr = false
		s.lastAddr = s.addr
	}
	s.stmtAtAddr = s.stmtAtAddr || s.isStmt
}

// finish ends the current line with an end marker in the last subfile.
func (s *lineState) finish() {
	if s.lastSubfile == nil || !s.recording {
		return
	}
	s.lastSubfile.record(0, 0, s.addr, true)
}

// recordP is lnp_state_machine::record_line_p.
func (s *lineState) recordP() bool {
	if s.cur != s.lastSubfile {
		return true
	}
	if s.line != s.lastLine {
		return true
	}
	return !s.lineHasNonZeroDiscriminator
}

// lineResult is gdb's symtab_and_line for an address.
type lineResult struct {
	sf     *subfile
	row    lineRow
	end    uint64
	hasEnd bool
}

// find is gdb's find_pc_sect_line over the unit's subfiles.
func (l *cuLines) find(pc uint64) (lineResult, bool) {
	var best *lineRow
	var bestSF *subfile
	var bestEnd uint64
	var alt *lineRow
	for _, sf := range l.subfiles {
		rows := sf.rows
		if len(rows) == 0 {
			continue
		}
		if rows[0].pc > pc && (alt == nil || rows[0].pc < alt.pc) {
			alt = &rows[0]
		}
		// upper_bound: first row with pc > target.
		item, _ := slices.BinarySearchFunc(rows, pc+1, func(r lineRow, t uint64) int {
			if r.pc < t {
				return -1
			}
			if r.pc > t {
				return 1
			}
			return 0
		})
		var prev *lineRow
		if item > 0 {
			// gdb 14 and later also skip non-statement rows of the same
			// line here, which lengthens the reported range; gdb 13,
			// the reference, does not.
			prev = &rows[item-1]
		}
		if prev != nil && prev.line != 0 && (best == nil || prev.pc > best.pc) {
			best, bestSF = prev, sf
			if !best.isStmt {
				k := item - 1
				for k > 0 && rows[k-1].pc == rows[k].pc && rows[k-1].line != 0 && !rows[k].isStmt {
					k--
				}
				if rows[k].isStmt {
					best = &rows[k]
				}
			}
			if bestEnd <= best.pc {
				bestEnd = 0
			}
		}
		if best != nil && item < len(rows) && rows[item].pc > best.pc && (bestEnd == 0 || bestEnd > rows[item].pc) {
			bestEnd = rows[item].pc
		}
	}
	if best == nil || best.line == 0 {
		return lineResult{}, false
	}
	r := lineResult{sf: bestSF, row: *best}
	switch {
	case bestEnd != 0 && (alt == nil || bestEnd < alt.pc):
		r.end, r.hasEnd = bestEnd, true
	case alt != nil:
		r.end, r.hasEnd = alt.pc, true
	}
	return r, true
}
