package guest

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kspec/kspec/archive"
	"github.com/kspec/kspec/archive/archivetest"
)

// TestPrepareExact prepares a guest from the exact packages a manifest (or
// a repro bundle) records, into a cache that never had it; a version the
// archive no longer carries and a checksum that differs are refused,
// naming what, and leave nothing behind.
func TestPrepareExact(t *testing.T) {
	m := archivetest.NewMirror(t, archivetest.Suite{Name: "bookworm",
		Packages: append(oldLayout("6.1.0-57-cloud-amd64", "6.1.192-3", "#1 SMP Debian 6.1.192-3"), busybox("1:1.35.0-4", "bin/busybox"))})
	first := t.TempDir()
	opts := PrepareOptions{CacheDir: first, Mirror: m.URL, SecurityMirror: "none", Keyring: m.KeyringFile}
	_, res, err := Prepare(t.Context(), "debian-cloud", opts)
	if err != nil {
		t.Fatal(err)
	}
	pinned := res.Manifest.Packages
	const version = "6.1.0-57-cloud-amd64"

	t.Run("prepared from the recorded packages", func(t *testing.T) {
		opts := opts
		opts.CacheDir = t.TempDir()
		if _, err := FindVersion("debian-cloud", version, opts.CacheDir); !errors.Is(err, ErrNotPrepared) {
			t.Fatalf("FindVersion before = %v, want ErrNotPrepared", err)
		}
		spec, res2, err := PrepareExact(t.Context(), "debian-cloud", version, pinned, opts)
		if err != nil {
			t.Fatal(err)
		}
		found, err := FindVersion("debian-cloud", version, opts.CacheDir)
		if err != nil || found.Symbols != spec.Symbols {
			t.Errorf("FindVersion = %+v, %v", found, err)
		}
		want := map[string]string{}
		for _, a := range res.Manifest.Artifacts {
			want[a.File] = a.SHA256
		}
		for _, a := range res2.Manifest.Artifacts {
			if strings.Contains(a.From, ":/") && want[a.File] != a.SHA256 {
				t.Errorf("%s: sha256 %s, the first build's %s", a.File, a.SHA256, want[a.File])
			}
		}
	})
	for _, tc := range []struct {
		name    string
		change  func(p *Package)
		wantErr error
		want    string
	}{
		{"a version the archive no longer has", func(p *Package) {
			if strings.HasSuffix(p.Name, "-dbg") {
				p.Version = "6.1.192-2"
			}
		}, ErrVersionGone, "no longer carry linux-image-6.1.0-57-cloud-amd64-dbg 6.1.192-2 (the suites have: 6.1.192-3 in bookworm)"},
		{"a checksum that differs", func(p *Package) {
			if strings.HasSuffix(p.Name, "-unsigned") {
				p.SHA256 = strings.Repeat("1", 64)
			}
		}, archive.ErrNotVerified, "the record says 1111"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := opts
			opts.CacheDir = t.TempDir()
			pkgs := append([]Package(nil), pinned...)
			for i := range pkgs {
				tc.change(&pkgs[i])
			}
			_, _, err := PrepareExact(t.Context(), "debian-cloud", version, pkgs, opts)
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("PrepareExact = %v, want %v saying %q", err, tc.wantErr, tc.want)
			}
			if left, _ := filepath.Glob(filepath.Join(guestDir(opts.CacheDir, "debian-cloud"), "[^.]*")); len(left) != 0 {
				t.Errorf("left %v", left)
			}
			if left, _ := filepath.Glob(filepath.Join(guestDir(opts.CacheDir, "debian-cloud"), ".tmp-*")); len(left) != 0 {
				t.Errorf("left %v", left)
			}
		})
	}
}
