package guest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFindDamagedContents: kernel files of the right size whose contents
// are not what the manifest recorded make Find report a damaged cache that
// names the file and says to prepare again with --force.
func TestFindDamagedContents(t *testing.T) {
	elfWithID := "/bin/true" // any ELF with a GNU build-id stands in for the vmlinux
	id, err := BuildID(elfWithID)
	if err != nil {
		t.Skipf("no ELF with a build-id to stand in for a vmlinux: %v", err)
	}
	const version = "6.1.0-56-cloud-amd64"
	zero := func(t *testing.T, p string) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, fi.Size()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string, m *Manifest)
		want   string // "" for an intact guest
	}{
		{"intact", func(*testing.T, string, *Manifest) {}, ""},
		{"zeroed kernel", func(t *testing.T, dir string, _ *Manifest) { zero(t, filepath.Join(dir, FileKernel)) }, "vmlinuz is not a readable kernel image"},
		{"kernel of another release", func(t *testing.T, dir string, m *Manifest) { m.Version = "6.1.0-9-cloud-amd64" }, "vmlinuz is kernel 6.1.0-56-cloud-amd64, the manifest says 6.1.0-9-cloud-amd64"},
		{"zeroed vmlinux", func(t *testing.T, dir string, _ *Manifest) { zero(t, filepath.Join(dir, FileSymbols)) }, "vmlinux is not a readable vmlinux"},
		{"vmlinux of another build", func(t *testing.T, dir string, m *Manifest) { m.BuildID = strings.Repeat("0", len(id)) }, "vmlinux has build-id " + id},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache := t.TempDir()
			dir := fakePrepared(t, cache, "debian-cloud", version)
			copyFile(t, fakeBzImage(t, version+" (debian-kernel@lists.debian.org) #1 SMP"), filepath.Join(dir, FileKernel))
			copyFile(t, elfWithID, filepath.Join(dir, FileSymbols))
			m, err := readManifest(dir)
			if err != nil {
				t.Fatal(err)
			}
			m.BuildID = id
			tt.damage(t, dir, m)
			m.Artifacts = nil
			for _, f := range []string{FileKernel, FileSymbols, FileInitrd, FilePassword} {
				a, err := hashFile(filepath.Join(dir, f))
				if err != nil {
					t.Fatal(err)
				}
				m.Artifacts = append(m.Artifacts, a)
			}
			if err := writeJSON(filepath.Join(dir, FileManifest), m); err != nil {
				t.Fatal(err)
			}

			_, err = Find("debian-cloud", cache)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Find of an intact guest: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "guest prepare --force") {
				t.Errorf("Find = %v\nwant ErrCorrupt containing %q and the prepare --force command", err, tt.want)
			}
		})
	}
}

// TestPrepareDamagedMirrorDown: a prepare that cannot rebuild (no mirror)
// does not hand out a damaged guest, even one whose sizes are right; its
// error says the guest is damaged and why it could not be rebuilt.
func TestPrepareDamagedMirrorDown(t *testing.T) {
	cache := t.TempDir()
	dir := fakePrepared(t, cache, "debian-cloud", "6.1.0-56-cloud-amd64")
	// Same size, other contents: only the checksums tell.
	if err := os.WriteFile(filepath.Join(dir, FileInitrd), []byte("CONTENT OF initrd.img"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Find("debian-cloud", cache); err != nil {
		t.Fatalf("Find checks sizes and headers only, yet: %v", err)
	}
	_, _, err := Prepare(t.Context(), "debian-cloud", PrepareOptions{CacheDir: cache, Mirror: "http://127.0.0.1:1/debian", SecurityMirror: "none"})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "initrd.img: sha256") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("Prepare of a damaged guest with the mirror down = %v\nwant ErrCorrupt naming initrd.img's checksum and the unreachable mirror", err)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
