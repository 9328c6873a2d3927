package archive_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kspec/kspec/archive"
	"github.com/kspec/kspec/archive/archivetest"
)

func pkg(name, version string, fields map[string]string, files ...archivetest.File) archivetest.Package {
	return archivetest.Package{Name: name, Version: version, Fields: fields, Files: files}
}

func TestRelease(t *testing.T) {
	other := archivetest.NewKey(t, "someone else")
	m := archivetest.NewMirror(t,
		archivetest.Suite{Name: "sid", SuiteField: "unstable", Packages: []archivetest.Package{pkg("a", "1", nil)}},
		archivetest.Suite{Name: "forged", Signer: other},
		archivetest.Suite{Name: "tampered", Tamper: func(b []byte) []byte {
			return bytes.Replace(b, []byte("Components: main"), []byte("Components: evil"), 1)
		}},
		archivetest.Suite{Name: "plain", Tamper: func(b []byte) []byte { return []byte("Suite: plain\n") }},
	)
	c := &archive.Client{CacheDir: t.TempDir(), Keyring: m.KeyringFile}
	r, err := c.Release(t.Context(), m.URL, "sid")
	if err != nil {
		t.Fatal(err)
	}
	if r.Suite != "unstable" || r.Codename != "sid" || !r.AcquireByHash || len(r.Files) != 2 || !strings.Contains(r.Signer, "kspec test archive") {
		t.Errorf("Release = %+v", r)
	}
	for _, tt := range []struct{ suite, want string }{
		{"forged", "does not verify"},
		{"tampered", "does not verify"},
		{"plain", "not an OpenPGP clear-signed message"},
	} {
		_, err := c.Release(t.Context(), m.URL, tt.suite)
		if !errors.Is(err, archive.ErrNotVerified) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), m.KeyringFile) {
			t.Errorf("Release(%s) = %v, want ErrNotVerified saying %q and naming the keyring", tt.suite, err, tt.want)
		}
	}
	if _, err := c.Release(t.Context(), m.URL, "nosuch"); !errors.Is(err, archive.ErrNotFound) {
		t.Errorf("Release(nosuch) = %v, want ErrNotFound", err)
	}
	for _, code := range []int{http.StatusBadRequest, http.StatusForbidden, http.StatusServiceUnavailable} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }))
		_, err := c.Release(t.Context(), srv.URL+"/nodebian", "sid")
		srv.Close()
		if notFound := code < 500; errors.Is(err, archive.ErrNotFound) != notFound || !strings.Contains(err.Error(), strconv.Itoa(code)) {
			t.Errorf("Release from a server answering %d = %v; want ErrNotFound: %v", code, err, notFound)
		}
	}
	bad := &archive.Client{CacheDir: t.TempDir(), Keyring: filepath.Join(t.TempDir(), "missing.gpg")}
	if _, err := bad.Release(t.Context(), m.URL, "sid"); err == nil || !strings.Contains(err.Error(), "missing.gpg") {
		t.Errorf("Release with a missing keyring = %v", err)
	}
	armored := filepath.Join(t.TempDir(), "k.asc")
	if err := os.WriteFile(armored, []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\ngarbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := archive.ReadKeyring(armored); err == nil {
		t.Error("ReadKeyring accepted a broken armored keyring")
	}
}

