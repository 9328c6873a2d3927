package faults_test

import (
	"context"
	"errors"
	"os/exec"
	"runtime"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kspec/kspec/harness"
)

// sysrqCrash makes the guest kernel panic ("sysrq triggered crash"); the
// guest's init enables magic SysRq.
const sysrqCrash = "echo c > /proc/sysrq-trigger"

// A wait bound far above any real answer: when the specs pass, the
// operations returned because kspec saw the fault, not because of it.
const generous = 3 * time.Minute

func expectPanic(err error) {
	GinkgoHelper()
	Expect(err).To(HaveOccurred())
	GinkgoWriter.Printf("kspec reported: %v\n", err)
	var kerr *harness.KernelError
	Expect(errors.As(err, &kerr)).To(BeTrue(), "want a *harness.KernelError, got %T: %v", err, err)
	Expect(kerr.Kind).To(Equal("panic"))
	Expect(kerr.Detail).To(ContainSubstring("Kernel panic - not syncing: sysrq triggered crash"))
	Expect(err.Error()).To(ContainSubstring("kernel failure (panic)"))
	Expect(errors.Is(err, context.DeadlineExceeded)).To(BeFalse(), "the panic was found by a timeout")
}

var _ = Describe("a guest kernel panic", Label("panic"), func() {
	It("fails a Shell command as a KernelError with the panic text, and the next boot works", func(ctx SpecContext) {
		t := boot(ctx)
		opCtx, cancel := context.WithTimeout(ctx, generous)
		defer cancel()
		_, err := t.Shell(opCtx, sysrqCrash)
		expectPanic(err)
		Expect(opCtx.Err()).NotTo(HaveOccurred())
		// The kernel is dead: later operations say so too, not "QEMU died".
		_, err = t.Shell(opCtx, "true")
		expectPanic(err)
		Expect(t.Close()).To(Succeed())

		next := boot(ctx)
		res, err := next.Shell(ctx, "echo alive")
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Output).To(Equal("alive\n"))
	}, SpecTimeout(6*time.Minute))

	It("ends a breakpoint wait and a started command with the panic", func(ctx SpecContext) {
		t := boot(ctx)
		bp, err := t.Break(ctx, "do_rmdir")
		Expect(err).NotTo(HaveOccurred())
		pending, err := t.Start(ctx, sysrqCrash)
		Expect(err).NotTo(HaveOccurred())
		opCtx, cancel := context.WithTimeout(ctx, generous)
		defer cancel()
		_, err = bp.Wait(opCtx)
		expectPanic(err)
		_, err = t.Collect(opCtx, pending)
		expectPanic(err)
		Expect(opCtx.Err()).NotTo(HaveOccurred())
	}, SpecTimeout(5*time.Minute))
})

var _ = Describe("a kernel oops", Label("oops"), func() {
	It("fails the command that hit it as a KernelError, and later commands run", func(ctx SpecContext) {
		t := boot(ctx)
		bp, err := t.Break(ctx, "do_mkdirat")
		Expect(err).NotTo(HaveOccurred())
		pending, err := t.Start(ctx, "mkdir /tmp/kspec-oops")
		Expect(err).NotTo(HaveOccurred())
		waitCtx, cancel := context.WithTimeout(ctx, generous)
		defer cancel()
		_, err = bp.Wait(waitCtx)
		Expect(err).NotTo(HaveOccurred())
		// Jump to address 0 in kernel mode: the kernel oopses ("BUG: kernel
		// NULL pointer dereference") and kills mkdir, and goes on running.
		Expect(t.RSP().WriteRegister(ctx, t.Arch().PC(), 0)).To(Succeed())
		Expect(t.ClearBreakpoints(ctx)).To(Succeed())

		_, err = t.Collect(waitCtx, pending)
		GinkgoWriter.Printf("kspec reported: %v\n", err)
		var kerr *harness.KernelError
		Expect(errors.As(err, &kerr)).To(BeTrue(), "want a *harness.KernelError, got %T: %v", err, err)
		Expect(kerr.Kind).To(Equal("oops"))
		Expect(kerr.Detail).To(ContainSubstring("BUG: kernel NULL pointer dereference, address: 0000000000000000"))
		Expect(waitCtx.Err()).NotTo(HaveOccurred())

		// The oops was reported once; the kernel still runs commands.
		res, err := t.Shell(ctx, "echo alive")
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Output).To(Equal("alive\n"))
	}, SpecTimeout(5*time.Minute))
})

var _ = Describe("kspec exec on a guest that panics", Label("panic", "cli"), func() {
	It("exits 1 and says kernel panic, with the panic text", func(ctx SpecContext) {
		if _, err := harness.ResolveGuest(harness.Options{}); err != nil {
			harness.SkipOrFail(err, Skip)
			Expect(err).NotTo(HaveOccurred())
		}
		bin := buildKspec(ctx)
		out, err := exec.CommandContext(ctx, bin, "exec", "--", sysrqCrash).CombinedOutput()
		GinkgoWriter.Printf("kspec exec: %v\n%s\n", err, out)
		var ee *exec.ExitError
		Expect(errors.As(err, &ee)).To(BeTrue(), "kspec exec: %v\n%s", err, out)
		Expect(ee.ExitCode()).To(Equal(1), "%s", out)
		Expect(string(out)).To(ContainSubstring("kernel failure (panic): Kernel panic - not syncing: sysrq triggered crash"))
		Expect(string(out)).NotTo(ContainSubstring("harness error"))
	}, SpecTimeout(5*time.Minute))
})

