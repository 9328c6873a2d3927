package harness

import (
	"context"
	"fmt"
)

// Resuming and single-stepping a stopped guest past kspec's breakpoints.

// absorbQueuedStops handles stop replies that arrived while kspec thought
// the guest stopped: QEMU 7.2 reports a QMP `stop` as T02, after which the
// VM may be resumed behind the debugger's back (QMP `cont`) and stop again
// at a breakpoint. Only the last stop describes where the guest is now; it
// is recorded on its breakpoint or watchpoint if it is at one. It reports
// whether a hit was recorded, in which case the caller must not resume.
func (t *Target) absorbQueuedStops(ctx context.Context) bool {
	stops := t.gdb.DrainStops()
	if len(stops) == 0 {
		return false
	}
	return t.recordIfBreakpoint(context.WithoutCancel(ctx), stops[len(stops)-1])
}

// resume continues a stopped guest the way gdb's continue does: a vCPU
// stopped on one of kspec's software breakpoints is first single-stepped
// past it (a step is not stopped by breakpoints), because QEMU reports a
// breakpoint at the PC a vCPU resumes from again at once, so that the next
// hit would be the same call again.
func (t *Target) resume(ctx context.Context) error {
	if err := t.stepOverBreakpoints(ctx); err != nil {
		return fmt.Errorf("step over a breakpoint before continuing: %w", err)
	}
	return t.gdb.Continue(ctx)
}

func (t *Target) stepOverBreakpoints(ctx context.Context) error {
	t.mu.Lock()
	armed := len(t.breakpoints) > 0
	t.mu.Unlock()
	if !armed || t.gdb.Running() {
		return nil
	}
	return t.forEachOnBreakpoint(ctx, func(th int, pc uint64, bp *Breakpoint) error {
		stop, err := t.gdb.Step(ctx, th)
		if err != nil {
			return fmt.Errorf("cpu %d at %s: %w", th-1, bp.Symbol.Name, err)
		}
		return t.checkExited(stop)
	})
}

// forEachOnBreakpoint calls fn for every vCPU (thread id th) of a stopped
// guest whose pc is the address of one of kspec's breakpoints.
func (t *Target) forEachOnBreakpoint(ctx context.Context, fn func(th int, pc uint64, bp *Breakpoint) error) error {
	threads, err := t.gdb.Threads(ctx)
	if err != nil {
		return err
	}
	for _, th := range threads {
		pc, err := t.cpuRegister(ctx, th-1, t.arch().PC())
		if err != nil {
			return err
		}
		t.mu.Lock()
		bp := t.breakpoints[pc]
		t.mu.Unlock()
		if bp == nil {
			continue
		}
		if err := fn(th, pc, bp); err != nil {
			return err
		}
	}
	return nil
}

// Step executes one instruction on vCPU cpu of a stopped guest and returns
// where it stopped (with QEMU's default step flags, interrupts and timers
// stay masked, so the step does not wander into an interrupt handler).
// Breakpoints do not fire on the stepped instruction.
func (t *Target) Step(ctx context.Context, cpu int) (*Hit, error) {
	if err := t.ensureDebugger(ctx, "step"); err != nil {
		return nil, err
	}
	if err := t.requireStopped(); err != nil {
		return nil, t.harnessErr("step", err)
	}
	stop, err := t.gdb.Step(ctx, cpu+1)
	if err == nil && stop.Kind == 'T' && stop.Signal == 2 && stop.Watch == nil {
		// The VM had been resumed behind the debugger's back (QMP cont):
		// the step packet only stopped it. Step again from where it is.
		stop, err = t.gdb.Step(ctx, cpu+1)
	}
	if err != nil {
		return nil, t.harnessErr(fmt.Sprintf("step cpu %d", cpu), err)
	}
	if err := t.checkExited(stop); err != nil {
		return nil, err
	}
	if stop.Thread == 0 {
		stop.Thread = cpu + 1
	}
	pc, err := t.cpuRegister(ctx, stop.Thread-1, t.arch().PC())
	if err != nil {
		return nil, t.harnessErr("step", err)
	}
	return t.describeStop(pc, stop), nil
}
