package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kspec/kspec/guest"
	"github.com/kspec/kspec/internal/fixturesuite"
	"github.com/kspec/kspec/nightly"
	runreport "github.com/kspec/kspec/report"
)

func TestNightlyBadInput(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad shard", []string{"nightly", "--out", dir, "--shard", "3/2"}, "--shard"},
		{"unknown guest", []string{"nightly", "--out", dir, "--guests", "debian-nope"}, `"debian-nope" is neither`},
		{"guest twice", []string{"nightly", "--out", dir, "--guests", "debian-cloud,debian-cloud"}, "given twice"},
		{"no guests", []string{"nightly", "--out", dir, "--guests", ","}, "no guest given"},
		{"stray argument", []string{"nightly", "--out", dir, "extra"}, `unexpected argument "extra"`},
		{"suite binary missing", []string{"nightly", "--out", dir, "--suite-binary", filepath.Join(dir, "nope")}, "not an executable file"},
		{"report without subcommand", []string{"report"}, "merge, html or show"},
		{"merge without runs", []string{"report", "merge", "--out", dir}, "give the shard run directories"},
		{"merge a non-run", []string{"report", "merge", "--out", dir, dir}, "not a run directory"},
		{"html of nothing", []string{"report", "html", "--out", dir}, "no runs in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr)
			if code != exitUsage || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr.String(), tt.want)
			}
		})
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("bad input left files behind: %v", entries)
	}
}

// fixtureNightly sets up kspec nightly against the report package's fixture
// suite (specs that pass, fail, break the harness, panic, time out, skip;
// FIXTURE_FLIP=1 makes mkdir regress) and a guest config file, so that the
// whole command runs without QEMU.
func fixtureNightly(t *testing.T) (bin, guestFile string) { return fixturesuite.Build(t) }

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestNightlyDefaultMatrix: a plain `kspec nightly` covers the newest
// cloud kernel of each Debian line, oldest first.
func TestNightlyDefaultMatrix(t *testing.T) {
	want := []string{"debian-bookworm-cloud", "debian-trixie-cloud", "debian-sid-cloud", "debian-experimental-cloud"}
	if !slices.Equal(nightly.DefaultGuests, want) {
		t.Errorf("default guests %q, want %q", nightly.DefaultGuests, want)
	}
	for _, g := range nightly.DefaultGuests {
		if !guest.CanPrepare(g) {
			t.Errorf("default guest %q cannot be prepared", g)
		}
	}
}

// TestNightlyTwoRuns: the second of two runs reports the regression the
// fixture suite was made to have, with its console log, and exits 1.
func TestNightlyTwoRuns(t *testing.T) {
	bin, guestFile := fixtureNightly(t)
	out := t.TempDir()
	args := []string{"nightly", "--out", out, "--suite-binary", bin, "--guests", guestFile}

	code, stdout, stderr := runCLI(t, args...)
	if code != exitHarness {
		t.Fatalf("first run: exit %d, want 3 (harness errors, no regressions)\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"running 9 specs (KSPEC_GUEST=" + guestFile + ")", "re-running 5 failed specs once", "2/8 ✗ FAILED"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("progress lacks %q:\n%s", want, stderr)
		}
	}
	if !strings.Contains(stdout, "First run in this results directory") {
		t.Errorf("first run:\n%s", stdout)
	}

	t.Setenv("FIXTURE_FLIP", "1")
	code, stdout, stderr = runCLI(t, args...)
	if code != exitFailed {
		t.Fatalf("second run: exit %d, want 1 (a regression)\n%s\n%s", code, stdout, stderr)
	}
	runs, err := runreport.Runs(out)
	if err != nil || len(runs) != 2 {
		t.Fatalf("runs: %v %v", runs, err)
	}
	s := runs[1]
	g := s.Guests[0]
	if g.Guest != "fixture-guest" || g.Kernel != "6.1.0-99-fixture" || g.Prepared != "config file" {
		t.Errorf("guest %+v", g)
	}
	ch := s.Changes
	if ch.Previous != runs[0].Run || len(ch.Regressions) != 1 || !strings.Contains(ch.Regressions[0].Spec, "mkdir hits do_mkdirat") || len(ch.Fixes) != 1 {
		t.Fatalf("changes %+v", ch)
	}
	log, err := os.ReadFile(filepath.Join(out, s.Run, ch.Regressions[0].Log))
	if err != nil || !strings.Contains(string(log), "~ # mkdir /tmp/kspec-mkdir") {
		t.Errorf("regression log: %v\n%s", err, log)
	}
	for _, want := range []string{"1 REGRESSION", "REGRESSIONS — passed before, fail now (1):", "console log: " + filepath.Join(out, s.Run)} {
		if !strings.Contains(stdout, want) {
			t.Errorf("second run's output lacks %q:\n%s", want, stdout)
		}
	}
	for _, f := range []string{"summary.json", "summary.txt", "report.html", "fixture-guest/junit.xml", "fixture-guest/junit-retry.xml", "fixture-guest/output.log", "../index.html", "../latest/summary.json"} {
		if _, err := os.Stat(filepath.Join(out, s.Run, f)); err != nil {
			t.Errorf("run directory: %v", err)
		}
	}

	// report show prints the latest run again; report html re-renders.
	if code, stdout, _ := runCLI(t, "report", "show", "--out", out); code != 0 || !strings.Contains(stdout, "1 REGRESSION") {
		t.Errorf("report show: exit %d\n%s", code, stdout)
	}
	if code, stdout, _ := runCLI(t, "report", "html", "--out", out); code != 0 || !strings.Contains(stdout, "rendered 2 runs") {
		t.Errorf("report html: exit %d\n%s", code, stdout)
	}
}

