package symbols

import (
	"errors"
	"fmt"

	"github.com/kspec/kspec/arch"
)

// maxFrames bounds the physical frames Unwind follows.
const maxFrames = 128

// RegSet holds register values by DWARF register number (the numbering of
// the kernel's architecture: arch.Arch.DWARFRegisters).
type RegSet struct {
	val   [numRegs]uint64
	valid uint64
}

// Get returns register r and whether it is known.
func (r *RegSet) Get(reg int) (uint64, bool) {
	if reg < 0 || reg >= numRegs || r.valid&(1<<reg) == 0 {
		return 0, false
	}
	return r.val[reg], true
}

// Set stores register reg.
func (r *RegSet) Set(reg int, v uint64) {
	if reg >= 0 && reg < numRegs {
		r.val[reg], r.valid = v, r.valid|1<<reg
	}
}

func (r *RegSet) clear(reg int) {
	if reg >= 0 && reg < numRegs {
		r.valid &^= 1 << reg
	}
}

// Frame is one frame of a backtrace, innermost first. A physical frame
// with inlined calls yields several Frames with the same PC, all but the
// last marked Inlined, as in gdb's bt.
type Frame struct {
	// PC is the frame's program counter: the stop address for the
	// innermost frame, the return address for its callers.
	PC uint64
	// CFA is the canonical frame address of the physical frame (the
	// caller's stack pointer), 0 if it could not be computed.
	CFA uint64
	// Function, File, Line and Column describe the source position;
	// for callers they come from PC-1, the call instruction.
	Function string
	File     string
	Line     int
	Column   int
	// Inlined is true when Function was inlined into the next frame.
	Inlined bool
	// StopReason is set on the last frame when unwinding ended before
	// reaching user space or the end of the stack (no call-frame
	// information, unreadable memory, a loop).
	StopReason string
}

// String formats the frame like a line of gdb's bt.
func (f Frame) String() string {
	s := fmt.Sprintf("%#x in %s", f.PC, f.Function)
	if f.File != "" {
		s += fmt.Sprintf(" at %s:%d", f.File, f.Line)
	}
	if f.Inlined {
		s += " [inlined]"
	}
	return s
}

// frameRegs describes the registers the unwinder needs.
type frameRegs struct {
	sp       int    // DWARF number of the stack pointer
	pc       int    // DWARF number of the program counter
	boundary uint64 // lowest kernel address (0: no boundary)
	// code turns a saved return address into a code address (arm64:
	// strips its pointer-authentication code); nil: as is.
	code func(uint64) uint64
}

// frameRegs returns the unwinder's registers of the file's architecture
// (package arch, found by the ELF machine).
func (t *Table) frameRegs() (frameRegs, error) {
	a, err := arch.ForELF(t.elf.Machine)
	if err != nil {
		return frameRegs{}, fmt.Errorf("symbols: unwind %s: %w", t.path, err)
	}
	return frameRegs{sp: a.DWARFSP(), pc: a.DWARFPC(), boundary: a.KernelBase(), code: a.CodeAddress}, nil
}

// Unwind produces the backtrace of a stopped kernel thread. pc is the
// stop address; regs returns the stopped frame's registers by DWARF
// number; readMem reads target memory (the stack). Unwinding uses the
// .debug_frame call-frame information and expands inlined calls from
// DW_TAG_inlined_subroutine. It stops when a return address is below the
// user/kernel boundary (arch.Arch.KernelBase), at the end of the
// stack, or when a frame cannot be unwound; the last frame's StopReason
// then says why.
func (t *Table) Unwind(pc uint64, regs func(dwarfReg int) (uint64, bool), readMem func(addr uint64, n int) ([]byte, error)) ([]Frame, error) {
	if err := t.enter(); err != nil {
		return nil, err
	}
	defer t.mu.RUnlock()
	a, err := t.frameRegs()
	if err != nil {
		return nil, err
	}
	var cur RegSet
	for r := range numRegs {
		if regs == nil {
			break
		}
		if v, ok := regs(r); ok {
			cur.Set(r, v)
		}
	}
	cur.Set(a.pc, pc)
	var frames []Frame
	var prevCFA uint64
	for depth := 0; depth < maxFrames; depth++ {
		lookup := pc
		if depth > 0 {
			lookup = pc - 1 // the call instruction, not the return address
		}
		inl, err := t.inlinedAt(lookup)
		if err != nil {
			inl = []InlinedFrame{{}}
		}
		first := len(frames)
		for _, f := range inl {
			frames = append(frames, Frame{PC: pc, Function: f.Function, File: f.File, Line: f.Line, Column: f.Column, Inlined: f.Inlined})
		}
		caller, cfa, err := t.unwindStep(lookup, &cur, readMem, a)
		if err != nil {
			frames[len(frames)-1].StopReason = err.Error()
			break
		}
		for i := first; i < len(frames); i++ {
			frames[i].CFA = cfa
		}
		next, ok := caller.Get(a.pc)
		switch {
		case !ok || next == 0:
			return frames, nil // end of the stack
		case a.boundary != 0 && pc >= a.boundary && next < a.boundary:
			return frames, nil // returns to user space
		case depth > 0 && cfa <= prevCFA:
			frames[len(frames)-1].StopReason = fmt.Sprintf("frame at CFA %#x does not advance past %#x (corrupt stack?)", cfa, prevCFA)
			return frames, nil
		}
		prevCFA, cur, pc = cfa, caller, next
		if depth == maxFrames-1 {
			frames[len(frames)-1].StopReason = fmt.Sprintf("more than %d frames", maxFrames)
		}
	}
	return frames, nil
}

