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
// skipped with the reason missingGuest. The set-up is the spec kit's
// (package kspectest).
package freebsd_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kspec/kspec/guest"
	"github.com/kspec/kspec/harness"
	"github.com/kspec/kspec/kspectest"
)

// GuestEnv names the FreeBSD guest config the suite boots.
const GuestEnv = "KSPEC_FREEBSD_GUEST"

// missingGuest is the skip reason when no FreeBSD guest is configured.
const missingGuest = GuestEnv + " is not set: the FreeBSD specs need a FreeBSD disk image and its kernel.debug, described by a guest config (KSPEC_FREEBSD_GUEST=path/to/guest.json; see guest/testdata/freebsd-example)"

func TestFreeBSD(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "FreeBSD kernel specs")
}

// suite boots one FreeBSD guest per Ginkgo process from the config (QEMU
// runs on a private overlay of the image, so the image is never written).
var suite = kspectest.Setup(kspectest.Config{
	GuestEnv:    GuestEnv,
	OS:          guest.OSFreeBSD,
	SkipWithout: missingGuest,
	Boot:        harness.Options{BootTimeout: 10 * time.Minute}, // a FreeBSD disk boot under TCG takes minutes
	HitTimeout:  2 * time.Minute,
})

// target is this Ginkgo process's guest, for the specs.
var target *harness.Target

var _ = BeforeEach(func() { target = suite.Target() })

// stopAt sets a breakpoint on fn, starts cmd and returns the first hit,
// with the guest stopped there. The returned function (also deferred)
// clears the breakpoints, resumes the guest and returns cmd's result,
// expecting exit status 0.
func stopAt(ctx context.Context, fn, cmd string) (*harness.Hit, func(context.Context) guest.Result) {
	GinkgoHelper()
	hit, c := suite.StopAt(ctx, fn, cmd, 0, nil)
	return hit, c.Finish
}

// userPathArg reads the user path of a FreeBSD system call at the entry of
// sys_NAME(struct thread *td, struct NAME_args *uap): uap->path.
func userPathArg(ctx context.Context, h *harness.Hit, argsType string) string {
	GinkgoHelper()
	uap, err := h.Arg(ctx, 1)
	Expect(err).NotTo(HaveOccurred())
	return suite.StringMember(ctx, uap, "struct "+argsType, "path")
}
