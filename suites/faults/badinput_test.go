package faults_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kspec/kspec/guest"
	"github.com/kspec/kspec/harness"
	"github.com/kspec/kspec/kspectest"
	"github.com/kspec/kspec/symbols"
)

// The in-memory check of a vmlinux against the running kernel
// (harness.VerifySymbols, run by Boot after login) is exercised with the
// real kernel and doctored copies of its real vmlinux:
//
//   - a copy whose GNU build-id is changed keeps the banner, so the check
//     before boot (guest.CheckSymbols: the vmlinux banner against the
//     bzImage's) passes, and only the running kernel's build-id in memory
//     can tell; Boot itself must refuse it and leave nothing running;
//   - a copy whose banner is changed is refused before boot already, so
//     the comparison of banners in memory is run through VerifySymbols on
//     a guest booted with its true symbols;
//   - the true vmlinux with a kernel booted without nokaslr: KASLR moves
//     the kernel away from the vmlinux's addresses, and Boot must say so.
var _ = Describe("a vmlinux that does not match the running kernel", Label("bad-input"), func() {
	It("of another build with the same banner (build-id differs) is refused by Boot, which leaves nothing running", func(ctx SpecContext) {
		spec := defaultSpec()
		doctored, syms := copyVmlinux(spec.Symbols)
		addr, ok := syms.BuildIDAddr()
		Expect(ok).To(BeTrue(), "the vmlinux keeps no build-id in a loaded section")
		trueID := syms.BuildID()
		patch(doctored, syms, addr, func(b []byte) {
			for i := range b {
				b[i] ^= 0xff
			}
		}, len(trueID)/2)
		Expect(guest.CheckSymbols(spec.Kernel, doctored)).To(Succeed(), "the banner check before boot should not see a build-id change")

		spec.Symbols = doctored
		t, err := harness.Boot(ctx, harness.Options{Spec: spec, Logf: logf})
		if err == nil {
			t.Close()
		}
		GinkgoWriter.Printf("kspec reported: %v\n", err)
		Expect(err).To(MatchError(harness.ErrBadInput))
		Expect(err.Error()).To(ContainSubstring("do not match the running kernel"))
		Expect(err.Error()).To(ContainSubstring(trueID), "the running kernel's build-id")
		Expect(err.Error()).To(ContainSubstring(doctored), "the symbol file")
		Expect(err.Error()).To(ContainSubstring("Linux version " + spec.Version))
		expectNothingRunning()
	}, SpecTimeout(5*time.Minute))

	It("with another banner is refused by VerifySymbols quoting both banners, and the guest runs on", func(ctx SpecContext) {
		t := boot(ctx)
		doctored, syms := copyVmlinux(t.Spec().Symbols)
		banner, err := syms.Lookup("linux_banner")
		Expect(err).NotTo(HaveOccurred())
		orig, err := syms.ImageBytes(banner.Addr, int(banner.Size))
		Expect(err).NotTo(HaveOccurred())
		// "... (2026-11-16)" becomes "... (2026-11-17)": same length.
		i := bytes.LastIndexAny(orig, "0123456789")
		Expect(i).To(BeNumerically(">", 0))
		patch(doctored, syms, banner.Addr+uint64(i), func(b []byte) { b[0] = '0' + (b[0]-'0'+1)%10 }, 1)
		fake, err := symbols.Open(doctored)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(fake.Close)

		err = t.VerifySymbols(ctx, fake)
		GinkgoWriter.Printf("kspec reported: %v\n", err)
		Expect(err).To(MatchError(harness.ErrBadInput))
		running := strings.TrimRight(string(bytes.TrimRight(orig, "\x00")), "\n")
		Expect(err.Error()).To(ContainSubstring(fmt.Sprintf("the kernel's linux_banner says %q", running)))
		Expect(err.Error()).To(ContainSubstring(doctored))
		Expect(err.Error()).NotTo(ContainSubstring("nokaslr"), "the guest boots with nokaslr")

		Expect(t.VerifySymbols(ctx, t.Symbols())).To(Succeed(), "the true vmlinux")
		res, err := t.Shell(ctx, "echo alive")
		Expect(err).NotTo(HaveOccurred(), "the check left the guest stopped")
		Expect(res.Output).To(Equal("alive\n"))
	}, SpecTimeout(5*time.Minute))

	It("at its link addresses while KASLR moved the kernel is refused by Boot, suggesting nokaslr", func(ctx SpecContext) {
		spec := defaultSpec()
		spec.Append = strings.Join(slices.DeleteFunc(strings.Fields(spec.Append), func(w string) bool { return w == "nokaslr" }), " ")
		Expect(spec.Append).NotTo(ContainSubstring("nokaslr"))
		t, err := harness.Boot(ctx, harness.Options{Spec: spec, Logf: logf})
		if err == nil {
			// The check passed: the kernel's banner is at its link address,
			// which KASLR chooses about once in 500 boots.
			t.Close()
			Skip("KASLR left the kernel at its link address this time")
		}
		GinkgoWriter.Printf("kspec reported: %v\n", err)
		Expect(err).To(MatchError(harness.ErrBadInput))
		Expect(err.Error()).To(ContainSubstring("nokaslr"))
		Expect(err.Error()).To(ContainSubstring("linux_banner"))
		expectNothingRunning()
	}, SpecTimeout(5*time.Minute))
})