var _ = Describe("QEMU killed under kspec", Label("qemu-dies"), func() {
	It("fails the pending operations as a HarnessError naming SIGKILL and leaks nothing", func(ctx SpecContext) {
		// A first boot starts whatever lives for the whole process (caches,
		// the Ginkgo reporter's goroutines), so the counts compare like with like.
		warm := boot(ctx)
		Expect(warm.Close()).To(Succeed())
		fds, goroutines := openFDs(), runtime.NumGoroutine()

		t := boot(ctx)
		runDir := t.Machine().Paths().RunDir
		bp, err := t.Break(ctx, "do_rmdir")
		Expect(err).NotTo(HaveOccurred())
		pending, err := t.Start(ctx, "sleep 600")
		Expect(err).NotTo(HaveOccurred())

		Expect(syscall.Kill(t.Machine().PID(), syscall.SIGKILL)).To(Succeed())

		opCtx, cancel := context.WithTimeout(ctx, generous)
		defer cancel()
		for what, err := range map[string]error{
			"breakpoint wait": func() error { _, err := bp.Wait(opCtx); return err }(),
			"started command": func() error { _, err := t.Collect(opCtx, pending); return err }(),
			"shell":           func() error { _, err := t.Shell(opCtx, "true"); return err }(),
		} {
			GinkgoWriter.Printf("%s: kspec reported: %v\n", what, err)
			var herr *harness.HarnessError
			Expect(errors.As(err, &herr)).To(BeTrue(), "%s: want a *harness.HarnessError, got %T: %v", what, err, err)
			Expect(harness.IsKernelFailure(err)).To(BeFalse(), what)
			Expect(err.Error()).To(ContainSubstring("killed by SIGKILL"), what)
		}
		Expect(opCtx.Err()).NotTo(HaveOccurred(), "an operation waited for its deadline")
		Expect(t.Close()).To(Succeed())

		// (Other test processes may have run directories of their own, so
		// this one's is checked by name.)
		Expect(runDir).NotTo(BeADirectory(), "run directory left behind")
		Expect(settled(func() bool { return openFDs() <= fds })).To(BeTrue(), "fds: %d before, %d after", fds, openFDs())
		Expect(settled(func() bool { return runtime.NumGoroutine() <= goroutines })).To(BeTrue(),
			"goroutines: %d before, %d after", goroutines, runtime.NumGoroutine())
		GinkgoWriter.Printf("after the kill: %d fds (before %d), %d goroutines (before %d)\n", openFDs(), fds, runtime.NumGoroutine(), goroutines)
	}, SpecTimeout(6*time.Minute))
})

var _ = Describe("a breakpoint that is never hit", Label("not-hit"), func() {
	It("is a NotHitError with the vCPUs' registers, and the guest restores cleanly", func(ctx SpecContext) {
		t := boot(ctx)
		Expect(t.SaveBaseline(ctx)).To(Succeed())
		bp, err := t.Break(ctx, "do_rmdir")
		Expect(err).NotTo(HaveOccurred())
		waitCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		_, err = bp.Wait(waitCtx)
		GinkgoWriter.Printf("kspec reported: %v\n", err)
		var nh *harness.NotHitError
		Expect(errors.As(err, &nh)).To(BeTrue(), "got %T: %v", err, err)
		Expect(errors.Is(err, harness.ErrNotHit)).To(BeTrue())
		Expect(nh.Diagnosis).To(MatchRegexp(`guest interrupted, vCPUs: cpu0 at \S+\+0x[0-9a-f]+ at .*\(pc 0x[0-9a-f]+, cpu 0\)`))

		Expect(t.Reset(ctx)).To(Succeed())
		res, err := t.Shell(ctx, "echo restored")
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Output).To(Equal("restored\n"))
	}, SpecTimeout(5*time.Minute))

	It("makes kspec probe exit 1", func(ctx SpecContext) {
		if _, err := harness.ResolveGuest(harness.Options{}); err != nil {
			harness.SkipOrFail(err, Skip)
			Expect(err).NotTo(HaveOccurred())
		}
		bin := buildKspec(ctx)
		cmd := exec.CommandContext(ctx, bin, "probe", "--break", "do_rmdir", "--run", "true", "--timeout", "3s")
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		Expect(errors.As(err, &ee)).To(BeTrue(), "kspec probe: %v\n%s", err, out)
		Expect(ee.ExitCode()).To(Equal(1), "%s", out)
		GinkgoWriter.Printf("kspec probe exited %d:\n%s\n", ee.ExitCode(), out)
		Expect(string(out)).To(ContainSubstring("was not hit"))
		Expect(string(out)).To(ContainSubstring("cpu0 at"))
	}, SpecTimeout(5*time.Minute))
})
