package freebsd

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/kspec/kspec/kernel"
	"github.com/kspec/kspec/kernel/kerneltest"
	"github.com/kspec/kspec/symbols"
)

// freebsdEnv is shaped like a FreeBSD amd64 kernel.debug: struct pcpu
// starts with pc_curthread, which %gs:0 reads in kernel mode; struct thread
// has td_proc and td_tid, struct proc p_comm (char [20]) and p_pid.
func freebsdEnv() *kerneltest.Env {
	f := kerneltest.NewEnv()
	f.Member("struct pcpu", "pc_curthread", 0, 8, "struct thread *")
	f.Member("struct thread", "td_proc", 0x8, 8, "struct proc *")
	f.Member("struct thread", "td_tid", 0x9c, 4, "lwpid_t")
	f.Member("struct proc", "p_comm", 0x3c4, 20, "char [20]")
	f.Member("struct proc", "p_pid", 0xbc, 4, "pid_t")
	f.Exprs["cpuid_to_pcpu"] = symbols.Value{Expr: "cpuid_to_pcpu", Addr: 0xffffffff81d2c000, Size: 8 * 256, TypeName: "struct pcpu *[256]"}
	const pcpu0, pcpu1 = 0xffffffff81e1b000, 0xfffffe00a0b00000
	const td0, proc0 = 0xfffff80003a2c740, 0xfffffe00a1234000
	const td1, proc1 = 0xfffff80003b00000, 0xfffffe00a2000000
	b := make([]byte, 16)
	binary.LittleEndian.PutUint64(b, pcpu0)
	binary.LittleEndian.PutUint64(b[8:], pcpu1)
	f.Mem[0xffffffff81d2c000] = b
	f.Put(pcpu0, 8, td0)
	f.Put(td0+0x8, 8, proc0)
	f.Put(td0+0x9c, 4, 100123)
	f.PutString(proc0+0x3c4, 20, "mkdir")
	f.Put(proc0+0xbc, 4, 1234)
	f.Put(pcpu1, 8, td1)
	f.Put(td1+0x8, 8, proc1)
	f.Put(td1+0x9c, 4, 100200)
	f.PutString(proc1+0x3c4, 20, "sh")
	f.Put(proc1+0xbc, 4, 77)
	// cpu0 is in the kernel: GS base is its pcpu. cpu1 was stopped in user
	// mode: gs_base is the user's, swapgs left the kernel's in k_gs_base.
	f.Regs["0:cs"], f.Regs["0:gs_base"], f.Regs["0:k_gs_base"] = 0x20, pcpu0, 0x800000
	f.Regs["1:cs"], f.Regs["1:gs_base"], f.Regs["1:k_gs_base"] = 0x43, 0x800000, pcpu1
	return f
}

func TestFreeBSDCurrentTask(t *testing.T) {
	f := freebsdEnv()
	l, err := OS{}.NewTaskFinder(f)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]kernel.Task{
		0: {Addr: 0xfffff80003a2c740, Comm: "mkdir", PID: 1234, TID: 100123},
		1: {Addr: 0xfffff80003b00000, Comm: "sh", PID: 77, TID: 100200},
	}
	for cpu, w := range want {
		got, err := l.Current(f, cpu)
		if err != nil {
			t.Fatalf("cpu %d: %v", cpu, err)
		}
		if got != w {
			t.Errorf("cpu %d: got %+v, want %+v", cpu, got, w)
		}
	}

	// Without the GS registers, cpuid_to_pcpu[cpu] finds the pcpu.
	f.Regs = map[string]uint64{}
	got, err := l.Current(f, 1)
	if err != nil || got.Comm != "sh" {
		t.Errorf("via cpuid_to_pcpu: %+v, %v", got, err)
	}
	// Neither: the error says what was tried.
	delete(f.Mem, 0xffffffff81d2c000)
	if _, err := l.Current(f, 1); err == nil || !strings.Contains(err.Error(), "no struct pcpu for cpu 1") {
		t.Errorf("no pcpu: %v", err)
	}
}

// Without DWARF for struct pcpu, curthread is at %gs:0 (amd64's
// OFFSETOF_CURTHREAD); without struct thread's td_proc the layout fails and
// names the member.
func TestFreeBSDLayoutFallbacks(t *testing.T) {
	f := freebsdEnv()
	delete(f.Members, "struct pcpu.pc_curthread")
	l, err := OS{}.NewTaskFinder(f)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := l.Current(f, 0); err != nil || got.PID != 1234 {
		t.Errorf("got %+v, %v", got, err)
	}
	delete(f.Members, "struct thread.td_proc")
	if _, err := (OS{}).NewTaskFinder(f); err == nil || !strings.Contains(err.Error(), "offsetof(struct thread, td_proc)") {
		t.Errorf("missing td_proc: %v", err)
	}
}
