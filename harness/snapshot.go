package harness

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/kspec/kspec/qmp"
)

// BaselineSnapshot is the tag of the snapshot SaveBaseline saves and Reset
// restores.
const BaselineSnapshot = "kspec-baseline"

// SnapshotMethod selects the QEMU commands a Target saves and restores
// snapshots with.
type SnapshotMethod int

const (
	// SnapshotAuto is the default: HMP savevm/loadvm, which restores a
	// logged-in busybox guest faster than the snapshot-load job (the job
	// adds its creation, status events, query-jobs and job-dismiss to every
	// restore; BenchmarkRestore measures both).
	SnapshotAuto SnapshotMethod = iota
	// SnapshotJob uses the QMP jobs snapshot-save, snapshot-load and
	// snapshot-delete (QEMU >= 6.0). When QEMU lacks them, the Target falls
	// back to SnapshotHMP.
	SnapshotJob
	// SnapshotHMP uses HMP savevm, loadvm and delvm through
	// human-monitor-command (every QEMU).
	SnapshotHMP
)

// String returns the method's name.
func (m SnapshotMethod) String() string {
	switch m {
	case SnapshotAuto:
		return "auto"
	case SnapshotJob:
		return "qmp-job"
	case SnapshotHMP:
		return "hmp"
	}
	return fmt.Sprintf("SnapshotMethod(%d)", int(m))
}

// snapshotState is a Target's snapshot bookkeeping.
type snapshotState struct {
	mu       sync.Mutex
	method   SnapshotMethod
	noJobs   bool            // QEMU answered CommandNotFound to a job command
	saved    map[string]bool // tags this Target saved
	baseline bool
}

// SetSnapshotMethod chooses how snapshots are saved and restored from now
// on (for measurements and for QEMUs where one of them misbehaves).
func (t *Target) SetSnapshotMethod(m SnapshotMethod) {
	t.snap.mu.Lock()
	t.snap.method = m
	t.snap.mu.Unlock()
}

// SnapshotMethod returns the method snapshots are saved and restored with:
// SnapshotJob or SnapshotHMP, never SnapshotAuto.
func (t *Target) SnapshotMethod() SnapshotMethod {
	t.snap.mu.Lock()
	defer t.snap.mu.Unlock()
	return t.snap.effective()
}

func (s *snapshotState) effective() SnapshotMethod {
	if s.method == SnapshotJob && !s.noJobs {
		return SnapshotJob
	}
	return SnapshotHMP
}

// SaveBaseline makes sure the shell is at its prompt (a console sync) and
// saves the state every spec starts from as BaselineSnapshot; Reset
// restores it. Call it once after Boot, before any breakpoint is set.
func (t *Target) SaveBaseline(ctx context.Context) error {
	if t.gdb != nil && !t.gdb.Running() {
		return &HarnessError{Op: "save the baseline snapshot", Err: errors.New("the guest is stopped in the debugger; the baseline must be a running guest at its shell prompt")}
	}
	if err := t.console.Sync(ctx); err != nil {
		return t.harnessErr("sync the console before the baseline snapshot", err)
	}
	if err := t.SaveSnapshot(ctx, BaselineSnapshot); err != nil {
		return err
	}
	t.snap.mu.Lock()
	t.snap.baseline = true
	t.snap.mu.Unlock()
	return nil
}

// Reset brings the guest back to the baseline (see SaveBaseline) and marks
// the start of a new spec (see BeginSpec): RestoreSnapshot(BaselineSnapshot)
// followed by BeginSpec. Call it before every spec. When the last spec
// killed the guest (QEMU exited or was killed, or the kernel panicked),
// Reset boots a fresh guest instead and saves its baseline (restart.go).
func (t *Target) Reset(ctx context.Context) error {
	t.snap.mu.Lock()
	ok := t.snap.baseline
	t.snap.mu.Unlock()
	if !ok {
		return &HarnessError{Op: "reset", Err: errors.New("no baseline snapshot: call SaveBaseline after Boot")}
	}
	if why := t.needsRestart(); why != nil { // restart.go
		if err := t.restart(ctx, why); err != nil {
			return &HarnessError{Op: "reset", Err: err}
		}
		t.BeginSpec()
		return nil
	}
	if err := t.RestoreSnapshot(ctx, BaselineSnapshot); err != nil {
		return err
	}
	t.BeginSpec()
	return nil
}

