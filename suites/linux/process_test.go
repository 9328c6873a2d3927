package linux_test

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kspec/kspec/harness"
)

// Specs over processes: fork, exec, signals.
var _ = Describe("processes", Label("process"), func() {
	It("the shell forks a child through kernel_clone with SIGCHLD as its exit signal", Label("fork"), func(ctx SpecContext) {
		// kernel_clone(struct kernel_clone_args *args)
		// (kthreadd clones kernel threads through kernel_clone too.) A
		// subshell runs shell code in the child, so the shell must fork it:
		// busybox 1.38 vforks a plain command such as /bin/true.
		hit, cmd := stopAt(ctx, "kernel_clone", "(/bin/true)", 0, commIs(ctx, "sh"))
		Expect(hit).To(harness.StopIn("kernel_clone", "kernel/fork.c"))
		Expect(hit).To(harness.HaveComm("sh"))
		args := arg(ctx, hit, 0)
		Expect(int32At(ctx, args+offset("struct kernel_clone_args", "exit_signal"))).To(BeEquivalentTo(sigCHLD))
		flags := ptr(ctx, args+offset("struct kernel_clone_args", "flags"))
		Expect(flags&(cloneVM|cloneVFork)).To(BeZero(), "a fork, not a thread or vfork (flags %#x)", flags)
		cmd.finish(ctx)
	}, SpecTimeout(time.Minute))

	It("exec reaches bprm_execve with the program's path, read from kernel memory, while the child is still the shell", Label("exec"), func(ctx SpecContext) {
		// bprm_execve(struct linux_binprm *bprm, ...): up to 6.x the fd and
		// struct filename follow, later bprm alone; bprm->filename is the
		// path on every line.
		hit, cmd := stopAt(ctx, "bprm_execve", "/bin/uname -s", 0, nil)
		Expect(hit).To(harness.StopIn("bprm_execve", "fs/exec.c"))
		Expect(cstring(ctx, ptr(ctx, arg(ctx, hit, 0)+offset("struct linux_binprm", "filename")))).To(Equal("/bin/uname"))
		Expect(hit).To(harness.HaveComm("sh"), "the forked child has not become uname yet")
		task, err := hit.Task(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(task.PID).To(BeNumerically(">", 1))
		Expect(cmd.finish(ctx).Output).To(Equal("Linux\n"))
	}, SpecTimeout(time.Minute))

	It(fmt.Sprintf("kill sends its signal through %s to the struct pid of the process named", killPID), Label("signal"), func(ctx SpecContext) {
		pid := backgroundSleep(ctx)
		// kill_pid_info(int sig, struct kernel_siginfo *info, struct pid *pid),
		// from 6.9 kill_pid_info_type(..., enum pid_type type)
		hit, cmd := stopAt(ctx, killPID, "kill -USR1 "+strconv.Itoa(pid), 0, nil)
		Expect(hit).To(harness.StopIn(killPID, "kernel/signal.c"))
		Expect(hit).To(harness.HaveComm("sh"), "kill is a shell builtin")
		Expect(int32(arg(ctx, hit, 0))).To(BeEquivalentTo(sigUSR1))
		spid := arg(ctx, hit, 2)
		Expect(spid).NotTo(BeZero())
		Expect(int32At(ctx, spid+offset("struct pid", "numbers[0].nr"))).To(BeEquivalentTo(pid))
		cmd.finish(ctx)
	}, SpecTimeout(time.Minute))

	It("SIGTERM is delivered by send_signal_locked to the sleeping task, which dies of it", Label("signal"), func(ctx SpecContext) {
		pid := backgroundSleep(ctx)
		// send_signal_locked(int sig, struct kernel_siginfo *info, struct task_struct *t, enum pid_type type)
		hit, cmd := stopAt(ctx, "send_signal_locked", "kill -TERM "+strconv.Itoa(pid), 0, func(h *harness.Hit) bool {
			return int32(arg(ctx, h, 0)) == sigTERM
		})
		Expect(hit).To(harness.StopIn("send_signal_locked", "kernel/signal.c"))
		task := arg(ctx, hit, 2)
		Expect(taskComm(ctx, task)).To(Equal("sleep"))
		Expect(taskTGID(ctx, task)).To(Equal(pid))
		cmd.finish(ctx)
		Expect(shellWithin(ctx, 10*time.Second, "until [ -s /tmp/kspec-sleep.status ]; do "+yield+"; done; cat /tmp/kspec-sleep.status")).To(Equal("143\n"), "128 + SIGTERM")
	}, SpecTimeout(time.Minute))
})

var _ = Describe("failing process calls", Label("process", "negative"), func() {
	It("exec of a missing program reaches do_open_execat with its path and the shell reports 127", Label("exec"), func(ctx SpecContext) {
		// do_open_execat(int fd, struct filename *name, int flags) opens
		// the program on every line (before bprm_execve from 6.x on, so
		// a missing program never reaches bprm_execve there).
		hit, cmd := stopAt(ctx, "do_open_execat", "/bin/kspec-missing", 127, nil)
		Expect(hit).To(harness.StopIn("do_open_execat", "fs/exec.c"))
		Expect(int32(arg(ctx, hit, 0))).To(BeEquivalentTo(atFDCWD))
		Expect(filenameArg(ctx, hit, 1)).To(Equal("/bin/kspec-missing"))
		Expect(cmd.finish(ctx).Output).To(ContainSubstring("not found"))
	}, SpecTimeout(time.Minute))

	It(fmt.Sprintf("kill of a PID that does not exist reaches %s without a struct pid", killPID), Label("signal"), func(ctx SpecContext) {
		hit, cmd := stopAt(ctx, killPID, "kill -USR1 32000", 1, nil)
		Expect(int32(arg(ctx, hit, 0))).To(BeEquivalentTo(sigUSR1))
		Expect(arg(ctx, hit, 2)).To(BeZero(), "find_vpid found no struct pid")
		Expect(cmd.finish(ctx).Output).To(ContainSubstring("No such process"))
	}, SpecTimeout(time.Minute))
})

// Specs over the kernel's own state.
var _ = Describe("kernel state", Label("kernel"), func() {
	It("hostname reaches sethostname with the new name, which the kernel's utsname holds afterwards", Label("sethostname"), func(ctx SpecContext) {
		// sethostname's wrapper takes the user's pt_regs: name, then len.
		hit, cmd := stopAt(ctx, sys("sethostname"), "hostname kspec-renamed", 0, nil)
		Expect(hit).To(harness.StopIn(sys("sethostname"), "kernel/sys.c"))
		Expect(hit).To(harness.HaveComm("hostname"))
		Expect(cstring(ctx, sysArg(ctx, hit, 0))).To(Equal("kspec-renamed"))
		Expect(sysArg(ctx, hit, 1)).To(BeEquivalentTo(len("kspec-renamed")))
		before, err := target.ReadString(ctx, "init_uts_ns.name.nodename")
		Expect(err).NotTo(HaveOccurred())
		Expect(before).To(Equal(target.Spec().Hostname), "not renamed yet at the entry")
		cmd.finish(ctx)
		after, err := target.ReadString(ctx, "init_uts_ns.name.nodename")
		Expect(err).NotTo(HaveOccurred())
		Expect(after).To(Equal("kspec-renamed"))
	}, SpecTimeout(time.Minute))

	It(fmt.Sprintf("a breakpoint on __do_sys_sethostname, which the compiler inlines into %s, stops hostname in it", sys("sethostname")), Label("sethostname", "inline"), func(ctx SpecContext) {
		// No symbol: Break sets a location at each inlined copy, as gdb does.
		hit, cmd := stopAt(ctx, "__do_sys_sethostname", "hostname kspec-inlined", 0, nil)
		Expect(hit).To(harness.StopIn("__do_sys_sethostname", "kernel/sys.c"))
		Expect(hit).To(harness.HaveComm("hostname"))
		frames, err := hit.Backtrace(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(frames[0].Function).To(Equal("__do_sys_sethostname"), "the inlined function is the innermost frame:\n%s", harness.FormatBacktrace(frames, "  "))
		Expect(hit).To(harness.HaveBacktraceContaining(sys("sethostname"), syscallDispatch))
		cmd.finish(ctx)
		Expect(shell(ctx, "hostname")).To(Equal("kspec-inlined\n"))
	}, SpecTimeout(time.Minute))

	It("uname reads the release the kernel keeps in init_uts_ns", Label("uname"), func(ctx SpecContext) {
		// (The shell calls uname too, for its prompt's host name.)
		hit, cmd := stopAt(ctx, "__do_sys_newuname", "uname -r", 0, commIs(ctx, "uname"))
		Expect(hit).To(harness.HaveComm("uname"))
		release, err := target.ReadString(ctx, "init_uts_ns.name.release")
		Expect(err).NotTo(HaveOccurred())
		Expect(release).To(Equal(target.Spec().Version))
		Expect(strings.TrimSpace(cmd.finish(ctx).Output)).To(Equal(release))
	}, SpecTimeout(time.Minute))

	It("reports a breakpoint on a symbol the kernel does not have as bad input", Label("negative"), func(ctx SpecContext) {
		_, err := target.Break(ctx, "kspec_no_such_function")
		Expect(err).To(MatchError(harness.ErrBadInput))
		Expect(err.Error()).To(ContainSubstring("kspec_no_such_function"))
	}, SpecTimeout(time.Minute))
})

// yield is the body of a guest-side wait loop: it gives the single vCPU
// back between checks. A loop of ':' spins; on Linux 7.3-rc the spin
// starved the RCU kthread (an RCU stall) while the files its checks
// opened, freed through RCU, piled up until the OOM killer took the
// background shell.
const yield = "sleep 0.01"

// backgroundSleep starts a sleep in the background and returns its PID. A
// non-interactive shell waits for it and writes its exit status to
// /tmp/kspec-sleep.status.
func backgroundSleep(ctx SpecContext) int {
	GinkgoHelper()
	shell(ctx, `sh -c 'sleep 60 & echo $! > /tmp/kspec-sleep.pid; wait $!; echo $? > /tmp/kspec-sleep.status' > /dev/null 2>&1 &`)
	// The child is a forked shell until it has exec'd sleep: wait for that.
	out := shell(ctx, `until [ -s /tmp/kspec-sleep.pid ]; do `+yield+`; done; read p < /tmp/kspec-sleep.pid
until read c < /proc/$p/comm && [ "$c" = sleep ]; do `+yield+`; done; echo $p`)
	pid, err := strconv.Atoi(strings.TrimSpace(out))
	Expect(err).NotTo(HaveOccurred(), "pid %q", out)
	return pid
}