// UnwindStep computes the caller's registers from the registers of a
// frame stopped at pc (for callers, pass the return address minus one).
// It returns the caller's registers, in which the program counter holds
// the return address, and the frame's CFA.
func (t *Table) UnwindStep(pc uint64, regs RegSet, readMem func(addr uint64, n int) ([]byte, error)) (RegSet, uint64, error) {
	if err := t.enter(); err != nil {
		return RegSet{}, 0, err
	}
	defer t.mu.RUnlock()
	a, err := t.frameRegs()
	if err != nil {
		return RegSet{}, 0, err
	}
	return t.unwindStep(pc, &regs, readMem, a)
}

func (t *Table) unwindStep(pc uint64, cur *RegSet, readMem func(uint64, int) ([]byte, error), a frameRegs) (RegSet, uint64, error) {
	f, err := t.findFDE(pc)
	if err != nil {
		return RegSet{}, 0, err
	}
	row, err := f.rowFor(pc, t.order)
	if err != nil {
		return RegSet{}, 0, fmt.Errorf("symbols: CFI for %#x: %w", pc, err)
	}
	ctx := exprContext{
		reg:   func(r uint64) (uint64, bool) { return cur.Get(int(r)) },
		mem:   readMem,
		order: t.order,
		asize: f.cie.asize,
	}
	var cfa uint64
	if row.cfa.expr != nil {
		if cfa, err = evalExpr(row.cfa.expr, ctx); err != nil {
			return RegSet{}, 0, fmt.Errorf("symbols: CFA of %#x: %w", pc, err)
		}
	} else {
		base, ok := cur.Get(int(row.cfa.reg))
		if !ok {
			return RegSet{}, 0, fmt.Errorf("symbols: CFA of %#x needs register %d, which is unknown", pc, row.cfa.reg)
		}
		cfa = base + uint64(row.cfa.off)
	}
	read := func(addr uint64) (uint64, error) {
		if readMem == nil {
			return 0, errors.New("no memory reader")
		}
		b, err := readMem(addr, f.cie.asize)
		if err != nil {
			return 0, err
		}
		if len(b) < f.cie.asize {
			return 0, fmt.Errorf("short read at %#x", addr)
		}
		if f.cie.asize == 4 {
			return uint64(t.order.Uint32(b)), nil
		}
		return t.order.Uint64(b), nil
	}
	caller := *cur
	for r := range numRegs {
		rule := row.regs[r]
		var v uint64
		switch rule.kind {
		case ruleSame:
			continue
		case ruleUndefined:
			caller.clear(r)
			continue
		case ruleOffset:
			v, err = read(cfa + uint64(rule.off))
		case ruleValOffset:
			v = cfa + uint64(rule.off)
		case ruleRegister:
			var ok bool
			if v, ok = cur.Get(int(rule.reg)); !ok {
				caller.clear(r)
				continue
			}
		case ruleExpr, ruleValExpr:
			c := ctx
			c.initial = []uint64{cfa}
			v, err = evalExpr(rule.expr, c)
			if err == nil && rule.kind == ruleExpr {
				v, err = read(v)
			}
		}
		if err != nil {
			return RegSet{}, 0, fmt.Errorf("symbols: register %d of the caller of %#x: %w", r, pc, err)
		}
		caller.Set(r, v)
	}
	// The caller's stack pointer is the CFA; its pc is the return address.
	caller.Set(a.sp, cfa)
	if ra, ok := caller.Get(int(f.cie.raReg)); ok {
		if a.code != nil {
			ra = a.code(ra)
		}
		caller.Set(a.pc, ra)
	} else {
		caller.clear(a.pc)
	}
	return caller, cfa, nil
}
