package freebsd_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kspec/kspec/harness"
)

// atFDCWD is FreeBSD's AT_FDCWD (sys/fcntl.h).
const atFDCWD = -100

var _ = Describe("system calls reach their kernel implementation", Label("fs"), func() {
	// The original workflow's spec.
	It("mkdir hits sys_mkdir in vfs_syscalls.c", Label("mkdir"), func(ctx SpecContext) {
		hit, finish := stopAt(ctx, "sys_mkdir", "mkdir /tmp/kspec-mkdir")
		Expect(hit).To(harness.StopIn("sys_mkdir", "sys/kern/vfs_syscalls.c"))
		Expect(hit).To(harness.HaveComm("mkdir"))
		// sys_mkdir(struct thread *td, struct mkdir_args *uap): td is curthread.
		td, err := hit.Arg(ctx, 0)
		Expect(err).NotTo(HaveOccurred())
		task, err := hit.Task(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(td).To(Equal(task.Addr))
		Expect(userPathArg(ctx, hit, "mkdir_args")).To(Equal("/tmp/kspec-mkdir"))
		finish(ctx)
		Expect(shell(ctx, "test -d /tmp/kspec-mkdir && echo made")).To(Equal("made\n"))
	}, SpecTimeout(3*time.Minute))

	It("mkdir goes on to kern_mkdirat with AT_FDCWD and the user's path", Label("mkdir"), func(ctx SpecContext) {
		hit, finish := stopAt(ctx, "kern_mkdirat", "mkdir /tmp/kspec-kern")
		Expect(hit).To(harness.StopIn("kern_mkdirat", "sys/kern/vfs_syscalls.c"))
		Expect(hit).To(harness.HaveBacktraceContaining("sys_mkdir"))
		// kern_mkdirat(struct thread *td, int fd, const char *path, enum uio_seg segflg, int mode)
		fd, err := hit.Arg(ctx, 1)
		Expect(err).NotTo(HaveOccurred())
		Expect(int32(fd)).To(BeEquivalentTo(atFDCWD))
		path, err := hit.Arg(ctx, 2)
		Expect(err).NotTo(HaveOccurred())
		s, err := target.ReadCString(ctx, path, 1024)
		Expect(err).NotTo(HaveOccurred())
		Expect(s).To(Equal("/tmp/kspec-kern"))
		seg, err := hit.Arg(ctx, 3)
		Expect(err).NotTo(HaveOccurred())
		Expect(int32(seg)).To(BeZero(), "UIO_USERSPACE")
		finish(ctx)
	}, SpecTimeout(3*time.Minute))

	It("rmdir hits sys_rmdir in vfs_syscalls.c", Label("rmdir"), func(ctx SpecContext) {
		shell(ctx, "mkdir /tmp/kspec-rmdir")
		hit, finish := stopAt(ctx, "sys_rmdir", "rmdir /tmp/kspec-rmdir")
		Expect(hit).To(harness.StopIn("sys_rmdir", "sys/kern/vfs_syscalls.c"))
		Expect(hit).To(harness.HaveComm("rmdir"))
		Expect(userPathArg(ctx, hit, "rmdir_args")).To(Equal("/tmp/kspec-rmdir"))
		finish(ctx)
		Expect(shell(ctx, "test -d /tmp/kspec-rmdir || echo gone")).To(Equal("gone\n"))
	}, SpecTimeout(3*time.Minute))

	It("cd hits sys_chdir with the directory, from the shell itself", Label("chdir"), func(ctx SpecContext) {
		hit, finish := stopAt(ctx, "sys_chdir", "cd /tmp")
		Expect(hit).To(harness.StopIn("sys_chdir", "sys/kern/vfs_syscalls.c"))
		Expect(hit).To(harness.HaveComm("sh"))
		Expect(userPathArg(ctx, hit, "chdir_args")).To(Equal("/tmp"))
		finish(ctx)
		Expect(shell(ctx, "pwd")).To(Equal("/tmp\n"))
	}, SpecTimeout(3*time.Minute))
})

var _ = Describe("breakpoints a command does not reach", Label("negative"), func() {
	It("sys_rmdir is not hit by mkdir, and the guest keeps running", func(ctx SpecContext) {
		bp, err := target.Break(ctx, "sys_rmdir")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) { Expect(target.ClearBreakpoints(ctx)).To(Succeed()) })
		shell(ctx, "mkdir /tmp/kspec-negative")
		Expect(bp.Hit()).To(BeFalse())
		waitCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err = bp.Wait(waitCtx)
		Expect(err).To(MatchError(harness.ErrNotHit))
	}, SpecTimeout(time.Minute))

	It("reports a symbol the kernel does not have as bad input", func(ctx SpecContext) {
		_, err := target.Break(ctx, "kspec_no_such_function")
		Expect(err).To(MatchError(harness.ErrBadInput))
	}, SpecTimeout(time.Minute))
})

// shell runs cmd in the guest and expects it to exit 0.
func shell(ctx context.Context, cmd string) string {
	GinkgoHelper()
	return suite.Shell(ctx, cmd)
}
