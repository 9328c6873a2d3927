package linux

import (
	"fmt"
	"strings"

	"github.com/kspec/kspec/kernel"
)

// tasks finds `current` on Linux: the per-CPU variable current_task
// (pcpu_hot.current_task from 6.2 to 6.14, see CurrentTaskVariables) at its
// symbol plus __per_cpu_offset[cpu], then task_struct's comm, pid and tgid.
// Every offset comes from the kernel's DWARF.
type tasks struct {
	currentSym uint64 // the per-CPU variable's symbol value
	perCPU     uint64 // &__per_cpu_offset[0], 0 for a uniprocessor kernel
	comm       kernel.Member
	pid, tgid  kernel.Member
	currentVar string
}

// NewTaskFinder resolves current_task (or pcpu_hot.current_task),
// __per_cpu_offset and struct task_struct's comm, pid and tgid.
func (OS) NewTaskFinder(env kernel.Env) (kernel.TaskFinder, error) {
	l := &tasks{}
	var firstErr error
	v, _ := ParseRelease(env.Release()) // zero (unknown) if it does not read as one
	candidates := CurrentTaskVariables(v)
	for _, name := range candidates {
		v, err := env.Expr(name)
		if err == nil {
			l.currentSym, l.currentVar = v.Addr, name
			break
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if l.currentVar == "" {
		return nil, fmt.Errorf("the kernel has none of %s: %w", strings.Join(candidates, ", "), firstErr)
	}
	if v, err := env.Expr(PerCPUOffsets); err == nil {
		l.perCPU = v.Addr
	}
	var err error
	if l.comm, err = kernel.ResolveMember(env, "struct task_struct", "comm"); err != nil {
		return nil, err
	}
	if l.pid, err = kernel.ResolveMember(env, "struct task_struct", "pid"); err != nil {
		return nil, err
	}
	if l.tgid, err = kernel.ResolveMember(env, "struct task_struct", "tgid"); err != nil {
		return nil, err
	}
	return l, nil
}

// Current reads cpu's current task.
func (l *tasks) Current(env kernel.Env, cpu int) (kernel.Task, error) {
	// Up to Linux 6.14 a per-CPU variable's symbol is its offset in the
	// per-CPU area (x86-64 SMP links that area at 0) and
	// __per_cpu_offset[cpu] is where cpu's copy starts (the kernel's GS
	// base); from 6.15 the symbol is its address in .data..percpu and the
	// offset is the distance to cpu's copy, usually "negative". Both are
	// symbol + offset in wrapping 64-bit arithmetic.
	addr := l.currentSym
	if l.perCPU != 0 {
		off, err := kernel.ReadUint(env, l.perCPU+8*uint64(cpu), 8)
		if err != nil {
			return kernel.Task{}, fmt.Errorf("__per_cpu_offset[%d]: %w", cpu, err)
		}
		addr += off
	}
	taskAddr, err := kernel.ReadUint(env, addr, 8)
	if err != nil {
		return kernel.Task{}, fmt.Errorf("%s of cpu %d at %#x: %w", l.currentVar, cpu, addr, err)
	}
	if taskAddr == 0 {
		return kernel.Task{}, fmt.Errorf("%s of cpu %d is NULL (the kernel is still booting?)", l.currentVar, cpu)
	}
	return kernel.ReadTask(env, taskAddr, taskAddr, l.comm, l.tgid, l.pid, "task_struct")
}
