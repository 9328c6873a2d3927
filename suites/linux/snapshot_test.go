package linux_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// Specs about the isolation kspec gives every spec.
var _ = Describe("snapshots", Label("snapshot"), func() {
	It("every spec starts from the baseline, whatever earlier specs changed", func(ctx SpecContext) {
		// Other specs create /tmp/kspec-*, rename the host, mount, cd and
		// leave breakpoints; none of it is visible here.
		Expect(shell(ctx, "hostname; pwd; ls /tmp; grep -c kspec /proc/mounts || true")).To(Equal(target.Spec().Hostname + "\n/root\n0\n"))
		Expect(target.RSP().Running()).To(BeTrue())
		Expect(target.RSP().Stops()).To(BeZero())
		bp, err := target.Break(ctx, mkdirat)
		Expect(err).NotTo(HaveOccurred())
		Expect(bp.Hit()).To(BeFalse())
		Expect(target.ClearBreakpoints(ctx)).To(Succeed())
	}, SpecTimeout(time.Minute))

	It("a spec can save and restore its own snapshot", func(ctx SpecContext) {
		shell(ctx, "echo saved > /tmp/kspec-snap")
		Expect(target.SaveSnapshot(ctx, "kspec-spec")).To(Succeed())
		DeferCleanup(func(ctx SpecContext) { Expect(target.DeleteSnapshot(ctx, "kspec-spec")).To(Succeed()) })
		shell(ctx, "echo changed > /tmp/kspec-snap; hostname kspec-changed")
		Expect(target.RestoreSnapshot(ctx, "kspec-spec")).To(Succeed())
		Expect(shell(ctx, "cat /tmp/kspec-snap; hostname")).To(Equal("saved\n" + target.Spec().Hostname + "\n"))
	}, SpecTimeout(time.Minute))
})
