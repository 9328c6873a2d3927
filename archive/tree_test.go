package archive_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kspec/kspec/archive"
	"github.com/kspec/kspec/archive/archivetest"
)

// sourceFiles is a small kernel-shaped tree.
var sourceFiles = []archivetest.File{
	{Path: "fs/namei.c", Body: []byte("line 1\nint do_mkdirat(void)\n{\n\treturn 0;\n}\n")},
	{Path: "scripts/ver.sh", Body: []byte("#!/bin/sh\necho 1\n")},
	{Path: "include/linux/fs.h", Body: []byte("struct file;\n")},
	{Path: "arch/x86/include/fs.h", Link: "../../../include/linux/fs.h"},
	{Path: "include/linux/fs-copy.h", Link: "hard:include/linux/fs.h"},
}

// writeSourceDeb writes a linux-source-shaped .deb holding a tarball of
// files compressed as comp, and returns its path.
func writeSourceDeb(t *testing.T, files []archivetest.File, comp archivetest.Compression) string {
	t.Helper()
	ext := map[archivetest.Compression]string{"xz": ".tar.xz", "gz": ".tar.gz", "zst": ".tar.zst", "tar": ".tar"}[comp]
	tarball := archivetest.Tarball(t, "linux-source-9.9", files, comp)
	deb := archivetest.Deb(t, "linux-source-9.9", "9.9.1-1", []archivetest.File{
		{Path: "usr/share/doc/linux-source-9.9/copyright", Body: []byte("GPL")},
		{Path: "usr/src/linux-source-9.9" + ext, Body: tarball},
	}, "xz")
	p := filepath.Join(t.TempDir(), "linux-source-9.9_9.9.1-1_all.deb")
	if err := os.WriteFile(p, deb, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func isSourceTarball(name string, _ []byte) bool {
	return strings.HasPrefix(name, "usr/src/linux-source-")
}

// TestExtractTree unpacks a source tarball from a .deb with each decoder
// and compression: files with their modes and times, symbolic and hard
// links, the top directory dropped.
func TestExtractTree(t *testing.T) {
	_, xzErr := exec.LookPath("xz")
	for _, tc := range []struct {
		name    string
		comp    archivetest.Compression
		dec     archive.Decoder
		decoder string
	}{
		{"xz with the system xz", "xz", archive.DecoderXZ, "xz -dc"},
		{"xz with the Go decoder", "xz", archive.DecoderGo, "Go"},
		{"gzip", "gz", archive.DecoderAuto, "Go gzip"},
		{"zstd", "zst", archive.DecoderAuto, "Go zstd"},
		{"plain tar", "tar", archive.DecoderAuto, "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.dec == archive.DecoderXZ && xzErr != nil {
				t.Skipf("no xz on $PATH (%v): install xz-utils to test the system decoder", xzErr)
			}
			deb := writeSourceDeb(t, sourceFiles, tc.comp)
			dst := t.TempDir()
			res, err := archive.ExtractTree(t.Context(), deb, isSourceTarball, dst, tc.dec, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Top != "linux-source-9.9" || res.Files != 3 || res.Decoder != tc.decoder || !strings.HasPrefix(res.Member, "usr/src/linux-source-9.9.tar") {
				t.Errorf("ExtractTree = %+v", res)
			}
			got, err := os.ReadFile(filepath.Join(dst, "fs", "namei.c"))
			if err != nil || string(got) != string(sourceFiles[0].Body) {
				t.Errorf("fs/namei.c = %q, %v", got, err)
			}
			if fi, err := os.Stat(filepath.Join(dst, "scripts", "ver.sh")); err != nil || fi.Mode().Perm() != 0o755 {
				t.Errorf("scripts/ver.sh: %v, %v; want mode 0755", fi, err)
			}
			if fi, err := os.Stat(filepath.Join(dst, "fs", "namei.c")); err != nil || !fi.ModTime().Equal(time.Unix(1_700_000_000, 0)) {
				t.Errorf("fs/namei.c: modification time %v, %v; want the tarball's", fi.ModTime(), err)
			}
			if l, err := os.Readlink(filepath.Join(dst, "arch", "x86", "include", "fs.h")); err != nil || l != "../../../include/linux/fs.h" {
				t.Errorf("symbolic link: %q, %v", l, err)
			}
			a, _ := os.Stat(filepath.Join(dst, "include", "linux", "fs.h"))
			b, err := os.Stat(filepath.Join(dst, "include", "linux", "fs-copy.h"))
			if err != nil || !os.SameFile(a, b) {
				t.Errorf("hard link: %v (same file: %v)", err, err == nil && os.SameFile(a, b))
			}
		})
	}
}

// TestExtractTreeRefuses: links that would leave the tree, a package
// without a tarball and a cancelled context are errors.
func TestExtractTreeRefuses(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []archivetest.File
		want  string
	}{
		{"absolute symbolic link", []archivetest.File{{Path: "x", Link: "/etc/passwd"}}, "absolute path"},
		{"hard link outside the tree", []archivetest.File{{Path: "x", Link: "hard:../../etc/passwd"}}, "hard link outside the tree"},
		{"symbolic link climbing out", []archivetest.File{{Path: "a/x", Link: "../../etc"}}, "symbolic link outside the tree"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			deb := writeSourceDeb(t, tc.files, "xz")
			_, err := archive.ExtractTree(t.Context(), deb, isSourceTarball, t.TempDir(), archive.DecoderGo, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ExtractTree = %v, want an error saying %q", err, tc.want)
			}
		})
	}
	t.Run("no tarball", func(t *testing.T) {
		deb := writeSourceDeb(t, sourceFiles, "xz")
		_, err := archive.ExtractTree(t.Context(), deb, func(string, []byte) bool { return false }, t.TempDir(), archive.DecoderAuto, nil)
		if !errors.Is(err, archive.ErrNoMember) {
			t.Errorf("ExtractTree = %v, want ErrNoMember", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		deb := writeSourceDeb(t, sourceFiles, "xz")
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := archive.ExtractTree(ctx, deb, isSourceTarball, t.TempDir(), archive.DecoderAuto, nil)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("ExtractTree = %v, want context.Canceled", err)
		}
	})
}

// BenchmarkExtractTree unpacks a real linux-source .deb (named by
// KSPEC_SOURCE_DEB, e.g. linux-source-6.1_6.1.192-3_all.deb) with each xz
// decoder, to compare them: go test -run '^$' -bench ExtractTree
// -benchtime 1x ./archive.
func BenchmarkExtractTree(b *testing.B) {
	deb := os.Getenv("KSPEC_SOURCE_DEB")
	if deb == "" {
		b.Skip("set KSPEC_SOURCE_DEB to a linux-source .deb")
	}
	for _, dec := range []archive.Decoder{archive.DecoderXZ, archive.DecoderGo} {
		b.Run(string(dec), func(b *testing.B) {
			for b.Loop() {
				dst := b.TempDir()
				res, err := archive.ExtractTree(b.Context(), deb, isSourceTarball, dst, dec, nil)
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(res.Bytes)
				b.StopTimer()
				os.RemoveAll(dst)
				b.StartTimer()
			}
		})
	}
}
