package harness

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kspec/kspec/qmp"
	"github.com/kspec/kspec/rsp"
)

// Lost connections. QEMU's gdbstub and QMP sockets accept a new client once
// the old one is gone, and the VM keeps its state meanwhile (QEMU keeps the
// breakpoints of a debugger that vanished). So when either connection drops
// while QEMU lives, kspec connects again and carries on: the operation that
// noticed the loss either continues transparently (Breakpoint.Wait, and
// every operation that finds the connection already gone) or, for a request
// that was on the wire when the connection dropped and might have taken
// effect, returns a HarnessError saying the connection was lost and
// restored. When QEMU has exited or the socket no longer answers, the error
// is a HarnessError naming that — never a hang.

// reconnectTimeout bounds one reconnection (dial, handshake, re-arming).
const reconnectTimeout = 15 * time.Second

// exitGrace is how long a failed reconnection waits for QEMU to be reaped
// when it is exiting anyway, so that the error names the real cause (QEMU
// was killed) rather than the refused connection that followed from it.
const exitGrace = 2 * time.Second

// ensureDebugger reconnects to the gdbstub if kspec's connection to it is
// gone while QEMU runs. It does nothing when the connection is up or there
// is no debugger. Otherwise it returns a *HarnessError for op (QEMU exited,
// or no new connection could be made), or a *KernelError when the kernel
// panicked meanwhile.
func (t *Target) ensureDebugger(ctx context.Context, op string) error {
	if t.gdb == nil || t.gdb.Err() == nil {
		return nil
	}
	return t.reconnectDebugger(ctx, op)
}

// reconnectDebugger replaces the lost gdbstub connection. A new connection
// stops the VM (QEMU stops it for every debugger that attaches); kspec
// re-arms its breakpoints and watchpoints, records a breakpoint that a vCPU
// reached while nobody listened, and otherwise resumes a guest that was
// running, so the loss is invisible to the spec. Errors are reported as
// failures of op.
func (t *Target) reconnectDebugger(ctx context.Context, op string) error {
	old := t.gdb
	lost := old.Err()
	wasRunning := old.Running()
	_ = old.Close()
	if k := t.kernelFailure(t.kw.mark()); k != nil && k.Kind == "panic" {
		return k
	}
	rctx, cancel := context.WithTimeout(ctx, reconnectTimeout)
	defer cancel()
	if gone := t.machineGone(); gone != nil {
		return t.goneErr(op, gone, "gdbstub", lost)
	}
	conn, err := t.machine.DialGDB(rctx)
	if err == nil {
		var c *rsp.Client
		c, err = rsp.Connect(rctx, conn, rsp.Options{})
		if err == nil {
			t.setDebugger(c)
		}
	}
	if err != nil {
		if gone := t.waitMachineGone(); gone != nil {
			return t.goneErr(op, gone, "gdbstub", lost)
		}
		return &HarnessError{Op: op, Err: fmt.Errorf("gdbstub connection lost (%v), and reconnecting failed: %w", lost, err), ConsoleTail: t.ConsoleTail(2048)}
	}
	t.opts.Logf("gdbstub connection lost (%v); reconnected", lost)
	if err := t.rearm(rctx); err != nil {
		return &HarnessError{Op: op, Err: fmt.Errorf("re-arm breakpoints after reconnecting to the gdbstub: %w", err)}
	}
	if !wasRunning {
		return nil // stopped where it was: a hit, or after Interrupt
	}
	if t.recordReachedBreakpoints(rctx) {
		return nil // a hit while nobody listened: stay stopped there
	}
	if err := t.resume(rctx); err != nil {
		return &HarnessError{Op: op, Err: fmt.Errorf("resume the guest after reconnecting to the gdbstub: %w", err)}
	}
	return nil
}

// goneErr reports that op failed because QEMU is gone, taking the named
// connection with it; a panic that ended QEMU is reported as the panic.
func (t *Target) goneErr(op string, gone error, conn string, lost error) error {
	if k := t.kernelFailure(t.kw.mark()); k != nil && k.Kind == "panic" {
		return k
	}
	return &HarnessError{Op: op, Err: fmt.Errorf("%w (the %s connection went with it: %v)", gone, conn, lost), ConsoleTail: t.ConsoleTail(2048)}
}

// point is one breakpoint or watchpoint as the gdbstub knows it.
type point struct {
	kind rsp.BreakKind
	addr uint64
	size int
}

// noteArmedLocked remembers that kspec asked QEMU to insert p; t.mu is
// held. rearm removes every point ever inserted, so that one whose removal
// was lost with a connection does not linger in QEMU.
func (t *Target) noteArmedLocked(p point) {
	if t.everArmed == nil {
		t.everArmed = map[point]bool{}
	}
	t.everArmed[p] = true
}

