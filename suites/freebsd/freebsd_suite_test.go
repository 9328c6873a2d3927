// Package freebsd_test holds kspec's kernel-behaviour specs for FreeBSD
// guests: the original workflow ("break sys_mkdir, type mkdir on the
// guest's console, watch the stop land in sys/kern/vfs_syscalls.c") and a
// few more, written against the FreeBSD guest profile.
//
// No FreeBSD image can be fetched by kspec, so the suite runs only when
// the user describes one:
//
//	KSPEC_FREEBSD_GUEST=path/to/guest.json go test ./suites/freebsd/
//
// where guest.json names a FreeBSD disk image with a serial console and
// the kernel's debug symbols copied out of it (see
// guest/testdata/freebsd-example). Without it every spec is reported as
// skipped with the reason missingGuest.
package freebsd_test

import (
	"context"
	"os"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kspec/kspec/guest"
	"github.com/kspec/kspec/harness"
)

// GuestEnv names the FreeBSD guest config the suite boots.
const GuestEnv = "KSPEC_FREEBSD_GUEST"

// missingGuest is the skip reason when no FreeBSD guest is configured.
const missingGuest = GuestEnv + " is not set: the FreeBSD specs need a FreeBSD disk image and its kernel.debug, described by a guest config (KSPEC_FREEBSD_GUEST=path/to/guest.json; see guest/testdata/freebsd-example)"

func TestFreeBSD(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "FreeBSD kernel specs")
}

// target is this Ginkgo process's guest.
var target *harness.Target

var _ = BeforeSuite(func(ctx SpecContext) {
	cfg := os.Getenv(GuestEnv)
	if cfg == "" {
		return // every spec skips with missingGuest (see BeforeEach)
	}
	// Each Ginkgo process boots its own guest from the same config; QEMU
	// runs on a private overlay of the image, so the image is never written.
	t, err := harness.Boot(ctx, harness.Options{
		Guest:       cfg,
		BootTimeout: 10 * time.Minute, // a FreeBSD disk boot under TCG takes minutes
		Logf:        func(format string, args ...any) { GinkgoWriter.Printf(format+"\n", args...) },
	})
	Expect(err).NotTo(HaveOccurred())
	target = t
	DeferCleanup(func() { Expect(target.Close()).To(Succeed()) })
	Expect(t.Spec().OS).To(Equal(guest.OSFreeBSD), "%s describes a %s guest", cfg, t.Spec().OS)
	Expect(target.SaveBaseline(ctx)).To(Succeed())
	GinkgoWriter.Printf("guest %s %s logged in after %s\n", t.Spec().Name, t.Spec().Version, t.BootDuration)
}, NodeTimeout(12*time.Minute))

var _ = BeforeEach(func(ctx SpecContext) {
	if target == nil {
		Skip(missingGuest)
	}
	Expect(target.Reset(ctx)).To(Succeed())
	DeferOnFailure(func(ctx SpecContext) {
		r := target.SpecReport(ctx)
		AddReportEntry("kspec console transcript", r.Transcript, ReportEntryVisibilityFailureOrVerbose)
		AddReportEntry("kspec last stop", r.LastStop, ReportEntryVisibilityFailureOrVerbose)
		AddReportEntry("kspec registers", r.Registers, ReportEntryVisibilityFailureOrVerbose)
	}, NodeTimeout(30*time.Second))
}, NodeTimeout(2*time.Minute))

// stopAt sets a breakpoint on fn, starts cmd and returns the first hit,
// with the guest stopped there. The returned function (also deferred)
// clears the breakpoints, resumes the guest and returns cmd's result,
// expecting exit status 0.
func stopAt(ctx context.Context, fn, cmd string) (*harness.Hit, func(context.Context) guest.Result) {
	GinkgoHelper()
	bp, err := target.Break(ctx, fn)
	Expect(err).NotTo(HaveOccurred())
	pending, err := target.Start(ctx, cmd)
	Expect(err).NotTo(HaveOccurred())
	var res *guest.Result
	finish := func(ctx context.Context) guest.Result {
		GinkgoHelper()
		if res == nil {
			Expect(target.ClearBreakpoints(ctx)).To(Succeed())
			r, err := pending.Wait(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(r.Status).To(Equal(0), "%s: %s", cmd, r.Output)
			res = &r
		}
		return *res
	}
	DeferCleanup(func(ctx SpecContext) { finish(ctx) }, NodeTimeout(time.Minute))
	waitCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	hit, err := bp.Wait(waitCtx)
	Expect(err).NotTo(HaveOccurred())
	return hit, finish
}

// userPathArg reads the user path of a FreeBSD system call at the entry of
// sys_NAME(struct thread *td, struct NAME_args *uap): uap->path.
func userPathArg(ctx context.Context, h *harness.Hit, argsType string) string {
	GinkgoHelper()
	uap, err := h.Arg(ctx, 1)
	Expect(err).NotTo(HaveOccurred())
	off, err := target.Symbols().Offsetof("struct "+argsType, "path")
	Expect(err).NotTo(HaveOccurred())
	p, err := target.ReadUint64(ctx, uap+off.Addr)
	Expect(err).NotTo(HaveOccurred())
	s, err := target.ReadCString(ctx, p, 1024)
	Expect(err).NotTo(HaveOccurred())
	return s
}
