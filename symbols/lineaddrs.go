package symbols

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// LineAddrs returns the code locations of source line FILE:LINE, the way
// gdb places a breakpoint on it: the statement rows of that exact line
// or, if the line has none, of the nearest following line that has, one
// location (the lowest address) per function. file matches a unit's file
// name exactly or as a path suffix ("namei.c" matches fs/namei.c and
// fs/ext4/namei.c). Lines of a .c file read that unit only; lines of a
// header read every unit that includes it, which means decoding every
// line table of the image (about a second for a kernel).
func (t *Table) LineAddrs(file string, line int) ([]Location, error) {
	if err := t.enter(); err != nil {
		return nil, err
	}
	defer t.mu.RUnlock()
	if line <= 0 {
		return nil, fmt.Errorf("symbols: %s:%d: %w: line numbers start at 1", file, line, ErrBadExpr)
	}
	d, err := t.dwarf()
	if err != nil {
		return nil, err
	}
	names, err := d.unitNameList()
	if err != nil {
		return nil, err
	}
	var units []*unit
	for _, un := range names {
		if pathMatches(un.name, file) {
			if u, err := d.unitAt(un.off); err == nil {
				units = append(units, u)
			}
		}
	}
	if len(units) == 0 {
		// A header: any unit may include it.
		if units, err = d.allUnitList(); err != nil {
			return nil, err
		}
	}
	type hit struct {
		sf  *subfile
		row lineRow
		cu  *cuLines
	}
	var exact []hit
	var best []hit
	bestLine := int32(0)
	for _, u := range units {
		if !u.hasLines {
			continue
		}
		l, err := t.unitLines(d, u)
		if err != nil {
			continue
		}
		for _, sf := range l.subfiles {
			if !pathMatches(sf.name, file) {
				continue
			}
			for _, r := range sf.rows {
				switch {
				case !r.isStmt || r.line == 0:
				case int(r.line) == line:
					exact = append(exact, hit{sf, r, l})
				case int(r.line) > line && (bestLine == 0 || r.line <= bestLine):
					if r.line < bestLine {
						best = best[:0]
					}
					bestLine = r.line
					best = append(best, hit{sf, r, l})
				}
			}
		}
	}
	hits := exact
	if len(hits) == 0 {
		hits = best
	}
	if len(hits) == 0 {
		return nil, fmt.Errorf("symbols: %w for %s:%d", ErrNoLine, file, line)
	}
	slices.SortFunc(hits, func(a, b hit) int { return cmp.Compare(a.row.pc, b.row.pc) })
	var out []Location
	seen := map[string]bool{}
	for _, h := range hits {
		fn := ""
		if i, err := t.symbolIndexAt(h.row.pc); err == nil {
			fn = string(t.syms.nameBytes(t.syms.entry(i).name))
		}
		key := fn
		if fn == "" {
			key = strconv.FormatUint(h.row.pc, 16)
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, Location{Function: fn, File: h.sf.name, Dir: h.cu.compDir, Line: int(h.row.line), Column: int(h.row.col), Addr: h.row.pc, IsStmt: true})
	}
	return out, nil
}

// pathMatches reports whether name is file or ends with "/"+file.
func pathMatches(name, file string) bool {
	return name == file || strings.HasSuffix(name, "/"+strings.TrimPrefix(file, "/"))
}
