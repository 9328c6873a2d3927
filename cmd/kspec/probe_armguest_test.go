package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/kspec/kspec/guest"
)

// gdbInfoLine is gdb's answer to `info line FUNCTION`.
var gdbInfoLine = regexp.MustCompile(`Line (\d+) of "([^"]+)" starts at address (0x[0-9a-f]+)`)

// On the arm64 guest, kspec probe stops at the file and line gdb-multiarch's
// `info line do_mkdirat` names (past the ftrace patch site), its backtrace
// runs through the arm64 syscall path to el0_svc (return addresses signed
// with pointer authentication stripped), and the task is mkdir. The guest is
// $KSPEC_ARM64_GUEST (default debian-cloud-arm64; 0 skips this test).
func TestProbeArm64MatchesGDBMultiarch(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a real arm64 guest")
	}
	name := os.Getenv("KSPEC_ARM64_GUEST")
	if name == "0" {
		t.Skip("KSPEC_ARM64_GUEST=0")
	}
	if name == "" {
		name = "debian-cloud-arm64"
	}
	spec, err := guest.Find(name, "")
	if err != nil {
		if os.Getenv("KSPEC_SKIP_MISSING") == "1" {
			t.Skip(err)
		}
		t.Fatalf("%v: run bin/kspec guest prepare --guest %s (KSPEC_ARM64_GUEST=0 or KSPEC_SKIP_MISSING=1 skips)", err, name)
	}
	gdb, err := exec.LookPath("gdb-multiarch")
	if err != nil {
		t.Fatal("gdb-multiarch is not installed (apt-get install gdb-multiarch; scripts/setup does)")
	}
	out, err := exec.Command(gdb, "-nx", "-batch", "-ex", "info line do_mkdirat", spec.Symbols).CombinedOutput()
	m := gdbInfoLine.FindStringSubmatch(string(out))
	if err != nil || m == nil {
		t.Fatalf("gdb-multiarch info line: %v\n%s", err, out)
	}
	t.Setenv("KSPEC_QEMU", "") // the guest's own emulator, whatever the test run's QEMU
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if code := run(ctx, []string{"probe", "--guest", name, "--break", "do_mkdirat", "--run", "mkdir /tmp/kspec-arm64", "--json"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("kspec probe exited %d\nstderr:\n%s", code, stderr.String())
	}
	var hit probeResult
	if err := json.Unmarshal(stdout.Bytes(), &hit); err != nil {
		t.Fatalf("probe --json: %v\n%s", err, stdout.String())
	}
	line, _ := strconv.Atoi(m[1])
	if hit.Function != "do_mkdirat" || hit.File != m[2] || hit.Line != line || hit.PC != m[3] {
		t.Errorf("hit %s at %s:%d pc %s; gdb-multiarch: %s:%d at %s", hit.Function, hit.File, hit.Line, hit.PC, m[2], line, m[3])
	}
	if hit.Comm != "mkdir" {
		t.Errorf("comm %q, want mkdir (errors: %v)", hit.Comm, hit.Errors)
	}
	if len(hit.Backtrace) == 0 {
		t.Fatalf("no backtrace (errors: %v)", hit.Errors)
	}
	var fns []string
	for _, f := range hit.Backtrace {
		fns = append(fns, f.Function)
	}
	for _, want := range []string{"__arm64_sys_mkdirat", "invoke_syscall", "el0_svc"} {
		if !slices.Contains(fns, want) {
			t.Errorf("backtrace %v lacks %s", fns, want)
		}
	}
	if last := hit.Backtrace[len(hit.Backtrace)-1]; last.Function != "el0t_64_sync" || last.StopReason != "" {
		t.Errorf("backtrace ends at %s (%s), want el0t_64_sync, cleanly", last.Function, last.StopReason)
	}
}