// SaveSnapshot saves the whole VM (RAM, devices, and the disk overlay if the
// guest has a disk) as snapshot tag on the run's scratch drive, replacing a
// snapshot of that name. The guest keeps its run state: a running guest is
// paused for the save and resumes; a guest stopped in the debugger stays
// stopped.
//
// Under KVM a software breakpoint is an int3 written into guest memory, so
// saving while kspec breakpoints are set is refused there (the snapshot
// would contain them); under TCG breakpoints live in QEMU, not in the
// guest, and are never part of a snapshot.
func (t *Target) SaveSnapshot(ctx context.Context, tag string) error {
	op := "save snapshot " + tag
	if tag == "" {
		return fmt.Errorf("%w: %s: empty snapshot tag", ErrBadInput, op)
	}
	if t.machine.Accel() == "kvm" && t.gdb != nil {
		t.mu.Lock()
		n := len(t.breakpoints)
		t.mu.Unlock()
		if n > 0 {
			return &HarnessError{Op: op, Err: fmt.Errorf("%d breakpoints are set, and under KVM they are int3 bytes in guest memory that the snapshot would keep; clear them first", n)}
		}
	}
	t.snap.mu.Lock()
	defer t.snap.mu.Unlock()
	vmstate, devices := t.machine.SnapshotNodes()
	mon, err := t.monitor(ctx, op)
	if err != nil {
		return err
	}
	if t.snap.effective() == SnapshotJob {
		if t.snap.saved[tag] {
			// The job refuses to overwrite; HMP savevm replaces.
			if derr := mon.SnapshotDelete(ctx, tag, devices); derr != nil && !t.noteNoJobs(derr) {
				return t.harnessErr(op+": delete the old one", derr)
			}
		}
		if t.snap.effective() == SnapshotJob {
			err = mon.SnapshotSave(ctx, tag, vmstate, devices)
			if t.noteNoJobs(err) {
				err = mon.HMPSaveVM(ctx, tag)
			}
		} else {
			err = mon.HMPSaveVM(ctx, tag)
		}
	} else {
		err = mon.HMPSaveVM(ctx, tag)
	}
	if err != nil {
		return t.harnessErr(op, err)
	}
	if t.snap.saved == nil {
		t.snap.saved = map[string]bool{}
	}
	t.snap.saved[tag] = true
	return nil
}

// DeleteSnapshot deletes snapshot tag.
func (t *Target) DeleteSnapshot(ctx context.Context, tag string) error {
	t.snap.mu.Lock()
	defer t.snap.mu.Unlock()
	_, devices := t.machine.SnapshotNodes()
	mon, err := t.monitor(ctx, "delete snapshot "+tag)
	if err != nil {
		return err
	}
	if t.snap.effective() == SnapshotJob {
		err = mon.SnapshotDelete(ctx, tag, devices)
		if t.noteNoJobs(err) {
			err = mon.HMPDeleteVM(ctx, tag)
		}
	} else {
		err = mon.HMPDeleteVM(ctx, tag)
	}
	if err != nil {
		return t.harnessErr("delete snapshot "+tag, err)
	}
	delete(t.snap.saved, tag)
	if tag == BaselineSnapshot {
		t.snap.baseline = false
	}
	return nil
}

// noteNoJobs reports whether err says QEMU lacks the job commands, and
// remembers it; t.snap.mu is held.
func (t *Target) noteNoJobs(err error) bool {
	var ce *qmp.CommandError
	if errors.As(err, &ce) && ce.Class == "CommandNotFound" {
		t.snap.noJobs = true
		return true
	}
	return false
}

// loadSnapshot restores tag with the configured method; t.snap.mu is held.
func (t *Target) loadSnapshot(ctx context.Context, tag string) error {
	mon, err := t.monitor(ctx, "restore snapshot "+tag)
	if err != nil {
		return err
	}
	if t.snap.effective() == SnapshotJob {
		vmstate, devices := t.machine.SnapshotNodes()
		err := mon.SnapshotLoad(ctx, tag, vmstate, devices)
		if !t.noteNoJobs(err) {
			return err
		}
	}
	return mon.HMPLoadVM(ctx, tag)
}

// RestoreSnapshot brings the guest back to snapshot tag and resynchronises
// kspec with it, so that the guest runs at the state saved, with no trace
// of the timeline it left:
//
//   - Shell commands of the old timeline that may still run (started and not
//     collected, or a Shell call that failed) are interrupted (^C) and waited
//     for first, so that no keystrokes of them wait in the serial line to be
//     read by the restored shell.
//   - The debugger: a running guest is stopped through the RSP client (its
//     stop reply consumed); every breakpoint and watchpoint is removed in
//     QEMU with one `?` packet (QEMU removes them all when it receives it;
//     TCG breakpoints would otherwise survive the restore) and forgotten by
//     kspec (a Breakpoint of the old timeline is inactive and has no hits);
//     queued stop replies are dropped. The snapshot is loaded while the VM
//     is stopped, which keeps it stopped; then the guest is resumed through
//     the RSP client, so the client's run state is right: running.
//   - The console: output of the old timeline not yet read is discarded and
//     a command framed by a fresh nonce runs through the restored shell,
//     proving it is live and at its prompt.
//
// A snapshot saved while a command ran leaves that command running after
// the restore; the console sync then waits for it (bounded by ctx).
func (t *Target) RestoreSnapshot(ctx context.Context, tag string) error {
	op := "restore snapshot " + tag
	if err := t.checkSnapshotTag(ctx, op, tag); err != nil { // snapshotcheck.go
		return err
	}
	if busy := t.rec.busy(); len(busy) > 0 {
		t.settleShell(ctx, busy)
	}
	if t.gdb != nil {
		if err := t.stopAndForget(ctx); err != nil {
			return t.harnessErr(op+": stop the guest in the debugger", err)
		}
	}
	t.machine.ConsoleStream().Discard()
	t.snap.mu.Lock()
	err := t.loadSnapshot(ctx, tag)
	t.snap.mu.Unlock()
	damaged := err != nil && t.snapshotDamaged(ctx, tag, err) // snapshotcheck.go: QEMU reset the machine
	if t.gdb != nil && !damaged {
		// Resume whether or not the load worked: a failed load changes
		// nothing, and the guest must not be left stopped by kspec.
		if cerr := t.gdb.Continue(ctx); cerr != nil {
			err = errors.Join(err, fmt.Errorf("resume the guest: %w", cerr))
		}
	}
	if err != nil {
		return t.snapshotLoadErr(ctx, op, tag, err, damaged)
	}
	t.rec.settled()
	if err := t.console.Sync(ctx); err != nil {
		return t.harnessErr(op+": sync the console", err)
	}
	return nil
}

