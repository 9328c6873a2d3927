package harness

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/onsi/gomega"

	"github.com/kspec/kspec/kernel/linux"
	"github.com/kspec/kspec/symbols"
)

// fakeEnv is a stopped guest made of DWARF-shaped answers: what Expr and
// Offsetof would say for the kernel's types, a sparse memory map and
// per-CPU registers.
type fakeEnv struct {
	exprs   map[string]symbols.Value // "current_task" -> value
	members map[string]symbols.Value // "struct thread.td_proc" -> offset in Addr
	mem     map[uint64][]byte        // region start -> bytes
	regs    map[string]uint64        // "0:gs_base" -> value
	reads   []string
	version linux.Version // what kernelVersion answers
}

func newFakeEnv() *fakeEnv {
	return &fakeEnv{exprs: map[string]symbols.Value{}, members: map[string]symbols.Value{}, mem: map[uint64][]byte{}, regs: map[string]uint64{}}
}

func (f *fakeEnv) expr(e string) (symbols.Value, error) {
	if v, ok := f.exprs[e]; ok {
		return v, nil
	}
	return symbols.Value{}, fmt.Errorf("symbols: expression %q: %w", e, symbols.ErrUnknownSymbol)
}

func (f *fakeEnv) offsetof(typ, m string) (symbols.Value, error) {
	if v, ok := f.members[typ+"."+m]; ok {
		return v, nil
	}
	return symbols.Value{}, fmt.Errorf("%s has no member %q: %w", typ, m, symbols.ErrBadExpr)
}

func (f *fakeEnv) read(addr uint64, n int) ([]byte, error) {
	f.reads = append(f.reads, fmt.Sprintf("%#x/%d", addr, n))
	for start, b := range f.mem {
		if addr >= start && addr+uint64(n) <= start+uint64(len(b)) {
			return append([]byte(nil), b[addr-start:addr-start+uint64(n)]...), nil
		}
	}
	return nil, fmt.Errorf("rsp: m%x,%x: E14", addr, n)
}

func (f *fakeEnv) kernelVersion() linux.Version { return f.version }

func (f *fakeEnv) reg(cpu int, name string) (uint64, error) {
	if v, ok := f.regs[fmt.Sprintf("%d:%s", cpu, name)]; ok {
		return v, nil
	}
	return 0, fmt.Errorf("cpu %d register %s: no such register", cpu, name)
}

// put writes a little-endian integer of size bytes into a fresh region.
func (f *fakeEnv) put(addr uint64, size int, v uint64) {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, v)
	f.mem[addr] = b[:size]
}

func (f *fakeEnv) putString(addr uint64, size int, s string) {
	b := make([]byte, size)
	copy(b, s)
	f.mem[addr] = b
}

func (f *fakeEnv) member(typ, name string, off, size uint64, typeName string) {
	f.members[typ+"."+name] = symbols.Value{Expr: fmt.Sprintf("offsetof(%s, %s)", typ, name), Addr: off, Size: size, TypeName: typeName}
}

