package faults_test

import (
	"context"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kspec/kspec/harness"
)

// A spec that kills its guest fails with its own error; the Reset before
// the next spec then boots a fresh guest in the same Target, so one broken
// guest does not fail the rest of a nightly run.
var _ = Describe("Reset after the guest died", Label("restart"), func() {
	for _, tc := range []struct {
		name string
		kill func(ctx context.Context, t *harness.Target)
	}{
		{"a kernel panic", func(ctx context.Context, t *harness.Target) {
			_, err := t.Shell(ctx, sysrqCrash)
			expectPanic(err)
		}},
		{"QEMU killed with SIGKILL", func(ctx context.Context, t *harness.Target) {
			Expect(syscall.Kill(t.Machine().PID(), syscall.SIGKILL)).To(Succeed())
			_, err := t.Shell(ctx, "true")
			var herr *harness.HarnessError
			Expect(err).To(BeAssignableToTypeOf(herr))
			Expect(err.Error()).To(ContainSubstring("killed by SIGKILL"))
		}},
	} {
		It("boots a fresh guest with its baseline after "+tc.name, func(ctx SpecContext) {
			t := boot(ctx)
			Expect(t.SaveBaseline(ctx)).To(Succeed())
			oldPID, oldRunDir := t.Machine().PID(), t.Machine().Paths().RunDir
			opCtx, cancel := context.WithTimeout(ctx, generous)
			defer cancel()
			_, err := t.Shell(opCtx, "echo old-timeline > /tmp/kspec-marker")
			Expect(err).NotTo(HaveOccurred())
			bp, err := t.Break(opCtx, "do_rmdir")
			Expect(err).NotTo(HaveOccurred())

			tc.kill(opCtx, t)

			Expect(t.Reset(opCtx)).To(Succeed())
			Expect(t.Machine().PID()).NotTo(Equal(oldPID), "no fresh QEMU")
			Expect(oldRunDir).NotTo(BeADirectory(), "the dead guest's run directory was left behind")
			GinkgoWriter.Printf("fresh guest: pid %d (old %d), booted in %s\n", t.Machine().PID(), oldPID, t.BootDuration)
			res, err := t.Shell(opCtx, "cat /tmp/kspec-marker 2>/dev/null || echo fresh")
			Expect(err).NotTo(HaveOccurred())
			Expect(res.Output).To(Equal("fresh\n"))
			// The old timeline's breakpoint is gone; new ones work.
			Expect(bp.Hit()).To(BeFalse())
			res, err = t.Shell(opCtx, "mkdir /tmp/d && rmdir /tmp/d && echo done")
			Expect(err).NotTo(HaveOccurred())
			Expect(res.Output).To(Equal("done\n"))
			bp, err = t.Break(opCtx, "do_mkdirat")
			Expect(err).NotTo(HaveOccurred())
			pending, err := t.Start(opCtx, "mkdir /tmp/e")
			Expect(err).NotTo(HaveOccurred())
			hit, err := bp.Wait(opCtx)
			Expect(err).NotTo(HaveOccurred())
			Expect(hit.Function).To(Equal("do_mkdirat"))
			Expect(t.ClearBreakpoints(opCtx)).To(Succeed())
			_, err = t.Collect(opCtx, pending)
			Expect(err).NotTo(HaveOccurred())
			// And its baseline was saved: a second Reset restores in place.
			pid := t.Machine().PID()
			Expect(t.Reset(opCtx)).To(Succeed())
			Expect(t.Machine().PID()).To(Equal(pid))
			res, err = t.Shell(opCtx, "ls -d /tmp/e 2>/dev/null || echo restored")
			Expect(err).NotTo(HaveOccurred())
			Expect(res.Output).To(Equal("restored\n"))
			Expect(opCtx.Err()).NotTo(HaveOccurred())
		}, SpecTimeout(6*time.Minute))
	}
})
