// Package kspectest is the kit for writing kernel specs with kspec in a
// repository of your own: one call gives a Ginkgo suite its whole set-up.
//
//	func TestKernel(t *testing.T) {
//		RegisterFailHandler(Fail)
//		RunSpecs(t, "my kernel specs")
//	}
//
//	var suite = kspectest.Setup(kspectest.Config{OS: guest.OSLinux})
//
//	var _ = It("mkdir reaches do_mkdirat", func(ctx SpecContext) {
//		hit := suite.BreakAndRun(ctx, "do_mkdirat", "mkdir /tmp/x")
//		Expect(hit).To(kspectest.StopIn("do_mkdirat", "fs/namei.c"))
//	})
//
// Setup does what every kspec suite needs:
//   - the guest: Config.Guest, else $KSPEC_GUEST (Config.GuestEnv), else
//     the prepared default guest (harness.DefaultGuest); it is looked up and
//     checked once (QEMU present, the OS the suite wants), before any boot;
//   - one guest per Ginkgo process (`ginkgo -p` runs several), each booted
//     and logged in with its own QEMU, sockets and snapshot drive, closed
//     when the suite ends;
//   - a baseline snapshot after login, restored before every spec
//     (harness.Target.Reset), so specs may change anything in the guest;
//   - on a failed spec, report entries with the console transcript, the
//     last stop and the registers (also in --junit-report output), and with
//     KSPEC_HOLD=1 the guest held where it failed for a person's gdb;
//   - on a failed spec, a vmcore of its guest and a repro bundle with the
//     failing state in its log directory under $KSPEC_LOGDIR
//     (harness.Target.FailureEvidence; KSPEC_VMCORE=0, KSPEC_REPRO=0: none);
//   - a missing QEMU or guest fails loudly with the fix, or skips with
//     KSPEC_SKIP_MISSING=1.
//
// Specs then use Suite.Target for the debugger and the console, and
// Suite.StopAt / Suite.BreakAndRun to stop the kernel while a shell
// command runs. The matchers StopIn, HaveBacktraceContaining and HaveComm
// are harness's, re-exported here. A spec that must own its guest (it
// breaks it) boots one with Boot.
//
// `kspec init DIR` writes a suite like this one (see package
// kspectest/example, which is that suite and runs as part of kspec's own
// tests).
package kspectest

import (
	"cmp"
	"context"
	"encoding/json"
	"os"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kspec/kspec/arch"
	"github.com/kspec/kspec/harness"
)

// GuestEnv is the environment variable that names the guest by default.
const GuestEnv = "KSPEC_GUEST"

// Config is a suite's set-up. The zero value boots the default guest (or
// $KSPEC_GUEST) and accepts any OS.
type Config struct {
	// Guest is the guest to boot: a prepared guest's name or a guest config
	// file. Default: $GuestEnv, else harness.DefaultGuest (unless
	// SkipWithout is set).
	Guest string
	// GuestEnv is the environment variable read when Guest is empty
	// (default GuestEnv, "KSPEC_GUEST").
	GuestEnv string
	// OS, when set (guest.OSLinux, guest.OSFreeBSD), is the OS the suite's
	// specs are about; a guest of another OS fails the suite at once.
	OS string
	// SkipWithout, when set, makes the guest optional: with neither Guest
	// nor GuestEnv set no guest boots and every spec is skipped with this
	// reason (for guests kspec cannot fetch, like FreeBSD's).
	SkipWithout string
	// Boot holds further boot options (memory, CPUs, BootTimeout, QEMU,
	// Transcript, ...); Guest and Logf are the kit's.
	Boot harness.Options
	// SetupTimeout bounds one process's boot, login and baseline. Default:
	// 3 minutes, or Boot.BootTimeout plus 2 minutes when that is longer.
	SetupTimeout time.Duration
	// ResetTimeout bounds the reset before each spec; when the last spec
	// killed the guest the reset boots a fresh one, so it is the bound of a
	// boot. Default: SetupTimeout.
	ResetTimeout time.Duration
	// HitTimeout bounds StopAt's wait for its breakpoint (default 60 s).
	HitTimeout time.Duration
}

// Suite is a suite's guest and the helpers that use it.
type Suite struct {
	cfg    Config
	target *harness.Target
}

// found is what the first Ginkgo process found and checked, for all.
type found struct {
	// Ref is the guest reference every process boots ("" for none).
	Ref string
	// Version is the kernel release found, so that a process that would
	// boot another one (a prepare ran meanwhile) fails instead.
	Version string
}

// Setup registers the suite's set-up with Ginkgo (a
// SynchronizedBeforeSuite and a BeforeEach, see the package
// documentation) and returns the Suite. Call it once, at package level:
//
//	var suite = kspectest.Setup(kspectest.Config{OS: guest.OSLinux})
func Setup(cfg Config) *Suite {
	cfg.GuestEnv = cmp.Or(cfg.GuestEnv, GuestEnv)
	cfg.SetupTimeout = cmp.Or(cfg.SetupTimeout, max(3*time.Minute, cfg.Boot.BootTimeout+2*time.Minute))
	cfg.ResetTimeout = cmp.Or(cfg.ResetTimeout, cfg.SetupTimeout)
	cfg.HitTimeout = cmp.Or(cfg.HitTimeout, 60*time.Second)
	s := &Suite{cfg: cfg}
	SynchronizedBeforeSuite(s.find, s.boot, NodeTimeout(cfg.SetupTimeout))
	BeforeEach(s.reset, NodeTimeout(cfg.ResetTimeout))
	return s
}

