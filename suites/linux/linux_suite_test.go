// Package linux_test holds kspec's kernel-behaviour specs for Linux guests.
//
// The guest (the prepared default guest, or the one $KSPEC_GUEST names) is
// looked up and checked once (SynchronizedBeforeSuite); each Ginkgo process
// then boots its own QEMU with its own run directory, sockets and snapshot
// drive, logs in and saves a baseline snapshot. Every spec starts from that
// baseline: BeforeEach restores it and resynchronises the debugger and the
// console (harness.Target.Reset), so specs may change anything in the guest.
//
//	go test ./suites/linux/
//	go run github.com/onsi/ginkgo/v2/ginkgo -p ./suites/linux
//	go run github.com/onsi/ginkgo/v2/ginkgo --label-filter=fs --junit-report=report.xml ./suites/linux
//
// A failed spec's report carries its console transcript, the last stop
// reply and the registers (report entries, also in --junit-report output).
// With KSPEC_HOLD=1 a failed spec's guest is held stopped where it failed
// and a gdb command that attaches to it is printed (harness.Target.Hold);
// the suite goes on when that gdb quits (or after KSPEC_HOLD_LIMIT).
package linux_test

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kspec/kspec/guest"
	"github.com/kspec/kspec/harness"
)

func TestLinux(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Linux kernel specs")
}

// target is this Ginkgo process's guest.
var target *harness.Target

// suiteGuest is what the first process found and checked, for all processes.
type suiteGuest struct {
	// Ref is the guest reference every process boots (a name or a config
	// file path).
	Ref string
	// Version is the kernel release found, so that a process that would
	// boot another one (a prepare ran meanwhile) fails instead.
	Version string
}

var _ = SynchronizedBeforeSuite(func(ctx SpecContext) []byte {
	// Once: find the guest and check the prerequisites.
	ref := os.Getenv("KSPEC_GUEST")
	if ref == "" {
		ref = harness.DefaultGuest
	}
	spec, err := harness.ResolveGuest(harness.Options{Guest: ref})
	if err == nil {
		err = harness.CheckQEMU(os.Getenv("KSPEC_QEMU"))
	}
	harness.SkipOrFail(err, Skip)
	Expect(err).NotTo(HaveOccurred())
	Expect(spec.OS).To(Equal(guest.OSLinux), "suites/linux needs a Linux guest; %s is %s", spec.Name, spec.OS)
	data, err := json.Marshal(suiteGuest{Ref: ref, Version: spec.Version})
	Expect(err).NotTo(HaveOccurred())
	return data
}, func(ctx SpecContext, data []byte) {
	// Every process: its own guest, logged in, with a baseline snapshot.
	var g suiteGuest
	Expect(json.Unmarshal(data, &g)).To(Succeed())
	t, err := harness.Boot(ctx, harness.Options{
		Guest: g.Ref,
		Logf:  func(format string, args ...any) { GinkgoWriter.Printf(format+"\n", args...) },
	})
	Expect(err).NotTo(HaveOccurred())
	target = t
	DeferCleanup(func() { Expect(target.Close()).To(Succeed()) })
	Expect(t.Spec().Version).To(Equal(g.Version), "the guest changed while the suite started")
	Expect(target.SaveBaseline(ctx)).To(Succeed())
	GinkgoWriter.Printf("guest %s %s logged in after %s; baseline saved (snapshots: %s)\n",
		t.Spec().Name, t.Spec().Version, t.BootDuration, target.SnapshotMethod())
}, NodeTimeout(3*time.Minute))

// BeforeEach restores the baseline; when the last spec killed the guest
// (a panic, QEMU gone), Reset boots a fresh one instead, hence the bound of
// a boot rather than of a restore.
var _ = BeforeEach(func(ctx SpecContext) {
	Expect(target.Reset(ctx)).To(Succeed())
	if harness.HoldRequested() { // KSPEC_HOLD=1: runs last, after the report entries
		limit, err := harness.HoldLimitFromEnv()
		Expect(err).NotTo(HaveOccurred())
		DeferOnFailure(func(ctx SpecContext) {
			Expect(target.Hold(ctx, harness.HoldOptions{Limit: limit})).To(Succeed())
		}, NodeTimeout(limit+time.Minute))
	}
	DeferOnFailure(func(ctx SpecContext) {
		r := target.SpecReport(ctx)
		AddReportEntry("kspec console transcript", r.Transcript, ReportEntryVisibilityFailureOrVerbose)
		AddReportEntry("kspec last stop", r.LastStop, ReportEntryVisibilityFailureOrVerbose)
		AddReportEntry("kspec registers", r.Registers, ReportEntryVisibilityFailureOrVerbose)
	}, NodeTimeout(30*time.Second))
}, NodeTimeout(3*time.Minute))

// breakAndRun sets a breakpoint on fn, starts cmd in the guest and returns
// the first hit; the guest is left stopped at it. Cleanup clears the
// breakpoints, resumes the guest and waits for cmd to finish successfully.
func breakAndRun(ctx context.Context, fn, cmd string) *harness.Hit {
	GinkgoHelper()
	hit, _ := stopAt(ctx, fn, cmd, 0, nil)
	return hit
}

// stopAt sets a breakpoint on fn, starts cmd and waits for a hit of fn for
// which accept returns true (nil accepts the first), letting others go. The
// guest is left stopped at the hit. Cleanup (or finish) clears the
// breakpoints, resumes the guest and expects cmd to exit with status.
func stopAt(ctx context.Context, fn, cmd string, status int, accept func(*harness.Hit) bool) (*harness.Hit, *command) {
	GinkgoHelper()
	bp, err := target.Break(ctx, fn)
	Expect(err).NotTo(HaveOccurred())
	pending, err := target.Start(ctx, cmd)
	Expect(err).NotTo(HaveOccurred())
	c := &command{cmd: cmd, status: status, pending: pending}
	DeferCleanup(func(ctx SpecContext) { c.finish(ctx) }, NodeTimeout(time.Minute))
	waitCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for skipped := 0; ; skipped++ {
		hit, err := bp.Wait(waitCtx)
		Expect(err).NotTo(HaveOccurred(), "waiting for %s while %q runs (%d other hits let go)", fn, cmd, skipped)
		if accept == nil || accept(hit) {
			return hit, c
		}
		Expect(target.Continue(ctx)).To(Succeed())
	}
}

// command is a shell command started while a breakpoint waits.
type command struct {
	cmd     string
	status  int
	pending *guest.Pending
	res     *guest.Result
}

// finish clears every breakpoint, resumes the guest, waits for the command
// and checks its exit status; it returns the command's result. It may be
// called more than once.
func (c *command) finish(ctx context.Context) guest.Result {
	GinkgoHelper()
	if c.res != nil {
		return *c.res
	}
	Expect(target.ClearBreakpoints(ctx)).To(Succeed())
	res, err := c.pending.Wait(ctx)
	Expect(err).NotTo(HaveOccurred())
	c.res = &res
	Expect(res.Status).To(Equal(c.status), "%s: %s", c.cmd, res.Output)
	return res
}
