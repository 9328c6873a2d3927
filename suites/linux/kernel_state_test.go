package linux_test

import (
	"context"
	"encoding/binary"
	"os"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kspec/kspec/arch"
	"github.com/kspec/kspec/guest"
	"github.com/kspec/kspec/harness"
	"github.com/kspec/kspec/kernel/linux"
)

// Helpers that read kernel state at a stop. Struct layouts come from the
// DWARF of the kernel that runs (symbols.Table.Offsetof), never from
// numbers written here.

// Linux constants the specs compare with (uapi, stable ABI).
const (
	atFDCWD    = -100 // AT_FDCWD
	oAccMode   = 0o3
	oRDONLY    = 0o0
	oWRONLY    = 0o1
	oCREAT     = 0o100
	oTRUNC     = 0o1000
	sigUSR1    = 10
	sigTERM    = 15
	sigCHLD    = 17
	cloneVM    = 0x100
	cloneVFork = 0x4000
	maxPath    = 4096
)

// guestSpec is the guest under test, known before it boots so that spec
// titles can name the functions of its kernel and architecture (nil when
// the guest cannot be found: the suite then fails or skips in
// SynchronizedBeforeSuite, saying why).
var guestSpec = resolveGuest()

func resolveGuest() *guest.Spec {
	ref := os.Getenv("KSPEC_GUEST")
	if ref == "" {
		ref = harness.DefaultGuest
	}
	spec, err := harness.ResolveGuest(harness.Options{Guest: ref})
	if err != nil {
		return nil
	}
	return spec
}

// kernelVersion is the version of the guest's kernel (zero, meaning the
// newest kernel, when it cannot be told).
var kernelVersion = func() linux.Version {
	if guestSpec == nil {
		return linux.Version{}
	}
	v, _ := harness.GuestKernelVersion(guestSpec)
	return v
}()

// guestCPU is the guest's CPU architecture (the default one when the guest
// cannot be found).
var guestCPU = func() arch.Arch {
	if guestSpec == nil {
		return arch.Default()
	}
	a, err := guestSpec.CPU()
	if err != nil {
		return arch.Default()
	}
	return a
}()

// archFact returns what kernel/linux knows of the guest's architecture.
func archFact(f func(arch.Arch) (string, error)) string {
	name, err := f(guestCPU)
	if err != nil {
		return "(" + err.Error() + ")" // a title that says why; the spec fails at the name
	}
	return name
}

// sys names the wrapper a command that calls the system call enters on the
// guest's architecture: __x64_sys_mkdir on x86_64, __arm64_sys_mkdirat on
// arm64, which has only the *at calls (kernel/linux keeps the facts).
func sys(call string) string {
	return archFact(func(a arch.Arch) (string, error) { return linux.SyscallEntry(a, call) })
}

// The system call path of the guest's architecture: the dispatcher that
// calls a wrapper (do_syscall_64, invoke_syscall) and the user entry where
// the backtrace of a system call ends (entry_SYSCALL_64, el0t_64_sync).
var (
	syscallDispatch = archFact(linux.SyscallDispatch)
	userEntry       = archFact(linux.UserEntry)
)

// fn returns the name the guest's kernel gives the function known (in
// some kernel line) as name: do_mkdirat is filename_mkdirat from Linux 7.0
// (kernel/linux keeps the renames). A spec that breaks on fn(name) checks
// the same behaviour on every line, and says which function in its title.
func fn(name string) string { return linux.FunctionName(kernelVersion, name) }

// The functions the mkdir, rmdir, unlink, rename and symlink specs stop
// in, on the kernel under test.
var (
	mkdirat   = fn("do_mkdirat")
	rmdir     = fn("do_rmdir")
	unlinkat  = fn("do_unlinkat")
	renameat2 = fn("do_renameat2")
	symlinkat = fn("do_symlinkat")
	killPID   = fn("kill_pid_info")
)

// arg returns the hit function's n-th argument (from 0).
func arg(ctx context.Context, h *harness.Hit, n int) uint64 {
	GinkgoHelper()
	v, err := h.Arg(ctx, n)
	Expect(err).NotTo(HaveOccurred())
	return v
}

// offset returns offsetof(typ, path) in the running kernel.
func offset(typ, path string) uint64 {
	GinkgoHelper()
	v, err := target.Symbols().Offsetof(typ, path)
	Expect(err).NotTo(HaveOccurred())
	return v.Addr
}

// ptr reads a pointer (or unsigned long) at addr.
func ptr(ctx context.Context, addr uint64) uint64 {
	GinkgoHelper()
	v, err := target.ReadUint64(ctx, addr)
	Expect(err).NotTo(HaveOccurred())
	return v
}

// int32At reads a C int at addr.
func int32At(ctx context.Context, addr uint64) int32 {
	GinkgoHelper()
	b, err := target.ReadMemory(ctx, addr, 4)
	Expect(err).NotTo(HaveOccurred())
	return int32(binary.LittleEndian.Uint32(b))
}

// cstring reads a NUL-terminated string (kernel or user address).
func cstring(ctx context.Context, addr uint64) string {
	GinkgoHelper()
	Expect(addr).NotTo(BeZero(), "NULL string pointer")
	s, err := target.ReadCString(ctx, addr, maxPath)
	Expect(err).NotTo(HaveOccurred())
	return s
}

// filenameArg reads the path of a struct filename * argument.
func filenameArg(ctx context.Context, h *harness.Hit, n int) string {
	GinkgoHelper()
	return cstring(ctx, ptr(ctx, arg(ctx, h, n)+offset("struct filename", "name")))
}

// sysArg returns the n-th user argument (from 0) of a system call at the
// entry of its wrapper (sys), which takes the user's struct pt_regs: the
// member that holds it is the architecture's (di, si, ... on x86_64;
// regs[0], regs[1], ... on arm64).
func sysArg(ctx context.Context, h *harness.Hit, n int) uint64 {
	GinkgoHelper()
	member, err := linux.SyscallArg(guestCPU, n)
	Expect(err).NotTo(HaveOccurred())
	return ptr(ctx, arg(ctx, h, 0)+offset("struct pt_regs", member))
}

// fileName returns the last path component of a struct file *:
// file->f_path.dentry->d_name.name.
func fileName(ctx context.Context, file uint64) string {
	GinkgoHelper()
	dentry := ptr(ctx, file+offset("struct file", "f_path.dentry"))
	return cstring(ctx, ptr(ctx, dentry+offset("struct dentry", "d_name.name")))
}

// taskComm and taskTGID read a struct task_struct *.
func taskComm(ctx context.Context, task uint64) string {
	GinkgoHelper()
	return cstring(ctx, task+offset("struct task_struct", "comm"))
}

func taskTGID(ctx context.Context, task uint64) int {
	GinkgoHelper()
	return int(int32At(ctx, task+offset("struct task_struct", "tgid")))
}

// commIs accepts hits whose current task is named comm.
func commIs(ctx context.Context, comm string) func(*harness.Hit) bool {
	return func(h *harness.Hit) bool {
		c, err := h.Comm(ctx)
		return err == nil && c == comm
	}
}

// shell runs cmd in the guest and expects it to exit 0.
func shell(ctx context.Context, cmd string) string {
	GinkgoHelper()
	return suite.Shell(ctx, cmd)
}

// shellWithin is shell bounded by d.
func shellWithin(ctx context.Context, d time.Duration, cmd string) string {
	GinkgoHelper()
	c, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return shell(c, cmd)
}
