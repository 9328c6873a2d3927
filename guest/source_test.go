package guest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kspec/kspec/archive"
	"github.com/kspec/kspec/archive/archivetest"
)

func TestSourcePackage(t *testing.T) {
	for _, tc := range []struct{ version, want string }{
		{"6.1.192-3", "linux-source-6.1"},
		{"7.2.13-1", "linux-source-7.2"},
		{"7.3~rc7-1~exp1", "linux-source-7.3"},
		{"1:6.12.1-1", "linux-source-6.12"},
		{"abc", ""},
	} {
		got, err := SourcePackage(tc.version)
		if got != tc.want || (err != nil) != (tc.want == "") {
			t.Errorf("SourcePackage(%q) = %q, %v; want %q", tc.version, got, err, tc.want)
		}
	}
}

// sourcePackage publishes linux-source-<x.y> at version with a small tree.
func sourcePackage(t *testing.T, mm, version string, wrongSHA bool) archivetest.Package {
	tarball := archivetest.Tarball(t, "linux-source-"+mm, []archivetest.File{
		{Path: "fs/namei.c", Body: []byte("/* " + version + " */\nint do_mkdirat(void)\n{\n}\n")},
	}, "xz")
	return archivetest.Package{Name: "linux-source-" + mm, Version: version, WrongSHA: wrongSHA,
		Files: []archivetest.File{{Path: "usr/src/linux-source-" + mm + ".tar.xz", Body: tarball}}}
}