// TestReleaseCache: a fresh cached InRelease is used without asking the
// mirror; an old one, or one past its Valid-Until, is fetched again.
func TestReleaseCache(t *testing.T) {
	m := archivetest.NewMirror(t,
		archivetest.Suite{Name: "sid"},
		archivetest.Suite{Name: "stale", ValidUntil: time.Now().Add(-time.Hour)})
	now := time.Now()
	c := &archive.Client{CacheDir: t.TempDir(), Keyring: m.KeyringFile, MaxAge: time.Hour, Now: func() time.Time { return now }}
	for range 2 {
		if _, err := c.Release(t.Context(), m.URL, "sid"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Release(t.Context(), m.URL, "stale"); err != nil {
			t.Fatal(err)
		}
	}
	if n := m.Requests("dists/sid/InRelease"); n != 1 {
		t.Errorf("fresh InRelease fetched %d times, want 1", n)
	}
	if n := m.Requests("dists/stale/InRelease"); n != 2 {
		t.Errorf("expired InRelease fetched %d times, want 2", n)
	}
	now = now.Add(2 * time.Hour)
	if _, err := c.Release(t.Context(), m.URL, "sid"); err != nil {
		t.Fatal(err)
	}
	if n := m.Requests("dists/sid/InRelease"); n != 2 {
		t.Errorf("InRelease older than MaxAge fetched %d times in all, want 2", n)
	}
}

func TestPackagesAndDebs(t *testing.T) {
	m := archivetest.NewMirror(t,
		archivetest.Suite{Name: "sid", Packages: []archivetest.Package{
			pkg("linux-image-cloud-amd64", "7.2.13-1", map[string]string{"Depends": "linux-image-7.2.13+deb14-cloud-amd64 (= 7.2.13-1)", "Source": "linux-signed-amd64 (7.2.13+1)"}),
			pkg("busybox-static", "1:1.38.0-3", nil, archivetest.File{Path: "usr/bin/busybox", Body: []byte("\x7fELF busybox")}),
			{Name: "broken", Version: "1", WrongSHA: true},
		}},
		archivetest.Suite{Name: "old", GzOnly: true, Packages: []archivetest.Package{pkg("a", "1.0~rc1", nil)}},
	)
	cache := t.TempDir()
	c := &archive.Client{CacheDir: cache, Keyring: m.KeyringFile}
	ctx := t.Context()
	r, err := c.Release(ctx, m.URL, "sid")
	if err != nil {
		t.Fatal(err)
	}
	ix, err := c.Packages(ctx, r, "main", "amd64", nil)
	if err != nil {
		t.Fatal(err)
	}
	meta := ix.Get("linux-image-cloud-amd64")
	if meta == nil || meta.Source != "linux-signed-amd64" || meta.Suite != "sid" || strings.Join(meta.DependsOn(), ",") != "linux-image-7.2.13+deb14-cloud-amd64" {
		t.Fatalf("index record = %+v", meta)
	}
	if _, err := c.Packages(ctx, r, "main", "arm64", nil); !errors.Is(err, archive.ErrNotFound) || !strings.Contains(err.Error(), "amd64") {
		t.Errorf("Packages(arm64) = %v, want ErrNotFound naming the architectures there are", err)
	}
	if m.Requests("dists/sid/main/binary-amd64/Packages.xz") != 0 {
		t.Error("the index was fetched by name although the release allows by-hash")
	}
	bb := ix.Get("busybox-static")
	deb, err := c.Deb(ctx, bb)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Deb(ctx, bb); err != nil {
		t.Fatal(err)
	}
	if n := m.Requests(bb.Filename); n != 1 {
		t.Errorf("a cached .deb was downloaded %d times, want 1", n)
	}
	// A cached .deb that was damaged is downloaded again.
	if err := os.WriteFile(deb, []byte("damaged"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Deb(ctx, bb); err != nil || m.Requests(bb.Filename) != 2 {
		t.Errorf("damaged cached .deb: %v, %d downloads", err, m.Requests(bb.Filename))
	}
	if _, err := c.Deb(ctx, ix.Get("broken")); !errors.Is(err, archive.ErrNotVerified) || !strings.Contains(err.Error(), "SHA256") {
		t.Errorf("Deb(broken) = %v, want ErrNotVerified naming the SHA256", err)
	}
	if left, _ := filepath.Glob(filepath.Join(cache, "debs", "broken*")); len(left) != 0 {
		t.Errorf("a .deb that did not verify was kept: %v", left)
	}
	if left, _ := filepath.Glob(filepath.Join(cache, "debs", ".part-*")); len(left) != 0 {
		t.Errorf("partial downloads left: %v", left)
	}

	old, err := c.Release(ctx, m.URL, "old")
	if err != nil {
		t.Fatal(err)
	}
	oix, err := c.Packages(ctx, old, "main", "amd64", func(n string) bool { return n != "b" })
	if err != nil || oix.Get("a") == nil {
		t.Errorf("gz-only index: %v", err)
	}
}

func TestExtract(t *testing.T) {
	isELF := func(_ string, h []byte) bool { return bytes.HasPrefix(h, []byte("\x7fELF")) }
	big := append([]byte("\x7fELF"), bytes.Repeat([]byte("vmlinux"), 100_000)...)
	files := []archivetest.File{
		{Path: "usr/lib/debug/boot/vmlinux-7.2", Link: "../lib/modules/7.2/vmlinux"},
		{Path: "usr/lib/debug/lib/modules/7.2/kernel/a.ko", Body: []byte("not elf")},
		{Path: "usr/lib/debug/lib/modules/7.2/vmlinux", Body: big},
	}
	for _, comp := range []archivetest.Compression{"xz", "gz", "zst"} {
		t.Run(string(comp), func(t *testing.T) {
			deb := filepath.Join(t.TempDir(), "x.deb")
			if err := os.WriteFile(deb, archivetest.Deb(t, "x", "1", files, comp), 0o644); err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(t.TempDir(), "vmlinux")
			m, err := archive.Extract(t.Context(), deb, isELF, dst, 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(dst)
			if !bytes.Equal(got, big) || m.Size != int64(len(big)) || m.Path != "usr/lib/debug/lib/modules/7.2/vmlinux" ||
				strings.Join(m.Links, ",") != "usr/lib/debug/boot/vmlinux-7.2" {
				t.Errorf("Extract = %+v (%d bytes)", m, len(got))
			}
			_, err = archive.Extract(t.Context(), deb, func(string, []byte) bool { return false }, dst+"2", 0, nil)
			if !errors.Is(err, archive.ErrNoMember) {
				t.Errorf("Extract of nothing = %v, want ErrNoMember", err)
			}
			if _, err := os.Stat(dst + "2"); !os.IsNotExist(err) {
				t.Error("Extract of nothing wrote a file")
			}
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			if _, err := archive.Extract(ctx, deb, isELF, dst+"3", 0, nil); !errors.Is(err, context.Canceled) {
				t.Errorf("Extract with a cancelled context = %v", err)
			}
		})
	}
	notDeb := filepath.Join(t.TempDir(), "y.deb")
	os.WriteFile(notDeb, []byte("hello"), 0o644)
	if _, err := archive.Extract(t.Context(), notDeb, isELF, filepath.Join(t.TempDir(), "z"), 0, nil); err == nil || !strings.Contains(err.Error(), "not a .deb") {
		t.Errorf("Extract(not a deb) = %v", err)
	}
}

func TestCompareVersions(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"7.3~rc7-1~exp1", "7.3-1", -1},
		{"6.1.192-3", "6.1.192-2", 1},
		{"1:1.35.0-4", "1.38.0-3", 1},
		{"6.1.10-1", "6.1.9-1", 1},
		{"2.0", "2.0", 0},
	} {
		got := archive.CompareVersions(tt.a, tt.b)
		if (got > 0) != (tt.want > 0) || (got < 0) != (tt.want < 0) {
			t.Errorf("CompareVersions(%q, %q) = %d, want sign %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestParseIndex(t *testing.T) {
	const text = `Package: linux-image-cloud-amd64
Version: 7.2.13-1
Depends: linux-image-7.2.13+deb14-cloud-amd64 (= 7.2.13-1)
Filename: pool/main/l/linux-signed-amd64/linux-image-cloud-amd64_7.2.13-1_amd64.deb
Size: 1708
SHA256: AB
Description: Linux for x86-64 cloud (meta-package)
 This package depends on the latest Linux kernel
 .
 and more.

Package: busybox-static
Version: 1:1.38.0-3
Filename: pool/main/b/busybox/busybox-static_1.38.0-3_amd64.deb
Size: 9

Package: linux-image-cloud-amd64
Version: 7.1.0-1
Filename: pool/old.deb
Size: 1
Package-Without-Blank-Line-End: yes`
	ix, err := archive.ParseIndex(strings.NewReader(text), "M", "sid", nil)
	if err != nil {
		t.Fatal(err)
	}
	p := ix.Get("linux-image-cloud-amd64")
	if ix.Len() != 2 || p == nil || p.Version != "7.2.13-1" || p.SHA256 != "ab" || p.Size != 1708 || p.Source != p.Name || p.Mirror != "M" {
		t.Errorf("ParseIndex: %d packages, %+v", ix.Len(), p)
	}
	kept, err := archive.ParseIndex(strings.NewReader(text), "M", "sid", func(n string) bool { return strings.HasPrefix(n, "linux-") })
	if err != nil || kept.Len() != 1 || kept.Get("busybox-static") != nil {
		t.Errorf("ParseIndex with keep: %v, %d packages", err, kept.Len())
	}
	if _, err := archive.ParseIndex(strings.NewReader("Package: x\nFilename: f\nSize: many\n"), "M", "sid", nil); err == nil || !strings.Contains(err.Error(), "bad Size") {
		t.Errorf("bad Size: %v", err)
	}
}
