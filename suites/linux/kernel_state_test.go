package linux_test

import (
	"context"
	"encoding/binary"
	"os"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

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

// kernelVersion is the version of the guest's kernel, known before the
// guest boots so that spec titles can name the functions of that kernel
// (zero, meaning the newest kernel, when the guest cannot be found: the
// suite then fails or skips in SynchronizedBeforeSuite, saying why).
var kernelVersion = guestKernelVersion()

func guestKernelVersion() linux.Version {
	ref := os.Getenv("KSPEC_GUEST")
	if ref == "" {
		ref = harness.DefaultGuest
	}
	spec, err := harness.ResolveGuest(harness.Options{Guest: ref})
	if err != nil {
		return linux.Version{}
	}
	v, _ := harness.GuestKernelVersion(spec)
	return v
}

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

// sysArg returns a user argument of a system call at the entry of its
// __x64_sys_* wrapper, which takes the user's struct pt_regs: reg is the
// register the user passed it in ("di", "si", "dx", ...).
func sysArg(ctx context.Context, h *harness.Hit, reg string) uint64 {
	GinkgoHelper()
	return ptr(ctx, arg(ctx, h, 0)+offset("struct pt_regs", reg))
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
