// Package harness is kspec's spec-facing layer: a Target is one booted,
// logged-in guest with kspec's own GDB client attached and the kernel's
// symbols loaded. Specs (and the kspec CLI) set breakpoints by name, run
// shell commands in the guest and inspect where the kernel stopped.
package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kspec/kspec/arch"
	"github.com/kspec/kspec/guest"
	"github.com/kspec/kspec/kernel"
	"github.com/kspec/kspec/kernel/linux"
	"github.com/kspec/kspec/qmp"
	"github.com/kspec/kspec/rsp"
	"github.com/kspec/kspec/supervisor"
	"github.com/kspec/kspec/symbols"
)

// Target is one running guest under kspec's control. Its methods are safe
// for use by one spec at a time (Ginkgo runs specs of a process serially).
type Target struct {
	opts    Options
	spec    *guest.Spec
	profile *guest.Profile
	os      kernel.OS // what kspec knows of the guest's OS (see kernel)
	cpu     arch.Arch // the guest's CPU architecture (see arch)
	machine *supervisor.Machine
	console *guest.Console
	gdb     *rsp.Client
	syms    *symbols.Table
	src     sourceState // the kernel source tree, if prepared (source.go)

	// BootDuration is the time from starting QEMU to a logged-in shell.
	BootDuration time.Duration

	mu          sync.Mutex
	breakpoints map[uint64]*Breakpoint
	everArmed   map[point]bool // every point inserted in this QEMU (reconnect.go)
	insp        inspector      // watchpoints and inspection caches (inspect.go)
	rec         recorder       // transcript, last stop, busy shell (report.go)
	snap        snapshotState  // snapshots and their method (snapshot.go)
	kw          *kernelWatch   // kernel panics and oopses (kernelwatch.go)
	unwatch     func()         // ends the QMP event subscription of kw
	unresume    func()         // removes the QMP RESUME hook (runstate.go)
	gdbNow      atomic.Pointer[rsp.Client]
	closeOnce   sync.Once
	closeErr    error
	versionOnce sync.Once // version, read once (kernelversion.go)
	version     linux.Version
}

// Boot starts the guest described by opts, attaches the debugger (unless
// opts.NoDebugger), lets the kernel boot and logs in on the serial console.
// Every failure is returned as an error wrapping ErrMissing, ErrBadInput or
// a *HarnessError carrying the console tail; nothing is left running.
func Boot(ctx context.Context, opts Options) (*Target, error) {
	o := opts.withDefaults()
	spec, err := ResolveGuest(o)
	if err != nil {
		return nil, err
	}
	cpu, err := spec.CPU()
	if err != nil {
		return nil, fmt.Errorf("%w: guest %s: %w", ErrBadInput, spec.Name, err)
	}
	o.QEMU = qemuFor(o.QEMU, cpu)
	if err := CheckQEMU(o.QEMU, cpu); err != nil {
		return nil, err
	}
	if err := CheckRunDirBase(); err != nil { // rundir.go: $TMPDIR holds the sockets
		return nil, err
	}
	guestOS, err := guest.OSFor(spec.OS)
	if err != nil {
		return nil, fmt.Errorf("%w: guest %s: %w", ErrBadInput, spec.Name, err)
	}
	t := &Target{opts: o, spec: spec, os: guestOS, cpu: cpu, breakpoints: map[uint64]*Breakpoint{}}
	if !o.NoDebugger {
		if spec.Symbols == "" {
			return nil, fmt.Errorf("%w: guest %s has no symbol file; give one (symbols in the guest config or --symbols)", ErrBadInput, spec.Name)
		}
		// Symbols from another build put breakpoints in the wrong places:
		// refuse them before anything boots, as far as the OS can tell
		// (Linux: the vmlinux banner must match the bzImage's build string).
		if spec.Kernel != "" {
			if err := guestOS.CheckSymbolFile(spec.Kernel, spec.Symbols); err != nil {
				return nil, fmt.Errorf("%w: guest %s: %w (give the vmlinux built with %s)", ErrBadInput, spec.Name, err, spec.Kernel)
			}
		}
		t.syms, err = symbols.Open(spec.Symbols)
		if err != nil {
			return nil, fmt.Errorf("%w: symbols of guest %s: %w", ErrBadInput, spec.Name, err)
		}
	}

	t.profile = guestOS.Profile()
	bootCtx, cancel := context.WithTimeout(ctx, o.BootTimeout)
	defer cancel()
	if err := t.start(bootCtx); err != nil {
		_ = t.Close()
		return nil, err
	}
	if err := t.verifyRunningKernel(bootCtx); err != nil { // verify.go: the vmlinux is the running kernel's
		_ = t.Close()
		return nil, err
	}
	return t, nil
}

