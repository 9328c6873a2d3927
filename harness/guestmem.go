package harness

import (
	"context"
	"errors"
	"fmt"

	"github.com/kspec/kspec/arch"
	"github.com/kspec/kspec/rsp"
)

// readGuest reads guest memory at a virtual address through the gdbstub,
// which translates it with the regime and permissions of the vCPU the
// debugger has selected. Where those cannot see the address although the
// page tables map it (an arm64 vCPU stopped in EL0 with E0PD faults on
// every kernel address; one stopped in the kernel with PAN set, on every
// user address), an address the stub refused is translated by walking the
// page tables (arch.PageWalker) and read physically. Every harness read of
// guest memory goes through here.
func (t *Target) readGuest(ctx context.Context, addr uint64, n int) ([]byte, error) {
	b, err := t.gdb.ReadMemory(ctx, addr, n)
	var re *rsp.RemoteError
	if err == nil || !errors.As(err, &re) {
		return b, err
	}
	a := t.arch()
	walker, ok := a.(arch.PageWalker)
	if !ok {
		return b, err
	}
	pb, perr := t.readPhysical(ctx, walker, addr, n)
	if perr != nil {
		return b, fmt.Errorf("%w (nor through the page tables: %w)", err, perr)
	}
	return pb, nil
}

// readPhysical reads n bytes at the virtual address addr page by page,
// translating each page with walker.
func (t *Target) readPhysical(ctx context.Context, walker arch.PageWalker, addr uint64, n int) ([]byte, error) {
	regs := map[string]uint64{}
	reg := func(name string) (uint64, error) {
		if v, ok := regs[name]; ok {
			return v, nil
		}
		v, err := t.gdb.ReadRegister(ctx, name)
		if err != nil {
			return 0, err
		}
		regs[name] = v
		return v, nil
	}
	phys := func(pa uint64, n int) ([]byte, error) { return t.gdb.ReadPhysicalMemory(ctx, pa, n) }
	const page = 4096
	out := make([]byte, 0, n)
	for len(out) < n {
		va := addr + uint64(len(out))
		pa, err := walker.Translate(va, reg, phys)
		if err != nil {
			return out, err
		}
		chunk := min(n-len(out), int(page-va%page))
		b, err := phys(pa, chunk)
		out = append(out, b...)
		if err != nil {
			return out, fmt.Errorf("physical %#x (virtual %#x): %w", pa, va, err)
		}
	}
	return out, nil
}
