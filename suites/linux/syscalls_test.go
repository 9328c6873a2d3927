package linux_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kspec/kspec/harness"
)

var _ = Describe("system calls reach their kernel implementation", func() {
	// The flagship: do_mkdirat up to Linux 6.x, filename_mkdirat from 7.0.
	It(fmt.Sprintf("mkdir hits %s in fs/namei.c", mkdirat), Label("fs", "mkdir"), func(ctx SpecContext) {
		hit := breakAndRun(ctx, mkdirat, "mkdir /tmp/kspec-mkdir")
		Expect(hit).To(harness.StopIn(mkdirat, "fs/namei.c"))
		expectLineFromDWARF(hit, mkdirat)
	}, SpecTimeout(2*time.Minute))

	It(fmt.Sprintf("rmdir hits %s in fs/namei.c", rmdir), Label("fs", "rmdir"), func(ctx SpecContext) {
		res, err := target.Shell(ctx, "mkdir -p /tmp/kspec-rmdir")
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Status).To(Equal(0), res.Output)

		hit := breakAndRun(ctx, rmdir, "rmdir /tmp/kspec-rmdir")
		Expect(hit).To(harness.StopIn(rmdir, "fs/namei.c"))
		expectLineFromDWARF(hit, rmdir)
	}, SpecTimeout(2*time.Minute))

	It("uname hits __do_sys_newuname in kernel/sys.c", Label("kernel", "uname"), func(ctx SpecContext) {
		hit := breakAndRun(ctx, "__do_sys_newuname", "uname -r")
		Expect(hit).To(harness.StopIn("__do_sys_newuname", "kernel/sys.c"))
		expectLineFromDWARF(hit, "__do_sys_newuname")
	}, SpecTimeout(2*time.Minute))
})

var _ = Describe("breakpoints a command does not reach", func() {
	It("are not hit by uname, and the guest keeps running", Label("negative"), func(ctx SpecContext) {
		bp, err := target.Break(ctx, rmdir)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) { Expect(target.ClearBreakpoints(ctx)).To(Succeed()) })

		// The command completes while the breakpoint is armed: the guest ran.
		res, err := target.Shell(ctx, "uname -r")
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Status).To(Equal(0))
		Expect(res.Output).To(ContainSubstring(target.Spec().Version))

		// Stopping the guest now yields our own interrupt, not the breakpoint.
		stop, err := target.Interrupt(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(bp.Hit()).To(BeFalse(), "%s was hit by uname (stop %q)", rmdir, stop.Raw)
		Expect(target.Continue(ctx)).To(Succeed())

		// And it still answers afterwards.
		res, err = target.Shell(ctx, "echo still-running")
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Output).To(ContainSubstring("still-running"))
	}, SpecTimeout(2*time.Minute))

	It("fails at once when the command started for it finishes, with its status and output", Label("negative"), func(ctx SpecContext) {
		bp, err := target.Break(ctx, rmdir)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) { Expect(target.ClearBreakpoints(ctx)).To(Succeed()) })
		pending, err := target.Start(ctx, "echo not-an-rmdir; false")
		Expect(err).NotTo(HaveOccurred())
		waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		_, err = bp.WaitFor(waitCtx, pending)
		GinkgoWriter.Printf("kspec reported: %v\n", err)
		Expect(waitCtx.Err()).NotTo(HaveOccurred(), "WaitFor waited for its deadline")
		var nh *harness.NotHitError
		Expect(errors.As(err, &nh)).To(BeTrue(), "got %T: %v", err, err)
		Expect(err).To(MatchError(harness.ErrNotHit))
		Expect(err).To(MatchError(harness.ErrCommandFinished))
		Expect(nh.Result).NotTo(BeNil())
		Expect(nh.Result.Status).To(Equal(1))
		Expect(nh.Result.Output).To(Equal("not-an-rmdir\n"))
		Expect(err.Error()).To(ContainSubstring("status 1"))
		Expect(err.Error()).To(ContainSubstring("cpu0 at"))
		// The command's result stays collectable.
		Expect(target.Continue(ctx)).To(Succeed())
		res, err := target.Collect(ctx, pending)
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Status).To(Equal(1))
	}, SpecTimeout(2*time.Minute))

	It("reports a breakpoint that is never hit as not hit, with a diagnosis", Label("negative"), func(ctx SpecContext) {
		bp, err := target.Break(ctx, rmdir)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) { Expect(target.ClearBreakpoints(ctx)).To(Succeed()) })
		waitCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err = bp.Wait(waitCtx)
		Expect(err).To(MatchError(harness.ErrNotHit))
		Expect(err.Error()).To(ContainSubstring("cpu0 at"))
	}, SpecTimeout(time.Minute))
})

// expectLineFromDWARF checks the hit's line against the line table of the
// kernel that runs: the line is never a number written in the spec.
func expectLineFromDWARF(hit *harness.Hit, fn string) {
	GinkgoHelper()
	loc, err := target.Symbols().FunctionLine(fn)
	Expect(err).NotTo(HaveOccurred())
	Expect(hit.Line).To(Equal(loc.Line))
	Expect(hit.Line).To(BeNumerically(">", 0))
}
