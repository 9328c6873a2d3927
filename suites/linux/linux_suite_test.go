// Package linux_test holds kspec's kernel-behaviour specs for Linux guests.
//
// The suite's set-up is the spec kit's (package kspectest): the guest (the
// prepared default guest, or the one $KSPEC_GUEST names) is looked up and
// checked once; each Ginkgo process then boots its own QEMU with its own
// run directory, sockets and snapshot drive, logs in and saves a baseline
// snapshot. Every spec starts from that baseline: BeforeEach restores it
// and resynchronises the debugger and the console (harness.Target.Reset),
// so specs may change anything in the guest.
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
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kspec/kspec/guest"
	"github.com/kspec/kspec/harness"
	"github.com/kspec/kspec/kspectest"
)

func TestLinux(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Linux kernel specs")
}

// suite is the kit's set-up: one guest per Ginkgo process, reset before
// each spec.
var suite = kspectest.Setup(kspectest.Config{OS: guest.OSLinux})

// target is this Ginkgo process's guest, for the specs.
var target *harness.Target

var _ = BeforeEach(func() { target = suite.Target() })

// breakAndRun sets a breakpoint on fn, starts cmd and returns the first
// hit, the guest stopped there (kspectest.Suite.BreakAndRun).
func breakAndRun(ctx context.Context, fn, cmd string) *harness.Hit {
	GinkgoHelper()
	return suite.BreakAndRun(ctx, fn, cmd)
}

// stopAt waits for a hit of fn accepted by accept while cmd runs, expecting
// cmd to exit with status (kspectest.Suite.StopAt).
func stopAt(ctx context.Context, fn, cmd string, status int, accept func(*harness.Hit) bool) (*harness.Hit, command) {
	GinkgoHelper()
	hit, c := suite.StopAt(ctx, fn, cmd, status, accept)
	return hit, command{c}
}

// command is the shell command of a stopAt.
type command struct{ *kspectest.Command }

// finish clears the breakpoints, resumes the guest and returns the
// command's checked result (kspectest.Command.Finish).
func (c command) finish(ctx context.Context) guest.Result {
	GinkgoHelper()
	return c.Finish(ctx)
}
