package linux

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/kspec/kspec/arch/arm64"
	"github.com/kspec/kspec/kernel"
	"github.com/kspec/kspec/kernel/kerneltest"
	"github.com/kspec/kspec/symbols"
)

// linuxEnv is shaped like the Debian 6.1 cloud kernel: current_task is a
// per-CPU variable at offset 0x1fb80 of the per-CPU area (x86-64 SMP links
// it at 0), __per_cpu_offset holds each CPU's area, task_struct.comm is at
// 0xba0, pid at 0x970 and tgid at 0x974.
func linuxEnv() *kerneltest.Env {
	f := kerneltest.NewEnv()
	f.Exprs["current_task"] = symbols.Value{Expr: "current_task", Addr: 0x1fb80, Size: 8, TypeName: "struct task_struct *"}
	f.Exprs["__per_cpu_offset"] = symbols.Value{Expr: "__per_cpu_offset", Addr: 0xffffffff8239eb60, Size: 8 * 8192, TypeName: "unsigned long [8192]"}
	f.Member("struct task_struct", "comm", 0xba0, 16, "char [16]")
	f.Member("struct task_struct", "pid", 0x970, 4, "pid_t")
	f.Member("struct task_struct", "tgid", 0x974, 4, "pid_t")
	pcpu := []uint64{0xffff88800f800000, 0xffff88800fa00000}
	b := make([]byte, 16)
	binary.LittleEndian.PutUint64(b, pcpu[0])
	binary.LittleEndian.PutUint64(b[8:], pcpu[1])
	f.Mem[0xffffffff8239eb60] = b
	// cpu0 runs mkdir (pid 91); cpu1 runs the second thread of a process.
	f.Put(pcpu[0]+0x1fb80, 8, 0xffff8880054fe000)
	f.PutString(0xffff8880054fe000+0xba0, 16, "mkdir")
	f.Put(0xffff8880054fe000+0x970, 4, 91)
	f.Put(0xffff8880054fe000+0x974, 4, 91)
	f.Put(pcpu[1]+0x1fb80, 8, 0xffff888006000000)
	f.PutString(0xffff888006000000+0xba0, 16, "worker-thread-xx") // 16 bytes, no NUL
	f.Put(0xffff888006000000+0x970, 4, 120)
	f.Put(0xffff888006000000+0x974, 4, 118)
	return f
}

func TestLinuxCurrentTask(t *testing.T) {
	f := linuxEnv()
	l, err := OS{}.NewTaskFinder(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cpu  int
		want kernel.Task
	}{
		{0, kernel.Task{Addr: 0xffff8880054fe000, Comm: "mkdir", PID: 91, TID: 91}},
		{1, kernel.Task{Addr: 0xffff888006000000, Comm: "worker-thread-xx", PID: 118, TID: 120}},
	} {
		got, err := l.Current(f, tc.cpu)
		if err != nil {
			t.Fatalf("cpu %d: %v", tc.cpu, err)
		}
		if got != tc.want {
			t.Errorf("cpu %d: got %+v, want %+v", tc.cpu, got, tc.want)
		}
	}
	if got := (kernel.Task{Comm: "w", PID: 118, TID: 120}).String(); got != "w[118/120]" {
		t.Errorf("String = %q", got)
	}
}

// From Linux 6.15 per-CPU symbols are linked at their address in
// .data..percpu (current_task of the Debian 7.2.13 cloud kernel is at
// 0xffffffff83dbd018), and __per_cpu_offset[cpu] is the distance from
// __per_cpu_start to cpu's copy, which wraps around 2^64.
func TestLinuxCurrentTaskLinkedPerCPU(t *testing.T) {
	f := linuxEnv()
	f.Rel = "7.2.13+deb14-cloud-amd64"
	const sym, start = 0xffffffff83dbd018, 0xffffffff83c00000
	f.Exprs["current_task"] = symbols.Value{Expr: "current_task", Addr: sym, Size: 8}
	area := uint64(0xffff88800f800000)
	off := area - start // wraps: the area lies below the link address
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, off)
	f.Mem[0xffffffff8239eb60] = b
	f.Put(area+(sym-start), 8, 0xffff8880054fe000)
	l, err := OS{}.NewTaskFinder(f)
	if err != nil {
		t.Fatal(err)
	}
	got, err := l.Current(f, 0)
	if err != nil || got.Comm != "mkdir" || got.PID != 91 {
		t.Fatalf("got %+v, %v", got, err)
	}
}

// From Linux 6.2 to 6.14 current_task lives in pcpu_hot.
func TestLinuxCurrentTaskPcpuHot(t *testing.T) {
	f := linuxEnv()
	f.Rel = "6.12.117+deb13-cloud-amd64"
	delete(f.Exprs, "current_task")
	f.Exprs["pcpu_hot.current_task"] = symbols.Value{Expr: "pcpu_hot.current_task", Addr: 0x1fb80, Size: 8, TypeName: "struct task_struct *"}
	l, err := OS{}.NewTaskFinder(f)
	if err != nil {
		t.Fatal(err)
	}
	got, err := l.Current(f, 0)
	if err != nil || got.Comm != "mkdir" {
		t.Fatalf("got %+v, %v", got, err)
	}
}

