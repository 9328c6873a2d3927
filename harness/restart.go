package harness

import (
	"context"
	"errors"
	"fmt"
)

// A spec that kills its guest must not take the rest of the run with it:
// when QEMU is gone (killed, or exited after a kernel panic with panic=-1
// and -no-reboot) or the kernel panicked, Reset boots a fresh guest of the
// same kind in the same Target and saves its baseline again, so the next
// spec starts where every spec starts. The spec that broke the guest has
// already failed with its own error (a KernelError or a HarnessError).

// needsRestart returns why the guest cannot be restored in place, or nil.
func (t *Target) needsRestart() error {
	if t.machine == nil {
		return errors.New("no QEMU is running")
	}
	if err := t.machineGone(); err != nil {
		return err
	}
	if p := t.kw.panic(); p != nil {
		return fmt.Errorf("the kernel panicked (%s)", p.Detail)
	}
	return nil
}

// restart replaces the dead guest with a freshly booted one: the old QEMU
// is stopped and its run directory removed, every breakpoint, watchpoint,
// snapshot and pending command of the old guest is forgotten, and, when a
// baseline had been saved, the new guest's baseline is saved.
func (t *Target) restart(ctx context.Context, why error) error {
	t.opts.Logf("the guest is gone (%v); booting a fresh one", why)
	if err := t.stopGuest(); err != nil {
		t.opts.Logf("stopping the old guest: %v", err)
	}
	t.gdb, t.machine, t.console = nil, nil, nil
	t.mu.Lock()
	for addr, bp := range t.breakpoints {
		bp.active, bp.hits = false, nil
		delete(t.breakpoints, addr)
	}
	t.everArmed = nil
	t.mu.Unlock()
	t.forgetWatchpoints()
	t.rec.settled()
	t.snap.mu.Lock()
	baseline := t.snap.baseline
	t.snap.saved, t.snap.baseline = nil, false
	t.snap.mu.Unlock()

	bootCtx, cancel := context.WithTimeout(ctx, t.opts.BootTimeout)
	defer cancel()
	if err := t.start(bootCtx); err != nil {
		return fmt.Errorf("boot a fresh guest after the old one was lost (%v): %w", why, err)
	}
	if baseline {
		if err := t.SaveBaseline(ctx); err != nil {
			return fmt.Errorf("save the baseline of the fresh guest: %w", err)
		}
	}
	return nil
}