// TestNightlyShardsMerge: two shards, run apart, merge into the whole run.
func TestNightlyShardsMerge(t *testing.T) {
	bin, guestFile := fixtureNightly(t)
	var dirs []string
	total := 0
	for _, sh := range []string{"1/2", "2/2"} {
		out := t.TempDir()
		code, stdout, stderr := runCLI(t, "nightly", "--out", out, "--suite-binary", bin, "--guests", guestFile, "--shard", sh, "--no-retry")
		if code != exitHarness && code != exitOK {
			t.Fatalf("shard %s: exit %d\n%s\n%s", sh, code, stdout, stderr)
		}
		if !strings.Contains(stderr, "specs in shard "+sh) {
			t.Errorf("shard %s progress:\n%s", sh, stderr)
		}
		runs, _ := runreport.Runs(out)
		if len(runs) != 1 || runs[0].Shard != sh {
			t.Fatalf("shard %s: runs %+v", sh, runs)
		}
		total += len(runs[0].Guests[0].Specs)
		dirs = append(dirs, filepath.Join(out, runs[0].Run))
	}
	if total != 9 {
		t.Errorf("the shards ran %d specs together, want 9", total)
	}
	merged := t.TempDir()
	code, stdout, stderr := runCLI(t, append([]string{"report", "merge", "--out", merged}, dirs...)...)
	if code != exitHarness {
		t.Fatalf("merge: exit %d, want 3 (the fixture's harness errors)\n%s\n%s", code, stdout, stderr)
	}
	runs, _ := runreport.Runs(merged)
	if len(runs) != 1 || runs[0].Shard != "" || len(runs[0].Guests[0].Specs) != 9 || len(runs[0].MergedFrom) != 2 {
		t.Fatalf("merged: %+v", runs)
	}
	if !strings.Contains(stdout, "merged from shards: 1/2 ") {
		t.Errorf("merge output:\n%s", stdout)
	}
}

// TestNightlyInterrupted: an interrupt reaches the suite as SIGINT, Ginkgo
// still writes its report, and the run is recorded, the specs as errors.
func TestNightlyInterrupted(t *testing.T) {
	bin, guestFile := fixtureNightly(t)
	out := t.TempDir()
	t.Setenv("FIXTURE_BOOT", "hang")
	ready := filepath.Join(t.TempDir(), "hanging")
	t.Setenv("FIXTURE_HANG_READY", ready)
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"nightly", "--out", out, "--suite-binary", bin, "--guests", guestFile}, &stdout, &stderr)
	}()
	// Poll for the fixture's sign that it is inside the hanging boot (a
	// file it writes there), then interrupt.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("the fixture suite never reached its hanging boot\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	code := <-done
	if code != exitFailed || !strings.Contains(stderr.String(), "interrupted; the guests were stopped") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	runs, err := runreport.Runs(out)
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs %v %v", runs, err)
	}
	g := runs[0].Guests[0]
	if c := g.Counts(); c.Error != 8 || len(g.Setup) == 0 || g.Setup[0].Status != runreport.Error {
		t.Errorf("counts %+v, setup %+v", c, g.Setup)
	}
}

// syncBuffer is a bytes.Buffer safe to read while another goroutine writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