// stopAndForget stops the guest in the debugger, removes every breakpoint
// and watchpoint in QEMU and forgets kspec's.
func (t *Target) stopAndForget(ctx context.Context) error {
	if err := t.ensureDebugger(ctx, "stop the guest for a restore"); err != nil {
		return err
	}
	if err := t.stopInDebugger(ctx); err != nil {
		return err
	}
	// QEMU answers `?` with a stop reply and removes all breakpoints and
	// watchpoints (gdb_breakpoint_remove_all), TCG and KVM alike.
	if _, err := t.gdb.Query(ctx, "?"); err != nil {
		return fmt.Errorf("remove all breakpoints and watchpoints: %w", err)
	}
	t.gdb.DrainStops()
	t.mu.Lock()
	for addr, bp := range t.breakpoints {
		bp.active, bp.hits = false, nil
		delete(t.breakpoints, addr)
	}
	t.everArmed = nil // QEMU holds none now
	t.mu.Unlock()
	t.forgetWatchpoints()
	return nil
}

// stopInDebugger leaves the VM stopped with no stop reply in flight, so
// that the next packet is answered by its own reply.
//
// A client that believes the guest runs interrupts it and waits for the
// stop: the interrupt's, or one already on its way (a breakpoint; QEMU
// ignores the interrupt byte then), or the one that follows a continue
// still in flight. A client that believes the guest stopped cannot see a
// VM resumed behind its back (QMP cont), so QMP is asked; a packet sent
// to a running VM would stop it and be lost.
func (t *Target) stopInDebugger(ctx context.Context) error {
	behindBack := !t.gdb.Running()
	if behindBack {
		mon, err := t.monitor(ctx, "query the run state")
		if err != nil {
			return err
		}
		st, err := mon.Status(ctx)
		if err != nil {
			return fmt.Errorf("query the run state: %w", err)
		}
		if !st.Running {
			return nil
		}
		t.gdb.DrainStops() // stale: they describe a stop that QMP ended
	}
	if err := t.gdb.Interrupt(ctx); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	stop, err := t.gdb.WaitStop(wctx)
	if err != nil {
		// Resumed behind the client's back, the guest may have stopped
		// at a breakpoint between the status query and the drain, and
		// QEMU ignores the interrupt then: it is stopped all the same.
		if behindBack && ctx.Err() == nil {
			if st, serr := t.machine.QMP().Status(ctx); serr == nil && !st.Running {
				return nil
			}
		}
		return fmt.Errorf("interrupt the guest: %w", err)
	}
	return t.checkExited(stop)
}

// settleShell gets commands of the old timeline out of the way before a
// restore: keystrokes QEMU has not yet passed to the guest would otherwise
// be read by the restored shell. It resumes the guest without breakpoints,
// interrupts the commands and waits (briefly) for the shell. Failures are
// ignored: the restore replaces that shell anyway.
func (t *Target) settleShell(ctx context.Context, busy []string) {
	t.opts.Logf("restore: interrupting shell commands of the old timeline: %q", busy)
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if t.gdb != nil {
		if err := t.stopAndForget(sctx); err != nil {
			return
		}
		if err := t.gdb.Continue(sctx); err != nil {
			return
		}
	}
	_ = t.console.Interrupt(sctx)
	_ = t.console.Sync(sctx)
}

// forgetWatchpoints drops kspec's watchpoints (inspect.go) after QEMU
// removed them all.
func (t *Target) forgetWatchpoints() {
	t.insp.mu.Lock()
	defer t.insp.mu.Unlock()
	for _, w := range t.insp.watchpoints {
		w.active, w.hits = false, nil
	}
	t.insp.watchpoints = nil
}
