package harness

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kspec/kspec/rsp"
	"github.com/kspec/kspec/symbols"
)

// Watchpoints on the objects DWARF expressions name (Z2, Z3, Z4).

// Watch kinds for Target.Watch: the gdbstub's Z2, Z3 and Z4.
const (
	WatchWrite  = rsp.WriteWatch
	WatchRead   = rsp.ReadWatch
	WatchAccess = rsp.AccessWatch
)

// Watchpoint is a hardware-style watchpoint on the object a DWARF
// expression names, set through kspec's RSP client (under TCG QEMU watches
// any length; under KVM the CPU's debug registers limit it to 1, 2, 4 or 8
// aligned bytes and four watchpoints). Hits are delivered to Wait in order.
type Watchpoint struct {
	t *Target
	// Expr is the expression as given; Value is what it resolved to when
	// the watchpoint was set.
	Expr  string
	Value symbols.Value
	// Kind is WatchWrite, WatchRead or WatchAccess.
	Kind rsp.BreakKind
	// Addr and Size are the watched range (the whole object).
	Addr uint64
	Size int

	hits   []*Hit
	active bool
}

// Watch sets a watchpoint on the object expr names (see ResolveExpr):
// WatchWrite stops the guest after an instruction writes any of its bytes,
// WatchRead after one reads them, WatchAccess after either. The guest keeps
// its run state. Wait returns the hit at the accessing instruction, so its
// function, line, Backtrace and Task name the writer; Hit.Stop.Watch holds
// the watched address.
func (t *Target) Watch(ctx context.Context, expr string, kind rsp.BreakKind) (*Watchpoint, error) {
	if t.gdb == nil {
		return nil, &HarnessError{Op: "watch " + expr, Err: errors.New("no debugger attached")}
	}
	if kind != WatchWrite && kind != WatchRead && kind != WatchAccess {
		return nil, fmt.Errorf("%w: watch %s: kind %v is not a watchpoint kind", ErrBadInput, expr, kind)
	}
	var v symbols.Value
	err := t.withStopped(ctx, func() error {
		var err error
		v, err = t.ResolveExpr(ctx, expr)
		if err != nil {
			return err
		}
		if v.Size == 0 {
			return fmt.Errorf("%w: watch %s: the object has size 0", ErrBadInput, expr)
		}
		t.mu.Lock()
		t.noteArmedLocked(point{kind, v.Addr, int(v.Size)}) // see rearm
		t.mu.Unlock()
		if err := t.gdb.SetBreakpoint(ctx, kind, v.Addr, int(v.Size)); err != nil {
			return t.harnessErr(fmt.Sprintf("set a %s watchpoint on %s (%#x, %d bytes)", kind, expr, v.Addr, v.Size), err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	w := &Watchpoint{t: t, Expr: expr, Value: v, Kind: kind, Addr: v.Addr, Size: int(v.Size), active: true}
	t.insp.mu.Lock()
	t.insp.watchpoints = append(t.insp.watchpoints, w)
	t.insp.mu.Unlock()
	return w, nil
}

// recordWatch queues a watchpoint stop on the watchpoint whose range holds
// the reported address. It is called by recordIfBreakpoint.
func (t *Target) recordWatch(stop rsp.StopReply, pc uint64) bool {
	t.insp.mu.Lock()
	defer t.insp.mu.Unlock()
	for _, w := range t.insp.watchpoints {
		if !w.active || stop.Watch.Addr < w.Addr || stop.Watch.Addr >= w.Addr+uint64(w.Size) {
			continue
		}
		if stop.Watch.Kind != w.Kind && w.Kind != WatchAccess {
			continue
		}
		w.hits = append(w.hits, t.describeStop(pc, stop))
		return true
	}
	return false
}

// Wait returns the next hit of the watchpoint, leaving the guest stopped
// after the accessing instruction (call Target.Continue to resume). Stops
// at kspec's other breakpoints and watchpoints are recorded on those and
// the guest resumed; a stop nobody asked for (QEMU reports a QMP `stop` as
// T02) is passed over. When ctx ends first the guest is interrupted and the
// error wraps ErrNotHit with a diagnosis.
func (w *Watchpoint) Wait(ctx context.Context) (*Hit, error) {
	t := w.t
	for {
		t.insp.mu.Lock()
		if len(w.hits) > 0 {
			h := w.hits[0]
			w.hits = w.hits[1:]
			t.insp.mu.Unlock()
			return h, nil
		}
		active := w.active
		t.insp.mu.Unlock()
		if !active {
			return nil, fmt.Errorf("%w: watchpoint on %s was cleared", ErrBadInput, w.Expr)
		}
		if err := t.ensureDebugger(ctx, "wait for the watchpoint on "+w.Expr); err != nil {
			return nil, err
		}
		if !t.gdb.Running() {
			if t.absorbQueuedStops(ctx) {
				continue
			}
			if err := t.resume(ctx); err != nil {
				return nil, t.harnessErr("continue to the watchpoint on "+w.Expr, err)
			}
		}
		stop, err := t.gdb.WaitStop(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, w.notHit(ctx.Err())
			}
			if errors.Is(err, rsp.ErrConnectionClosed) && t.machineGone() == nil {
				continue // lost the stub: reconnect at the top of the loop
			}
			return nil, t.harnessErr("wait for the watchpoint on "+w.Expr, err)
		}
		if err := t.checkExited(stop); err != nil {
			return nil, err
		}
		t.recordIfBreakpoint(context.WithoutCancel(ctx), stop)
	}
}

// Hit reports, without waiting, whether a hit is queued on the watchpoint.
func (w *Watchpoint) Hit() bool {
	w.t.insp.mu.Lock()
	defer w.t.insp.mu.Unlock()
	return len(w.hits) > 0
}

// String describes the watchpoint.
func (w *Watchpoint) String() string {
	return fmt.Sprintf("%s watchpoint on %s (%#x, %d bytes)", w.Kind, w.Expr, w.Addr, w.Size)
}

// Clear removes the watchpoint from the guest (the VM keeps its run state).
func (w *Watchpoint) Clear(ctx context.Context) error {
	t := w.t
	t.insp.mu.Lock()
	active := w.active
	t.insp.mu.Unlock()
	if !active {
		return nil
	}
	err := t.withStopped(ctx, func() error {
		return t.gdb.ClearBreakpoint(ctx, w.Kind, w.Addr, w.Size)
	})
	if err != nil {
		return t.harnessErr("clear "+w.String(), err)
	}
	t.insp.mu.Lock()
	w.active = false
	for i, x := range t.insp.watchpoints {
		if x == w {
			t.insp.watchpoints = append(t.insp.watchpoints[:i], t.insp.watchpoints[i+1:]...)
			break
		}
	}
	t.insp.mu.Unlock()
	return nil
}

// clearWatchpoints removes every watchpoint (for ClearBreakpoints).
func (t *Target) clearWatchpoints(ctx context.Context) error {
	t.insp.mu.Lock()
	ws := append([]*Watchpoint(nil), t.insp.watchpoints...)
	t.insp.mu.Unlock()
	var errs []error
	for _, w := range ws {
		errs = append(errs, w.Clear(ctx))
	}
	return errors.Join(errs...)
}

func (w *Watchpoint) notHit(cause error) error {
	t := w.t
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	where, _ := t.interruptAndLocate(ctx)
	diag := fmt.Sprintf("%s was not hit: %v; %s", w, cause, where)
	return &NotHitError{Breakpoint: w.Expr, Diagnosis: diag, ConsoleTail: t.ConsoleTail(2048), Err: cause}
}
