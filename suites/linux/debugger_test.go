package linux_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kspec/kspec/harness"
)

// These specs use the debugger the way a kernel developer uses gdb at a
// breakpoint: where did the call come from, which process made it, what do
// the arguments hold, who writes a variable, what does one instruction do.
var _ = Describe("the debugger at a kernel stop", Label("debugger"), func() {
	It(fmt.Sprintf("unwinds the mkdir hit through %s and %s to the syscall entry %s", sys("mkdir"), syscallDispatch, userEntry), Label("backtrace"), func(ctx SpecContext) {
		hit := breakAndRun(ctx, mkdirat, "mkdir "+uniquePath("bt"))
		Expect(hit).To(harness.HaveBacktraceContaining(sys("mkdir"), syscallDispatch))

		frames, err := hit.Backtrace(ctx)
		Expect(err).NotTo(HaveOccurred())
		GinkgoWriter.Printf("backtrace:\n%s", harness.FormatBacktrace(frames, "  "))
		Expect(frames[0].Function).To(Equal(mkdirat))
		Expect(frames[0].PC).To(Equal(hit.PC))
		// The unwinder stops cleanly at the user/kernel boundary.
		last := frames[len(frames)-1]
		Expect(last.Function).To(Equal(userEntry))
		Expect(last.StopReason).To(BeEmpty())
	}, SpecTimeout(time.Minute))

	It("names mkdir as the task that made the mkdir hit", Label("task"), func(ctx SpecContext) {
		hit := breakAndRun(ctx, mkdirat, "mkdir "+uniquePath("comm"))
		Expect(hit).To(harness.HaveComm("mkdir"))
		task, err := hit.Task(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(task.PID).To(BeNumerically(">", 1))
		Expect(task.TID).To(Equal(task.PID), "mkdir is single-threaded")
	}, SpecTimeout(time.Minute))

	It(fmt.Sprintf("reads %s's path argument from memory as the directory created", mkdirat), Label("memory"), func(ctx SpecContext) {
		dir := uniquePath("path")
		hit := breakAndRun(ctx, mkdirat, "mkdir "+dir)
		Expect(mkdirPath(ctx, hit)).To(Equal(dir))
	}, SpecTimeout(time.Minute))

	It(fmt.Sprintf("reports each call once: mkdir of two directories hits %s with each path in turn", mkdirat), Label("memory"), func(ctx SpecContext) {
		first, second := uniquePath("first"), uniquePath("second")
		hit := breakAndRun(ctx, mkdirat, "mkdir "+first+" "+second)
		Expect(mkdirPath(ctx, hit)).To(Equal(first))
		bp, err := target.Break(ctx, mkdirat) // the same breakpoint again
		Expect(err).NotTo(HaveOccurred())
		waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		hit, err = bp.Wait(waitCtx)
		Expect(err).NotTo(HaveOccurred())
		Expect(mkdirPath(ctx, hit)).To(Equal(second))
	}, SpecTimeout(time.Minute))

	It(fmt.Sprintf("steps from %s's entry to the next instructions of %[1]s", mkdirat), Label("step"), func(ctx SpecContext) {
		hit := breakAndRun(ctx, mkdirat, "mkdir "+uniquePath("step"))
		sym, err := target.Symbols().Lookup(mkdirat)
		Expect(err).NotTo(HaveOccurred())
		pc := hit.PC
		for range 3 {
			step, err := target.Step(ctx, hit.CPU)
			Expect(err).NotTo(HaveOccurred())
			Expect(step.Function).To(Equal(mkdirat), "stepped out of %s to %s", mkdirat, step)
			Expect(step.PC).To(BeNumerically(">", pc))
			Expect(step.PC).To(BeNumerically("<", sym.Addr+sym.Size))
			Expect(step.File).To(HaveSuffix("fs/namei.c"))
			pc = step.PC
		}
	}, SpecTimeout(time.Minute))

	It("stops at the writer when hostname writes init_uts_ns.name.nodename", Label("watch"), func(ctx SpecContext) {
		// The value read from the kernel is what uname -n reports.
		before, err := target.ReadString(ctx, "init_uts_ns.name.nodename")
		Expect(err).NotTo(HaveOccurred())
		res, err := target.Shell(ctx, "uname -n")
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.TrimSpace(res.Output)).To(Equal(before))

		w, err := target.Watch(ctx, "init_uts_ns.name.nodename", harness.WatchWrite)
		Expect(err).NotTo(HaveOccurred())
		pending, err := target.Start(ctx, "hostname kspec-watch")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) {
			Expect(target.ClearBreakpoints(ctx)).To(Succeed())
			res, err := pending.Wait(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(res.Status).To(Equal(0), res.Output)
			res, err = target.Shell(ctx, "hostname "+before)
			Expect(err).NotTo(HaveOccurred())
			Expect(res.Status).To(Equal(0), res.Output)
		}, NodeTimeout(time.Minute))

		waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		hit, err := w.Wait(waitCtx)
		Expect(err).NotTo(HaveOccurred())
		Expect(hit.Stop.Watch).NotTo(BeNil())
		Expect(hit.Stop.Watch.Addr).To(BeNumerically(">=", w.Addr))
		Expect(hit.Stop.Watch.Addr).To(BeNumerically("<", w.Addr+uint64(w.Size)))
		Expect(hit).To(harness.HaveBacktraceContaining(sys("sethostname"), syscallDispatch))
		Expect(hit).To(harness.HaveComm("hostname"))
		frames, err := hit.Backtrace(ctx)
		Expect(err).NotTo(HaveOccurred())
		AddReportEntry("writer of init_uts_ns.name.nodename", fmt.Sprintf("%s\n%s", hit, harness.FormatBacktrace(frames, "  ")))
	}, SpecTimeout(2*time.Minute))

	// QEMU's gdbstub reports a QMP stop and a breakpoint reached after a
	// QMP cont differently by version: 7.2 sends a stop reply for every VM
	// stop; 8.1 and later only once per resume by the debugger (gdbstub
	// allow_stop_reply), so after a QMP cont the guest stops at the
	// breakpoint without a word. kspec finds the hit either way.
	It("keeps the breakpoint's hit when QMP stops and resumes the guest behind the debugger's back (QEMU 7.2: a second stop reply; QEMU >= 8.1: none)", Label("resync"), func(ctx SpecContext) {
		v := target.QEMUVersion()
		silent := v.AtLeast(8, 1)
		AddReportEntry("QEMU", v.String())
		bp, err := target.Break(ctx, mkdirat)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) { Expect(target.ClearBreakpoints(ctx)).To(Succeed()) }, NodeTimeout(time.Minute))
		gdb := target.RSP()

		// The debugger's continue (Break ends with one) returns once it is
		// sent; a QMP stop that overtook it would find the VM already
		// stopped and QEMU would send no T02. Wait until QMP sees it run.
		Eventually(func(ctx context.Context) (bool, error) {
			st, err := target.QMP().Status(ctx)
			return st.Running, err
		}).WithContext(ctx).Should(BeTrue())
		// The debugger's continue allowed a stop reply: every version
		// reports the QMP stop as T02 ...
		Expect(target.QMP().Stop(ctx)).To(Succeed())
		Eventually(gdb.Stops).WithContext(ctx).Should(Equal(1))
		// ... the QMP cont is no packet, but kspec sees its RESUME event
		// and tells the client, which will stop the guest before its next
		// packet instead of sending one to a running VM.
		Expect(target.QMP().Cont(ctx)).To(Succeed())
		Expect(gdb.MayBeRunning()).To(BeTrue())
		dir := uniquePath("resync")
		pending, err := target.Start(ctx, "mkdir "+dir)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) {
			Expect(target.ClearBreakpoints(ctx)).To(Succeed())
			res, err := pending.Wait(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(res.Status).To(Equal(0), res.Output)
		}, NodeTimeout(time.Minute))
		if silent {
			// QEMU >= 8.1: the guest stops at the breakpoint (QMP's run
			// state "debug") and the debugger hears nothing.
			Eventually(func(ctx context.Context) (string, error) {
				st, err := target.QMP().Status(ctx)
				return st.State, err
			}).WithContext(ctx).WithTimeout(30 * time.Second).Should(Equal("debug"))
			Expect(gdb.Stops()).To(Equal(1), "QEMU %s sent a stop reply for a stop after a QMP cont", v)
		} else {
			// QEMU 7.2: the hit arrives as a second stop reply (T05).
			Eventually(gdb.Stops).WithContext(ctx).WithTimeout(30 * time.Second).Should(Equal(2))
		}

		waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		hit, err := bp.Wait(waitCtx)
		Expect(err).NotTo(HaveOccurred())
		Expect(hit).To(harness.StopIn(mkdirat, "fs/namei.c"))
		Expect(hit).To(harness.HaveComm("mkdir"))
	}, SpecTimeout(2*time.Minute))
})

// uniquePath names a directory no earlier spec created.
func uniquePath(what string) string {
	return fmt.Sprintf("/tmp/kspec-%s-%d", what, time.Now().UnixNano())
}

// mkdirPath reads the path a do_mkdirat hit (filename_mkdirat from 7.0)
// was called with: (int dfd, struct filename *name, umode_t mode) has name
// in RSI at its entry, and name->name is the path (offset from the DWARF;
// from 7.0 name sits in an unnamed struct __filename_head).
func mkdirPath(ctx context.Context, hit *harness.Hit) string {
	GinkgoHelper()
	filename, err := hit.Arg(ctx, 1)
	Expect(err).NotTo(HaveOccurred())
	return suite.StringMember(ctx, filename, "struct filename", "name")
}