var _ = Describe("restoring a snapshot", Label("bad-input"), func() {
	It("that does not exist is bad input naming the tag and listing the snapshots, and changes nothing", func(ctx SpecContext) {
		t := boot(ctx)
		Expect(t.SaveSnapshot(ctx, "kspec-saved")).To(Succeed())
		_, err := t.Shell(ctx, "echo after > /tmp/marker")
		Expect(err).NotTo(HaveOccurred())
		bp, err := t.Break(ctx, "do_rmdir")
		Expect(err).NotTo(HaveOccurred())

		err = t.RestoreSnapshot(ctx, "kspec-nosuch")
		GinkgoWriter.Printf("kspec reported: %v\n", err)
		Expect(err).To(MatchError(harness.ErrBadInput))
		Expect(err.Error()).To(ContainSubstring(`no snapshot "kspec-nosuch"`))
		Expect(err.Error()).To(ContainSubstring(`the snapshots are "kspec-saved"`))
		var he *harness.HarnessError
		Expect(errors.As(err, &he)).To(BeFalse(), "a missing tag is the caller's mistake, not a harness failure")

		// Nothing was touched: the breakpoint still fires, the guest was
		// not restored.
		pending, err := t.Start(ctx, "rmdir /tmp/kspec-nodir")
		Expect(err).NotTo(HaveOccurred())
		hit, err := bp.Wait(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(hit.Function).To(Equal("do_rmdir"))
		Expect(t.ClearBreakpoints(ctx)).To(Succeed())
		Expect(t.Continue(ctx)).To(Succeed())
		_, err = t.Collect(ctx, pending)
		Expect(err).NotTo(HaveOccurred())
		res, err := t.Shell(ctx, "cat /tmp/marker")
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Output).To(Equal("after\n"))

		Expect(t.RestoreSnapshot(ctx, "kspec-saved")).To(Succeed())
		res, err = t.Shell(ctx, "cat /tmp/marker")
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Status).NotTo(Equal(0), "the restore did not bring back the state before the marker: %q", res.Output)
	}, SpecTimeout(5*time.Minute))

	It("that is damaged is a HarnessError with QEMU's message and the tag; another snapshot brings the guest back", func(ctx SpecContext) {
		t := boot(ctx)
		Expect(t.SaveSnapshot(ctx, "kspec-damaged")).To(Succeed())
		// The VM state on the scratch drive is a migration stream that
		// starts with the magic "QEVM" and version 3; break the magic of
		// the only one there is so far.
		scratch := t.Machine().Paths().Scratch
		data, err := os.ReadFile(scratch)
		Expect(err).NotTo(HaveOccurred())
		magic := []byte("QEVM\x00\x00\x00\x03")
		Expect(bytes.Count(data, magic)).To(Equal(1), "want exactly one VM state in %s", scratch)
		f, err := os.OpenFile(scratch, os.O_WRONLY, 0)
		Expect(err).NotTo(HaveOccurred())
		_, err = f.WriteAt([]byte("KSPC"), int64(bytes.Index(data, magic)))
		Expect(err).NotTo(HaveOccurred())
		Expect(f.Close()).To(Succeed())
		_, err = t.Shell(ctx, "echo good > /tmp/marker")
		Expect(err).NotTo(HaveOccurred())
		Expect(t.SaveSnapshot(ctx, "kspec-good")).To(Succeed())

		Expect(t.Snapshots(ctx)).To(Equal([]string{"kspec-damaged", "kspec-good"}))
		err = t.RestoreSnapshot(ctx, "kspec-damaged")
		GinkgoWriter.Printf("kspec reported: %v\n", err)
		var he *harness.HarnessError
		Expect(errors.As(err, &he)).To(BeTrue(), "want a *harness.HarnessError, got %T: %v", err, err)
		Expect(err).NotTo(MatchError(harness.ErrBadInput))
		Expect(err.Error()).To(ContainSubstring(`could not load snapshot "kspec-damaged"`))
		Expect(err.Error()).To(ContainSubstring("Error -22 while loading VM state"), "QEMU's message")
		Expect(err.Error()).To(ContainSubstring("restore another snapshot"))
		Expect(t.Machine().Done()).NotTo(BeClosed(), "QEMU exited after the failed load")

		Expect(t.RestoreSnapshot(ctx, "kspec-good")).To(Succeed())
		res, err := t.Shell(ctx, "cat /tmp/marker")
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Output).To(Equal("good\n"))
	}, SpecTimeout(5*time.Minute))
})

