package faults_test

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kspec/kspec/harness"
	"github.com/kspec/kspec/internal/faultinject"
	"github.com/kspec/kspec/rsp"
)

// Lost connections are injected from QEMU's side: faultinject takes QEMU's
// end of the connection (pidfd_getfd) and shuts it down, so QEMU and kspec
// both see the connection drop, as when a stub or monitor goes away.

// sever drops QEMU's end of its connection on socket and waits (on the
// channel, not a clock) until kspec's side has noticed.
func sever(ctx context.Context, t *harness.Target, socket string, noticed <-chan struct{}) {
	GinkgoHelper()
	n, err := faultinject.SeverUnixConnections(t.Machine().PID(), socket)
	Expect(err).NotTo(HaveOccurred())
	Expect(n).To(Equal(1), "QEMU connections severed on %s", socket)
	select {
	case <-noticed:
	case <-ctx.Done():
		Fail("kspec never noticed the lost connection on " + socket)
	}
}

var _ = Describe("a lost gdbstub connection", Label("lost-connection"), func() {
	It("is re-established: an armed breakpoint still hits once, and inspection works", func(ctx SpecContext) {
		t := boot(ctx)
		bp, err := t.Break(ctx, "do_mkdirat")
		Expect(err).NotTo(HaveOccurred())
		old := t.RSP()
		sever(ctx, t, t.Machine().Paths().GDBSocket, old.Done())
		GinkgoWriter.Printf("the old client says: %v\n", old.Err())
		Expect(old.Err()).To(MatchError(rsp.ErrConnectionClosed))

		opCtx, cancel := context.WithTimeout(ctx, generous)
		defer cancel()
		pending, err := t.Start(opCtx, "mkdir /tmp/kspec-reconnect")
		Expect(err).NotTo(HaveOccurred())
		Expect(t.RSP()).NotTo(BeIdenticalTo(old), "kspec did not reconnect")
		hit, err := bp.Wait(opCtx)
		Expect(err).NotTo(HaveOccurred())
		Expect(hit.Function).To(Equal("do_mkdirat"))
		Expect(hit.File).To(HaveSuffix("fs/namei.c"))
		frames, err := hit.Backtrace(opCtx)
		Expect(err).NotTo(HaveOccurred())
		entry, err := t.SyscallEntry("mkdir")
		Expect(err).NotTo(HaveOccurred())
		Expect(frames).To(ContainElement(HaveField("Function", entry)))
		Expect(t.Continue(opCtx)).To(Succeed())
		res, err := t.Collect(opCtx, pending)
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Status).To(Equal(0))

		// Exactly one breakpoint was in QEMU: once cleared, mkdir runs
		// through (a duplicate left behind would stop the VM, and this
		// Shell would wait for its deadline).
		Expect(bp.Clear(opCtx)).To(Succeed())
		res, err = t.Shell(opCtx, "mkdir /tmp/kspec-reconnect-2 && echo made")
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Output).To(Equal("made\n"))
		Expect(bp.Hit()).To(BeFalse())
		Expect(opCtx.Err()).NotTo(HaveOccurred())
	}, SpecTimeout(6*time.Minute))

	It("does not end a breakpoint wait: the hit is delivered over the new connection", func(ctx SpecContext) {
		t := boot(ctx)
		bp, err := t.Break(ctx, "do_rmdir")
		Expect(err).NotTo(HaveOccurred())
		// The guest removes the directory a little later, so the wait
		// below is (usually) inside WaitStop when the connection drops;
		// either way the hit must arrive.
		pending, err := t.Start(ctx, "mkdir /tmp/kspec-w && sleep 2 && rmdir /tmp/kspec-w")
		Expect(err).NotTo(HaveOccurred())
		old := t.RSP()
		go func() {
			defer GinkgoRecover()
			_, err := faultinject.SeverUnixConnections(t.Machine().PID(), t.Machine().Paths().GDBSocket)
			Expect(err).NotTo(HaveOccurred())
		}()
		opCtx, cancel := context.WithTimeout(ctx, generous)
		defer cancel()
		hit, err := bp.Wait(opCtx)
		Expect(err).NotTo(HaveOccurred())
		Expect(hit.Function).To(Equal("do_rmdir"))
		Expect(old.Err()).To(MatchError(rsp.ErrConnectionClosed), "the connection was not lost during the wait")
		Expect(t.RSP()).NotTo(BeIdenticalTo(old))
		Expect(t.ClearBreakpoints(opCtx)).To(Succeed())
		res, err := t.Collect(opCtx, pending)
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Status).To(Equal(0))
	}, SpecTimeout(6*time.Minute))

	It("does not lose a Break or a Clear whose packet was on the wire when the connection dropped", func(ctx SpecContext) {
		t := boot(ctx)
		qemu := t.Machine().PID()
		opCtx, cancel := context.WithTimeout(ctx, generous)
		defer cancel()
		// onTheWire freezes QEMU so that op's packet stays unanswered,
		// drops the connection under it, thaws QEMU and returns op's result.
		onTheWire := func(what string, op func() error) error {
			GinkgoHelper()
			old := t.RSP()
			Expect(syscall.Kill(qemu, syscall.SIGSTOP)).To(Succeed())
			defer syscall.Kill(qemu, syscall.SIGCONT)
			done := make(chan error, 1)
			go func() { done <- op() }()
			Expect(settled(func() bool { return old.InFlight() > 0 })).To(BeTrue(), "%s: the packet never went out", what)
			sever(opCtx, t, t.Machine().Paths().GDBSocket, old.Done())
			Expect(syscall.Kill(qemu, syscall.SIGCONT)).To(Succeed())
			select {
			case err := <-done:
				Expect(t.RSP()).NotTo(BeIdenticalTo(old), "%s: kspec did not reconnect", what)
				return err
			case <-opCtx.Done():
				Fail(what + " never returned")
				return nil
			}
		}

		_, err := t.Interrupt(opCtx) // the packets go out at once on a stopped guest
		Expect(err).NotTo(HaveOccurred())
		var bp *harness.Breakpoint
		Expect(onTheWire("break", func() error {
			var err error
			bp, err = t.Break(opCtx, "do_mkdirat")
			return err
		})).To(Succeed())
		Expect(t.Continue(opCtx)).To(Succeed())
		pending, err := t.Start(opCtx, "mkdir /tmp/kspec-wire")
		Expect(err).NotTo(HaveOccurred())
		hit, err := bp.Wait(opCtx)
		Expect(err).NotTo(HaveOccurred(), "the breakpoint set while the connection dropped did not hit")
		Expect(hit.Function).To(Equal("do_mkdirat"))

		Expect(onTheWire("clear", func() error { return bp.Clear(opCtx) })).To(Succeed())
		Expect(t.Continue(opCtx)).To(Succeed())
		_, err = t.Collect(opCtx, pending)
		Expect(err).NotTo(HaveOccurred())
		// Cleared for real: mkdir runs through (a breakpoint left in QEMU
		// would stop the VM and this Shell would wait for its deadline).
		res, err := t.Shell(opCtx, "mkdir /tmp/kspec-wire-2 && echo made")
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Output).To(Equal("made\n"))
		Expect(bp.Hit()).To(BeFalse())
	}, SpecTimeout(6*time.Minute))

	It("is a HarnessError naming the lost stub when the stub is gone for good, never a hang", func(ctx SpecContext) {
		t := boot(ctx)
		_, err := t.Break(ctx, "do_mkdirat")
		Expect(err).NotTo(HaveOccurred())
		old := t.RSP()
		// QEMU shuts its gdbstub down: the connection and the socket go.
		_, err = t.QMP().HumanMonitorCommand(ctx, "gdbserver none")
		Expect(err).NotTo(HaveOccurred())
		select {
		case <-old.Done():
		case <-ctx.Done():
			Fail("kspec never noticed that the gdbstub went away")
		}

		opCtx, cancel := context.WithTimeout(ctx, generous)
		defer cancel()
		for what, op := range map[string]func() error{
			"break": func() error { _, err := t.Break(opCtx, "do_rmdir"); return err },
			"shell": func() error { _, err := t.Shell(opCtx, "true"); return err },
		} {
			err := op()
			GinkgoWriter.Printf("%s: kspec reported: %v\n", what, err)
			var herr *harness.HarnessError
			Expect(errors.As(err, &herr)).To(BeTrue(), "%s: want a *harness.HarnessError, got %T: %v", what, err, err)
			Expect(harness.IsKernelFailure(err)).To(BeFalse(), what)
			Expect(err.Error()).To(ContainSubstring("gdbstub connection lost"), what)
			Expect(err.Error()).To(ContainSubstring("reconnecting failed"), what)
			Expect(errors.Is(err, rsp.ErrConnectionClosed) || strings.Contains(err.Error(), "connection closed")).To(BeTrue(), what)
		}
		Expect(opCtx.Err()).NotTo(HaveOccurred(), "an operation waited for its deadline")
		Expect(t.Close()).To(Succeed())
	}, SpecTimeout(6*time.Minute))
})

var _ = Describe("a lost QMP connection", Label("lost-connection"), func() {
	It("is re-established: snapshots restore and the guest runs on", func(ctx SpecContext) {
		t := boot(ctx)
		Expect(t.SaveBaseline(ctx)).To(Succeed())
		_, err := t.Shell(ctx, "echo dirty > /tmp/kspec-qmp-lost")
		Expect(err).NotTo(HaveOccurred())
		old := t.QMP()
		sever(ctx, t, t.Machine().Paths().QMPSocket, old.Done())
		GinkgoWriter.Printf("the old monitor says: %v\n", old.Err())

		opCtx, cancel := context.WithTimeout(ctx, generous)
		defer cancel()
		Expect(t.Reset(opCtx)).To(Succeed())
		Expect(t.QMP()).NotTo(BeIdenticalTo(old), "kspec did not reconnect")
		res, err := t.Shell(opCtx, "cat /tmp/kspec-qmp-lost 2>/dev/null || echo restored")
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Output).To(Equal("restored\n"))
		st, err := t.QMP().Status(opCtx)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Running).To(BeTrue())
		Expect(opCtx.Err()).NotTo(HaveOccurred())
	}, SpecTimeout(6*time.Minute))
})
