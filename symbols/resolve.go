package symbols

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Resolution is the answer to Resolve.
type Resolution struct {
	// Addr is the resolved address.
	Addr uint64
	// Symbol is the symbol containing Addr and Offset is Addr's offset
	// into it (zero Symbol if none).
	Symbol Symbol
	Offset uint64
	// Location is the source line at Addr; HasLine is false if there is
	// no line information.
	Location Location
	HasLine  bool
}

// String formats the resolution like "0xffffffff813632a0 <do_mkdirat> at fs/namei.c:4169".
func (r Resolution) String() string {
	s := fmt.Sprintf("%#x", r.Addr)
	if r.Symbol.Name != "" {
		if r.Offset == 0 {
			s += " <" + r.Symbol.Name + ">"
		} else {
			s += fmt.Sprintf(" <%s+%d>", r.Symbol.Name, r.Offset)
		}
	}
	if r.HasLine {
		s += " at " + r.Location.String()
	}
	return s
}

// Resolve resolves a symbol name, NAME+OFFSET, an address (0x-prefixed
// hex, optionally after gdb's '*') or FILE:LINE (the first location
// LineAddrs gives) to its symbol and source line. It backs `kspec sym`.
func (t *Table) Resolve(expr string) (Resolution, error) {
	expr = strings.TrimSpace(expr)
	if expr == "" {
		return Resolution{}, errors.New("symbols: empty expression")
	}
	var r Resolution
	a := strings.TrimPrefix(expr, "*")
	if file, lineStr, ok := strings.Cut(a, ":"); ok {
		line, err := strconv.Atoi(strings.TrimSpace(lineStr))
		if err != nil {
			return Resolution{}, fmt.Errorf("symbols: resolve %q: %w: want FILE:LINE", expr, ErrBadExpr)
		}
		locs, err := t.LineAddrs(strings.TrimSpace(file), line)
		if err != nil {
			return Resolution{}, fmt.Errorf("symbols: resolve %q: %w", expr, err)
		}
		a = fmt.Sprintf("%#x", locs[0].Addr)
	}
	if addr, ok := parseAddr(a); ok {
		r.Addr = addr
		if sym, off, err := t.SymbolAt(addr); err == nil {
			r.Symbol, r.Offset = sym, off
		}
	} else {
		name, offStr, hasOff := strings.Cut(a, "+")
		name = strings.TrimSpace(name)
		sym, err := t.Lookup(name)
		if err != nil {
			return Resolution{}, fmt.Errorf("symbols: resolve %q: %w", expr, err)
		}
		r.Symbol, r.Addr = sym, sym.Addr
		if hasOff {
			off, err := strconv.ParseUint(strings.TrimSpace(offStr), 0, 64)
			if err != nil {
				return Resolution{}, fmt.Errorf("symbols: resolve %q: bad offset: %w", expr, err)
			}
			r.Offset, r.Addr = off, sym.Addr+off
		}
	}
	loc, err := t.LineAt(r.Addr)
	switch {
	case err == nil:
		r.Location, r.HasLine = loc, true
	case errors.Is(err, ErrNoLine) || errors.Is(err, ErrNoDWARF):
	default:
		return r, err
	}
	if r.Symbol.Name != "" {
		r.Location.Function = r.Symbol.Name
	}
	return r, nil
}

// parseAddr parses a 0x-prefixed hexadecimal address.
func parseAddr(s string) (uint64, bool) {
	h, ok := strings.CutPrefix(strings.ToLower(s), "0x")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseUint(h, 16, 64)
	return v, err == nil
}
