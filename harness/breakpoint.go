package harness

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kspec/kspec/guest"
	"github.com/kspec/kspec/rsp"
	"github.com/kspec/kspec/symbols"
)

// Breakpoint is a software breakpoint on a kernel function, set through
// kspec's RSP client. Hits are delivered to Wait in order.
type Breakpoint struct {
	t      *Target
	Symbol symbols.Symbol
	// Addrs are the breakpoint's locations: Symbol.Addr for a function
	// with an out-of-line copy, the entry of every inlined copy for a
	// function that exists only inlined (see Target.Break).
	Addrs []uint64
	// Inlined is true when the locations are inlined copies.
	Inlined bool
	hits    []*Hit
	active  bool
}

// Hit is one stop of the kernel at a breakpoint: where (function, file and
// line from the running kernel's DWARF) and on which vCPU.
type Hit struct {
	Function string
	// Offset is the PC's offset from Function's entry (0 at entry; the
	// entry follows the ftrace patch site on arm64, see
	// symbols.Table.FunctionEntry).
	Offset uint64
	File   string
	Line   int
	// Source is the text of File's Line when the guest has a prepared
	// source tree (`kspec guest prepare --source`), else "".
	Source string
	PC     uint64
	// CPU is the vCPU index (the gdbstub's thread id minus one).
	CPU int
	// Stop is the raw stop reply that reported the hit.
	Stop rsp.StopReply

	// t is the target that stopped, for inspecting the hit (backtrace,
	// task, arguments) while the guest stays stopped there.
	t *Target
}

func (h *Hit) String() string {
	return fmt.Sprintf("%s+%#x at %s:%d (pc %#x, cpu %d)", h.Function, h.Offset, h.File, h.Line, h.PC, h.CPU)
}