// TestPrepareSource: --source fetches linux-source of the kernel's exact
// version (from the suite that has it), unpacks it into the shared
// sources directory and records it; a second prepare downloads nothing;
// without --source nothing is fetched.
func TestPrepareSource(t *testing.T) {
	m := archivetest.NewMirror(t,
		archivetest.Suite{Name: "bookworm", Packages: append(oldLayout("6.1.0-50-cloud-amd64", "6.1.176-1", "#1 SMP Debian 6.1.176-1"),
			busybox("1:1.35.0-4", "bin/busybox"), sourcePackage(t, "6.1", "6.1.176-1", false))},
		archivetest.Suite{Name: "bookworm-security", Packages: append(oldLayout("6.1.0-57-cloud-amd64", "6.1.192-3", "#1 SMP Debian 6.1.192-3"),
			sourcePackage(t, "6.1", "6.1.192-3", false))},
	)
	cache := t.TempDir()
	deb := "pool/main/t/linux-source-6.1/linux-source-6.1_6.1.192-3_amd64.deb"
	opts := PrepareOptions{CacheDir: cache, Mirror: m.URL, SecurityMirror: m.URL, Keyring: m.KeyringFile}

	spec, res, err := Prepare(t.Context(), "debian-cloud", opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Source != nil || m.Requests(deb) != 0 {
		t.Errorf("without --source: source %+v, %d downloads", res.Source, m.Requests(deb))
	}
	if _, err := SourceTree(spec); !errors.Is(err, ErrNoSource) || !strings.Contains(err.Error(), "guest prepare --source") {
		t.Errorf("SourceTree before --source = %v, want ErrNoSource naming the command", err)
	}

	var progress strings.Builder
	opts.Source, opts.Progress = true, &progress
	spec, res, err = Prepare(t.Context(), "debian-cloud", opts)
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if res.Source == nil || res.Source.Package != "linux-source-6.1" || res.Source.Version != "6.1.192-3" || res.Source.Suite != "bookworm-security" ||
		res.Source.SHA256 == "" || res.Source.Files != 1 || res.Manifest.Source == nil || *res.Manifest.Source != *res.Source {
		t.Errorf("source %+v, manifest %+v", res.Source, res.Manifest.Source)
	}
	tree, err := SourceTree(spec)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(cache, "sources", "linux-source-6.1_6.1.192-3", "tree"); tree != want {
		t.Errorf("SourceTree = %s, want %s", tree, want)
	}
	if body, err := os.ReadFile(filepath.Join(tree, "fs", "namei.c")); err != nil || !strings.HasPrefix(string(body), "/* 6.1.192-3 */") {
		t.Errorf("fs/namei.c = %q, %v; want the 6.1.192-3 tree", body, err)
	}
	if left, _ := filepath.Glob(filepath.Join(cache, "sources", ".tmp-*")); len(left) != 0 || m.Requests(deb) != 1 {
		t.Errorf("left %v; %d downloads", left, m.Requests(deb))
	}
	if debs, _ := filepath.Glob(filepath.Join(cache, "archive", "debs", "linux-source*")); len(debs) != 0 {
		t.Errorf("the source .deb was kept in the .deb cache: %v", debs)
	}

	// Again: nothing fetched, nothing unpacked.
	progress.Reset()
	if _, res, err := Prepare(t.Context(), "debian-cloud", opts); err != nil || res.Source == nil || m.Requests(deb) != 1 ||
		!strings.Contains(progress.String(), "already prepared") {
		t.Errorf("second --source: %+v, %v, %d downloads\n%s", res.Source, err, m.Requests(deb), progress.String())
	}
	// A rebuilt guest of the same kernel finds the shared tree unpacked.
	opts.Force = true
	progress.Reset()
	if _, res, err := Prepare(t.Context(), "debian-cloud", opts); err != nil || res.Source == nil || m.Requests(deb) != 1 ||
		!strings.Contains(progress.String(), "already unpacked") {
		t.Errorf("--force --source: %+v, %v, %d downloads\n%s", res.Source, err, m.Requests(deb), progress.String())
	}
}

// TestPrepareSourceErrors: a source package missing at the kernel's
// version, one whose checksum does not match and an interrupted unpack
// are refused naming why, and leave neither a tree nor a record.
func TestPrepareSourceErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		src     func(t *testing.T) []archivetest.Package
		cancel  bool
		wantErr error
		want    string
	}{
		{"only another version", func(t *testing.T) []archivetest.Package {
			return []archivetest.Package{sourcePackage(t, "6.1", "6.1.176-1", false)}
		}, false, ErrSourceGone, "linux-source-6.1 only in version 6.1.176-1 in bookworm, not 6.1.192-3"},
		{"none at all", func(t *testing.T) []archivetest.Package { return nil }, false, ErrSourceGone, "have no package linux-source-6.1"},
		{"checksum mismatch", func(t *testing.T) []archivetest.Package {
			return []archivetest.Package{sourcePackage(t, "6.1", "6.1.192-3", true)}
		}, false, archive.ErrNotVerified, "SHA256"},
		{"interrupted", func(t *testing.T) []archivetest.Package {
			return []archivetest.Package{sourcePackage(t, "6.1", "6.1.192-3", false)}
		}, true, context.Canceled, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := archivetest.NewMirror(t, archivetest.Suite{Name: "bookworm",
				Packages: append(append(oldLayout("6.1.0-57-cloud-amd64", "6.1.192-3", "#1 SMP Debian 6.1.192-3"), busybox("1", "bin/busybox")), tc.src(t)...)})
			cache := t.TempDir()
			opts := PrepareOptions{CacheDir: cache, Mirror: m.URL, SecurityMirror: "none", Keyring: m.KeyringFile, Source: true}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tc.cancel {
				opts.Progress = writerFunc(func(p []byte) (int, error) {
					if strings.Contains(string(p), "fetching linux-source") {
						cancel()
					}
					return len(p), nil
				})
			}
			spec, _, err := Prepare(ctx, "debian-cloud", opts)
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Prepare = %v, want %v saying %q", err, tc.wantErr, tc.want)
			}
			if spec, err = Find("debian-cloud", cache); err != nil {
				t.Fatalf("the guest itself is not prepared: %v", err)
			}
			if _, err := SourceTree(spec); !errors.Is(err, ErrNoSource) {
				t.Errorf("SourceTree = %v, want ErrNoSource", err)
			}
			left, _ := filepath.Glob(filepath.Join(cache, "sources", "*"))
			if len(left) > 0 && !(len(left) == 1 && filepath.Base(left[0]) == ".lock") {
				t.Errorf("left in the sources directory: %v (only the lock may stay)", left)
			}
		})
	}
}
