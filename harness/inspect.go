package harness

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/kspec/kspec/kernel"
	"github.com/kspec/kspec/symbols"
)

// This file and data.go, backtrace.go, task.go, watch.go and resume.go are
// the debugger's inspection layer: backtraces, the current task, values of
// DWARF expressions, watchpoints and single steps. Every inspection needs
// the guest stopped in the debugger; a Hit is inspected while the guest is
// still stopped there. This file holds what they share: the per-hit caches
// and the checks that the guest is stopped.

// Frame is one frame of a backtrace, innermost first: symbols' unwinder
// frame (function, file:line, PC, inlined, stop reason), formatted like a
// line of gdb's bt by its String method.
type Frame = symbols.Frame

// Task is the kernel's current task on a stopped vCPU (see kernel.Task):
// on Linux the task_struct that `current` names, on FreeBSD curthread and
// its process.
type Task = kernel.Task

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
