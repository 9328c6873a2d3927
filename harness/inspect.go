package harness

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/kspec/kspec/arch"
	"github.com/kspec/kspec/kernel"
	"github.com/kspec/kspec/rsp"
	"github.com/kspec/kspec/symbols"
)

// This file is the debugger's inspection layer: backtraces, the current
// task, values of DWARF expressions, watchpoints and single steps. Every
// inspection needs the guest stopped in the debugger; a Hit is inspected
// while the guest is still stopped there.

// Frame is one frame of a backtrace, innermost first: symbols' unwinder
// frame (function, file:line, PC, inlined, stop reason), formatted like a
// line of gdb's bt by its String method.
type Frame = symbols.Frame

// Task is the kernel's current task on a stopped vCPU (see kernel.Task):
// on Linux the task_struct that `current` names, on FreeBSD curthread and
// its process.
type Task = kernel.Task

// Data is the value of an expression read from the guest's memory.
type Data struct {
	// Value locates the object: address, size and C type.
	symbols.Value
	// Bytes are the object's bytes in target byte order (Size of them).
	Bytes []byte
}

// Uint returns the value as an unsigned integer. It works for objects of
// 1, 2, 4 or 8 bytes (integers, enums, pointers) and for bit fields.
func (d Data) Uint() (uint64, error) {
	if d.BitSize > 0 {
		var raw uint64
		for i, b := range d.Bytes {
			if i == 8 {
				break
			}
			raw |= uint64(b) << (8 * i)
		}
		raw >>= uint(d.BitOffset)
		if d.BitSize < 64 {
			raw &= 1<<uint(d.BitSize) - 1
		}
		return raw, nil
	}
	switch len(d.Bytes) {
	case 1:
		return uint64(d.Bytes[0]), nil
	case 2:
		return uint64(binary.LittleEndian.Uint16(d.Bytes)), nil
	case 4:
		return uint64(binary.LittleEndian.Uint32(d.Bytes)), nil
	case 8:
		return binary.LittleEndian.Uint64(d.Bytes), nil
	}
	return 0, fmt.Errorf("%w: %s is %s (%d bytes), not an integer", ErrBadInput, d.Expr, d.TypeName, len(d.Bytes))
}

// Int returns the value as a signed integer (sign-extended from its size).
func (d Data) Int() (int64, error) {
	u, err := d.Uint()
	if err != nil {
		return 0, err
	}
	bits := 8 * len(d.Bytes)
	if d.BitSize > 0 {
		bits = d.BitSize
	}
	if bits >= 64 {
		return int64(u), nil
	}
	shift := uint(64 - bits)
	return int64(u<<shift) >> shift, nil
}

// CString returns the bytes up to the first NUL, as a string: the value of
// a char array.
func (d Data) CString() string { return cstring(d.Bytes) }

// String formats the value and its bytes.
func (d Data) String() string {
	if u, err := d.Uint(); err == nil && !isCharArray(d.TypeName) {
		return fmt.Sprintf("%s = %#x", d.Value, u)
	}
	return fmt.Sprintf("%s = %q", d.Value, d.CString())
}

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

// inspector is the Target's state for this file: watchpoints and caches.
type inspector struct {
	mu          sync.Mutex
	watchpoints []*Watchpoint
	// frames and tasks cache what was read for a Hit while the guest was
	// stopped there, so that matchers can report it after the guest moved on.
	frames map[*Hit][]Frame
	tasks  map[*Hit]Task
	order  []*Hit // oldest first, for bounding the caches
	// layout caches the guest OS's task finder (nil until first use).
	layout kernel.TaskFinder
}

// maxCachedHits bounds the per-hit caches.
const maxCachedHits = 64

func (in *inspector) remember(h *Hit, frames []Frame, task *Task) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.frames == nil {
		in.frames, in.tasks = map[*Hit][]Frame{}, map[*Hit]Task{}
	}
	_, seenF := in.frames[h]
	_, seenT := in.tasks[h]
	if !seenF && !seenT {
		in.order = append(in.order, h)
		if len(in.order) > maxCachedHits {
			old := in.order[0]
			in.order = in.order[1:]
			delete(in.frames, old)
			delete(in.tasks, old)
		}
	}
	if frames != nil {
		in.frames[h] = frames
	}
	if task != nil {
		in.tasks[h] = *task
	}
}