// linuxEnv is shaped like the Debian 6.1 cloud kernel: current_task is a
// per-CPU variable at offset 0x1fb80 of the per-CPU area (x86-64 SMP links
// it at 0), __per_cpu_offset holds each CPU's area, task_struct.comm is at
// 0xba0, pid at 0x970 and tgid at 0x974.
func linuxEnv() *fakeEnv {
	f := newFakeEnv()
	f.exprs["current_task"] = symbols.Value{Expr: "current_task", Addr: 0x1fb80, Size: 8, TypeName: "struct task_struct *"}
	f.exprs["__per_cpu_offset"] = symbols.Value{Expr: "__per_cpu_offset", Addr: 0xffffffff8239eb60, Size: 8 * 8192, TypeName: "unsigned long [8192]"}
	f.member("struct task_struct", "comm", 0xba0, 16, "char [16]")
	f.member("struct task_struct", "pid", 0x970, 4, "pid_t")
	f.member("struct task_struct", "tgid", 0x974, 4, "pid_t")
	pcpu := []uint64{0xffff88800f800000, 0xffff88800fa00000}
	b := make([]byte, 16)
	binary.LittleEndian.PutUint64(b, pcpu[0])
	binary.LittleEndian.PutUint64(b[8:], pcpu[1])
	f.mem[0xffffffff8239eb60] = b
	// cpu0 runs mkdir (pid 91); cpu1 runs the second thread of a process.
	f.put(pcpu[0]+0x1fb80, 8, 0xffff8880054fe000)
	f.putString(0xffff8880054fe000+0xba0, 16, "mkdir")
	f.put(0xffff8880054fe000+0x970, 4, 91)
	f.put(0xffff8880054fe000+0x974, 4, 91)
	f.put(pcpu[1]+0x1fb80, 8, 0xffff888006000000)
	f.putString(0xffff888006000000+0xba0, 16, "worker-thread-xx") // 16 bytes, no NUL
	f.put(0xffff888006000000+0x970, 4, 120)
	f.put(0xffff888006000000+0x974, 4, 118)
	return f
}

func TestLinuxCurrentTask(t *testing.T) {
	f := linuxEnv()
	l, err := newTaskLayout("linux", f)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cpu  int
		want Task
	}{
		{0, Task{Addr: 0xffff8880054fe000, Comm: "mkdir", PID: 91, TID: 91}},
		{1, Task{Addr: 0xffff888006000000, Comm: "worker-thread-xx", PID: 118, TID: 120}},
	} {
		got, err := l.current(f, tc.cpu)
		if err != nil {
			t.Fatalf("cpu %d: %v", tc.cpu, err)
		}
		if got != tc.want {
			t.Errorf("cpu %d: got %+v, want %+v", tc.cpu, got, tc.want)
		}
	}
	if got := (Task{Comm: "w", PID: 118, TID: 120}).String(); got != "w[118/120]" {
		t.Errorf("String = %q", got)
	}
}

// From Linux 6.15 per-CPU symbols are linked at their address in
// .data..percpu (current_task of the Debian 7.2.13 cloud kernel is at
// 0xffffffff83dbd018), and __per_cpu_offset[cpu] is the distance from
// __per_cpu_start to cpu's copy, which wraps around 2^64.
func TestLinuxCurrentTaskLinkedPerCPU(t *testing.T) {
	f := linuxEnv()
	f.version = linux.Version{Major: 7, Minor: 2, Patch: 13}
	const sym, start = 0xffffffff83dbd018, 0xffffffff83c00000
	f.exprs["current_task"] = symbols.Value{Expr: "current_task", Addr: sym, Size: 8}
	area := uint64(0xffff88800f800000)
	off := area - start // wraps: the area lies below the link address
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, off)
	f.mem[0xffffffff8239eb60] = b
	f.put(area+(sym-start), 8, 0xffff8880054fe000)
	l, err := newTaskLayout("linux", f)
	if err != nil {
		t.Fatal(err)
	}
	got, err := l.current(f, 0)
	if err != nil || got.Comm != "mkdir" || got.PID != 91 {
		t.Fatalf("got %+v, %v", got, err)
	}
}

// From Linux 6.2 to 6.14 current_task lives in pcpu_hot.
func TestLinuxCurrentTaskPcpuHot(t *testing.T) {
	f := linuxEnv()
	f.version = linux.Version{Major: 6, Minor: 12, Patch: 117}
	delete(f.exprs, "current_task")
	f.exprs["pcpu_hot.current_task"] = symbols.Value{Expr: "pcpu_hot.current_task", Addr: 0x1fb80, Size: 8, TypeName: "struct task_struct *"}
	l, err := newTaskLayout("linux", f)
	if err != nil {
		t.Fatal(err)
	}
	got, err := l.current(f, 0)
	if err != nil || got.Comm != "mkdir" {
		t.Fatalf("got %+v, %v", got, err)
	}
}

