package kspectest_test

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/kspec/kspec/harness"
)

// TestFailedSpecReport: a failed spec of a kit suite, run on the real
// default guest, reports its console transcript (the commands it ran),
// the last stop (at the breakpoint) and the registers.
func TestFailedSpecReport(t *testing.T) {
	if _, err := harness.ResolveGuest(harness.Options{}); err != nil {
		if os.Getenv(harness.SkipMissingEnv) == "1" {
			t.Skipf("%s=1: %v", harness.SkipMissingEnv, err)
		}
		t.Fatalf("needs the prepared guest (%v): run go run ./cmd/kspec guest prepare (KSPEC_SKIP_MISSING=1 skips)", err)
	}
	cmd := exec.Command("go", "test", "-count=1", "./testdata/failsuite", "-args", "-ginkgo.no-color")
	cmd.Env = append(os.Environ(), "KSPEC_LOGDIR="+t.TempDir()) // the failed spec's vmcore goes there, not into ~/.local
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the failing suite passed:\n%s", out)
	}
	for _, want := range []string{
		"this spec fails on purpose",
		"kspec console transcript",
		"echo kspec-marker-$((6*7))", "kspec-marker-42", // the command and its output
		"mkdir /tmp/kspec-failsuite",
		"kspec last stop", "stopped at do_mkdirat+0x0",
		"kspec registers",
		"1 Failed",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the failed spec's output lacks %q", want)
		}
	}
	if !regexp.MustCompile(`rip +0x[0-9a-f]+ <do_mkdirat\+0x0>`).Match(out) {
		t.Error("the registers lack the pc at do_mkdirat")
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}