// A uniprocessor kernel has no __per_cpu_offset: the variable's symbol is
// its address.
func TestLinuxCurrentTaskUP(t *testing.T) {
	f := linuxEnv()
	delete(f.Exprs, "__per_cpu_offset")
	f.Exprs["current_task"] = symbols.Value{Expr: "current_task", Addr: 0xffffffff82a00000, Size: 8}
	f.Put(0xffffffff82a00000, 8, 0xffff8880054fe000)
	l, err := OS{}.NewTaskFinder(f)
	if err != nil {
		t.Fatal(err)
	}
	got, err := l.Current(f, 0)
	if err != nil || got.PID != 91 {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func TestLinuxCurrentTaskErrors(t *testing.T) {
	f := linuxEnv()
	delete(f.Members, "struct task_struct.comm")
	if _, err := (OS{}).NewTaskFinder(f); err == nil || !strings.Contains(err.Error(), "offsetof(struct task_struct, comm)") {
		t.Errorf("missing comm: %v", err)
	}
	f = linuxEnv()
	delete(f.Exprs, "current_task")
	if _, err := (OS{}).NewTaskFinder(f); err == nil || !strings.Contains(err.Error(), "current_task") {
		t.Errorf("missing current_task: %v", err)
	}
	f = linuxEnv()
	l, _ := OS{}.NewTaskFinder(f)
	f.Put(0xffff88800f800000+0x1fb80, 8, 0) // still booting
	if _, err := l.Current(f, 0); err == nil || !strings.Contains(err.Error(), "NULL") {
		t.Errorf("NULL current: %v", err)
	}
	if _, err := l.Current(f, 5); err == nil || !strings.Contains(err.Error(), "__per_cpu_offset[5]") {
		t.Errorf("unreadable per-CPU offset: %v", err)
	}
}

// arm64Env is shaped like the Debian 6.1 arm64 cloud kernel: no
// current_task; SP_EL0 holds current in kernel mode; runqueues is a
// per-CPU variable linked in .data..percpu (rq.curr at 0x960 of it).
func arm64Env() *kerneltest.Env {
	f := kerneltest.NewEnv()
	f.CPU = arm64.Arch{}
	f.Rel = "6.1.0-57-cloud-arm64"
	const rq, offsets = 0xffff80000a5e2b40, 0xffff800009ee6a48
	f.Exprs["runqueues.curr"] = symbols.Value{Expr: "runqueues.curr", Addr: rq + 0x960, Size: 8}
	f.Exprs["__per_cpu_offset"] = symbols.Value{Expr: "__per_cpu_offset", Addr: offsets, Size: 8 * 256}
	f.Member("struct task_struct", "comm", 0x738, 16, "char [16]")
	f.Member("struct task_struct", "pid", 0x590, 4, "pid_t")
	f.Member("struct task_struct", "tgid", 0x594, 4, "pid_t")
	area, start := uint64(0xffff0000ff3a0000), uint64(0xffff80000a000000)
	f.Put(offsets, 8, area-start) // cpu0's copy lies below the link address: wraps
	task := uint64(0xffff0000c1a2d100)
	f.Put(rq+0x960+(area-start), 8, task)
	f.PutString(task+0x738, 16, "mkdir")
	f.Put(task+0x590, 4, 93)
	f.Put(task+0x594, 4, 93)
	return f
}

func TestLinuxCurrentTaskArm64(t *testing.T) {
	const el1h, el0t = 0x600003c5, 0x80000000
	const mkdirTask = 0xffff0000c1a2d100
	want := kernel.Task{Addr: mkdirTask, Comm: "mkdir", PID: 93, TID: 93}
	for _, tc := range []struct {
		name    string
		regs    map[string]uint64
		noRQ    bool
		want    kernel.Task
		wantErr string
	}{
		{name: "kernel mode: SP_EL0", regs: map[string]uint64{"0:cpsr": el1h, "0:SP_EL0": mkdirTask}, want: want},
		{name: "user mode: the run queue (SP_EL0 is the user's stack)", regs: map[string]uint64{"0:cpsr": el0t, "0:SP_EL0": 0xfffffc8e2a30}, want: want},
		{name: "kernel mode before SP_EL0 is switched in", regs: map[string]uint64{"0:cpsr": el1h, "0:SP_EL0": 0xfffffc8e2a30}, want: want},
		{name: "user mode, no run queues", regs: map[string]uint64{"0:cpsr": el0t}, noRQ: true, wantErr: "runs user code"},
		{name: "no cpsr", regs: map[string]uint64{}, wantErr: "register cpsr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := arm64Env()
			f.Regs = tc.regs
			if tc.noRQ {
				delete(f.Exprs, "runqueues.curr")
			}
			l, err := OS{}.NewTaskFinder(f)
			if err != nil {
				t.Fatal(err)
			}
			got, err := l.Current(f, 0)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Current = %+v, %v; want an error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Current = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}
