package harness

import (
	"context"
	"errors"
	"fmt"

	"github.com/kspec/kspec/kernel"
	"github.com/kspec/kspec/rsp"
	"github.com/kspec/kspec/symbols"
)

// VerifySymbols checks that syms is the symbol file of the kernel running
// in the guest, by reading the kernel's memory the way the guest's OS
// package says (kernel.OS.VerifyRunning; Linux: linux_banner and the GNU
// build-id). Boot runs it once the guest is logged in, so a vmlinux of
// another kernel is refused even when no bzImage was there to compare
// before boot (a guest booted from a disk image).
//
// A running guest is stopped in the debugger for the reads and resumed;
// a stopped one stays stopped. A mismatch, or an address that is not
// mapped (the kernel was relocated by KASLR, or the symbols are of another
// kernel), is an error wrapping ErrBadInput that quotes both sides and
// says how to fix it. OSes that cannot tell are not checked (nil).
func (t *Target) VerifySymbols(ctx context.Context, syms *symbols.Table) error {
	if t.gdb == nil || syms == nil {
		return &HarnessError{Op: "verify the symbols against the running kernel", Err: errors.New("no debugger attached (Options.NoDebugger) or no symbols")}
	}
	const op = "read the running kernel's memory to verify its symbols"
	var mismatch error
	err := t.withStopped(ctx, func() error {
		var lost error // the connection failed (not "unmapped")
		read := func(addr uint64, n int) ([]byte, error) {
			b, err := t.readGuest(ctx, addr, n)
			var re *rsp.RemoteError
			if err != nil && !errors.As(err, &re) && lost == nil {
				lost = err
			}
			return b, err
		}
		boot := kernel.Boot{Direct: t.spec.Kernel != "", Append: t.spec.Append}
		mismatch = t.os.VerifyRunning(syms, boot, read)
		if lost != nil {
			return t.harnessErr(op, lost)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if mismatch != nil {
		return fmt.Errorf("%w: %w", ErrBadInput, mismatch)
	}
	return nil
}

// verifyRunningKernel is Boot's check of its symbols against the kernel
// that came up (see VerifySymbols); without a debugger there is nothing
// to check.
func (t *Target) verifyRunningKernel(ctx context.Context) error {
	if t.gdb == nil || t.syms == nil {
		return nil
	}
	if err := t.VerifySymbols(ctx, t.syms); err != nil {
		if errors.Is(err, ErrBadInput) {
			return fmt.Errorf("guest %s: %w", t.spec.Name, err)
		}
		return err
	}
	return nil
}