// start boots the guest: QEMU, the console, the kernel watch, the debugger
// attached at reset, and the login. Boot calls it once; Reset calls it
// again (with fresh connections and no breakpoints) when QEMU is gone. On
// failure the caller closes the Target.
func (t *Target) start(bootCtx context.Context) error {
	o, spec := t.opts, t.spec
	begin := time.Now()
	cleanStale(o)

	cfg := supervisor.Config{
		Arch:        t.arch(),
		QEMU:        o.QEMU,
		DataDirs:    o.QEMUData,
		Kernel:      spec.Kernel,
		Initrd:      spec.Initrd,
		Append:      spec.Append,
		Disk:        spec.Disk,
		MemoryMiB:   firstNonZero(o.MemoryMiB, spec.MemoryMiB),
		CPUs:        firstNonZero(o.CPUs, spec.CPUs),
		Accel:       o.Accel,
		AccelCache:  accelCache(o),
		PanicDevice: true,
		VMCoreInfo:  true, // vmcore.go: cores carry the kernel's VMCOREINFO
	}
	o.Logf("booting %s %s", spec.Name, spec.Version)
	var err error
	t.machine, err = supervisor.Start(bootCtx, cfg)
	if err != nil {
		return &HarnessError{Op: "start QEMU", Err: err}
	}
	logAccel(o, t.machine.Accel(), t.machine.AccelReason())
	var transcript io.Writer = &t.rec
	if o.Transcript != nil {
		transcript = io.MultiWriter(o.Transcript, &t.rec)
	}
	t.kw = newKernelWatch(t.os.Messages(), t.ConsoleTail)
	t.console = guest.NewConsole(t.machine.Console(), t.profile, guest.ConsoleOptions{Transcript: transcript, OnKernelLine: t.kw.line})
	t.startKernelWatch()

	if err := t.attachAndRun(bootCtx); err != nil {
		return t.fail("attach the debugger and start the guest", 0, err)
	}
	loginCtx, release := t.kw.watch(bootCtx, 0)
	err = t.console.Login(loginCtx, spec.User, spec.Password)
	release()
	if err != nil {
		return t.fail(fmt.Sprintf("log in to %s as %s", spec.Name, spec.User), 0, err)
	}
	t.BootDuration = time.Since(begin)
	o.Logf("logged in as %s after %s", spec.User, t.BootDuration.Round(time.Millisecond))
	if spec.Hostname == "" {
		// A guest described by the user need not say its host name;
		// the guest does (specs compare with it after renaming it).
		res, err := t.console.Run(bootCtx, "uname -n")
		if err != nil || res.Status != 0 {
			return t.fail("read the host name of "+spec.Name+" (uname -n)", 0, errors.Join(err, fmt.Errorf("status %d: %s", res.Status, res.Output)))
		}
		spec.Hostname = strings.TrimSpace(res.Output)
	}
	return nil
}

// attachAndRun connects kspec's RSP client while QEMU is still halted at
// reset (-S) and lets the guest run, through the debugger when there is one
// (so the client knows the run state) or through QMP otherwise.
func (t *Target) attachAndRun(ctx context.Context) error {
	if t.opts.NoDebugger {
		return t.machine.QMP().Cont(ctx)
	}
	conn, err := t.machine.DialGDB(ctx)
	if err != nil {
		return fmt.Errorf("dial gdbstub: %w", err)
	}
	c, err := rsp.Connect(ctx, conn, rsp.Options{})
	if err != nil {
		conn.Close()
		return fmt.Errorf("gdbstub handshake: %w", err)
	}
	t.setDebugger(c)
	return t.gdb.Continue(ctx)
}

