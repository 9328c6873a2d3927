package linux_test

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kspec/kspec/harness"
)

// Specs over the VFS system calls busybox makes. Each reads the arguments
// the kernel received (paths, flags, struct file) at the stop and checks
// what the call did afterwards.
var _ = Describe("file system calls", Label("fs"), func() {
	It(fmt.Sprintf("rm of a file reaches %s with its path, and the file is gone", unlinkat), Label("unlink"), func(ctx SpecContext) {
		shell(ctx, "touch /tmp/kspec-unlink")
		// do_unlinkat(int dfd, struct filename *name) (filename_unlinkat from 7.0)
		hit, cmd := stopAt(ctx, unlinkat, "rm /tmp/kspec-unlink", 0, nil)
		Expect(hit).To(harness.StopIn(unlinkat, "fs/namei.c"))
		Expect(hit).To(harness.HaveComm("rm"))
		Expect(int32(arg(ctx, hit, 0))).To(BeEquivalentTo(atFDCWD))
		Expect(filenameArg(ctx, hit, 1)).To(Equal("/tmp/kspec-unlink"))
		cmd.finish(ctx)
		Expect(shell(ctx, "test -e /tmp/kspec-unlink || echo gone")).To(Equal("gone\n"))
	}, SpecTimeout(time.Minute))

	It("a shell redirection creates the file through do_sys_openat2 with O_WRONLY|O_CREAT|O_TRUNC", Label("open", "create"), func(ctx SpecContext) {
		const path = "/tmp/kspec-create"
		// do_sys_openat2(int dfd, const char __user *filename, struct open_how *how)
		hit, cmd := stopAt(ctx, "do_sys_openat2", "echo created > "+path, 0, func(h *harness.Hit) bool {
			return cstring(ctx, arg(ctx, h, 1)) == path
		})
		Expect(hit).To(harness.StopIn("do_sys_openat2", "fs/open.c"))
		Expect(hit).To(harness.HaveComm("sh"), "the shell opens the redirection target itself")
		how := arg(ctx, hit, 2)
		flags := ptr(ctx, how+offset("struct open_how", "flags"))
		Expect(flags & oAccMode).To(BeEquivalentTo(oWRONLY))
		Expect(flags & (oCREAT | oTRUNC)).To(BeEquivalentTo(oCREAT | oTRUNC))
		Expect(ptr(ctx, how+offset("struct open_how", "mode"))).To(BeEquivalentTo(0o666))
		cmd.finish(ctx)
		Expect(shell(ctx, "cat "+path)).To(Equal("created\n"))
	}, SpecTimeout(time.Minute))

	It("cat opens its file read-only through do_sys_openat2", Label("open"), func(ctx SpecContext) {
		hit, cmd := stopAt(ctx, "do_sys_openat2", "cat /etc/passwd", 0, commIs(ctx, "cat"))
		Expect(cstring(ctx, arg(ctx, hit, 1))).To(Equal("/etc/passwd"))
		flags := ptr(ctx, arg(ctx, hit, 2)+offset("struct open_how", "flags"))
		Expect(flags & oAccMode).To(BeEquivalentTo(oRDONLY))
		Expect(flags & oCREAT).To(BeZero())
		Expect(cmd.finish(ctx).Output).To(ContainSubstring("root:"))
	}, SpecTimeout(time.Minute))

	It("wc reads its file through vfs_read from offset 0", Label("read"), func(ctx SpecContext) {
		shell(ctx, "echo kspec-read-data > /tmp/kspec-read")
		// vfs_read(struct file *file, char __user *buf, size_t count, loff_t *pos)
		// (not cat: busybox cat copies with sendfile.)
		hit, cmd := stopAt(ctx, "vfs_read", "wc -c /tmp/kspec-read", 0, func(h *harness.Hit) bool {
			return commIs(ctx, "wc")(h) && fileName(ctx, arg(ctx, h, 0)) == "kspec-read"
		})
		Expect(hit).To(harness.StopIn("vfs_read", "fs/read_write.c"))
		Expect(arg(ctx, hit, 2)).To(BeNumerically(">=", len("kspec-read-data\n")), "count")
		Expect(ptr(ctx, arg(ctx, hit, 3))).To(BeZero(), "*pos of the first read")
		Expect(cmd.finish(ctx).Output).To(Equal("16 /tmp/kspec-read\n"))
	}, SpecTimeout(time.Minute))

	It("echo writes its bytes through vfs_write, and the kernel sees them in the user buffer", Label("write"), func(ctx SpecContext) {
		// vfs_write(struct file *file, const char __user *buf, size_t count, loff_t *pos)
		hit, cmd := stopAt(ctx, "vfs_write", "echo kspec-payload > /tmp/kspec-write", 0, func(h *harness.Hit) bool {
			return fileName(ctx, arg(ctx, h, 0)) == "kspec-write"
		})
		Expect(hit).To(harness.StopIn("vfs_write", "fs/read_write.c"))
		count := arg(ctx, hit, 2)
		Expect(count).To(BeEquivalentTo(len("kspec-payload\n")))
		buf, err := target.ReadMemory(ctx, arg(ctx, hit, 1), int(count))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(buf)).To(Equal("kspec-payload\n"))
		cmd.finish(ctx)
		Expect(shell(ctx, "cat /tmp/kspec-write")).To(Equal("kspec-payload\n"))
	}, SpecTimeout(time.Minute))

	It(fmt.Sprintf("mv reaches %s with both names", renameat2), Label("rename"), func(ctx SpecContext) {
		shell(ctx, "echo moved > /tmp/kspec-old")
		// do_renameat2(int olddfd, struct filename *from, int newdfd, struct filename *to, unsigned int flags)
		// (filename_renameat2 from 7.0)
		hit, cmd := stopAt(ctx, renameat2, "mv /tmp/kspec-old /tmp/kspec-new", 0, nil)
		Expect(hit).To(harness.StopIn(renameat2, "fs/namei.c"))
		Expect(hit).To(harness.HaveComm("mv"))
		Expect(filenameArg(ctx, hit, 1)).To(Equal("/tmp/kspec-old"))
		Expect(filenameArg(ctx, hit, 3)).To(Equal("/tmp/kspec-new"))
		Expect(arg(ctx, hit, 4)).To(BeZero(), "rename flags")
		cmd.finish(ctx)
		Expect(shell(ctx, "cat /tmp/kspec-new; test -e /tmp/kspec-old || echo old-gone")).To(Equal("moved\nold-gone\n"))
	}, SpecTimeout(time.Minute))

	It(fmt.Sprintf("ln -s reaches %s with the link's target and name", symlinkat), Label("symlink"), func(ctx SpecContext) {
		// do_symlinkat(struct filename *from, int newdfd, struct filename *to)
		// (filename_symlinkat from 7.0)
		hit, cmd := stopAt(ctx, symlinkat, "ln -s /etc/passwd /tmp/kspec-link", 0, nil)
		Expect(hit).To(harness.StopIn(symlinkat, "fs/namei.c"))
		Expect(hit).To(harness.HaveComm("ln"))
		Expect(filenameArg(ctx, hit, 0)).To(Equal("/etc/passwd"))
		Expect(filenameArg(ctx, hit, 2)).To(Equal("/tmp/kspec-link"))
		cmd.finish(ctx)
		Expect(shell(ctx, "readlink /tmp/kspec-link")).To(Equal("/etc/passwd\n"))
	}, SpecTimeout(time.Minute))

	It("a shell pipeline creates its pipe through do_pipe2", Label("pipe"), func(ctx SpecContext) {
		// do_pipe2(int __user *fildes, int flags); pipe(2) passes flags 0.
		hit, cmd := stopAt(ctx, "do_pipe2", "echo kspec-through-pipe | cat", 0, nil)
		Expect(hit).To(harness.StopIn("do_pipe2", "fs/pipe.c"))
		Expect(hit).To(harness.HaveComm("sh"))
		Expect(arg(ctx, hit, 0)).To(BeNumerically("<", guestCPU.UserEnd()), "fildes is a user address")
		Expect(int32(arg(ctx, hit, 1))).To(BeZero(), "flags")
		Expect(cmd.finish(ctx).Output).To(Equal("kspec-through-pipe\n"))
	}, SpecTimeout(time.Minute))

	It("mounting a tmpfs reaches path_mount with the device, type and options", Label("mount"), func(ctx SpecContext) {
		shell(ctx, "mkdir -p /mnt/kspec")
		// path_mount(const char *dev_name, struct path *path, const char *type_page, unsigned long flags, void *data_page)
		hit, cmd := stopAt(ctx, "path_mount", "mount -t tmpfs -o size=1m kspec-tmpfs /mnt/kspec", 0, nil)
		Expect(hit).To(harness.StopIn("path_mount", "fs/namespace.c"))
		Expect(hit).To(harness.HaveComm("mount"))
		Expect(cstring(ctx, arg(ctx, hit, 0))).To(Equal("kspec-tmpfs"))
		Expect(cstring(ctx, arg(ctx, hit, 2))).To(Equal("tmpfs"))
		Expect(cstring(ctx, arg(ctx, hit, 4))).To(ContainSubstring("size=1m"))
		cmd.finish(ctx)
		Expect(shell(ctx, "grep kspec-tmpfs /proc/mounts")).To(HavePrefix("kspec-tmpfs /mnt/kspec tmpfs rw"))
	}, SpecTimeout(time.Minute))

	It("cd reaches the chdir system call with the directory, and the shell moves there", Label("chdir"), func(ctx SpecContext) {
		shell(ctx, "mkdir /tmp/kspec-cd")
		// chdir's wrapper takes the user's pt_regs: the path is the first argument.
		hit, cmd := stopAt(ctx, sys("chdir"), "cd /tmp/kspec-cd", 0, nil)
		Expect(hit).To(harness.StopIn(sys("chdir"), "fs/open.c"))
		Expect(hit).To(harness.HaveComm("sh"), "cd is a shell builtin")
		Expect(cstring(ctx, sysArg(ctx, hit, 0))).To(Equal("/tmp/kspec-cd"))
		cmd.finish(ctx)
		Expect(shell(ctx, "pwd")).To(Equal("/tmp/kspec-cd\n"))
	}, SpecTimeout(time.Minute))
})

