package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestPackageName(t *testing.T) {
	tests := []struct{ dir, want string }{
		{"myspecs", "myspecs"},
		{"My-Specs", "my_specs"},
		{"kernel.specs", "kernel_specs"},
		{"2026-specs", "kernel2026_specs"},
		{"-", "kernel"},
		{"_x_", "x"},
	}
	for _, tt := range tests {
		if got := packageName(tt.dir); got != tt.want {
			t.Errorf("packageName(%q) = %q, want %q", tt.dir, got, tt.want)
		}
	}
}

// TestInitInsideModule: inside a module kspec init writes only the suite,
// and it never overwrites a file.
func TestInitInsideModule(t *testing.T) {
	mod := t.TempDir()
	if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module example.com/mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(mod, "specs")
	code, stdout, stderr := runCLI(t, "init", dir)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "kernel_suite_test.go mkdir_test.go" {
		t.Errorf("wrote %v, want the suite without a go.mod", names)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "mkdir_test.go"))
	if !strings.HasPrefix(string(b), "package specs_test\n") {
		t.Errorf("mkdir_test.go starts %q", b[:min(len(b), 40)])
	}
	before, _ := os.ReadFile(filepath.Join(dir, "kernel_suite_test.go"))
	code, _, stderr = runCLI(t, "init", dir)
	if code != exitUsage || !strings.Contains(stderr, "exists") {
		t.Errorf("second init: exit %d, %q; want 2 naming the existing file", code, stderr)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "kernel_suite_test.go")); string(after) != string(before) {
		t.Error("a second init changed the suite")
	}
	if code, _, stderr := runCLI(t, "init", "--module", "example.com/x", dir+"2"); code != exitUsage || !strings.Contains(stderr, "inside the module") {
		t.Errorf("--module inside a module: exit %d, %q", code, stderr)
	}
}

// TestInitScratchModule: a suite written by kspec init into a scratch
// module outside this repository, pointed at this checkout with a replace
// directive, passes its spec with go test on the real default guest.
func TestInitScratchModule(t *testing.T) {
	preparedGuestDir(t) // fails (or skips with KSPEC_SKIP_MISSING=1) without the guest
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("needs the go command: %v", err)
	}
	_, file, _, _ := runtime.Caller(0)
	checkout := filepath.Join(filepath.Dir(file), "..", "..")
	dir := filepath.Join(t.TempDir(), "my-kernel-specs")
	if strings.HasPrefix(dir, checkout+string(filepath.Separator)) {
		t.Fatalf("scratch directory %s is inside the checkout", dir)
	}
	code, stdout, stderr := runCLI(t, "init", dir)
	if code != exitOK {
		t.Fatalf("kspec init: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, f := range []string{"go.mod", "kernel_suite_test.go", "mkdir_test.go"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("kspec init: %v\n%s", err, stdout)
		}
	}
	gocmd := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(goBin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
		out, err := cmd.CombinedOutput()
		t.Logf("go %s:\n%s", strings.Join(args, " "), out)
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	gocmd("mod", "edit", "-replace", "github.com/kspec/kspec="+checkout)
	out := gocmd("test", "-count=1", "-v", "./...", "-args", "-ginkgo.v", "-ginkgo.no-color")
	for _, want := range []string{"reaches do_mkdirat in fs/namei.c, in the mkdir process", "Ran 1 of 1 Specs", "1 Passed", "--- PASS: TestKernel"} {
		if !strings.Contains(out, want) {
			t.Errorf("go test output lacks %q", want)
		}
	}
}
