package freebsd

import (
	"fmt"

	"github.com/kspec/kspec/kernel"
)

// tasks finds curthread on FreeBSD: the first member of the struct pcpu
// that %gs points to in kernel mode on amd64, then td_tid, td_proc, p_comm
// and p_pid. Every offset comes from the kernel's DWARF.
type tasks struct {
	curthread   uint64 // offsetof(struct pcpu, pc_curthread)
	pcpuArray   uint64 // &cpuid_to_pcpu[0], 0 if absent
	tdProc      kernel.Member
	tdTid       kernel.Member
	pComm, pPid kernel.Member
}

// NewTaskFinder resolves struct pcpu's pc_curthread (0, where amd64 keeps
// it, if DWARF lacks it), cpuid_to_pcpu and the thread and proc members.
func (OS) NewTaskFinder(env kernel.Env) (kernel.TaskFinder, error) {
	f := &tasks{}
	if m, err := kernel.ResolveMember(env, "struct pcpu", "pc_curthread"); err == nil {
		f.curthread = m.Off
	} // else: %gs:0, where amd64 keeps it
	if v, err := env.Expr("cpuid_to_pcpu"); err == nil {
		f.pcpuArray = v.Addr
	}
	var err error
	if f.tdProc, err = kernel.ResolveMember(env, "struct thread", "td_proc"); err != nil {
		return nil, err
	}
	if f.tdTid, err = kernel.ResolveMember(env, "struct thread", "td_tid"); err != nil {
		return nil, err
	}
	if f.pComm, err = kernel.ResolveMember(env, "struct proc", "p_comm"); err != nil {
		return nil, err
	}
	if f.pPid, err = kernel.ResolveMember(env, "struct proc", "p_pid"); err != nil {
		return nil, err
	}
	return f, nil
}

// Current reads cpu's curthread and its process.
func (f *tasks) Current(env kernel.Env, cpu int) (kernel.Task, error) {
	pcpu, err := f.pcpu(env, cpu)
	if err != nil {
		return kernel.Task{}, err
	}
	td, err := kernel.ReadUint(env, pcpu+f.curthread, 8)
	if err != nil {
		return kernel.Task{}, fmt.Errorf("curthread of cpu %d (pcpu %#x): %w", cpu, pcpu, err)
	}
	if td == 0 {
		return kernel.Task{}, fmt.Errorf("curthread of cpu %d is NULL", cpu)
	}
	proc, err := kernel.ReadUint(env, td+f.tdProc.Off, 8)
	if err != nil {
		return kernel.Task{}, fmt.Errorf("td_proc of thread %#x: %w", td, err)
	}
	task, err := kernel.ReadTask(env, td, proc, f.pComm, f.pPid, kernel.Member{}, "proc")
	if err != nil {
		return kernel.Task{}, err
	}
	tid, err := kernel.ReadUint(env, td+f.tdTid.Off, int(f.tdTid.Size))
	if err != nil {
		return kernel.Task{}, fmt.Errorf("td_tid of thread %#x: %w", td, err)
	}
	task.TID = int(int32(tid))
	return task, nil
}

// pcpuBase returns the address of cpu's struct pcpu from its registers, per
// architecture (keyed by arch.Arch.Name).
var pcpuBase = map[string]func(env kernel.Env, cpu int) (uint64, error){
	// amd64: the kernel GS base; in kernel mode gs_base, in user mode
	// k_gs_base, which swapgs exchanges.
	"x86_64": func(env kernel.Env, cpu int) (uint64, error) {
		cs, err := env.Reg(cpu, "cs")
		if err != nil {
			return 0, err
		}
		name := "gs_base"
		if cs&3 == 3 {
			name = "k_gs_base"
		}
		return env.Reg(cpu, name)
	},
}

// pcpu returns the address of cpu's struct pcpu: from the registers (see
// pcpuBase), or cpuid_to_pcpu[cpu] when they are unavailable.
func (f *tasks) pcpu(env kernel.Env, cpu int) (uint64, error) {
	var regErr error
	a := env.Arch()
	if base, ok := pcpuBase[a.Name()]; ok {
		if p, err := base(env, cpu); err != nil {
			regErr = err
		} else if p >= a.KernelBase() {
			return p, nil
		}
	} else {
		regErr = fmt.Errorf("the per-CPU register of %s is not known", a.Name())
	}
	if f.pcpuArray != 0 {
		p, err := kernel.ReadUint(env, f.pcpuArray+8*uint64(cpu), 8)
		if err == nil && p != 0 {
			return p, nil
		}
	}
	return 0, fmt.Errorf("no struct pcpu for cpu %d (GS base: %v; no cpuid_to_pcpu)", cpu, regErr)
}
