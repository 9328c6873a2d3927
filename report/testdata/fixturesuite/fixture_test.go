// Package fixturesuite_test is not a test of kspec: it is a Ginkgo suite whose
// specs end in every way a kspec suite can end, run by report/testdata/regen.sh
// to record the JUnit fixtures the report package's tests parse. Its specs
// raise the same harness error types the real suites see, without booting.
package fixturesuite_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kspec/kspec/harness"
)

func TestFixture(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Linux kernel specs")
}

// flip swaps which spec fails: recording fixture-a without it and fixture-b
// with it gives two runs that differ the way a regression and a fix do:
// mkdir passes then fails, rmdir fails then passes.
var flip = os.Getenv("FIXTURE_FLIP") != ""

var _ = BeforeSuite(func(ctx SpecContext) {
	if os.Getenv("FIXTURE_BOOT") == "hang" { // a boot that never ends, until interrupted
		if ready := os.Getenv("FIXTURE_HANG_READY"); ready != "" {
			// Tell the test the suite is inside the hanging boot now.
			Expect(os.WriteFile(ready, nil, 0o600)).To(Succeed())
		}
		if dir := os.Getenv("FIXTURE_HANG_DIR"); dir != "" {
			// The same, one file per guest, for runs of several guests.
			Expect(os.WriteFile(filepath.Join(dir, filepath.Base(os.Getenv("KSPEC_GUEST"))), nil, 0o600)).To(Succeed())
		}
		<-ctx.Done()
		Expect(&harness.HarnessError{Op: "boot", Err: ctx.Err()}).NotTo(HaveOccurred())
	}
	if os.Getenv("FIXTURE_BOOT") == "harness" {
		Expect(&harness.HarnessError{Op: "boot", Err: errors.New("QEMU exited with status 1"),
			ConsoleTail: "qemu-system-x86_64: -kernel vmlinuz: No such file"}).NotTo(HaveOccurred())
	}
	if os.Getenv("FIXTURE_BOOT") == "panic" {
		Expect(&harness.KernelError{Kind: "panic", Detail: "VFS: Unable to mount root fs",
			ConsoleTail: "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)"}).NotTo(HaveOccurred())
	}
	GinkgoWriter.Println("guest fixture 6.1.0-99-cloud-amd64 logged in after 3.1s")
})

var _ = Describe("system calls reach their kernel implementation", func() {
	It("mkdir hits do_mkdirat in fs/namei.c", Label("fs", "mkdir"), func() {
		GinkgoWriter.Println("breakpoint do_mkdirat set")
		if flip {
			AddReportEntry("console", "~ # mkdir /tmp/kspec-mkdir\r\n~ # ")
			Expect(&harness.KernelError{Kind: "mismatch", Detail: "stopped in do_mkdir, not do_mkdirat",
				ConsoleTail: "~ # mkdir /tmp/kspec-mkdir"}).NotTo(HaveOccurred())
		}
	})
	It("rmdir hits do_rmdir in fs/namei.c", Label("fs", "rmdir"), func() {
		if !flip {
			Expect("kernel/sys.c").To(Equal("fs/namei.c"), "stop location")
		}
	})
	It("uname hits __do_sys_newuname in kernel/sys.c", Label("kernel", "uname"), func() {
		AddReportEntry("console", "~ # uname -r\r\n6.1.0-99-cloud-amd64\r\n~ # ")
		Expect(errors.New("kernel/sys.c:1322")).NotTo(HaveOccurred())
	})
	It("reads a register while stopped", Label("rsp"), func() {
		Expect(&harness.HarnessError{Op: "read registers", Err: errors.New("gdbstub connection closed"),
			ConsoleTail: "~ # "}).NotTo(HaveOccurred())
	})
	It("does not panic the harness", func() {
		var m map[string]int
		m["x"] = 1
	})
	It("waits for a breakpoint forever", func(ctx SpecContext) {
		<-ctx.Done()
	}, SpecTimeout(50*time.Millisecond))
	It("needs a FreeBSD guest", func() {
		Skip("guest is linux")
	})
	PIt("is not written yet", func() {})
	It("has [brackets] in its text", Label("odd"), func() {})
})
