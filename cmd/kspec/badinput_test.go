package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kspec/kspec/guest"
	"github.com/kspec/kspec/harness"
	"github.com/kspec/kspec/symbols"
)

// preparedGuestDir returns the directory of the prepared default guest
// (never modified by these tests), failing or skipping as kernelFiles does.
func preparedGuestDir(t *testing.T) string {
	t.Helper()
	spec, err := guest.Find(harness.DefaultGuest, "")
	if err == nil {
		return filepath.Dir(spec.Symbols)
	}
	if os.Getenv(harness.SkipMissingEnv) == "1" {
		t.Skipf("%s=1: %v", harness.SkipMissingEnv, err)
	}
	t.Fatalf("needs the prepared guest (%v): run go run ./cmd/kspec guest prepare (KSPEC_SKIP_MISSING=1 skips)", err)
	return ""
}

// cacheCopy builds a guest cache in a temporary directory whose one guest
// is the prepared default guest: its big files are symlinks to the real
// ones and its JSON files are copies. damage may change the copy; it must
// replace a file (remove the link first), never write through a link.
// KSPEC_CACHE points at the copy for the rest of the test.
func cacheCopy(t *testing.T, damage func(dir string) error) (cache, dir string) {
	t.Helper()
	real := preparedGuestDir(t)
	cache = t.TempDir()
	dir = filepath.Join(cache, "guests", harness.DefaultGuest, filepath.Base(real))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(real)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		src, dst := filepath.Join(real, e.Name()), filepath.Join(dir, e.Name())
		if strings.HasSuffix(e.Name(), ".json") {
			b, err := os.ReadFile(src)
			if err == nil {
				err = os.WriteFile(dst, b, 0o644)
			}
			if err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.Symlink(src, dst); err != nil {
			t.Fatal(err)
		}
	}
	if damage != nil {
		if err := damage(dir); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("KSPEC_CACHE", cache)
	return cache, dir
}

// replaceFile replaces a file of the cache copy (a symlink) by content,
// or by zeros of the real file's size when content is nil.
func replaceFile(dir, name string, content []byte) error {
	p := filepath.Join(dir, name)
	fi, err := os.Stat(p) // the real file's size
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		return err
	}
	if content != nil {
		return os.WriteFile(p, content, 0o644)
	}
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		return err
	}
	return os.Truncate(p, fi.Size()) // sparse: no need to write them
}

