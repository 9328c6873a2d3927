package kspectest

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kspec/kspec/guest"
	"github.com/kspec/kspec/harness"
)

// BreakAndRun sets a breakpoint on fn, starts cmd in the guest and returns
// the first hit; the guest is left stopped at it. At the spec's cleanup
// the breakpoints are cleared, the guest resumed and cmd expected to exit
// with status 0.
func (s *Suite) BreakAndRun(ctx context.Context, fn, cmd string) *harness.Hit {
	GinkgoHelper()
	hit, _ := s.StopAt(ctx, fn, cmd, 0, nil)
	return hit
}

// StopAt sets a breakpoint on fn, starts cmd and waits (at most
// Config.HitTimeout) for a hit of fn for which accept returns true (nil
// accepts the first), letting the others go. The guest is left stopped at
// the hit. Command.Finish, or the spec's cleanup, clears the breakpoints,
// resumes the guest and expects cmd to exit with status.
func (s *Suite) StopAt(ctx context.Context, fn, cmd string, status int, accept func(*harness.Hit) bool) (*harness.Hit, *Command) {
	GinkgoHelper()
	return stopAt(ctx, s.target, s.cfg.HitTimeout, fn, cmd, status, accept)
}

// StopAt is Suite.StopAt for a guest the spec booted itself (Boot), with
// a 60 s bound on the wait.
func StopAt(ctx context.Context, t *harness.Target, fn, cmd string, status int, accept func(*harness.Hit) bool) (*harness.Hit, *Command) {
	GinkgoHelper()
	return stopAt(ctx, t, 60*time.Second, fn, cmd, status, accept)
}

func stopAt(ctx context.Context, t *harness.Target, limit time.Duration, fn, cmd string, status int, accept func(*harness.Hit) bool) (*harness.Hit, *Command) {
	GinkgoHelper()
	bp, err := t.Break(ctx, fn)
	Expect(err).NotTo(HaveOccurred())
	pending, err := t.Start(ctx, cmd)
	Expect(err).NotTo(HaveOccurred())
	c := &Command{t: t, cmd: cmd, status: status, pending: pending}
	DeferCleanup(func(ctx SpecContext) { c.Finish(ctx) }, NodeTimeout(time.Minute))
	waitCtx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for skipped := 0; ; skipped++ {
		// Fails at once (NotHitError with cmd's status and output) if cmd
		// finishes without a hit; the limit bounds a cmd that never does.
		hit, err := bp.WaitFor(waitCtx, pending)
		Expect(err).NotTo(HaveOccurred(), "waiting for %s while %q runs (%d other hits let go)", fn, cmd, skipped)
		if accept == nil || accept(hit) {
			return hit, c
		}
		Expect(t.Continue(ctx)).To(Succeed())
	}
}

// Command is a shell command started while a breakpoint waits (StopAt).
type Command struct {
	t       *harness.Target
	cmd     string
	status  int
	pending *guest.Pending
	res     *guest.Result
}

// Finish clears every breakpoint, resumes the guest, waits for the command
// and checks its exit status; it returns the command's result. It may be
// called more than once (the spec's cleanup calls it too).
func (c *Command) Finish(ctx context.Context) guest.Result {
	GinkgoHelper()
	if c.res != nil {
		return *c.res
	}
	Expect(c.t.ClearBreakpoints(ctx)).To(Succeed())
	res, err := c.pending.Wait(ctx)
	Expect(err).NotTo(HaveOccurred())
	c.res = &res
	Expect(res.Status).To(Equal(c.status), "%s: %s", c.cmd, res.Output)
	return res
}

// Shell runs cmd in the guest, expects it to exit 0 and returns its output.
func (s *Suite) Shell(ctx context.Context, cmd string) string {
	GinkgoHelper()
	res, err := s.target.Shell(ctx, cmd)
	Expect(err).NotTo(HaveOccurred())
	Expect(res.Status).To(Equal(0), "%s: %s", cmd, res.Output)
	return res.Output
}

// StringMember reads, with the guest stopped, the C string that member (a
// char pointer) of the structType at addr points to, e.g. the path of a
// Linux struct filename: StringMember(ctx, arg, "struct filename", "name").
// The member's offset comes from the running kernel's DWARF.
func (s *Suite) StringMember(ctx context.Context, addr uint64, structType, member string) string {
	GinkgoHelper()
	m, err := s.target.Symbols().Offsetof(structType, member)
	Expect(err).NotTo(HaveOccurred())
	Expect(m.TypeName).To(HaveSuffix("*"), "%s.%s is not a pointer", structType, member)
	ptr, err := s.target.ReadUint64(ctx, addr+m.Addr)
	Expect(err).NotTo(HaveOccurred())
	str, err := s.target.ReadCString(ctx, ptr, 4096)
	Expect(err).NotTo(HaveOccurred())
	return str
}
