package linux

import (
	"fmt"
	"strings"

	"github.com/kspec/kspec/kernel"
)

// tasks finds `current` on Linux. Where the architecture keeps it in a
// register while the CPU runs kernel code (arm64: SP_EL0, see archFacts),
// that register; otherwise, and on such an architecture while the CPU runs
// user code, the per-CPU variable current_task (pcpu_hot.current_task from
// 6.2 to 6.14, see CurrentTaskVariables) or, where the kernel has none
// (arm64), the CPU's run queue's curr, each at its symbol plus
// __per_cpu_offset[cpu]; then task_struct's comm, pid and tgid. Every
// offset comes from the kernel's DWARF.
type tasks struct {
	currentReg string // the register that holds current in kernel mode, "" if none
	currentSym uint64 // the per-CPU variable's symbol value (plus the member's offset)
	perCPU     uint64 // &__per_cpu_offset[0], 0 for a uniprocessor kernel
	comm       kernel.Member
	pid, tgid  kernel.Member
	currentVar string // what currentSym names, for errors; "" if none
}

// RunQueueCurrent is the per-CPU run queue's running task, what `current`
// is on a CPU that runs user code (arm64 has no current_task variable).
const RunQueueCurrent = "runqueues.curr"

// NewTaskFinder resolves the current task's register or per-CPU variable,
// __per_cpu_offset and struct task_struct's comm, pid and tgid.
func (OS) NewTaskFinder(env kernel.Env) (kernel.TaskFinder, error) {
	l := &tasks{currentReg: archFacts[env.Arch().Name()].currentRegister}
	var firstErr error
	v, _ := ParseRelease(env.Release()) // zero (unknown) if it does not read as one
	candidates := CurrentTaskVariables(v)
	if l.currentReg != "" {
		candidates = []string{RunQueueCurrent}
	}
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
	if l.currentVar == "" && l.currentReg == "" {
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
	taskAddr, err := l.currentAddr(env, cpu)
	if err != nil {
		return kernel.Task{}, err
	}
	return kernel.ReadTask(env, taskAddr, taskAddr, l.comm, l.tgid, l.pid, "task_struct")
}

// currentAddr is the address of cpu's current task_struct.
func (l *tasks) currentAddr(env kernel.Env, cpu int) (uint64, error) {
	if l.currentReg != "" {
		a := env.Arch()
		user, err := a.UserMode(func(name string) (uint64, error) { return env.Reg(cpu, name) })
		if err != nil {
			return 0, fmt.Errorf("cpu %d: is it in user mode? %w", cpu, err)
		}
		if !user {
			v, err := env.Reg(cpu, l.currentReg)
			if err != nil {
				return 0, fmt.Errorf("current task of cpu %d from %s: %w", cpu, l.currentReg, err)
			}
			if v >= a.KernelBase() {
				return v, nil
			}
			// Not a kernel pointer: the CPU has not switched it in yet
			// (the first instructions of an exception entry); ask the
			// run queue.
		}
		if l.currentVar == "" {
			return 0, fmt.Errorf("cpu %d runs user code, where %s is not the current task, and the kernel has no %s", cpu, l.currentReg, RunQueueCurrent)
		}
	}
	// Up to Linux 6.14 a per-CPU variable's symbol is its offset in the
	// per-CPU area (x86-64 SMP links that area at 0) and
	// __per_cpu_offset[cpu] is where cpu's copy starts (the kernel's GS
	// base); from 6.15, and on arm64 always, the symbol is its address in
	// .data..percpu and the offset is the distance to cpu's copy, usually
	// "negative". Both are symbol + offset in wrapping 64-bit arithmetic.
	addr := l.currentSym
	if l.perCPU != 0 {
		off, err := kernel.ReadUint(env, l.perCPU+8*uint64(cpu), 8)
		if err != nil {
			return 0, fmt.Errorf("__per_cpu_offset[%d]: %w", cpu, err)
		}
		addr += off
	}
	taskAddr, err := kernel.ReadUint(env, addr, 8)
	if err != nil {
		return 0, fmt.Errorf("%s of cpu %d at %#x: %w", l.currentVar, cpu, addr, err)
	}
	if taskAddr == 0 {
		return 0, fmt.Errorf("%s of cpu %d is NULL (the kernel is still booting?)", l.currentVar, cpu)
	}
	return taskAddr, nil
}
