package harness

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/kspec/kspec/arch"
	"github.com/kspec/kspec/symbols"
)

// Backtraces: the hit's registers, cached stack reads, the DWARF unwinder
// and stepping over a leaf function without call-frame information (how the
// architecture says, arch.Arch.LeafReturn).

// generalRegisters reads cpu's general registers with one `g` request and
// returns them by DWARF number (the architecture's numbering).
func (t *Target) generalRegisters(ctx context.Context, cpu int) (map[int]uint64, error) {
	if err := t.gdb.SelectThread(ctx, cpu+1); err != nil {
		return nil, fmt.Errorf("select cpu %d: %w", cpu, err)
	}
	raw, err := t.gdb.ReadAllRegisters(ctx)
	if err != nil {
		return nil, fmt.Errorf("cpu %d registers: %w", cpu, err)
	}
	regs := map[int]uint64{}
	for name, num := range t.arch().DWARFRegisters() {
		if b, ok := raw[name]; ok && len(b) == 8 {
			regs[num] = binary.LittleEndian.Uint64(b)
		}
	}
	return regs, nil
}

// blockReader reads guest memory through the debugger in aligned blocks
// and keeps them, so that an unwinder's many small stack reads cost a few
// round trips. Blocks never cross a page, so a block next to an unmapped
// page can still be read.
type blockReader struct {
	ctx    context.Context
	t      *Target
	blocks map[uint64][]byte
}

const readBlock = 1024

func (r *blockReader) read(addr uint64, n int) ([]byte, error) {
	if n <= 0 {
		return nil, nil
	}
	out := make([]byte, 0, n)
	for len(out) < n {
		a := addr + uint64(len(out))
		base := a &^ (readBlock - 1)
		blk, ok := r.blocks[base]
		if !ok {
			var err error
			blk, err = r.t.readGuest(r.ctx, base, readBlock)
			if err != nil || len(blk) < readBlock {
				// Fall back to exactly what was asked (the block may
				// reach into unmapped memory).
				return r.t.readGuest(r.ctx, addr, n)
			}
			if r.blocks == nil {
				r.blocks = map[uint64][]byte{}
			}
			r.blocks[base] = blk
		}
		off := int(a - base)
		take := min(n-len(out), readBlock-off)
		out = append(out, blk[off:off+take]...)
	}
	return out, nil
}

// Backtrace unwinds the kernel stack of the hit's vCPU from its live
// registers, using the kernel's .debug_frame call-frame information, and
// names inlined calls where DWARF records them (__do_sys_mkdir inlined into
// __x64_sys_mkdir, as gdb's bt shows it). It ends at the user/kernel
// boundary; a leaf assembler function without call-frame information
// (memcpy, memset) is stepped over by taking its return address from the
// top of the stack, as gdb's heuristics do. The guest must still be stopped
// at the hit; the result is kept, so later calls (and matchers) return it
// even after the guest moved on.
func (h *Hit) Backtrace(ctx context.Context) ([]Frame, error) {
	if h.t == nil {
		return nil, errNoTarget
	}
	if frames, ok, _, _ := h.t.insp.cached(h); ok {
		return frames, nil
	}
	frames, err := h.t.backtrace(ctx, h)
	if err != nil {
		return nil, h.t.harnessErr("backtrace at "+h.String(), err)
	}
	h.t.insp.remember(h, frames, nil)
	return frames, nil
}

func (t *Target) backtrace(ctx context.Context, h *Hit) ([]Frame, error) {
	if err := t.stoppedAt(ctx, h); err != nil {
		return nil, err
	}
	regs, err := t.generalRegisters(ctx, h.CPU)
	if err != nil {
		return nil, err
	}
	mem := &blockReader{ctx: ctx, t: t}
	a := t.arch()
	entry := func(fn string) bool { return t.os.EntryFunction(fn, a) }
	return unwind(a, entry, t.syms, h.PC, regs, mem.read)
}

// unwind runs the DWARF unwinder from pc and regs, stepping over one leaf
// function without call-frame information at the top of the stack. entry
// reports whether a function is a kernel entry point (the OS's).
func unwind(a arch.Arch, entry func(fn string) bool, syms *symbols.Table, pc uint64, regs map[int]uint64, read func(uint64, int) ([]byte, error)) ([]Frame, error) {
	regFn := func(r int) (uint64, bool) { v, ok := regs[r]; return v, ok }
	sf, err := syms.Unwind(pc, regFn, read)
	if err != nil {
		return nil, err
	}
	if len(sf) > 0 && isNoCFI(sf) {
		if more, ok := unwindLeaf(a, syms, regs, read); ok {
			sf[len(sf)-1].StopReason = ""
			sf = append(sf, more...)
		}
	}
	frames := sf
	// The kernel's entry code is assembler without call-frame information;
	// below it are the user registers (pt_regs), not a caller. Ending there
	// is the user/kernel boundary, not a failure.
	if last := &frames[len(frames)-1]; len(sf) > 1 && entry(last.Function) && strings.Contains(last.StopReason, symbols.ErrNoCFI.Error()) {
		last.StopReason = ""
	}
	return frames, nil
}

// isNoCFI reports whether the unwinder stopped in the innermost physical
// frame for want of call-frame information.
func isNoCFI(sf []symbols.Frame) bool {
	last := sf[len(sf)-1]
	return last.PC == sf[0].PC && strings.Contains(last.StopReason, symbols.ErrNoCFI.Error())
}

// unwindLeaf treats the innermost frame as a leaf that has set up no frame
// (the architecture says where its return address is). The guess is
// accepted only if the return address follows a call instruction in kernel
// text.
func unwindLeaf(a arch.Arch, syms *symbols.Table, regs map[int]uint64, read func(uint64, int) ([]byte, error)) ([]symbols.Frame, bool) {
	ret, caller, ok := a.LeafReturn(regs, read)
	if !ok {
		return nil, false
	}
	ret = a.CodeAddress(ret)
	if ret < a.KernelBase() {
		return nil, false
	}
	if _, _, err := syms.SymbolAt(ret); err != nil {
		return nil, false
	}
	n := a.CallWindow()
	code, err := read(ret-uint64(n), n)
	if err != nil || len(code) < n || !a.FollowsCall(code) {
		return nil, false
	}
	caller[a.DWARFPC()] = ret
	regFn := func(r int) (uint64, bool) { v, ok := caller[r]; return v, ok }
	sf, err := syms.Unwind(ret, regFn, read)
	if err != nil || len(sf) == 0 {
		return nil, false
	}
	// Unwind took ret for a stop address; the caller's position is the call
	// instruction before it, as for every other caller frame.
	n = 0
	for n < len(sf) && sf[n].PC == ret {
		n++
	}
	if inl, err := syms.InlinedAt(ret - 1); err == nil && len(inl) > 0 {
		fixed := make([]symbols.Frame, 0, len(sf)-n+len(inl))
		for _, f := range inl {
			fixed = append(fixed, symbols.Frame{PC: ret, CFA: sf[n-1].CFA, Function: f.Function, File: f.File, Line: f.Line, Column: f.Column, Inlined: f.Inlined})
		}
		fixed[len(fixed)-1].StopReason = sf[n-1].StopReason
		sf = append(fixed, sf[n:]...)
	}
	return sf, true
}
