package guest

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestKernelImageFromDepends(t *testing.T) {
	tests := []struct {
		depends, want string
		bad           bool
	}{
		{"linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)", "linux-image-6.1.0-56-cloud-amd64", false},
		{"linux-image-6.1.0-56-amd64 (= 6.1.192-2)", "linux-image-6.1.0-56-amd64", false},
		{"kmod, linux-image-6.1.0-9-amd64:amd64 (>= 1) | foo", "linux-image-6.1.0-9-amd64", false},
		{"initramfs-tools | linux-initramfs-tool", "", true},
		{"", "", true},
	}
	for _, tt := range tests {
		got, err := kernelImageFromDepends(tt.depends)
		if got != tt.want || (err != nil) != tt.bad {
			t.Errorf("kernelImageFromDepends(%q) = %q, %v; want %q, bad=%v", tt.depends, got, err, tt.want, tt.bad)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int // sign
	}{
		{"6.1.0-56-cloud-amd64", "6.1.0-9-cloud-amd64", 1},
		{"6.1.0-56-cloud-amd64", "6.1.0-56-cloud-amd64", 0},
		{"6.10.0-1-amd64", "6.9.0-1-amd64", 1},
		{"6.1.0-50-amd64", "6.1.0-056-amd64", -1},
		{"6.1", "6.1.0", -1},
		{"14.1-RELEASE", "14.0-RELEASE", 1},
	}
	sign := func(n int) int { return min(1, max(-1, n)) }
	for _, tt := range tests {
		if got := sign(compareVersions(tt.a, tt.b)); got != tt.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := sign(compareVersions(tt.b, tt.a)); got != -tt.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
}

func TestFindNotPrepared(t *testing.T) {
	dir := t.TempDir()
	_, err := Find("debian-cloud", dir)
	if !errors.Is(err, ErrNotPrepared) || !strings.Contains(err.Error(), "go run ./cmd/kspec guest prepare") {
		t.Errorf("Find in an empty cache = %v", err)
	}
	_, err = Find("debian-generic", dir)
	if !errors.Is(err, ErrNotPrepared) || !strings.Contains(err.Error(), "kspec guest prepare --guest debian-generic") {
		t.Errorf("Find(debian-generic) = %v", err)
	}
	if _, err := Find("nosuch", dir); !errors.Is(err, ErrNotPrepared) || !strings.Contains(err.Error(), "config file") {
		t.Errorf("Find(nosuch) = %v", err)
	}
}

// fakePrepared writes a prepared-looking guest version into cache.
func fakePrepared(t *testing.T, cache, name, version string) string {
	t.Helper()
	dir := filepath.Join(guestDir(cache, name), version)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	m := Manifest{Guest: name, Version: version}
	for _, f := range []string{FileKernel, FileSymbols, FileInitrd, FilePassword} {
		content := "content of " + f
		if f == FilePassword {
			content = "pw\n"
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		a, err := hashFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		m.Artifacts = append(m.Artifacts, a)
	}
	spec := Spec{Name: name, OS: OSLinux, Arch: DefaultArch, Version: version, Kernel: FileKernel, Symbols: FileSymbols,
		Initrd: FileInitrd, Append: "console=ttyS0", User: "root", PasswordFile: FilePassword}
	if err := writeJSON(filepath.Join(dir, FileSpec), spec); err != nil {
		t.Fatal(err)
	}
	if err := writeJSON(filepath.Join(dir, FileManifest), m); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestFindNewestAndDamaged(t *testing.T) {
	cache := t.TempDir()
	fakePrepared(t, cache, "debian-cloud", "6.1.0-9-cloud-amd64")
	newest := fakePrepared(t, cache, "debian-cloud", "6.1.0-56-cloud-amd64")
	os.MkdirAll(filepath.Join(guestDir(cache, "debian-cloud"), ".tmp-123"), 0o755)
	spec, err := Find("debian-cloud", cache)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Version != "6.1.0-56-cloud-amd64" || spec.Kernel != filepath.Join(newest, FileKernel) || spec.Password != "pw" {
		t.Errorf("Find = %+v", spec)
	}
	if err := Verify(newest); err != nil {
		t.Errorf("Verify: %v", err)
	}
	os.WriteFile(filepath.Join(newest, FileInitrd), []byte("same size!!!!!!!!!!!!"), 0o644)
	if err := Verify(newest); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Verify of a changed file = %v, want ErrCorrupt", err)
	}
	os.Remove(filepath.Join(newest, FileSymbols))
	_, err = Find("debian-cloud", cache)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "--force") || !strings.Contains(err.Error(), "vmlinux is missing") {
		t.Errorf("Find of a damaged guest = %v", err)
	}
}

func TestPrepareUnknownGuest(t *testing.T) {
	for _, name := range []string{"nosuch", "debian-sid-tiny", "debian--cloud", "debian-Sid-cloud"} {
		_, _, err := Prepare(context.Background(), name, PrepareOptions{CacheDir: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), "debian-sid-cloud") {
			t.Errorf("Prepare(%s) = %v", name, err)
		}
	}
}

func TestLookupDebian(t *testing.T) {
	for _, tt := range []struct {
		name                 string
		ok                   bool
		suite, flavour, meta string
	}{
		{"debian-cloud", true, "bookworm", "cloud", "linux-image-cloud-amd64"},
		{"debian-generic", true, "bookworm", "generic", "linux-image-amd64"},
		{"debian-sid-cloud", true, "sid", "cloud", "linux-image-cloud-amd64"},
		{"debian-experimental-generic", true, "experimental", "generic", "linux-image-amd64"},
		{"debian-bookworm-backports-cloud", true, "bookworm-backports", "cloud", "linux-image-cloud-amd64"},
		{"debian-cloud-arm64", true, "bookworm", "cloud", "linux-image-cloud-arm64"},
		{"debian-bookworm-cloud-arm64", true, "bookworm", "cloud", "linux-image-cloud-arm64"},
		{"debian-sid-generic-arm64", true, "sid", "generic", "linux-image-arm64"},
		{"debian-cloud-amd64", true, "bookworm", "cloud", "linux-image-cloud-amd64"},
		{"debian-arm64", false, "", "", ""},
		{"debian-cloud-riscv64", false, "", "", ""},
		{"debian-sid-rt", false, "", "", ""},
		{"debian-sid", false, "", "", ""},
		{"ubuntu-cloud", false, "", "", ""},
		{"debian-../x-cloud", false, "", "", ""},
	} {
		g, ok := lookupDebian(tt.name)
		if ok != tt.ok || ok && (g.Suite != tt.suite || g.Flavour != tt.flavour || g.Meta() != tt.meta || g.Arch != tt.meta[strings.LastIndexByte(tt.meta, '-')+1:]) {
			t.Errorf("lookupDebian(%q) = %+v, %v", tt.name, g, ok)
		}
		if CanPrepare(tt.name) != tt.ok {
			t.Errorf("CanPrepare(%q) = %v", tt.name, !tt.ok)
		}
	}
	for _, n := range KnownGuests() {
		if !CanPrepare(n) {
			t.Errorf("KnownGuests lists %q, which CanPrepare refuses", n)
		}
	}
}

func TestListGuests(t *testing.T) {
	cache := t.TempDir()
	fakePrepared(t, cache, "debian-bookworm-backports-cloud", "6.12.1-cloud-amd64")
	os.MkdirAll(filepath.Join(cache, "guests", "not-a-guest"), 0o755)
	got := ListGuests(cache)
	if !slices.Contains(got, "debian-bookworm-backports-cloud") || !slices.Contains(got, "debian-sid-cloud") || slices.Contains(got, "not-a-guest") || !slices.IsSorted(got) {
		t.Errorf("ListGuests = %q", got)
	}
}

func TestSuiteLayers(t *testing.T) {
	show := func(ls [][]suiteSpec) string {
		var out []string
		for _, l := range ls {
			var names []string
			for _, s := range l {
				n := s.suite
				if s.mirror == "S" {
					n = "S:" + n
				}
				if s.optional {
					n += "?"
				}
				names = append(names, n)
			}
			out = append(out, strings.Join(names, "+"))
		}
		return strings.Join(out, " > ")
	}
	for _, tt := range []struct{ suite, security, want string }{
		{"bookworm", "S", "bookworm+bookworm-updates?+S:bookworm-security?"},
		{"trixie", "none", "trixie+trixie-updates?"},
		{"sid", "S", "sid"},
		{"experimental", "S", "experimental > sid"},
		{"bookworm-backports", "S", "bookworm-backports > bookworm+bookworm-updates?+S:bookworm-security?"},
		{"bookworm-security", "S", "bookworm-security"},
	} {
		if got := show(suiteLayers(tt.suite, "M", tt.security)); got != tt.want {
			t.Errorf("suiteLayers(%s) = %s, want %s", tt.suite, got, tt.want)
		}
	}
}

// TestPrepareNetwork prepares bookworm's debian-cloud (old packaging
// layout), debian-sid-cloud (new layout) and debian-cloud-arm64 for real
// from Debian's archive into a temporary cache (about 300, 370 and 330 MB of
// downloads), with apt and dpkg hidden from PATH, each twice. It runs only with KSPEC_TEST_PREPARE=1.
func TestPrepareNetwork(t *testing.T) {
	ctx, cache, progress := networkPrepare(t, "download and prepare debian-cloud, debian-sid-cloud and debian-cloud-arm64")
	for _, name := range []string{"debian-cloud", "debian-sid-cloud", "debian-cloud-arm64"} {
		spec, res, err := Prepare(ctx, name, PrepareOptions{CacheDir: cache, Progress: progress})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: built=%v download=%v extract=%v total=%v", name, res.Built, res.Download, res.Extract, res.Total)
		if !res.Built || spec.Version == "" || res.Manifest.BuildID == "" {
			t.Errorf("Prepare = %+v, %+v", spec, res)
		}
		start := time.Now()
		spec2, res2, err := Prepare(ctx, name, PrepareOptions{CacheDir: cache, Progress: progress})
		if err != nil || res2.Built || spec2.Symbols != spec.Symbols {
			t.Errorf("second Prepare = %+v, %+v, %v", spec2, res2, err)
		}
		t.Logf("second Prepare took %v", time.Since(start))
		if err := Verify(res.Dir); err != nil {
			t.Error(err)
		}
		if entries, _ := filepath.Glob(filepath.Join(guestDir(cache, name), ".tmp-*")); len(entries) != 0 {
			t.Errorf("left temporary directories: %v", entries)
		}
	}

	// An interrupted build (ctx cancelled, as on SIGINT) leaves nothing.
	ictx, icancel := context.WithCancel(ctx)
	defer icancel()
	interrupt := writerFunc(func(p []byte) (int, error) {
		if strings.Contains(string(p), "extracting from") {
			icancel()
		}
		return len(p), nil
	})
	_, _, err := Prepare(ictx, "debian-cloud", PrepareOptions{CacheDir: cache, Progress: interrupt, Force: true})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("interrupted Prepare = %v, want context.Canceled", err)
	}
	if entries, _ := filepath.Glob(filepath.Join(guestDir(cache, "debian-cloud"), ".tmp-*")); len(entries) != 0 {
		t.Errorf("an interrupted prepare left %v", entries)
	}
	if _, err := Find("debian-cloud", cache); err != nil {
		t.Errorf("the prepared guest did not survive an interrupted --force: %v", err)
	}
	if os.Getenv("KSPEC_TEST_KEEP") != "" {
		os.CopyFS(os.Getenv("KSPEC_TEST_KEEP"), os.DirFS(cache))
	}
}

// prepare --source from the real archive: the kernel's exact
// linux-source, unpacked (here by the Go decoder: PATH hides xz), holds the
// file and line the vmlinux names for do_mkdirat; a second prepare does
// nothing; nothing temporary is left.
func TestPrepareSourceNetwork(t *testing.T) {
	ctx, cache, progress := networkPrepare(t, "download debian-cloud and its linux-source (≈420 MB)")
	start := time.Now()
	spec, res, err := Prepare(ctx, "debian-cloud", PrepareOptions{CacheDir: cache, Progress: progress, Source: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("prepare --source took %v", time.Since(start))
	if res.Source == nil {
		t.Fatalf("Prepare with Source recorded no source: %+v", res)
	}
	tree, err := SourceTree(spec)
	if err != nil {
		t.Fatal(err)
	}
	namei, err := os.ReadFile(filepath.Join(tree, "fs", "namei.c"))
	if err != nil || !strings.Contains(string(namei), "int do_mkdirat(") {
		t.Errorf("%s/fs/namei.c: %v (do_mkdirat in it: %v)", tree, err, strings.Contains(string(namei), "int do_mkdirat("))
	}
	start = time.Now()
	if _, res2, err := Prepare(ctx, "debian-cloud", PrepareOptions{CacheDir: cache, Progress: progress, Source: true}); err != nil || res2.Built {
		t.Errorf("second prepare --source = %+v, %v", res2, err)
	}
	t.Logf("second prepare --source took %v", time.Since(start))
	left, _ := filepath.Glob(filepath.Join(cache, "sources", "*", ".tmp-*"))
	more, _ := filepath.Glob(filepath.Join(guestDir(cache, "debian-cloud"), ".tmp-*"))
	if len(left)+len(more) != 0 {
		t.Errorf("temporary directories left: %v %v", left, more)
	}
}

// networkPrepare is the set-up of a test that prepares guests from the real
// archive: it runs only with KSPEC_TEST_PREPARE=1 (what says what it
// downloads), hides apt, dpkg and xz from PATH, and returns a context, an
// empty cache and a progress writer into the test's log.
func networkPrepare(t *testing.T, what string) (context.Context, string, io.Writer) {
	t.Helper()
	if os.Getenv("KSPEC_TEST_PREPARE") != "1" {
		t.Skipf("set KSPEC_TEST_PREPARE=1 to %s into a temporary cache", what)
	}
	t.Setenv("PATH", t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	t.Cleanup(cancel)
	progress := writerFunc(func(p []byte) (int, error) { t.Logf("%s", strings.TrimSpace(string(p))); return len(p), nil })
	return ctx, t.TempDir(), progress
}

func TestInstall(t *testing.T) {
	gdir := t.TempDir()
	build := func(content string) string {
		tmp, err := os.MkdirTemp(gdir, ".tmp-")
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(tmp, "f"), []byte(content), 0o644)
		return tmp
	}
	vdir := filepath.Join(gdir, "6.1.0-56-cloud-amd64")
	for _, content := range []string{"first", "second (--force)"} {
		if err := install(build(content), vdir); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(filepath.Join(vdir, "f")); string(got) != content {
			t.Errorf("after install: %q, want %q", got, content)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(gdir, ".*")); len(left) != 0 {
		t.Errorf("install left %v", left)
	}
}

func TestLockAndStale(t *testing.T) {
	gdir := t.TempDir()
	var said []string
	say := func(f string, a ...any) { said = append(said, f) }
	l, err := lockGuest(context.Background(), gdir, say)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := lockGuest(ctx, gdir, say); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second lock = %v, want DeadlineExceeded while the first is held", err)
	}
	if len(said) != 1 || !strings.Contains(said[0], "waiting") {
		t.Errorf("progress = %q, want one 'waiting' line", said)
	}
	l.unlock()
	l2, err := lockGuest(context.Background(), gdir, say)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.unlock()
	os.MkdirAll(filepath.Join(gdir, ".tmp-123", "debs"), 0o755)
	os.MkdirAll(filepath.Join(gdir, "6.1.0-56-cloud-amd64"), 0o755)
	removeStale(gdir, say)
	if _, err := os.Stat(filepath.Join(gdir, ".tmp-123")); !os.IsNotExist(err) {
		t.Error("stale .tmp- directory kept")
	}
	if _, err := os.Stat(filepath.Join(gdir, "6.1.0-56-cloud-amd64")); err != nil {
		t.Error("a version directory was removed")
	}
}

// TestPrepareMirrorDown: when the mirror cannot be reached the newest
// prepared version is used (and the result says why); with nothing
// prepared the error says what failed.
func TestPrepareMirrorDown(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no apt, no dpkg: they are not needed
	cache := t.TempDir()
	down := PrepareOptions{CacheDir: cache, Mirror: "http://127.0.0.1:1/debian", SecurityMirror: "none"}
	_, _, err := Prepare(context.Background(), "debian-cloud", down)
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") || errors.Is(err, ErrUnknownGuest) {
		t.Errorf("Prepare with the mirror down and nothing prepared = %v", err)
	}
	fakePrepared(t, cache, "debian-cloud", "6.1.0-9-cloud-amd64")
	var progress strings.Builder
	down.Progress = &progress
	spec, res, err := Prepare(context.Background(), "debian-cloud", down)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Version != "6.1.0-9-cloud-amd64" || res.Built || res.Fallback == "" || !strings.Contains(progress.String(), "using the newest prepared version") {
		t.Errorf("Prepare fallback = %+v, %+v, progress %q", spec, res, progress.String())
	}
}
