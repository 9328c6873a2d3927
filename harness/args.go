package harness

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
)

// Arg returns the n-th integer or pointer argument (counting from 0) of the
// function the hit stopped at, from the argument registers of the guest
// architecture's calling convention (arch.Arch.ArgRegisters; x86-64: rdi,
// rsi, rdx, rcx, r8, r9) of the hit's vCPU. The values are
// the arguments only at the function's entry, before its code changes them,
// so the guest must still be stopped at this hit.
//
// A syscall's __x64_sys_* wrapper takes a single argument, the user's
// struct pt_regs: read the user's arguments from it (see Target.ReadUint64
// and symbols.Table.Offsetof("pt_regs", "di")).
func (h *Hit) Arg(ctx context.Context, n int) (uint64, error) {
	argRegisters := h.t.arch().ArgRegisters()
	if n < 0 || n >= len(argRegisters) {
		return 0, fmt.Errorf("%w: argument %d of %s: only the first %d arguments are passed in registers", ErrBadInput, n, h.Function, len(argRegisters))
	}
	t := h.t
	if t == nil || t.gdb == nil {
		return 0, &HarnessError{Op: fmt.Sprintf("argument %d of %s", n, h.Function), Err: errors.New("the hit has no debugger attached")}
	}
	op := fmt.Sprintf("argument %d (%s) of %s", n, argRegisters[n], h.Function)
	if t.gdb.Running() {
		return 0, &HarnessError{Op: op, Err: errors.New("the guest has resumed since the hit; arguments can only be read while it is stopped there")}
	}
	if err := t.gdb.SelectThread(ctx, h.CPU+1); err != nil {
		return 0, t.harnessErr(op, err)
	}
	regs, err := t.gdb.ReadAllRegisters(ctx)
	if err != nil {
		return 0, t.harnessErr(op, err)
	}
	if pc := leUint64(regs[t.arch().PC()]); pc != h.PC {
		return 0, &HarnessError{Op: op, Err: fmt.Errorf("the vCPU is no longer at the hit (pc %#x, the hit was at %#x); arguments are only meaningful at the function's entry", pc, h.PC)}
	}
	v, ok := regs[argRegisters[n]]
	if !ok {
		return 0, &HarnessError{Op: op, Err: fmt.Errorf("the stub's register set has no %s", argRegisters[n])}
	}
	return leUint64(v), nil
}

func leUint64(b []byte) uint64 {
	var buf [8]byte
	copy(buf[:], b)
	return binary.LittleEndian.Uint64(buf[:])
}

// ReadMemory reads n bytes of guest memory at the virtual address addr, as
// the vCPU the debugger last selected sees it (the one that hit the last
// breakpoint): kernel addresses, and user addresses of the task running
// there. The guest must be stopped in the debugger. An unmapped address is
// an error naming it.
func (t *Target) ReadMemory(ctx context.Context, addr uint64, n int) ([]byte, error) {
	op := fmt.Sprintf("read %d bytes at %#x", n, addr)
	if n < 0 {
		return nil, fmt.Errorf("%w: %s: negative length", ErrBadInput, op)
	}
	if err := t.ensureDebugger(ctx, op); err != nil {
		return nil, err
	}
	if err := t.checkStopped(op); err != nil {
		return nil, err
	}
	b, err := t.readGuest(ctx, addr, n)
	if err != nil {
		return b, fmt.Errorf("%s: %w", op, err)
	}
	return b, nil
}

// ReadUint64 reads a little-endian 64-bit word (a pointer, a long) at addr;
// see ReadMemory.
func (t *Target) ReadUint64(ctx context.Context, addr uint64) (uint64, error) {
	b, err := t.ReadMemory(ctx, addr, 8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// ReadCString reads a NUL-terminated string of at most maxLen bytes (the NUL
// not counted) at addr; see ReadMemory. It reads page by page, so a string
// that ends just before an unmapped page is read without error. A string
// longer than maxLen is an error that carries its first maxLen bytes.
func (t *Target) ReadCString(ctx context.Context, addr uint64, maxLen int) (string, error) {
	op := fmt.Sprintf("read a string at %#x", addr)
	if maxLen <= 0 {
		return "", fmt.Errorf("%w: %s: maxLen must be positive", ErrBadInput, op)
	}
	if err := t.checkStopped(op); err != nil {
		return "", err
	}
	const page = 4096
	var out []byte
	for a := addr; len(out) <= maxLen; {
		chunk := int(page - a%page)
		chunk = min(chunk, maxLen+1-len(out))
		b, err := t.readGuest(ctx, a, chunk)
		if i := bytes.IndexByte(b, 0); i >= 0 {
			return string(append(out, b[:i]...)), nil
		}
		out = append(out, b...)
		if err != nil {
			return string(out), fmt.Errorf("%s: no NUL in the %d bytes before %#x: %w", op, len(out), a+uint64(len(b)), err)
		}
		a += uint64(chunk)
	}
	return string(out[:maxLen]), fmt.Errorf("%s: no NUL within %d bytes (%q...)", op, maxLen, out[:min(len(out), 64)])
}

// checkStopped refuses reads while the guest runs.
func (t *Target) checkStopped(op string) error {
	if t.gdb == nil {
		return &HarnessError{Op: op, Err: errors.New("no debugger attached")}
	}
	if t.gdb.Running() {
		return &HarnessError{Op: op, Err: errors.New("the guest is running; memory can only be read while it is stopped (at a breakpoint, or after Interrupt)")}
	}
	return nil
}