func (in *inspector) cached(h *Hit) (frames []Frame, haveFrames bool, task Task, haveTask bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	frames, haveFrames = in.frames[h]
	task, haveTask = in.tasks[h]
	return
}

// errNoTarget is returned by Hit methods for a Hit not made by a Target.
var errNoTarget = errors.New("the hit has no target (it was not returned by a Target)")

// stoppedAt checks that the guest is still stopped where h stopped: the
// debugger is not running the guest and h's vCPU is at h.PC. It leaves
// h's vCPU selected.
func (t *Target) stoppedAt(ctx context.Context, h *Hit) error {
	if err := t.ensureDebugger(ctx, "inspect the hit in "+h.Function); err != nil {
		return err
	}
	if err := t.requireStopped(); err != nil {
		return err
	}
	pc, err := t.cpuRegister(ctx, h.CPU, t.arch().PC())
	if err != nil {
		return err
	}
	if pc != h.PC {
		return fmt.Errorf("the guest has moved on since the hit at %s (cpu %d is at %#x now)", h, h.CPU, pc)
	}
	return nil
}

func (t *Target) requireStopped() error {
	if t.gdb == nil {
		return errors.New("no debugger attached")
	}
	if t.gdb.Running() {
		return errors.New("the guest is running; inspect it while it is stopped (at a hit, or after Interrupt)")
	}
	return nil
}

