package harness

import (
	"context"
	"fmt"

	"github.com/kspec/kspec/arch"
	"github.com/kspec/kspec/symbols"
)

// The current task on a stopped vCPU, as the guest OS's package finds it
// (kernel.OS.NewTaskFinder) through targetEnv.

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
	return e.t.readGuest(e.ctx, addr, n)
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
