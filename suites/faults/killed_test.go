package faults_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kspec/kspec/harness"
)

// running reports whether pid exists and is not a zombie.
func running(pid int) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) > 0 && fields[0] != "Z"
}

var _ = Describe("the kspec CLI killed with SIGKILL", Label("harness-killed", "cli"), func() {
	It("takes its QEMU with it, and the next kspec removes the stale run directory", func(ctx SpecContext) {
		if _, err := harness.ResolveGuest(harness.Options{}); err != nil {
			harness.SkipOrFail(err, Skip)
			Expect(err).NotTo(HaveOccurred())
		}
		bin := buildKspec(ctx)
		// A private TMPDIR: the run directories seen here are this spec's.
		base, err := os.MkdirTemp("", "ksk-")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { os.RemoveAll(base) })
		env := append(os.Environ(), "TMPDIR="+base)

		var stderr syncBuffer
		cli := exec.Command(bin, "exec", "--", "sleep 600")
		cli.Env, cli.Stderr = env, &stderr
		Expect(cli.Start()).To(Succeed())
		DeferCleanup(func() { _ = cli.Process.Kill(); _, _ = cli.Process.Wait() })
		Expect(settled(func() bool { return strings.Contains(stderr.String(), "logged in as") })).To(BeTrue(),
			"kspec exec never logged in:\n%s", stderr.String())
		children := qemuChildren(cli.Process.Pid)
		Expect(children).To(HaveLen(1), "QEMU children of kspec exec")
		qemu := children[0]
		runDirs, err := filepath.Glob(filepath.Join(base, "kspec-run-*"))
		Expect(err).NotTo(HaveOccurred())
		Expect(runDirs).To(HaveLen(1))

		Expect(cli.Process.Signal(syscall.SIGKILL)).To(Succeed())
		_, _ = cli.Process.Wait()
		Expect(settled(func() bool { return !running(qemu) })).To(BeTrue(), "QEMU %d survived the SIGKILL of kspec", qemu)
		GinkgoWriter.Printf("kspec exec (pid %d) killed; its QEMU (pid %d) is gone; left behind: %v\n", cli.Process.Pid, qemu, runDirs)
		Expect(runDirs[0]).To(BeADirectory(), "a SIGKILLed kspec cannot clean up: the next one must")

		next := exec.CommandContext(ctx, bin, "exec", "--", "echo next")
		next.Env = env
		out, err := next.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "%s", out)
		Expect(string(out)).To(ContainSubstring("removed 1 stale run directories"))
		Expect(runDirs[0]).NotTo(BeADirectory(), "the stale run directory is still there")
		left, err := filepath.Glob(filepath.Join(base, "kspec-run-*"))
		Expect(err).NotTo(HaveOccurred())
		Expect(left).To(BeEmpty())
	}, SpecTimeout(6*time.Minute))
})