// TestBadInputTable runs each kind of bad input through the CLI entry
// points that take it: every one exits 2 with a message that names the
// problem and the fix, before anything boots.
func TestBadInputTable(t *testing.T) {
	kernel, vmlinux := kernelFiles(t)
	tmp := t.TempDir()
	notKernel := filepath.Join(tmp, "not-a-kernel")
	if err := os.WriteFile(notKernel, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	badConfig := filepath.Join(tmp, "guest.json")
	if err := os.WriteFile(badConfig, []byte(`{"os": "linux", "kernel": "bzImage",`), 0o644); err != nil {
		t.Fatal(err)
	}
	wrongSymbols := filepath.Join(tmp, "wrong-symbols.json")
	if err := os.WriteFile(wrongSymbols, fmt.Appendf(nil, `{"os": "linux", "kernel": %q, "symbols": "/bin/true", "password": ""}`, kernel), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(tmp, "nope")
	longTMP := filepath.Join(tmp, strings.Repeat("d", 100))
	if err := os.Mkdir(longTMP, 0o755); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		damage func(dir string) error // a damaged guest cache (KSPEC_CACHE) for this row
		env    map[string]string
		args   []string
		want   []string
	}{
		{name: "unknown symbol (sym)", args: []string{"sym", "--no-index", "--symbols", vmlinux, "do_mkdirat_nosuch"},
			want: []string{`unknown symbol "do_mkdirat_nosuch"`}},
		{name: "unknown symbol (probe --break)", args: []string{"probe", "--kernel", kernel, "--symbols", vmlinux, "--break", "do_mkdirat_nosuch", "--run", "true"},
			want: []string{`--break: unknown symbol "do_mkdirat_nosuch"`}},
		{name: "malformed expression (sym)", args: []string{"sym", "--no-index", "--symbols", vmlinux, "init_uts_ns.name.(("},
			want: []string{`bad expression "init_uts_ns.name.(("`}},
		{name: "malformed expression (probe --watch)", args: []string{"probe", "--kernel", kernel, "--symbols", vmlinux, "--watch", "init_uts_ns..x", "--run", "true"},
			want: []string{"--watch: ", `"init_uts_ns..x"`}},
		{name: "missing kernel file", args: []string{"exec", "--kernel", missing, "--", "true"},
			want: []string{"--kernel " + missing + " does not exist"}},
		{name: "missing symbol file", args: []string{"probe", "--kernel", kernel, "--symbols", missing, "--break", "do_mkdirat", "--run", "true"},
			want: []string{"--symbols " + missing + " does not exist"}},
		{name: "symbol file not ELF", args: []string{"sym", "--symbols", notKernel, "do_mkdirat"},
			want: []string{"--symbols " + notKernel + " is not an ELF file"}},
		{name: "vmlinux not built with the bzImage (guest config)", args: []string{"exec", "--guest", wrongSymbols, "--", "true"},
			want: []string{"guest config " + wrongSymbols, "symbols /bin/true are not for kernel"}},
		{name: "kernel not a bzImage", args: []string{"probe", "--kernel", notKernel, "--symbols", vmlinux, "--break", "do_mkdirat", "--run", "true"},
			want: []string{notKernel + " is not an x86 bzImage"}},
		{name: "guest config not JSON", args: []string{"exec", "--guest", badConfig, "--", "true"},
			want: []string{"guest config " + badConfig}},
		{name: "guest not prepared", args: []string{"exec", "--guest", "nosuch-guest", "--", "true"},
			want: []string{`no guest "nosuch-guest"`}},

		{name: "cache: manifest unparsable", damage: func(dir string) error {
			return os.WriteFile(filepath.Join(dir, guest.FileManifest), []byte(`{"guest": `), 0o644)
		},
			args: []string{"exec", "--", "true"}, want: []string{"guest cache damaged", "manifest.json: unexpected end of JSON input"}},
		{name: "cache: guest.json unparsable", damage: func(dir string) error {
			return os.WriteFile(filepath.Join(dir, guest.FileSpec), []byte("garbage"), 0o644)
		},
			args: []string{"guest", "env"}, want: []string{"guest cache damaged", "guest.json: not valid JSON"}},
		{name: "cache: vmlinux missing", damage: func(dir string) error { return os.Remove(filepath.Join(dir, guest.FileSymbols)) },
			args: []string{"probe", "--break", "do_mkdirat", "--run", "true"}, want: []string{"guest cache damaged", "vmlinux is missing"}},
		{name: "cache: vmlinux truncated", damage: func(dir string) error {
			return replaceFile(dir, guest.FileSymbols, make([]byte, 4096))
		}, args: []string{"sym", "do_mkdirat"}, want: []string{"guest cache damaged", "vmlinux has 4096 bytes, the manifest says"}},
		{name: "cache: vmlinux zeroed", damage: func(dir string) error { return replaceFile(dir, guest.FileSymbols, nil) },
			args: []string{"probe", "--break", "do_mkdirat", "--run", "true"}, want: []string{"guest cache damaged", "vmlinux is not a readable vmlinux"}},
		{name: "cache: kernel zeroed", damage: func(dir string) error { return replaceFile(dir, guest.FileKernel, nil) },
			args: []string{"exec", "--", "true"}, want: []string{"guest cache damaged", "vmlinuz is not a readable kernel image"}},

		{name: "TMPDIR too long for the sockets (exec)", env: map[string]string{"TMPDIR": longTMP},
			args: []string{"exec", "--kernel", kernel, "--symbols", vmlinux, "--", "true"}, want: []string{"TMPDIR " + longTMP + " is too long for the unix sockets", "set TMPDIR to"}},
		{name: "TMPDIR too long for the sockets (boot)", env: map[string]string{"TMPDIR": longTMP},
			args: []string{"boot", "--kernel", kernel, "--symbols", vmlinux}, want: []string{"TMPDIR " + longTMP + " is too long", "set TMPDIR to"}},
		{name: "TMPDIR missing", env: map[string]string{"TMPDIR": missing},
			args: []string{"exec", "--kernel", kernel, "--symbols", vmlinux, "--", "true"}, want: []string{"TMPDIR " + missing, "no such file", "set TMPDIR to"}},
	}
	if other, err := guest.Find("debian-generic", ""); err == nil && other.Version != "" {
		// The vmlinux of another prepared kernel: its symbols resolve, only
		// the banner check before boot tells.
		tests = append(tests, struct {
			name   string
			damage func(dir string) error
			env    map[string]string
			args   []string
			want   []string
		}{name: "vmlinux of another kernel (probe)", args: []string{"probe", "--kernel", kernel, "--symbols", other.Symbols, "--break", "do_mkdirat", "--run", "true"},
			want: []string{"symbols " + other.Symbols + " are not for kernel", "give the vmlinux built with " + kernel}})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.damage != nil {
				cacheCopy(t, tt.damage)
				tt.want = append(tt.want, "guest prepare --force")
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			code, _, stderr := runKspec(tt.args...)
			t.Logf("kspec %s: exit %d: %s", strings.Join(tt.args, " "), code, stderr)
			if code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not say %q", w)
				}
			}
			if strings.Contains(stderr, "logged in") {
				t.Error("a guest booted before the input was checked")
			}
			if tt.env["TMPDIR"] != "" {
				if left, _ := filepath.Glob(filepath.Join(tt.env["TMPDIR"], "kspec-run-*")); len(left) > 0 {
					t.Errorf("left run directories: %v", left)
				}
			}
		})
	}
}

