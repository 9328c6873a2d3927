// Package fixturesuite builds report/testdata/fixturesuite, a Ginkgo suite
// whose specs end in every way a kspec suite's can (pass, fail, harness
// error, panic, timeout, skip) without booting anything, and a guest config
// file for it, so that the nightly runner can be tested end to end without
// QEMU.
package fixturesuite

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// Build compiles the fixture suite into a temporary directory of t and
// writes a guest config file for it (fixture-guest.json, kernel
// 6.1.0-99-fixture); it returns both paths. Without the go command the test is skipped.
func Build(t testing.TB) (bin, guestFile string) {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to compile the fixture suite")
	}
	_, file, _, _ := runtime.Caller(0)
	src := filepath.Join(filepath.Dir(file), "..", "..", "report", "testdata", "fixturesuite")
	dir := t.TempDir()
	bin = filepath.Join(dir, "fixture.test")
	cmd := exec.Command(goBin, "test", "-c", "-o", bin, ".")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("compiling the fixture suite: %v\n%s", err, out)
	}
	return bin, Guest(t, "fixture-guest", "6.1.0-99-fixture")
}

// Guest writes another guest config file for the same fixture suite,
// named name.json in a temporary directory of t (a second guest of a
// matrix).
func Guest(t testing.TB, name, version string) string {
	t.Helper()
	dir := t.TempDir()
	// Files that pass kspec's checks before boot (a bzImage's HdrS setup
	// header, an ELF's magic); the fixture suite never boots them.
	bz := make([]byte, 0x400)
	copy(bz[0x202:], "HdrS")
	for f, data := range map[string][]byte{"vmlinuz": bz, "vmlinux": []byte("\x7fELF\x02\x01\x01"), "password": []byte("x")} {
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, name+".json")
	cfg := `{"os": "linux", "kernel": "vmlinuz", "symbols": "vmlinux", "password_file": "password", "version": "` + version + `"}`
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}