var logf = kspectest.Logf

// defaultSpec is a copy of the prepared guest's description.
func defaultSpec() *guest.Spec {
	GinkgoHelper()
	spec, err := harness.ResolveGuest(harness.Options{})
	harness.SkipOrFail(err, Skip)
	Expect(err).NotTo(HaveOccurred())
	if spec.OS != guest.OSLinux || spec.Kernel == "" {
		Skip(fmt.Sprintf("guest %s does not boot a Linux kernel image", spec.Name))
	}
	c := *spec
	return &c
}

// copyVmlinux copies a vmlinux into a temporary directory removed after
// the spec, and opens the original's symbols (to find addresses in it).
func copyVmlinux(src string) (string, *symbols.Table) {
	GinkgoHelper()
	dir, err := os.MkdirTemp("", "kspec-badinput-")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { os.RemoveAll(dir) })
	dst := filepath.Join(dir, "vmlinux")
	in, err := os.Open(src)
	Expect(err).NotTo(HaveOccurred())
	defer in.Close()
	out, err := os.Create(dst)
	Expect(err).NotTo(HaveOccurred())
	_, err = io.Copy(out, in)
	Expect(err).NotTo(HaveOccurred())
	Expect(out.Close()).To(Succeed())
	syms, err := symbols.Open(src)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(syms.Close)
	return dst, syms
}

// patch rewrites the n bytes that the file copy of syms's image holds at
// the virtual address addr.
func patch(file string, syms *symbols.Table, addr uint64, edit func([]byte), n int) {
	GinkgoHelper()
	off, err := syms.FileOffset(addr)
	Expect(err).NotTo(HaveOccurred())
	b, err := syms.ImageBytes(addr, n)
	Expect(err).NotTo(HaveOccurred())
	edit(b)
	f, err := os.OpenFile(file, os.O_WRONLY, 0)
	Expect(err).NotTo(HaveOccurred())
	_, err = f.WriteAt(b, off)
	Expect(err).NotTo(HaveOccurred())
	Expect(f.Close()).To(Succeed())
}

// expectNothingRunning checks that this process has no QEMU child and no
// run directory left (other processes' are theirs).
func expectNothingRunning() {
	GinkgoHelper()
	me := os.Getpid()
	for _, pid := range qemuChildren(me) {
		Fail(fmt.Sprintf("QEMU (pid %d) left running", pid))
	}
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "kspec-run-*"))
	for _, d := range dirs {
		pids, err := os.ReadFile(filepath.Join(d, "pids"))
		if err == nil && bytes.HasPrefix(pids, fmt.Appendf(nil, "harness %d ", me)) {
			Fail("run directory left behind: " + d)
		}
	}
}