// explainBootFailure turns "QEMU exited" into the more useful cause.
func (t *Target) explainBootFailure(err error) error {
	select {
	case <-t.machine.Done():
		if qerr := t.machine.Err(); qerr != nil {
			return fmt.Errorf("%w (QEMU exited: %w)", err, qerr)
		}
		return fmt.Errorf("%w (QEMU exited)", err)
	default:
		return err
	}
}

// Spec describes the guest that runs.
func (t *Target) Spec() *guest.Spec { return t.spec }

// Symbols is the kernel's symbol table (nil with Options.NoDebugger).
func (t *Target) Symbols() *symbols.Table { return t.syms }

// RSP is kspec's GDB client attached to QEMU's gdbstub (nil with NoDebugger).
func (t *Target) RSP() *rsp.Client { return t.gdb }

// QMP is the QEMU monitor connection. If it was lost while QEMU runs, QMP
// connects again first (bounded; on failure the lost Monitor is returned,
// and its calls say why).
func (t *Target) QMP() *qmp.Monitor {
	if t.machine.QMP().Err() != nil {
		ctx, cancel := context.WithTimeout(context.Background(), reconnectTimeout)
		defer cancel()
		if mon, err := t.monitor(ctx, "QMP"); err == nil {
			return mon
		}
	}
	return t.machine.QMP()
}

// Machine is the supervised QEMU process.
func (t *Target) Machine() *supervisor.Machine { return t.machine }

// Console is the logged-in serial console.
func (t *Target) Console() *guest.Console { return t.console }

// ConsoleTail returns the last n bytes the guest printed.
// It reads the console's redacted view (a password echoed by login(1) is
// masked) rather than the raw log.
func (t *Target) ConsoleTail(n int) string {
	if t.console != nil {
		return t.console.Tail(n)
	}
	if t.machine == nil {
		return ""
	}
	return t.machine.ConsoleTail(n)
}

// Shell runs cmd in the guest's shell and returns its output and exit
// status. The guest must be running (not stopped at a breakpoint). When the
// kernel panics or oopses meanwhile, Shell returns a *KernelError with the
// kernel's text at once (with the result when the command still finished).
func (t *Target) Shell(ctx context.Context, cmd string) (guest.Result, error) {
	if err := t.ensureDebugger(ctx, "shell "+cmd); err != nil {
		return guest.Result{}, err
	}
	if t.gdb != nil && !t.gdb.Running() {
		return guest.Result{}, &HarnessError{Op: "shell " + cmd, Err: errors.New("the guest is stopped in the debugger; call Continue first")}
	}
	t.rec.typed(cmd)
	mark := t.kw.mark()
	wctx, release := t.kw.watch(ctx, mark)
	defer release()
	res, err := t.console.Run(wctx, cmd)
	if err != nil {
		return res, t.shellFailed("shell "+cmd, mark, err, true)
	}
	if k := t.kw.since(mark); k != nil { // an oops the command survived
		return res, k
	}
	return res, nil
}

// shellFailed turns the error of a shell command that began at mark into
// what Shell and Collect return. A command that ended the login shell
// (exit 3, exec sh, kill -9 $$) gets its *guest.ShellEndedError as it is,
// unless the kernel failed meanwhile: it is the command's doing, not the
// harness's, and the console has logged in again (or says why not).
// Otherwise, with mayRun, the command is noted as possibly still running.
func (t *Target) shellFailed(op string, mark int, err error, mayRun bool) error {
	var se *guest.ShellEndedError
	if errors.As(err, &se) {
		if k := t.kernelFailure(mark); k != nil {
			return k
		}
		if se.Err != nil {
			t.rec.markDirty()
		}
		return se
	}
	if mayRun {
		t.rec.markDirty() // it may still run (see RestoreSnapshot)
	}
	return t.fail(op, mark, err)
}

