package harness

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kspec/kspec/guest"
)

// ErrCommandFinished is wrapped by the *NotHitError of WaitFor when the
// command started for a breakpoint (or watchpoint) finished without
// hitting it.
var ErrCommandFinished = errors.New("the command finished without hitting it")

// errCommandDone is the cause WaitFor cancels the wait with.
var errCommandDone = errors.New("the command started for the breakpoint finished")

// WaitFor is Wait for a hit that cmd, started with Target.Start, is meant
// to cause. When cmd finishes (or ends the login shell) before the
// breakpoint is hit, WaitFor returns at once, not at ctx's deadline: a
// *NotHitError wrapping ErrNotHit and ErrCommandFinished, carrying cmd's
// exit status and output, with the guest interrupted and left stopped as
// after a timeout. A stop that arrived before or while cmd finished is
// still a hit: the stops on the wire are collected before the verdict.
// ctx's deadline still bounds a command that never finishes. cmd's result
// stays with p (Target.Collect returns it). A nil p is Wait.
func (bp *Breakpoint) WaitFor(ctx context.Context, p *guest.Pending) (*Hit, error) {
	return bp.t.waitWhileRuns(ctx, p, bp.Wait, bp.take, bp.notHit)
}

// WaitFor is Breakpoint.WaitFor for a watchpoint.
func (w *Watchpoint) WaitFor(ctx context.Context, p *guest.Pending) (*Hit, error) {
	return w.t.waitWhileRuns(ctx, p, w.Wait, w.take, w.notHit)
}

// take pops a queued hit, or returns nil.
func (bp *Breakpoint) take() *Hit {
	if len(bp.hits) == 0 {
		return nil
	}
	h := bp.hits[0]
	bp.hits = bp.hits[1:]
	return h
}

// take pops a queued hit, or returns nil.
func (w *Watchpoint) take() *Hit {
	w.t.insp.mu.Lock()
	defer w.t.insp.mu.Unlock()
	if len(w.hits) == 0 {
		return nil
	}
	h := w.hits[0]
	w.hits = w.hits[1:]
	return h
}

// waitWhileRuns runs wait while p's command runs and ends it when the
// command finishes; see Breakpoint.WaitFor.
func (t *Target) waitWhileRuns(ctx context.Context, p *guest.Pending, wait func(context.Context) (*Hit, error), take func() *Hit, notHit func(error) error) (*Hit, error) {
	if p == nil {
		return wait(ctx)
	}
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var res guest.Result
	var perr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		res, perr = p.Wait(wctx)
		if perr == nil || errors.Is(perr, guest.ErrShellEnded) {
			cancel(errCommandDone)
		}
	}()
	hit, err := wait(wctx)
	finished := errors.Is(context.Cause(wctx), errCommandDone)
	cancel(nil)
	<-done // p.Wait holds p until it returns
	if err == nil || !finished || !(errors.Is(err, errCommandDone) || errors.Is(err, context.Canceled)) {
		return hit, err
	}
	// The command finished while the guest ran. A hit it caused stopped the
	// VM before it could finish, so any such stop is on the wire or queued:
	// stop the VM (the first stop that comes is the hit, if there was one)
	// and record what is queued, then look again.
	ictx, icancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer icancel()
	if t.gdb != nil && t.gdb.Err() == nil {
		if t.gdb.Running() {
			_, _ = t.Interrupt(ictx) // records a stop at a breakpoint; notHit reports a failure
		}
		t.absorbQueuedStops(ictx)
	}
	if h := take(); h != nil {
		return h, nil
	}
	nerr := notHit(commandFinished(p.Command(), res, perr))
	var nh *NotHitError
	if errors.As(nerr, &nh) {
		nh.Command = p.Command()
		if perr == nil {
			r := res
			nh.Result = &r
		}
	}
	return nil, nerr
}

// commandFinished says how the command ended, for a NotHitError.
func commandFinished(cmd string, res guest.Result, err error) error {
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCommandFinished, err)
	}
	out := strings.TrimSpace(res.Output)
	if len(out) > 400 {
		out = "..." + out[len(out)-400:]
	}
	return fmt.Errorf("%w: %q exited with status %d (output %q)", ErrCommandFinished, cmd, res.Status, out)
}