// Target is this Ginkgo process's guest (nil before the suite's set-up
// and when SkipWithout left the suite without one).
func (s *Suite) Target() *harness.Target { return s.target }

// find runs once, on the first process: find the guest and check the
// prerequisites before any process boots.
func (s *Suite) find(ctx SpecContext) []byte {
	ref := cmp.Or(s.cfg.Guest, os.Getenv(s.cfg.GuestEnv))
	var f found
	if ref != "" || s.cfg.SkipWithout == "" {
		opts := s.cfg.Boot
		opts.Guest = cmp.Or(ref, harness.DefaultGuest)
		spec, err := harness.ResolveGuest(opts)
		if err == nil {
			var cpu arch.Arch
			if cpu, err = spec.CPU(); err == nil {
				err = harness.CheckQEMU(cmp.Or(opts.QEMU, os.Getenv("KSPEC_QEMU")), cpu)
			}
		}
		harness.SkipOrFail(err, Skip)
		Expect(err).NotTo(HaveOccurred())
		if s.cfg.OS != "" {
			Expect(spec.OS).To(Equal(s.cfg.OS), "this suite needs a %s guest; %s is %s", s.cfg.OS, spec.Name, spec.OS)
		}
		f = found{Ref: opts.Guest, Version: spec.Version}
	}
	data, err := json.Marshal(f)
	Expect(err).NotTo(HaveOccurred())
	return data
}

// boot runs on every process: its own guest, logged in, with a baseline.
func (s *Suite) boot(ctx SpecContext, data []byte) {
	var f found
	Expect(json.Unmarshal(data, &f)).To(Succeed())
	if f.Ref == "" {
		return // every spec skips with SkipWithout (see reset)
	}
	opts := s.cfg.Boot
	opts.Guest, opts.Logf = f.Ref, Logf
	t, err := harness.Boot(ctx, opts)
	Expect(err).NotTo(HaveOccurred())
	s.target = t
	DeferCleanup(func() { Expect(t.Close()).To(Succeed()) })
	Expect(t.Spec().Version).To(Equal(f.Version), "the guest changed while the suite started")
	Expect(t.SaveBaseline(ctx)).To(Succeed())
	GinkgoWriter.Printf("guest %s %s logged in after %s; baseline saved (snapshots: %s)\n",
		t.Spec().Name, t.Spec().Version, t.BootDuration, t.SnapshotMethod())
}

// reset restores the baseline before each spec and arranges the failure
// report, the vmcore and repro bundle and, with KSPEC_HOLD=1, the hold.
func (s *Suite) reset(ctx SpecContext) {
	t := s.target
	if t == nil {
		Skip(s.cfg.SkipWithout)
	}
	Expect(t.Reset(ctx)).To(Succeed())
	if harness.HoldRequested() { // runs last, after the report entries
		limit, err := harness.HoldLimitFromEnv()
		Expect(err).NotTo(HaveOccurred())
		DeferOnFailure(func(ctx SpecContext) {
			Expect(t.Hold(ctx, harness.HoldOptions{Limit: limit})).To(Succeed())
		}, NodeTimeout(limit+time.Minute))
	}
	if harness.VmcoreRequested() || harness.ReproRequested() { // after the report entries, before a hold
		DeferOnFailure(func(ctx SpecContext) {
			AddReportEntry("kspec evidence", t.FailureEvidence(ctx, CurrentSpecReport().FullText()), ReportEntryVisibilityFailureOrVerbose)
		}, NodeTimeout(3*time.Minute))
	}
	DeferOnFailure(func(ctx SpecContext) { ReportFailure(ctx, t) }, NodeTimeout(30*time.Second))
}

// ReportFailure adds what a person needs to understand a failed spec to
// its report: the console transcript, the last stop and the registers
// (harness.Target.SpecReport). Setup does this for its guest; call it (from
// DeferOnFailure) for a guest a spec booted itself.
func ReportFailure(ctx context.Context, t *harness.Target) {
	r := t.SpecReport(ctx)
	AddReportEntry("kspec console transcript", r.Transcript, ReportEntryVisibilityFailureOrVerbose)
	AddReportEntry("kspec last stop", r.LastStop, ReportEntryVisibilityFailureOrVerbose)
	AddReportEntry("kspec registers", r.Registers, ReportEntryVisibilityFailureOrVerbose)
	if r.Source != "" {
		AddReportEntry("kspec source", r.Source, ReportEntryVisibilityFailureOrVerbose)
	}
}

// Logf writes a progress line to GinkgoWriter (shown for failed specs and
// with -v): harness.Options.Logf for guests booted in specs.
func Logf(format string, args ...any) { GinkgoWriter.Printf(format+"\n", args...) }

// Boot boots a guest for the current spec alone (a spec that breaks its
// guest), logging to GinkgoWriter, and closes it when the spec ends. A
// missing QEMU or guest fails the spec, or skips it with
// KSPEC_SKIP_MISSING=1.
func Boot(ctx context.Context, opts harness.Options) *harness.Target {
	GinkgoHelper()
	if opts.Logf == nil {
		opts.Logf = Logf
	}
	t, err := harness.Boot(ctx, opts)
	harness.SkipOrFail(err, Skip)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { _ = t.Close() })
	return t
}