// cpuRegister selects cpu's thread and reads a register of at most 64 bits.
func (t *Target) cpuRegister(ctx context.Context, cpu int, name string) (uint64, error) {
	if err := t.gdb.SelectThread(ctx, cpu+1); err != nil {
		return 0, fmt.Errorf("select cpu %d: %w", cpu, err)
	}
	v, err := t.gdb.ReadRegister(ctx, name)
	if err != nil {
		return 0, fmt.Errorf("cpu %d register %s: %w", cpu, name, err)
	}
	return v, nil
}

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
	gdb    *rsp.Client
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
			blk, err = r.gdb.ReadMemory(r.ctx, base, readBlock)
			if err != nil || len(blk) < readBlock {
				// Fall back to exactly what was asked (the block may
				// reach into unmapped memory).
				return r.gdb.ReadMemory(r.ctx, addr, n)
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
	mem := &blockReader{ctx: ctx, gdb: t.gdb}
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

// Task returns the task that was current on the hit's vCPU (see
// Target.CurrentTask). The guest must still be stopped at the hit; the
// result is kept for later calls.
func (h *Hit) Task(ctx context.Context) (Task, error) {
	if h.t == nil {
		return Task{}, errNoTarget
	}
	if _, _, task, ok := h.t.insp.cached(h); ok {
		return task, nil
	}
	if err := h.t.stoppedAt(ctx, h); err != nil {
		return Task{}, h.t.harnessErr("current task at "+h.String(), err)
	}
	task, err := h.t.CurrentTask(ctx, h.CPU)
	if err != nil {
		return Task{}, err
	}
	h.t.insp.remember(h, nil, &task)
	return task, nil
}

// Comm returns the command name of the task that made the hit ("mkdir").
func (h *Hit) Comm(ctx context.Context) (string, error) {
	task, err := h.Task(ctx)
	return task.Comm, err
}

// PID returns the process ID of the task that made the hit (see Task.PID).
func (h *Hit) PID(ctx context.Context) (int, error) {
	task, err := h.Task(ctx)
	return task.PID, err
}

// CurrentTask returns the task running on vCPU cpu of a stopped guest, as
// the guest OS's package finds it (kernel.OS.NewTaskFinder). Linux: the
// per-CPU variable current_task (pcpu_hot.current_task from Linux 6.2 to
// 6.14; see linux.CurrentTaskVariables) at its symbol plus
// __per_cpu_offset[cpu], then task_struct's comm, pid and tgid. FreeBSD: curthread, the first
// member of the struct pcpu that the kernel GS base points to on amd64, then
// td_tid, td_proc, p_comm and p_pid. Every offset comes from the kernel's
// DWARF.
func (t *Target) CurrentTask(ctx context.Context, cpu int) (Task, error) {
	if err := t.requireStopped(); err != nil {
		return Task{}, t.harnessErr("current task", err)
	}
	env := &targetEnv{t: t, ctx: ctx}
	t.insp.mu.Lock()
	layout := t.insp.layout
	t.insp.mu.Unlock()
	if layout == nil {
		var err error
		if layout, err = t.os.NewTaskFinder(env); err != nil {
			return Task{}, &HarnessError{Op: "current task", Err: err}
		}
		t.insp.mu.Lock()
		t.insp.layout = layout
		t.insp.mu.Unlock()
	}
	task, err := layout.Current(env, cpu)
	if err != nil {
		return Task{}, t.harnessErr(fmt.Sprintf("current task of cpu %d", cpu), err)
	}
	return task, nil
}

// targetEnv is the stopped Target as the OS package's task finder sees
// it (kernel.Env).
type targetEnv struct {
	t   *Target
	ctx context.Context
}

func (e *targetEnv) Expr(s string) (symbols.Value, error) { return e.t.syms.Expr(s) }
func (e *targetEnv) Offsetof(typ, m string) (symbols.Value, error) {
	return e.t.syms.Offsetof(typ, m)
}
func (e *targetEnv) Read(addr uint64, n int) ([]byte, error) {
	return e.t.gdb.ReadMemory(e.ctx, addr, n)
}
func (e *targetEnv) Reg(cpu int, name string) (uint64, error) {
	return e.t.cpuRegister(e.ctx, cpu, name)
}
func (e *targetEnv) Arch() arch.Arch { return e.t.arch() }
func (e *targetEnv) Release() string {
	if v := e.t.KernelVersion(); !v.IsZero() {
		return v.String()
	}
	return e.t.spec.Version
}

func cstring(b []byte) string { return kernel.CString(b) }

func isCharArray(typeName string) bool {
	return strings.HasPrefix(typeName, "char [") || strings.HasPrefix(typeName, "unsigned char [") ||
		strings.HasPrefix(typeName, "const char [") || strings.HasPrefix(typeName, "char const [")
}

func isCharPointer(typeName string) bool {
	switch strings.TrimSpace(typeName) {
	case "char *", "const char *", "char const *", "unsigned char *", "const unsigned char *", "unsigned char const *":
		return true
	}
	return false
}

// maxExprRead bounds how much ReadExpr reads for one object.
const maxExprRead = 1 << 20

// ResolveExpr evaluates expr to the object it names without reading it:
// a global variable followed by members (.m), constant indexes ([i]) and
// pointer dereferences (->m). The part before the first "->" is static
// (symbols.Table.Expr); each "->" reads a pointer from the guest, which
// must then be stopped. A malformed or unknown expression is an error
// wrapping ErrBadInput that names the problem.
func (t *Target) ResolveExpr(ctx context.Context, expr string) (symbols.Value, error) {
	if t.syms == nil {
		return symbols.Value{}, &HarnessError{Op: "resolve " + expr, Err: errors.New("no symbols loaded")}
	}
	parts := strings.Split(expr, "->")
	v, err := t.syms.Expr(strings.TrimSpace(parts[0]))
	if err != nil {
		return symbols.Value{}, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	for _, rest := range parts[1:] {
		rest = strings.TrimSpace(rest)
		pointee, ok := strings.CutSuffix(strings.TrimSpace(v.TypeName), "*")
		if !ok || v.Size != 8 {
			return symbols.Value{}, fmt.Errorf("%w: %q: %s is %s, not a pointer", ErrBadInput, expr, v.Expr, v.TypeName)
		}
		pointee = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(pointee), "const "))
		pointee = strings.TrimSpace(strings.TrimSuffix(pointee, " const"))
		if rest == "" {
			return symbols.Value{}, fmt.Errorf("%w: %q: nothing after ->", ErrBadInput, expr)
		}
		if t.gdb == nil || t.gdb.Running() {
			return symbols.Value{}, t.harnessErr("resolve "+expr, errors.New("following -> needs the guest stopped"))
		}
		b, err := t.gdb.ReadMemory(ctx, v.Addr, 8)
		if err != nil {
			return symbols.Value{}, t.harnessErr("read "+v.Expr, err)
		}
		ptr := binary.LittleEndian.Uint64(b)
		if ptr == 0 {
			return symbols.Value{}, fmt.Errorf("%w: %q: %s is NULL", ErrBadInput, expr, v.Expr)
		}
		m, err := t.syms.Offsetof(pointee, rest)
		if err != nil {
			return symbols.Value{}, fmt.Errorf("%w: %q: %w", ErrBadInput, expr, err)
		}
		m.Expr = v.Expr + "->" + rest
		m.Addr += ptr
		v = m
	}
	v.Expr = expr
	return v, nil
}