// Start sends cmd to the guest's shell without waiting for it to finish:
// the command runs while a breakpoint waits. Wait on the result later
// (Collect returns a kernel panic or oops as soon as it happens).
func (t *Target) Start(ctx context.Context, cmd string) (*guest.Pending, error) {
	if err := t.ensureDebugger(ctx, "start "+cmd); err != nil {
		return nil, err
	}
	t.rec.typed(cmd)
	mark := t.kw.mark()
	p, err := t.console.Start(ctx, cmd)
	if err != nil {
		return nil, t.fail("start "+cmd, mark, err)
	}
	t.rec.started(cmd, func() bool { return collected(p) })
	return p, nil
}

// collected reports, without waiting, whether p's result has arrived.
func collected(p *guest.Pending) bool {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := p.Wait(ctx)
	return err == nil
}

// Continue resumes a guest stopped in the debugger. A vCPU stopped on one of
// kspec's breakpoints is first stepped past it, as gdb does (QEMU would
// report the same breakpoint again at once).
func (t *Target) Continue(ctx context.Context) error {
	if err := t.ensureDebugger(ctx, "continue"); err != nil {
		return err
	}
	if t.gdb == nil || t.gdb.Running() {
		return nil
	}
	if err := t.resume(ctx); err != nil {
		return t.harnessErr("continue", err)
	}
	return nil
}

// Interrupt stops a running guest in the debugger and returns the stop.
func (t *Target) Interrupt(ctx context.Context) (rsp.StopReply, error) {
	if t.gdb == nil {
		return rsp.StopReply{}, &HarnessError{Op: "interrupt", Err: errors.New("no debugger attached")}
	}
	if err := t.ensureDebugger(ctx, "interrupt"); err != nil {
		return rsp.StopReply{}, err
	}
	if !t.gdb.Running() {
		return rsp.StopReply{}, nil
	}
	if err := t.gdb.Interrupt(ctx); err != nil {
		return rsp.StopReply{}, t.harnessErr("interrupt", err)
	}
	for {
		stop, err := t.gdb.WaitStop(ctx)
		if err != nil {
			return stop, t.harnessErr("wait for the interrupt's stop", err)
		}
		// A breakpoint that fired just before the interrupt is recorded on
		// its breakpoint; the VM is stopped either way.
		t.recordIfBreakpoint(ctx, stop)
		return stop, nil
	}
}

// Close stops QEMU (QMP quit, then kill), removes its run directory and
// releases the debugger and symbols. It is safe to call more than once.
func (t *Target) Close() error {
	t.closeOnce.Do(func() {
		t.closeErr = t.stopGuest()
		t.closeSymbols()
	})
	return t.closeErr
}

// stopGuest ends the QMP event subscription, closes the debugger and stops
// QEMU (removing its run directory); Close and restart use it.
func (t *Target) stopGuest() error {
	var errs []error
	if t.unwatch != nil {
		t.unwatch()
		t.unwatch = nil
	}
	if t.gdb != nil {
		errs = append(errs, ignoreClosed(t.gdb.Close()))
	}
	if t.machine != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		errs = append(errs, t.machine.Stop(ctx))
		cancel()
	}
	return errors.Join(errs...)
}

func (t *Target) closeSymbols() {
	if t.syms != nil {
		t.syms.Close()
	}
}

func ignoreClosed(err error) error {
	if errors.Is(err, rsp.ErrConnectionClosed) {
		return nil
	}
	return err
}

