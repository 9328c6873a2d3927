// Package kerneltest provides a fake stopped guest for the tests of the OS
// packages under kernel/: DWARF-shaped symbol answers, sparse memory and
// registers.
package kerneltest

import (
	"encoding/binary"
	"fmt"

	"github.com/kspec/kspec/arch"
	"github.com/kspec/kspec/kernel"
	"github.com/kspec/kspec/symbols"
)

var _ kernel.Env = (*Env)(nil)

// Env is a stopped guest made of DWARF-shaped answers (a kernel.Env): what
// Expr and Offsetof would say for the kernel's types, a sparse memory map
// and per-CPU registers, on an x86_64 CPU unless CPU is set.
type Env struct {
	Exprs   map[string]symbols.Value // "current_task" -> value
	Members map[string]symbols.Value // "struct thread.td_proc" -> offset in Addr
	Mem     map[uint64][]byte        // region start -> bytes
	Regs    map[string]uint64        // "0:gs_base" -> value
	Reads   []string                 // every Read, as "addr/n"
	CPU     arch.Arch                // nil: arch.Default()
	Rel     string                   // what Release answers
}

// NewEnv returns an empty Env.
func NewEnv() *Env {
	return &Env{Exprs: map[string]symbols.Value{}, Members: map[string]symbols.Value{}, Mem: map[uint64][]byte{}, Regs: map[string]uint64{}}
}

// Expr answers from Exprs.
func (f *Env) Expr(e string) (symbols.Value, error) {
	if v, ok := f.Exprs[e]; ok {
		return v, nil
	}
	return symbols.Value{}, fmt.Errorf("symbols: expression %q: %w", e, symbols.ErrUnknownSymbol)
}

// Offsetof answers from Members.
func (f *Env) Offsetof(typ, m string) (symbols.Value, error) {
	if v, ok := f.Members[typ+"."+m]; ok {
		return v, nil
	}
	return symbols.Value{}, fmt.Errorf("%s has no member %q: %w", typ, m, symbols.ErrBadExpr)
}

// Read answers from Mem; an address outside it fails like an unmapped one.
func (f *Env) Read(addr uint64, n int) ([]byte, error) {
	f.Reads = append(f.Reads, fmt.Sprintf("%#x/%d", addr, n))
	for start, b := range f.Mem {
		if addr >= start && addr+uint64(n) <= start+uint64(len(b)) {
			return append([]byte(nil), b[addr-start:addr-start+uint64(n)]...), nil
		}
	}
	return nil, fmt.Errorf("rsp: m%x,%x: E14", addr, n)
}

// Reg answers from Regs.
func (f *Env) Reg(cpu int, name string) (uint64, error) {
	if v, ok := f.Regs[fmt.Sprintf("%d:%s", cpu, name)]; ok {
		return v, nil
	}
	return 0, fmt.Errorf("cpu %d register %s: no such register", cpu, name)
}

// Put writes a little-endian integer of size bytes into a fresh region.
func (f *Env) Put(addr uint64, size int, v uint64) {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, v)
	f.Mem[addr] = b[:size]
}

// PutString writes s, NUL-padded to size bytes, into a fresh region.
func (f *Env) PutString(addr uint64, size int, s string) {
	b := make([]byte, size)
	copy(b, s)
	f.Mem[addr] = b
}

// Member records typ's member name at offset off.
func (f *Env) Member(typ, name string, off, size uint64, typeName string) {
	f.Members[typ+"."+name] = symbols.Value{Expr: fmt.Sprintf("offsetof(%s, %s)", typ, name), Addr: off, Size: size, TypeName: typeName}
}

// Release returns Rel.
func (f *Env) Release() string { return f.Rel }

// Arch returns CPU, or arch.Default().
func (f *Env) Arch() arch.Arch {
	if f.CPU == nil {
		return arch.Default()
	}
	return f.CPU
}