// ReadExpr evaluates expr (see ResolveExpr) and reads the object from the
// guest's memory: "init_uts_ns.name.nodename" gives the hostname's 65 bytes
// with their address and C type. A running guest is stopped for the read
// and resumed.
func (t *Target) ReadExpr(ctx context.Context, expr string) (Data, error) {
	var d Data
	err := t.withStopped(ctx, func() error {
		v, err := t.ResolveExpr(ctx, expr)
		if err != nil {
			return err
		}
		if v.Size == 0 || v.Size > maxExprRead {
			return fmt.Errorf("%w: %s is %d bytes; ReadExpr reads objects of 1 byte to %d bytes", ErrBadInput, expr, v.Size, maxExprRead)
		}
		b, err := t.gdb.ReadMemory(ctx, v.Addr, int(v.Size))
		if err != nil {
			return t.harnessErr("read "+expr, err)
		}
		d = Data{Value: v, Bytes: b}
		return nil
	})
	return d, err
}

// withStopped runs fn with the guest stopped in the debugger and resumes it
// afterwards, whether fn failed or not, if it was running before.
func (t *Target) withStopped(ctx context.Context, fn func() error) error {
	if t.gdb == nil {
		return &HarnessError{Op: "inspect the guest", Err: errors.New("no debugger attached")}
	}
	if err := t.ensureDebugger(ctx, "inspect the guest"); err != nil {
		return err
	}
	if !t.gdb.Running() {
		return fn()
	}
	if _, err := t.Interrupt(ctx); err != nil {
		return err
	}
	err := fn()
	if cerr := t.Continue(ctx); cerr != nil {
		return errors.Join(err, cerr)
	}
	return err
}

// ReadUint reads an integer, enum or pointer named by expr.
func (t *Target) ReadUint(ctx context.Context, expr string) (uint64, error) {
	d, err := t.ReadExpr(ctx, expr)
	if err != nil {
		return 0, err
	}
	return d.Uint()
}

// ReadString reads the string expr names: a char array up to its first
// NUL, or, for a char pointer, the NUL-terminated string it points to (at
// most 4096 bytes). A running guest is stopped for the read and resumed.
func (t *Target) ReadString(ctx context.Context, expr string) (string, error) {
	var s string
	err := t.withStopped(ctx, func() error {
		d, err := t.ReadExpr(ctx, expr)
		if err != nil {
			return err
		}
		if !isCharPointer(d.TypeName) {
			s = d.CString()
			return nil
		}
		p, err := d.Uint()
		if err != nil {
			return err
		}
		if p == 0 {
			return fmt.Errorf("%w: %s is NULL", ErrBadInput, expr)
		}
		if s, err = t.ReadCString(ctx, p, 4096); err != nil {
			return fmt.Errorf("%s: %w", expr, err)
		}
		return nil
	})
	return s, err
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