// A uniprocessor kernel has no __per_cpu_offset: the variable's symbol is
// its address.
func TestLinuxCurrentTaskUP(t *testing.T) {
	f := linuxEnv()
	delete(f.exprs, "__per_cpu_offset")
	f.exprs["current_task"] = symbols.Value{Expr: "current_task", Addr: 0xffffffff82a00000, Size: 8}
	f.put(0xffffffff82a00000, 8, 0xffff8880054fe000)
	l, err := newTaskLayout("linux", f)
	if err != nil {
		t.Fatal(err)
	}
	got, err := l.current(f, 0)
	if err != nil || got.PID != 91 {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func TestLinuxCurrentTaskErrors(t *testing.T) {
	f := linuxEnv()
	delete(f.members, "struct task_struct.comm")
	if _, err := newTaskLayout("linux", f); err == nil || !strings.Contains(err.Error(), "offsetof(struct task_struct, comm)") {
		t.Errorf("missing comm: %v", err)
	}
	f = linuxEnv()
	delete(f.exprs, "current_task")
	if _, err := newTaskLayout("linux", f); err == nil || !strings.Contains(err.Error(), "current_task") {
		t.Errorf("missing current_task: %v", err)
	}
	f = linuxEnv()
	l, _ := newTaskLayout("linux", f)
	f.put(0xffff88800f800000+0x1fb80, 8, 0) // still booting
	if _, err := l.current(f, 0); err == nil || !strings.Contains(err.Error(), "NULL") {
		t.Errorf("NULL current: %v", err)
	}
	if _, err := l.current(f, 5); err == nil || !strings.Contains(err.Error(), "__per_cpu_offset[5]") {
		t.Errorf("unreadable per-CPU offset: %v", err)
	}
	if _, err := newTaskLayout("plan9", f); err == nil {
		t.Error("plan9 has a task layout")
	}
}

// freebsdEnv is shaped like a FreeBSD amd64 kernel.debug: struct pcpu
// starts with pc_curthread, which %gs:0 reads in kernel mode; struct thread
// has td_proc and td_tid, struct proc p_comm (char [20]) and p_pid.
func freebsdEnv() *fakeEnv {
	f := newFakeEnv()
	f.member("struct pcpu", "pc_curthread", 0, 8, "struct thread *")
	f.member("struct thread", "td_proc", 0x8, 8, "struct proc *")
	f.member("struct thread", "td_tid", 0x9c, 4, "lwpid_t")
	f.member("struct proc", "p_comm", 0x3c4, 20, "char [20]")
	f.member("struct proc", "p_pid", 0xbc, 4, "pid_t")
	f.exprs["cpuid_to_pcpu"] = symbols.Value{Expr: "cpuid_to_pcpu", Addr: 0xffffffff81d2c000, Size: 8 * 256, TypeName: "struct pcpu *[256]"}
	const pcpu0, pcpu1 = 0xffffffff81e1b000, 0xfffffe00a0b00000
	const td0, proc0 = 0xfffff80003a2c740, 0xfffffe00a1234000
	const td1, proc1 = 0xfffff80003b00000, 0xfffffe00a2000000
	b := make([]byte, 16)
	binary.LittleEndian.PutUint64(b, pcpu0)
	binary.LittleEndian.PutUint64(b[8:], pcpu1)
	f.mem[0xffffffff81d2c000] = b
	f.put(pcpu0, 8, td0)
	f.put(td0+0x8, 8, proc0)
	f.put(td0+0x9c, 4, 100123)
	f.putString(proc0+0x3c4, 20, "mkdir")
	f.put(proc0+0xbc, 4, 1234)
	f.put(pcpu1, 8, td1)
	f.put(td1+0x8, 8, proc1)
	f.put(td1+0x9c, 4, 100200)
	f.putString(proc1+0x3c4, 20, "sh")
	f.put(proc1+0xbc, 4, 77)
	// cpu0 is in the kernel: GS base is its pcpu. cpu1 was stopped in user
	// mode: gs_base is the user's, swapgs left the kernel's in k_gs_base.
	f.regs["0:cs"], f.regs["0:gs_base"], f.regs["0:k_gs_base"] = 0x20, pcpu0, 0x800000
	f.regs["1:cs"], f.regs["1:gs_base"], f.regs["1:k_gs_base"] = 0x43, 0x800000, pcpu1
	return f
}

func TestFreeBSDCurrentTask(t *testing.T) {
	f := freebsdEnv()
	l, err := newTaskLayout("freebsd", f)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]Task{
		0: {Addr: 0xfffff80003a2c740, Comm: "mkdir", PID: 1234, TID: 100123},
		1: {Addr: 0xfffff80003b00000, Comm: "sh", PID: 77, TID: 100200},
	}
	for cpu, w := range want {
		got, err := l.current(f, cpu)
		if err != nil {
			t.Fatalf("cpu %d: %v", cpu, err)
		}
		if got != w {
			t.Errorf("cpu %d: got %+v, want %+v", cpu, got, w)
		}
	}

	// Without the GS registers, cpuid_to_pcpu[cpu] finds the pcpu.
	f.regs = map[string]uint64{}
	got, err := l.current(f, 1)
	if err != nil || got.Comm != "sh" {
		t.Errorf("via cpuid_to_pcpu: %+v, %v", got, err)
	}
	// Neither: the error says what was tried.
	delete(f.mem, 0xffffffff81d2c000)
	if _, err := l.current(f, 1); err == nil || !strings.Contains(err.Error(), "no struct pcpu for cpu 1") {
		t.Errorf("no pcpu: %v", err)
	}
}

// Without DWARF for struct pcpu, curthread is at %gs:0 (amd64's
// OFFSETOF_CURTHREAD); without struct thread's td_proc the layout fails and
// names the member.
func TestFreeBSDLayoutFallbacks(t *testing.T) {
	f := freebsdEnv()
	delete(f.members, "struct pcpu.pc_curthread")
	l, err := newTaskLayout("freebsd", f)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := l.current(f, 0); err != nil || got.PID != 1234 {
		t.Errorf("got %+v, %v", got, err)
	}
	delete(f.members, "struct thread.td_proc")
	if _, err := newTaskLayout("freebsd", f); err == nil || !strings.Contains(err.Error(), "offsetof(struct thread, td_proc)") {
		t.Errorf("missing td_proc: %v", err)
	}
}

func TestDataValues(t *testing.T) {
	for _, tc := range []struct {
		d       Data
		u       uint64
		i       int64
		wantErr bool
	}{
		{Data{Bytes: []byte{0xff}}, 0xff, -1, false},
		{Data{Bytes: []byte{0x34, 0x12}}, 0x1234, 0x1234, false},
		{Data{Bytes: []byte{0xfe, 0xff, 0xff, 0xff}}, 0xfffffffe, -2, false},
		{Data{Bytes: []byte{1, 0, 0, 0, 0, 0, 0, 0x80}}, 0x8000000000000001, -0x7fffffffffffffff, false},
		// a 3-bit field at bit 5 of 0b1110_0000 | ... = 0b111 -> -1 signed
		{Data{Value: symbols.Value{BitOffset: 5, BitSize: 3}, Bytes: []byte{0xe0, 0, 0, 0}}, 7, -1, false},
		{Data{Value: symbols.Value{BitOffset: 4, BitSize: 2}, Bytes: []byte{0x10}}, 1, 1, false},
		{Data{Value: symbols.Value{Expr: "x", TypeName: "char [3]"}, Bytes: []byte{1, 2, 3}}, 0, 0, true},
	} {
		u, err := tc.d.Uint()
		if (err != nil) != tc.wantErr {
			t.Errorf("%v: Uint err = %v", tc.d.Bytes, err)
			continue
		}
		if tc.wantErr {
			if !errors.Is(err, ErrBadInput) {
				t.Errorf("error %v does not wrap ErrBadInput", err)
			}
			continue
		}
		i, _ := tc.d.Int()
		if u != tc.u || i != tc.i {
			t.Errorf("%v (bits %d@%d): got %#x/%d, want %#x/%d", tc.d.Bytes, tc.d.BitSize, tc.d.BitOffset, u, i, tc.u, tc.i)
		}
	}
	d := Data{Value: symbols.Value{Expr: "init_uts_ns.name.nodename", TypeName: "char [65]", Size: 65}, Bytes: append([]byte("kspec\x00junk"), make([]byte, 55)...)}
	if d.CString() != "kspec" {
		t.Errorf("CString = %q", d.CString())
	}
	if !strings.Contains(d.String(), `"kspec"`) {
		t.Errorf("String = %q", d.String())
	}
}

func TestIsCharTypes(t *testing.T) {
	for _, s := range []string{"char [65]", "unsigned char [6]", "const char [4]"} {
		if !isCharArray(s) {
			t.Errorf("%q is a char array", s)
		}
	}
	for _, s := range []string{"char const *", "const char *", "char *"} {
		if !isCharPointer(s) {
			t.Errorf("%q is a char pointer", s)
		}
	}
	if isCharPointer("char **") || isCharArray("int [4]") {
		t.Error("false positive")
	}
}

func TestDebugMatchers(t *testing.T) {
	g := gomega.NewWithT(t)
	frames := []Frame{
		{Function: "do_mkdirat", File: "fs/namei.c", Line: 4169, PC: 0xffffffff813632a0},
		{Function: "__do_sys_mkdir", File: "fs/namei.c", Line: 4206, PC: 0xffffffff81363505, Inlined: true},
		{Function: "__x64_sys_mkdir", File: "fs/namei.c", Line: 4204, PC: 0xffffffff81363505},
		{Function: "do_syscall_64", File: "arch/x86/entry/common.c", Line: 76, PC: 0xffffffff81a03f4d},
	}
	g.Expect(frames).To(HaveBacktraceContaining("__x64_sys_mkdir", "do_syscall_64"))
	g.Expect(frames).To(HaveBacktraceContaining("__do_sys_mkdir"))
	m := HaveBacktraceContaining("do_syscall_64", "__x64_sys_rmdir")
	ok, err := m.Match(frames)
	g.Expect(err).NotTo(gomega.HaveOccurred())
	g.Expect(ok).To(gomega.BeFalse())
	msg := m.FailureMessage(frames)
	g.Expect(msg).To(gomega.ContainSubstring("missing __x64_sys_rmdir"))
	g.Expect(msg).To(gomega.ContainSubstring("#2  0xffffffff81363505 in __x64_sys_mkdir at fs/namei.c:4204"))
	g.Expect(msg).To(gomega.ContainSubstring("__do_sys_mkdir at fs/namei.c:4206 [inlined]"))

	task := Task{Addr: 0xffff8880054fe000, Comm: "mkdir", PID: 91, TID: 91}
	g.Expect(task).To(HaveComm("mkdir"))
	c := HaveComm("rmdir")
	ok, err = c.Match(task)
	g.Expect(err).NotTo(gomega.HaveOccurred())
	g.Expect(ok).To(gomega.BeFalse())
	g.Expect(c.FailureMessage(task)).To(gomega.ContainSubstring(`to be "rmdir", it is mkdir[91] (task 0xffff8880054fe000)`))

	_, err = HaveComm("x").Match(42)
	g.Expect(err).To(gomega.MatchError(gomega.ContainSubstring("expects a *harness.Hit")))
	_, err = HaveBacktraceContaining("x").Match(&Hit{Function: "f"})
	g.Expect(err).To(gomega.MatchError(errNoTarget))
}