// Specs whose calls fail: the kernel is reached with the arguments, and the
// failure comes back to the user.
var _ = Describe("failing file system calls", Label("fs", "negative"), func() {
	It(fmt.Sprintf("unlink of a missing file reaches %s and fails with ENOENT", unlinkat), Label("unlink"), func(ctx SpecContext) {
		// (rm looks before it leaps: it never calls unlink for a missing file.)
		hit, cmd := stopAt(ctx, unlinkat, "unlink /tmp/kspec-missing", 1, nil)
		Expect(filenameArg(ctx, hit, 1)).To(Equal("/tmp/kspec-missing"))
		Expect(cmd.finish(ctx).Output).To(ContainSubstring("No such file or directory"))
	}, SpecTimeout(time.Minute))

	It("cat of a missing file reaches do_sys_openat2 and fails", Label("open"), func(ctx SpecContext) {
		hit, cmd := stopAt(ctx, "do_sys_openat2", "cat /tmp/kspec-nowhere", 1, commIs(ctx, "cat"))
		Expect(cstring(ctx, arg(ctx, hit, 1))).To(Equal("/tmp/kspec-nowhere"))
		Expect(cmd.finish(ctx).Output).To(ContainSubstring("No such file or directory"))
	}, SpecTimeout(time.Minute))

	It(fmt.Sprintf("mkdir of an existing directory reaches %s and fails with EEXIST", mkdirat), Label("mkdir"), func(ctx SpecContext) {
		shell(ctx, "mkdir /tmp/kspec-exists")
		hit, cmd := stopAt(ctx, mkdirat, "mkdir /tmp/kspec-exists", 1, nil)
		Expect(filenameArg(ctx, hit, 1)).To(Equal("/tmp/kspec-exists"))
		Expect(cmd.finish(ctx).Output).To(ContainSubstring("File exists"))
	}, SpecTimeout(time.Minute))
})
