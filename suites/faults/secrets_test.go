package faults_test

import (
	"fmt"
	"os/exec"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kspec/kspec/harness"
)

// The guest's password is typed on the console at every login; it must not
// come back out of kspec anywhere a person or a CI log could read it.
var _ = Describe("the guest's password", Label("security"), func() {
	It("appears in no transcript, console tail, report, log line or CLI output", func(ctx SpecContext) {
		var transcript, logs syncBuffer
		t, err := harness.Boot(ctx, harness.Options{
			Transcript: &transcript,
			Logf:       func(format string, args ...any) { fmt.Fprintf(&logs, format+"\n", args...) },
		})
		harness.SkipOrFail(err, Skip)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { _ = t.Close() })
		password := t.Spec().Password
		Expect(password).NotTo(BeEmpty())
		// A second login (logout, login) types it once more.
		Expect(t.Console().Logout(ctx)).To(Succeed())
		Expect(t.Console().Login(ctx, t.Spec().User, password)).To(Succeed())
		Expect(transcript.String()).To(ContainSubstring("Password:"), "the transcript saw no login")
		t.BeginSpec()
		_, err = t.Shell(ctx, "echo done")
		Expect(err).NotTo(HaveOccurred())
		report := t.SpecReport(ctx)

		for what, text := range map[string]string{
			"the console transcript": transcript.String(),
			"the log lines":          logs.String(),
			"the console tail":       t.ConsoleTail(64 << 10),
			"the spec report":        report.Transcript + report.LastStop + report.Registers,
		} {
			Expect(text).NotTo(ContainSubstring(password), "%s shows the password", what)
		}

		// The CLI, with the guest's console on stderr (-v), and its JSON.
		bin := buildKspec(ctx)
		for _, args := range [][]string{
			{"exec", "-v", "--", "echo done"},
			{"probe", "-v", "--break", "do_mkdirat", "--run", "mkdir /tmp/s", "--json"},
			{"guest", "env"},
			{"guest", "list"},
		} {
			out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), "kspec %s: %s", strings.Join(args, " "), out)
			Expect(string(out)).NotTo(ContainSubstring(password), "kspec %s shows the password", strings.Join(args, " "))
			if args[0] == "exec" {
				Expect(string(out)).To(ContainSubstring("Password:"), "kspec exec -v did not show the login")
			}
		}
	}, SpecTimeout(6*time.Minute))
})
