package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kspec/kspec/archive/archivetest"
	"github.com/kspec/kspec/guest"
	"github.com/kspec/kspec/harness"
)

// kspec repro of a bundle whose exact kernel is not prepared here reads
// the archive for the packages the bundle names: a version the archive no
// longer has is exit 2 naming it, a checksum that differs is refused; in
// neither case is anything left in the cache. (Preparing the exact
// packages is guest.TestPrepareExact.)
func TestReproFetchesTheBundlesKernel(t *testing.T) {
	deb := []byte("not really a package")
	m := archivetest.NewMirror(t, archivetest.Suite{Name: "bookworm", Packages: []archivetest.Package{
		{Name: "linux-image-cloud-amd64", Version: "6.1.192-3", Deb: deb, Fields: map[string]string{"Depends": "linux-image-6.1.0-57-cloud-amd64"}},
		{Name: "linux-image-6.1.0-57-cloud-amd64-unsigned", Version: "6.1.192-3", Deb: deb},
		{Name: "linux-image-6.1.0-57-cloud-amd64-dbg", Version: "6.1.192-3", Deb: deb},
		{Name: "busybox-static", Version: "1:1.35.0-4", Deb: deb},
	}})
	t.Setenv("KSPEC_DEBIAN_MIRROR", m.URL)
	t.Setenv("KSPEC_DEBIAN_SECURITY_MIRROR", "none")
	t.Setenv("KSPEC_DEBIAN_KEYRING", m.KeyringFile)
	bad := strings.Repeat("0", 64)
	for _, tc := range []struct {
		name     string
		dbg, sha string
		code     int
		want     string
	}{
		{"the version is gone", "6.1.192-2", "", exitUsage, "no longer carry linux-image-6.1.0-57-cloud-amd64-dbg 6.1.192-2 (the suites have: 6.1.192-3 in bookworm)"},
		{"the checksum differs", "6.1.192-3", bad, exitHarness, "the record says " + bad},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cache := t.TempDir()
			dir := t.TempDir()
			b := harness.Bundle{Spec: "mkdir hits do_mkdirat", Guest: harness.BundleGuest{Name: "debian-cloud", Version: "6.1.0-57-cloud-amd64",
				Packages: []guest.Package{
					{Name: "linux-image-6.1.0-57-cloud-amd64-unsigned", Version: "6.1.192-3"},
					{Name: "busybox-static", Version: "1:1.35.0-4"},
					{Name: "linux-image-6.1.0-57-cloud-amd64-dbg", Version: tc.dbg, SHA256: tc.sha},
				}},
				Suite: harness.BundleSuite{Binary: "/bin/true", Dir: dir}}
			data, _ := json.Marshal(b)
			if err := os.WriteFile(filepath.Join(dir, harness.BundleFile), data, 0o644); err != nil {
				t.Fatal(err)
			}
			code, _, stderr := runKspec("repro", "--cache", cache, dir)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("kspec repro = exit %d, want %d saying %q:\n%s", code, tc.code, tc.want, stderr)
			}
			if left, _ := filepath.Glob(filepath.Join(cache, "guests", "debian-cloud", "[^.]*")); len(left) != 0 {
				t.Errorf("left %v", left)
			}
		})
	}
}