// TestGuestListShowsDamage: `kspec guest list` tells a damaged guest from
// one never prepared, and says how to repair it.
func TestGuestListShowsDamage(t *testing.T) {
	cacheCopy(t, func(dir string) error { return os.Remove(filepath.Join(dir, guest.FileKernel)) })
	code, out, stderr := runKspec("guest", "list")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	line := ""
	for l := range strings.SplitSeq(out, "\n") {
		if strings.HasPrefix(l, harness.DefaultGuest+" ") {
			line = l
		}
	}
	for _, w := range []string{"damaged", "vmlinuz is missing", "guest prepare --force"} {
		if !strings.Contains(line, w) {
			t.Errorf("guest list line %q does not say %q", line, w)
		}
	}
}

// TestProbeRefusesAnotherBuildOfTheKernel boots the real kernel with a copy
// of its vmlinux whose build-id was changed (same banner, so the check
// before boot passes): the check of the running kernel's memory refuses it,
// and probe exits 2 naming both build-ids.
func TestProbeRefusesAnotherBuildOfTheKernel(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a guest")
	}
	dir := preparedGuestDir(t)
	spec, err := guest.Find(harness.DefaultGuest, "")
	if err != nil {
		t.Fatal(err)
	}
	doctored := filepath.Join(t.TempDir(), "vmlinux")
	copyFile(t, spec.Symbols, doctored)
	syms, err := symbols.Open(spec.Symbols)
	if err != nil {
		t.Fatal(err)
	}
	defer syms.Close()
	addr, ok := syms.BuildIDAddr()
	if !ok {
		t.Fatal("the vmlinux keeps no build-id in a loaded section")
	}
	off, err := syms.FileOffset(addr)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(doctored, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xde, 0xad, 0xbe, 0xef}, off); err != nil {
		t.Fatal(err)
	}
	f.Close()

	code, _, stderr := runKspec("probe", "--kernel", spec.Kernel, "--initrd", spec.Initrd, "--symbols", doctored,
		"--password-file", filepath.Join(dir, guest.FilePassword), "--break", "do_mkdirat", "--run", "true")
	t.Logf("exit %d: %s", code, stderr)
	if code != exitUsage {
		t.Errorf("exit %d, want %d", code, exitUsage)
	}
	for _, w := range []string{"do not match the running kernel", "build-id", syms.BuildID(), "deadbeef", doctored} {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr does not say %q", w)
		}
	}
}

// TestGuestPrepareRepairs damages a prepared guest in a copy of the cache
// (a same-size initrd of zeros: only checksums tell) and runs `kspec guest
// prepare`, which must build it again rather than trust it. It downloads
// the guest's packages (about 300 MB), so it runs only with
// KSPEC_TEST_PREPARE=1.
func TestGuestPrepareRepairs(t *testing.T) {
	if os.Getenv("KSPEC_TEST_PREPARE") != "1" {
		t.Skip("set KSPEC_TEST_PREPARE=1 to download the guest's packages and rebuild a damaged copy of it")
	}
	_, dir := cacheCopy(t, func(dir string) error { return replaceFile(dir, guest.FileInitrd, nil) })
	code, out, stderr := runKspec("guest", "prepare")
	t.Logf("exit %d\n%s%s", code, stderr, out)
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(stderr, "is damaged") || !strings.Contains(stderr, "initrd.img: sha256") || !strings.Contains(out, "built at") {
		t.Errorf("prepare did not say it found the damage and rebuilt")
	}
	if err := guest.Verify(dir); err != nil {
		t.Errorf("after the repair: %v", err)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