// harnessErr wraps err with the operation and the console tail, and says
// so when the cause is that QEMU died; when the kernel panicked (which may
// end QEMU too), the panic is returned instead.
func (t *Target) harnessErr(op string, err error) error {
	var existing *HarnessError
	if errors.As(err, &existing) {
		return err
	}
	var ke *KernelError
	if errors.As(err, &ke) {
		return err
	}
	if k := t.kernelFailure(t.kw.mark()); k != nil && k.Kind == "panic" {
		return k // the kernel died, and QEMU with it (panic=-1, -no-reboot)
	}
	if rerr, handled := t.afterLostConnection(op, err); handled {
		if rerr != nil {
			return rerr
		}
		err = fmt.Errorf("%w (the connection was lost while the request was on the wire; kspec reconnected, so the operation may be retried)", err)
	}
	he := &HarnessError{Op: op, Err: t.explainBootFailure(err)}
	var ce *guest.ConsoleError
	if !errors.As(err, &ce) { // console errors carry their own tail
		he.ConsoleTail = t.ConsoleTail(2048)
	}
	return he
}

func firstNonZero(v ...int) int {
	for _, x := range v {
		if x != 0 {
			return x
		}
	}
	return 0
}

// StartMachine starts the guest's QEMU without logging in or attaching a
// debugger, for interactive use (`kspec boot`): the caller owns the console
// and a person may attach gdb to the machine's gdbstub. Unless halted, the
// guest is started; halted leaves it at the reset vector like `qemu -S`.
func StartMachine(ctx context.Context, opts Options, halted bool) (*supervisor.Machine, *guest.Spec, error) {
	o := opts.withDefaults()
	spec, err := ResolveGuest(o)
	if err != nil {
		return nil, nil, err
	}
	cpu, err := spec.CPU()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: guest %s: %w", ErrBadInput, spec.Name, err)
	}
	o.QEMU = qemuFor(o.QEMU, cpu)
	if err := CheckQEMU(o.QEMU, cpu); err != nil {
		return nil, nil, err
	}
	if err := CheckRunDirBase(); err != nil { // rundir.go: $TMPDIR holds the sockets
		return nil, nil, err
	}
	cleanStale(o)
	m, err := supervisor.Start(ctx, supervisor.Config{
		Arch: cpu, QEMU: o.QEMU, DataDirs: o.QEMUData, Kernel: spec.Kernel, Initrd: spec.Initrd, Append: spec.Append, Disk: spec.Disk,
		MemoryMiB: firstNonZero(o.MemoryMiB, spec.MemoryMiB), CPUs: firstNonZero(o.CPUs, spec.CPUs),
		Accel: o.Accel, AccelCache: accelCache(o), PanicDevice: true, VMCoreInfo: true,
	})
	if err != nil {
		return nil, nil, &HarnessError{Op: "start QEMU", Err: err}
	}
	logAccel(o, m.Accel(), m.AccelReason())
	if !halted {
		if err := m.QMP().Cont(ctx); err != nil {
			stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			m.Stop(stopCtx)
			return nil, nil, &HarnessError{Op: "start the guest", Err: err}
		}
	}
	return m, spec, nil
}

// cleanStale removes run directories (and kills QEMUs) left behind by kspec
// processes that died without cleaning up, e.g. on SIGKILL.
func cleanStale(o Options) {
	removed, err := supervisor.CleanStale("")
	if len(removed) > 0 {
		o.Logf("removed %d stale run directories of dead kspec processes", len(removed))
	}
	if err != nil {
		o.Logf("cleaning stale run directories: %v", err)
	}
}

// arch returns the guest's CPU architecture (the default one for a Target
// that was not booted, as in tests).
// Arch is the guest's CPU architecture: register names (Arch().PC()),
// argument registers, the gdb that debugs it.
func (t *Target) Arch() arch.Arch { return t.arch() }

func (t *Target) arch() arch.Arch {
	if t == nil || t.cpu == nil {
		return arch.Default()
	}
	return t.cpu
}

// SyscallEntry names the kernel function that system call enters first in
// this guest, as its OS and architecture name it: "mkdir" is
// "__x64_sys_mkdir" on Linux x86_64 and "sys_mkdir" on FreeBSD.
func (t *Target) SyscallEntry(call string) (string, error) {
	name, err := t.os.SyscallEntry(call, t.arch())
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	return name, nil
}