// Break sets a breakpoint at the entry of the named kernel function. A
// function the compiler inlined into all its callers (no ELF symbol of the
// name, e.g. __do_sys_sethostname from Linux 6.12) gets a location at the
// entry of every inlined copy, as gdb's `break` does; its hits are named
// after it, with its own file and line. An unknown name is an error
// wrapping ErrBadInput that names the symbol. Breaking again on an armed
// function returns the armed Breakpoint.
func (t *Target) Break(ctx context.Context, name string) (*Breakpoint, error) {
	if t.gdb == nil {
		return nil, &HarnessError{Op: "break " + name, Err: errors.New("no debugger attached")}
	}
	bp, err := t.locate(name)
	if err != nil {
		return nil, err
	}
	// QEMU keeps one breakpoint per Z0, so a second Z0 at the same address
	// would outlive a single z0: the armed breakpoint is shared instead.
	t.mu.Lock()
	armed := t.breakpoints[bp.Addrs[0]]
	t.mu.Unlock()
	if armed != nil {
		return armed, nil
	}
	// Recorded first, so that a reconnection while the Z0 is on the wire
	// arms it from kspec's records (see whileStopped).
	t.mu.Lock()
	for _, a := range bp.Addrs {
		t.breakpoints[a] = bp
		t.noteArmedLocked(point{rsp.Software, a, 1})
	}
	t.mu.Unlock()
	err = t.whileStopped(ctx, "break "+name, func() error {
		for _, a := range bp.Addrs {
			if err := t.gdb.SetBreakpoint(ctx, rsp.Software, a, 1); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.mu.Lock()
		bp.active = false
		for _, a := range bp.Addrs {
			delete(t.breakpoints, a)
		}
		t.mu.Unlock()
		// Locations already inserted stay in everArmed: the next rearm
		// or reset removes them.
		return nil, t.harnessErr("break "+name, err)
	}
	return bp, nil
}

// locate finds the locations of a breakpoint on the function name: its
// symbol, or its inlined copies when it has no symbol.
func (t *Target) locate(name string) (*Breakpoint, error) {
	sym, err := t.syms.Lookup(name)
	if err == nil {
		// At the function's entry as its debug information (and gdb)
		// has it: after an arm64 ftrace patch site.
		return &Breakpoint{t: t, Symbol: sym, Addrs: []uint64{t.syms.FunctionEntry(sym)}, active: true}, nil
	}
	if !errors.Is(err, symbols.ErrUnknownSymbol) {
		return nil, fmt.Errorf("%w: break %s: %w", ErrBadInput, name, err)
	}
	copies, cerr := t.syms.InlinedCopies(name)
	if cerr != nil {
		if !errors.Is(cerr, symbols.ErrUnknownSymbol) {
			return nil, t.harnessErr("break "+name, cerr)
		}
		return nil, fmt.Errorf("%w: break %s: %w", ErrBadInput, name, err)
	}
	bp := &Breakpoint{t: t, Symbol: symbols.Symbol{Name: name, Addr: copies[0].Entry, Kind: symbols.Func}, Inlined: true, active: true}
	for _, c := range copies {
		bp.Addrs = append(bp.Addrs, c.Entry)
	}
	return bp, nil
}

// whileStopped runs fn, the breakpoint change op, with the VM stopped in the
// debugger, and resumes the VM afterwards if it was running before. QEMU
// stops the VM for any packet that arrives while it runs; kspec stops it
// explicitly so that the stop reply is consumed and the client stays in
// step.
//
// The caller records the change in t.breakpoints before calling: if the
// gdbstub connection drops while fn's packet is on the wire (it may or may
// not have reached QEMU), whileStopped reconnects, and re-arming from
// kspec's records makes QEMU's breakpoints match them either way, so the
// change is done.
func (t *Target) whileStopped(ctx context.Context, op string, fn func() error) error {
	if err := t.ensureDebugger(ctx, op); err != nil {
		return err
	}
	wasRunning := t.gdb.Running()
	if wasRunning {
		if _, err := t.Interrupt(ctx); err != nil {
			return err
		}
	}
	if err := fn(); err != nil {
		if !errors.Is(err, rsp.ErrConnectionClosed) || t.machineGone() != nil {
			return err
		}
		if rerr := t.reconnectDebugger(ctx, op); rerr != nil {
			return rerr
		}
	}
	if wasRunning {
		return t.resume(ctx)
	}
	return nil
}

// Wait returns the next hit of this breakpoint, leaving the guest stopped
// there (call Target.Continue to resume). Stops at other kspec breakpoints
// are recorded on those and the guest resumed; when ctx ends first, the
// guest is interrupted and the error wraps ErrNotHit with a diagnosis
// (registers where the guest was, console tail).
func (bp *Breakpoint) Wait(ctx context.Context) (*Hit, error) {
	t := bp.t
	mark := t.kw.mark()
	ctx, release := t.kw.watch(ctx, mark)
	defer release()
	for {
		if len(bp.hits) > 0 {
			h := bp.hits[0]
			bp.hits = bp.hits[1:]
			return h, nil
		}
		if k := t.kw.since(mark); k != nil { // never resume a dead kernel
			return nil, k
		}
		if err := t.ensureDebugger(ctx, "wait for "+bp.Symbol.Name); err != nil {
			return nil, err
		}
		if len(bp.hits) > 0 { // reached while the connection was down
			continue
		}
		if !t.gdb.Running() {
			if t.absorbQueuedStops(ctx) {
				continue
			}
			if err := t.resume(ctx); err != nil {
				return nil, t.fail("continue to "+bp.Symbol.Name, mark, err)
			}
		}
		stop, err := t.gdb.WaitStop(ctx)
		if err != nil {
			if k := t.kernelFailure(mark); k != nil {
				return nil, k
			}
			if errors.Is(err, rsp.ErrConnectionClosed) && ctx.Err() == nil && t.machineGone() == nil {
				continue // lost the stub: reconnect at the top of the loop
			}
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, bp.notHit(ctx.Err())
			}
			if ctx.Err() != nil { // cancelled (Ctrl-C): not a verdict on the kernel
				return nil, t.harnessErr("wait for "+bp.Symbol.Name, context.Cause(ctx))
			}
			return nil, t.fail("wait for "+bp.Symbol.Name, mark, err)
		}
		if err := t.checkExited(stop); err != nil {
			return nil, err
		}
		t.recordIfBreakpoint(context.WithoutCancel(ctx), stop)
	}
}

// Hit reports, without waiting, whether a hit is queued on this breakpoint.
func (bp *Breakpoint) Hit() bool { return len(bp.hits) > 0 }

// Clear removes the breakpoint from the guest (the VM keeps its run state).
func (bp *Breakpoint) Clear(ctx context.Context) error {
	if !bp.active {
		return nil
	}
	t := bp.t
	// Forgotten first, so that a reconnection while the z0 is on the wire
	// removes it from kspec's records (see whileStopped).
	t.mu.Lock()
	bp.active = false
	for _, a := range bp.Addrs {
		delete(t.breakpoints, a)
	}
	t.mu.Unlock()
	err := t.whileStopped(ctx, "clear breakpoint "+bp.Symbol.Name, func() error {
		for _, a := range bp.Addrs {
			if err := t.gdb.ClearBreakpoint(ctx, rsp.Software, a, 1); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.mu.Lock()
		bp.active = true
		for _, a := range bp.Addrs {
			t.breakpoints[a] = bp
		}
		t.mu.Unlock()
		return t.harnessErr("clear breakpoint "+bp.Symbol.Name, err)
	}
	return nil
}

// ClearBreakpoints removes every breakpoint and watchpoint kspec set and
// resumes the guest.
func (t *Target) ClearBreakpoints(ctx context.Context) error {
	t.mu.Lock()
	bps := make([]*Breakpoint, 0, len(t.breakpoints))
	for _, bp := range t.breakpoints {
		if !slices.Contains(bps, bp) { // one Breakpoint may have several locations
			bps = append(bps, bp)
		}
	}
	t.mu.Unlock()
	var errs []error
	for _, bp := range bps {
		errs = append(errs, bp.Clear(ctx))
	}
	errs = append(errs, t.clearWatchpoints(ctx))
	errs = append(errs, t.Continue(ctx))
	return errors.Join(errs...)
}

// recordIfBreakpoint resolves a stop: a stop at one of kspec's breakpoints
// or watchpoints is queued on it (the VM stays stopped); anything else (an
// interrupt, a QMP stop) is left to the caller.
func (t *Target) recordIfBreakpoint(ctx context.Context, stop rsp.StopReply) bool {
	t.rec.noteStop(stop) // for failure reports (report.go)
	if stop.Kind != 'T' && stop.Kind != 'S' {
		return false
	}
	if stop.Thread > 0 {
		if err := t.gdb.SelectThread(ctx, stop.Thread); err != nil {
			return false
		}
	}
	pc, err := t.gdb.ReadRegister(ctx, t.arch().PC())
	if err != nil {
		return false
	}
	if stop.Watch != nil {
		return t.recordWatch(stop, pc)
	}
	t.mu.Lock()
	bp := t.breakpoints[pc]
	t.mu.Unlock()
	if bp == nil {
		return false
	}
	h := t.describeStop(pc, stop)
	if bp.Inlined { // named after the inlined function, not its host
		h.Function, h.Offset = bp.Symbol.Name, 0
	}
	bp.hits = append(bp.hits, h)
	return true
}

// describeStop names the place the kernel stopped from the symbol table and
// the DWARF line table of the kernel that runs.
func (t *Target) describeStop(pc uint64, stop rsp.StopReply) *Hit {
	h := &Hit{PC: pc, Stop: stop, CPU: stop.Thread - 1, t: t}
	if h.CPU < 0 {
		h.CPU = 0
	}
	if sym, off, err := t.syms.SymbolAt(pc); err == nil {
		h.Function, h.Offset = sym.Name, off
		if entry := t.syms.FunctionEntry(sym); pc >= entry {
			h.Offset = pc - entry // from the entry, past a patch site
		}
	}
	if loc, err := t.syms.LineAt(pc); err == nil {
		h.File, h.Line = loc.File, loc.Line
		h.Source = t.SourceLine(loc.File, loc.Line)
		if h.Function == "" {
			h.Function = loc.Function
		}
	}
	return h
}

// checkExited turns an exit stop reply (W/X: QEMU is shutting down) into an
// error. The gdbstub can report the exit before the console reader has
// seen the panic text that caused it (panic=-1 with -no-reboot), so it
// waits for QEMU to be reaped and the console drained, and reports a kernel
// panic when there was one rather than blaming the harness.
func (t *Target) checkExited(stop rsp.StopReply) error {
	if stop.Kind != 'W' && stop.Kind != 'X' {
		return nil
	}
	if t.machine != nil {
		timer := time.NewTimer(5 * time.Second) // bounds a QEMU that would not exit
		select {
		case <-t.machine.Done():
		case <-timer.C:
		}
		timer.Stop()
	}
	if k := t.kernelFailure(t.kw.mark()); k != nil {
		return k
	}
	return &HarnessError{Op: "wait for a stop", Err: fmt.Errorf("the guest exited (stop reply %q)", stop.Raw), ConsoleTail: t.ConsoleTail(4096)}
}

// notHit interrupts the guest and builds the diagnosis for a breakpoint
// that did not fire in time.
func (bp *Breakpoint) notHit(cause error) error {
	t := bp.t
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	where, _ := t.interruptAndLocate(ctx)
	diag := fmt.Sprintf("%s (%#x) was not hit: %v; %s", bp.Symbol.Name, bp.Symbol.Addr, cause, where)
	return &NotHitError{Breakpoint: bp.Symbol.Name, Diagnosis: diag, ConsoleTail: t.ConsoleTail(2048), Err: cause}
}

// interruptAndLocate stops the guest in the debugger and says where each
// vCPU is; stopped is false when the interrupt failed (the text says why).
func (t *Target) interruptAndLocate(ctx context.Context) (where string, stopped bool) {
	if _, err := t.Interrupt(ctx); err != nil {
		return "interrupting the guest failed: " + err.Error(), false
	}
	return "guest interrupted, vCPUs:" + strings.TrimSuffix(t.describeCPUs(ctx), ";"), true
}

// describeCPUs lists where each vCPU is: pc, function and file:line.
func (t *Target) describeCPUs(ctx context.Context) string {
	threads, err := t.gdb.Threads(ctx)
	if err != nil {
		return " (threads: " + err.Error() + ")"
	}
	var b strings.Builder
	for _, th := range threads {
		if err := t.gdb.SelectThread(ctx, th); err != nil {
			fmt.Fprintf(&b, " cpu%d: %v;", th-1, err)
			continue
		}
		pc, err := t.gdb.ReadRegister(ctx, t.arch().PC())
		if err != nil {
			fmt.Fprintf(&b, " cpu%d: %v;", th-1, err)
			continue
		}
		h := t.describeStop(pc, rsp.StopReply{Thread: th})
		fmt.Fprintf(&b, " cpu%d at %s;", th-1, h)
	}
	return b.String()
}

// NotHitError says a breakpoint was not hit in time, or before the command
// started for it finished (WaitFor), with where the guest was instead. It
// wraps ErrNotHit and the cause (the deadline, ErrCommandFinished).
type NotHitError struct {
	Breakpoint  string
	Diagnosis   string
	ConsoleTail string
	Err         error
	// Command is the command WaitFor watched ("" for Wait); Result is its
	// result when it finished (nil: it did not, or it ended the shell).
	Command string
	Result  *guest.Result
}

func (e *NotHitError) Error() string { return e.Diagnosis + tailSuffix(e.ConsoleTail) }

// Unwrap lets errors.Is match ErrNotHit and the timeout cause.
func (e *NotHitError) Unwrap() []error { return []error{ErrNotHit, e.Err} }
