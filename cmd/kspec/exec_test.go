package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kspec/kspec/guest"
	"github.com/kspec/kspec/harness"
)

// TestExecShellEnded boots the prepared guest: `kspec exec -- 'exit 3'`
// exits 3 and `kspec exec -- 'kill -9 $$'` (no status to know) exits 1,
// both naming what happened, instead of waiting for an end marker that
// never comes. The deadline turns such a wait into a failure.
func TestExecShellEnded(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a real guest")
	}
	if _, err := guest.Find(harness.DefaultGuest, ""); err != nil {
		if os.Getenv("KSPEC_SKIP_MISSING") == "1" {
			t.Skip(err)
		}
		t.Fatalf("%v: run go run ./cmd/kspec guest prepare (KSPEC_SKIP_MISSING=1 skips)", err)
	}
	for _, tc := range []struct {
		cmd  string
		code int
	}{
		{"exit 3", 3},
		{"kill -9 $$", exitFailed},
	} {
		t.Run(tc.cmd, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			var out, errb bytes.Buffer
			t0 := time.Now()
			code := run(ctx, []string{"exec", "--timeout", "30s", "--", tc.cmd}, &out, &errb)
			if ctx.Err() != nil {
				t.Fatalf("kspec exec -- %q still waiting at the test's deadline; stderr:\n%s", tc.cmd, errb.String())
			}
			if code != tc.code || !strings.Contains(errb.String(), "the command ended the login shell") {
				t.Errorf("kspec exec -- %q: exit %d, want %d naming \"the command ended the login shell\"; stderr:\n%s", tc.cmd, code, tc.code, errb.String())
			}
			t.Logf("exit %d after %v", code, time.Since(t0).Round(time.Millisecond))
		})
	}
}

// TestProbeCommandFinished boots the prepared guest: a probe whose command
// finishes without reaching the breakpoint exits 1 at once, naming the
// command's status and output, instead of waiting for --timeout.
func TestProbeCommandFinished(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a real guest")
	}
	if _, err := guest.Find(harness.DefaultGuest, ""); err != nil {
		if os.Getenv("KSPEC_SKIP_MISSING") == "1" {
			t.Skip(err)
		}
		t.Fatalf("%v: run go run ./cmd/kspec guest prepare (KSPEC_SKIP_MISSING=1 skips)", err)
	}
	// The boot has its own limit; the deadline only turns a wait for
	// --timeout (before the fix) into a failure rather than a slow pass.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, []string{"probe", "--break", "do_rmdir", "--run", "echo probe-out; false", "--timeout", "5m"}, &out, &errb)
	if ctx.Err() != nil {
		t.Fatalf("kspec probe still waiting at the test's deadline; stderr:\n%s", errb.String())
	}
	for _, want := range []string{"was not hit", "the command finished without hitting it", "exited with status 1", "probe-out"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr does not say %q:\n%s", want, errb.String())
		}
	}
	if code != exitFailed {
		t.Errorf("exit %d, want %d; stderr:\n%s", code, exitFailed, errb.String())
	}
}
