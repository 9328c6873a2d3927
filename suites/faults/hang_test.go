package faults_test

import (
	"context"
	"errors"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kspec/kspec/harness"
)

var _ = Describe("a hung guest kernel", Label("hang"), func() {
	It("times out as a HarnessError that says where each vCPU is, and Reset restores a live guest", func(ctx SpecContext) {
		t := boot(ctx)
		Expect(t.SaveBaseline(ctx)).To(Succeed())
		// Make do_rmdir spin with interrupts off (cli; jmp .): the kernel
		// hangs for good on the next rmdir, printing nothing.
		sym, err := t.Symbols().Lookup("do_rmdir")
		Expect(err).NotTo(HaveOccurred())
		_, err = t.Interrupt(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(t.RSP().WriteMemory(ctx, sym.Addr, []byte{0xfa, 0xeb, 0xfe})).To(Succeed())
		Expect(t.Continue(ctx)).To(Succeed())

		shellCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err = t.Shell(shellCtx, "mkdir /tmp/h && rmdir /tmp/h")
		GinkgoWriter.Printf("kspec reported: %v\n", err)
		var herr *harness.HarnessError
		Expect(errors.As(err, &herr)).To(BeTrue(), "want a *harness.HarnessError, got %T: %v", err, err)
		Expect(errors.Is(err, context.DeadlineExceeded)).To(BeTrue())
		Expect(harness.IsKernelFailure(err)).To(BeFalse())
		Expect(err.Error()).To(MatchRegexp(`guest interrupted, vCPUs: cpu0 at do_rmdir\+0x[0-9a-f]+ at \S*fs/namei.c:\d+`))
		Expect(err.Error()).To(ContainSubstring("mkdir /tmp/h && rmdir /tmp/h"), "the console tail shows the command")

		opCtx, cancelOp := context.WithTimeout(ctx, generous)
		defer cancelOp()
		Expect(t.Reset(opCtx)).To(Succeed())
		res, err := t.Shell(opCtx, "mkdir /tmp/h && rmdir /tmp/h && echo fine")
		Expect(err).NotTo(HaveOccurred(), "the restore did not bring back the unpatched kernel")
		Expect(res.Output).To(Equal("fine\n"))
	}, SpecTimeout(5*time.Minute))
})