// rearm makes QEMU's breakpoints and watchpoints match kspec's records:
// every point kspec ever inserted on this guest is removed (QEMU keeps
// those of a vanished debugger, and a Z or z packet lost with the
// connection may or may not have reached it; removing one that is not
// there is answered with an error, which is fine), and each active one is
// inserted once.
func (t *Target) rearm(ctx context.Context) error {
	var active []point
	t.mu.Lock()
	for addr, bp := range t.breakpoints {
		if bp.active {
			active = append(active, point{rsp.Software, addr, 1})
		}
	}
	t.mu.Unlock()
	t.insp.mu.Lock()
	for _, w := range t.insp.watchpoints {
		if w.active {
			active = append(active, point{w.Kind, w.Addr, w.Size})
		}
	}
	t.insp.mu.Unlock()
	t.mu.Lock()
	for _, p := range active {
		t.noteArmedLocked(p)
	}
	ever := make([]point, 0, len(t.everArmed))
	for p := range t.everArmed {
		ever = append(ever, p)
	}
	t.mu.Unlock()
	for _, p := range ever {
		err := t.gdb.ClearBreakpoint(ctx, p.kind, p.addr, p.size)
		var remote *rsp.RemoteError
		if err != nil && !errors.As(err, &remote) {
			return err
		}
	}
	for _, p := range active {
		if err := t.gdb.SetBreakpoint(ctx, p.kind, p.addr, p.size); err != nil {
			return err
		}
	}
	return nil
}

// recordReachedBreakpoints records a hit for every vCPU that stands on one
// of kspec's breakpoints: QEMU stopped there while no debugger listened,
// and its stop reply went nowhere. It reports whether it recorded any.
func (t *Target) recordReachedBreakpoints(ctx context.Context) bool {
	hit := false
	_ = t.forEachOnBreakpoint(ctx, func(th int, pc uint64, bp *Breakpoint) error {
		stop := rsp.StopReply{Kind: 'T', Signal: 5, Thread: th, Core: -1, Raw: "(stopped while the gdbstub connection was down)"}
		bp.hits = append(bp.hits, t.describeStop(pc, stop))
		hit = true
		return nil
	})
	return hit
}

// monitor returns the QMP connection, reconnecting first if it was lost
// while QEMU runs; kspec's panic watch is subscribed again on the new
// connection, and a panic that happened while no connection was up is
// picked up from the run state. Errors are reported as failures of op.
func (t *Target) monitor(ctx context.Context, op string) (*qmp.Monitor, error) {
	mon := t.machine.QMP()
	if mon.Err() == nil {
		return mon, nil
	}
	lost := mon.Err()
	if gone := t.machineGone(); gone != nil {
		return nil, t.goneErr(op, gone, "QMP", lost)
	}
	rctx, cancel := context.WithTimeout(ctx, reconnectTimeout)
	defer cancel()
	mon, err := t.machine.ReconnectQMP(rctx)
	if err != nil {
		if gone := t.waitMachineGone(); gone != nil {
			return nil, t.goneErr(op, gone, "QMP", lost)
		}
		return nil, &HarnessError{Op: op, Err: err, ConsoleTail: t.ConsoleTail(2048)}
	}
	t.opts.Logf("QMP connection lost (%v); reconnected", lost)
	t.subscribePanics(mon)
	if st, err := mon.Status(rctx); err == nil && st.State == "guest-panicked" {
		t.kw.gotPanicEvent(qmp.Event{Name: "GUEST_PANICKED", Data: map[string]any{"action": "pause"}})
	}
	return mon, nil
}

// machineGone returns why QEMU is gone, or nil while it runs.
func (t *Target) machineGone() error {
	select {
	case <-t.machine.Done():
		if err := t.machine.Err(); err != nil {
			return fmt.Errorf("QEMU exited: %w", err)
		}
		return errors.New("QEMU exited")
	default:
		return nil
	}
}

// waitMachineGone gives a QEMU that refuses connections a moment to be
// reaped, and returns why it is gone, or nil if it still runs: a killed
// QEMU closes its sockets a moment before its parent learns how it died.
func (t *Target) waitMachineGone() error {
	timer := time.NewTimer(exitGrace)
	defer timer.Stop()
	select {
	case <-t.machine.Done():
	case <-timer.C:
	}
	return t.machineGone()
}

// afterLostConnection handles an error of op that says the gdbstub
// or QMP connection was lost while its request was on the wire. It reports
// handled=true for such errors and then reconnects: rerr is nil when the
// new connection is up (the operation may be retried), else the error that
// explains why there is none.
func (t *Target) afterLostConnection(op string, err error) (rerr error, handled bool) {
	if t.machine == nil {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), reconnectTimeout)
	defer cancel()
	switch {
	case errors.Is(err, rsp.ErrConnectionClosed) && t.gdb != nil && t.gdb.Err() != nil:
		if t.machineGone() != nil {
			return nil, false // QEMU died: the caller explains that
		}
		return t.reconnectDebugger(ctx, op), true
	case errors.Is(err, qmp.ErrClosed) && t.machine.QMP().Err() != nil:
		if t.machineGone() != nil {
			return nil, false
		}
		_, rerr := t.monitor(ctx, op)
		return rerr, true
	}
	return nil, false
}
