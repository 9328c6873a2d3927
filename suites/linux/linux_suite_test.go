// Package linux_test holds kspec's kernel-behaviour specs for Linux guests.
// Each Ginkgo process boots one guest (the prepared default guest, or the
// one $KSPEC_GUEST names) and runs its specs against it.
package linux_test

import (
	"context"
	"os"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kspec/kspec/harness"
)

func TestLinux(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Linux kernel specs")
}

// target is this Ginkgo process's guest.
var target *harness.Target

var _ = BeforeSuite(func(ctx SpecContext) {
	t, err := harness.Boot(ctx, harness.Options{
		Logf: func(format string, args ...any) { GinkgoWriter.Printf(format+"\n", args...) },
	})
	harness.SkipOrFail(err, Skip)
	Expect(err).NotTo(HaveOccurred())
	target = t
	DeferCleanup(func() { Expect(target.Close()).To(Succeed()) })
	GinkgoWriter.Printf("guest %s %s logged in after %s\n", t.Spec().Name, t.Spec().Version, t.BootDuration)
}, NodeTimeout(3*time.Minute))

// breakAndRun sets a breakpoint on fn, starts cmd in the guest and returns
// the first hit; the guest is left stopped at it. Cleanup clears the
// breakpoint, resumes the guest and waits for cmd to finish.
func breakAndRun(ctx context.Context, fn, cmd string) *harness.Hit {
	GinkgoHelper()
	bp, err := target.Break(ctx, fn)
	Expect(err).NotTo(HaveOccurred())
	pending, err := target.Start(ctx, cmd)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx SpecContext) {
		Expect(target.ClearBreakpoints(ctx)).To(Succeed())
		res, err := pending.Wait(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Status).To(Equal(0), "%s: %s", cmd, res.Output)
	}, NodeTimeout(time.Minute))
	waitCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	hit, err := bp.Wait(waitCtx)
	Expect(err).NotTo(HaveOccurred())
	return hit
}

var _ = os.Getenv
