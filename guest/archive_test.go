package guest

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kspec/kspec/archive/archivetest"
)

// bzImageBytes is a minimal x86 boot setup header whose kernel_version
// string is version.
func bzImageBytes(version string) []byte {
	img := make([]byte, 0x1000)
	copy(img[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(img[0x206:], 0x020f)
	binary.LittleEndian.PutUint16(img[0x20e:], 0x0c00-0x200)
	copy(img[0x0c00:], version+"\x00")
	return img
}

// vmlinuxBytes is a minimal x86-64 ELF executable with a .rodata holding
// the kernel banner and a GNU build-id note.
func vmlinuxBytes(banner string, buildID []byte) []byte {
	le := binary.LittleEndian
	rodata := []byte("\x00Linux version " + banner + "\n\x00")
	note := le.AppendUint32(nil, 4)
	note = le.AppendUint32(note, uint32(len(buildID)))
	note = le.AppendUint32(note, 3) // NT_GNU_BUILD_ID
	note = append(note, "GNU\x00"...)
	note = append(note, buildID...)
	shstr := []byte("\x00.rodata\x00.note.gnu.build-id\x00.shstrtab\x00")
	off := uint64(64)
	type sec struct {
		name, typ uint32
		data      []byte
		off       uint64
	}
	secs := []sec{{}, {1, 1, rodata, 0}, {9, 7, note, 0}, {28, 3, shstr, 0}}
	body := []byte{}
	for i := 1; i < len(secs); i++ {
		secs[i].off = off + uint64(len(body))
		body = append(body, secs[i].data...)
		for len(body)%8 != 0 {
			body = append(body, 0)
		}
	}
	shoff := off + uint64(len(body))
	h := make([]byte, 0, 64)
	h = append(h, 0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	h = le.AppendUint16(h, 2)  // ET_EXEC
	h = le.AppendUint16(h, 62) // EM_X86_64
	h = le.AppendUint32(h, 1)
	h = le.AppendUint64(h, 0)     // entry
	h = le.AppendUint64(h, 0)     // phoff
	h = le.AppendUint64(h, shoff) // shoff
	h = le.AppendUint32(h, 0)
	h = le.AppendUint16(h, 64)
	h = le.AppendUint16(h, 56)
	h = le.AppendUint16(h, 0)
	h = le.AppendUint16(h, 64)
	h = le.AppendUint16(h, uint16(len(secs)))
	h = le.AppendUint16(h, 3)
	out := append(h, body...)
	for _, s := range secs {
		out = le.AppendUint32(out, s.name)
		out = le.AppendUint32(out, s.typ)
		out = le.AppendUint64(out, 0) // flags
		out = le.AppendUint64(out, 0) // addr
		out = le.AppendUint64(out, s.off)
		out = le.AppendUint64(out, uint64(len(s.data)))
		out = le.AppendUint32(out, 0)
		out = le.AppendUint32(out, 0)
		out = le.AppendUint64(out, 1)
		out = le.AppendUint64(out, 0)
	}
	return out
}

var busyboxFile = []byte("\x7fELF\x02\x01\x01 a static busybox")

// oldLayout publishes a kernel as Debian did up to 6.18: the signed
// linux-image-<abi> and linux-image-<abi>-unsigned with /boot/vmlinuz-<abi>,
// and the -dbg package with usr/lib/debug/boot/vmlinux-<abi>.
func oldLayout(abi, version, build string) []archivetest.Package {
	banner := abi + " (debian-kernel@lists.debian.org) " + build
	img := []archivetest.File{{Path: "boot/vmlinuz-" + abi, Body: bzImageBytes(banner)},
		{Path: "usr/lib/modules/" + abi + "/kernel/fs/x.ko", Body: []byte("\x7fELF module")}}
	return []archivetest.Package{
		{Name: "linux-image-cloud-amd64", Version: version, Fields: map[string]string{"Depends": "linux-image-" + abi + " (= " + version + ")", "Source": "linux-signed-amd64"}},
		{Name: "linux-image-" + abi, Version: version, Files: img, Fields: map[string]string{"Source": "linux-signed-amd64 (" + version + ")", "Replaces": "linux-image-" + abi + "-unsigned", "Depends": "kmod, linux-base (>= 4.3~)"}},
		{Name: "linux-image-" + abi + "-unsigned", Version: version, Files: img, Fields: map[string]string{"Source": "linux", "Replaces": "linux-image-" + abi, "Conflicts": "linux-image-" + abi}},
		{Name: "linux-headers-" + abi, Version: version, Files: []archivetest.File{{Path: "usr/src/x", Body: []byte("h")}}},
		{Name: "linux-image-" + abi + "-dbg", Version: version, Fields: map[string]string{"Source": "linux"}, Files: []archivetest.File{
			{Path: "usr/lib/debug/boot/vmlinux-" + abi, Body: vmlinuxBytes(banner, []byte{1, 2, 3, 4})},
			{Path: "usr/lib/debug/lib/modules/" + abi + "/kernel/fs/x.ko", Body: []byte("\x7fELF\x02\x01\x01 relocatable")},
		}},
	}
}

// newLayout publishes a kernel as Debian does from 6.19: a ~2 KB
// linux-image-<abi> depending on linux-binary-<abi>, the image at
// usr/lib/modules/<abi>/vmlinuz(.unsigned), and in -dbg the vmlinux at
// usr/lib/debug/lib/modules/<abi>/vmlinux with the boot path a link to it.
func newLayout(abi, version, build string, comp archivetest.Compression) []archivetest.Package {
	banner := abi + " (debian-kernel@lists.debian.org) " + build
	return []archivetest.Package{
		{Name: "linux-image-cloud-amd64", Version: version, Fields: map[string]string{"Depends": "linux-base-cloud-amd64 (= " + version + "), linux-image-" + abi + " (= " + version + ")"}},
		{Name: "linux-image-" + abi, Version: version, Fields: map[string]string{"Source": "linux-signed-amd64",
			"Depends": "dracut | initramfs-tools, linux-base-" + abi + " (= " + version + "), linux-binary-" + abi + " (= " + version + "), linux-modules-" + abi},
			Files: []archivetest.File{{Path: "usr/share/doc/linux-image-" + abi, Link: "linux-base-" + abi}}},
		{Name: "linux-base-" + abi, Version: version, Files: []archivetest.File{{Path: "usr/share/doc/linux-base-" + abi + "/copyright", Body: []byte("GPL")}}},
		{Name: "linux-modules-" + abi, Version: version, Fields: map[string]string{"Source": "linux"}, Files: []archivetest.File{{Path: "usr/lib/modules/" + abi + "/kernel/x.ko", Body: []byte("\x7fELF")}}},
		{Name: "linux-binary-" + abi, Version: version, Fields: map[string]string{"Source": "linux-signed-amd64"}, Comp: comp,
			Files: []archivetest.File{{Path: "usr/lib/modules/" + abi + "/vmlinuz", Body: bzImageBytes(banner)}}},
		{Name: "linux-binary-unsigned-" + abi, Version: version, Fields: map[string]string{"Source": "linux"}, Comp: comp,
			Files: []archivetest.File{{Path: "usr/lib/modules/" + abi + "/vmlinuz.unsigned", Body: bzImageBytes(banner)}}},
		{Name: "linux-image-" + abi + "-dbg", Version: version, Fields: map[string]string{"Source": "linux"}, Comp: comp, Files: []archivetest.File{
			{Path: "usr/lib/debug/boot/vmlinux-" + abi, Link: "../lib/modules/" + abi + "/vmlinux"},
			{Path: "usr/lib/debug/lib/modules/" + abi + "/kernel/fs/x.ko", Body: []byte("\x7fELF\x02\x01\x01 relocatable")},
			{Path: "usr/lib/debug/lib/modules/" + abi + "/vmlinux", Body: vmlinuxBytes(banner, []byte{5, 6, 7, 8})},
		}},
	}
}

func busybox(version, p string) archivetest.Package {
	return archivetest.Package{Name: "busybox-static", Version: version, Files: []archivetest.File{{Path: p, Body: busyboxFile}}}
}

// TestPrepareFromArchive prepares guests of both packaging layouts from a
// local signed archive, with neither apt nor dpkg on PATH: bookworm (its
// -security suite has the newer kernel), sid (new layout, zstd) and
// experimental (kernel only, busybox from sid). The files are picked by
// what the packages hold, and the manifest says where each came from.
func TestPrepareFromArchive(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	m := archivetest.NewMirror(t,
		archivetest.Suite{Name: "bookworm", SuiteField: "oldstable", Packages: append(oldLayout("6.1.0-50-cloud-amd64", "6.1.176-1", "#1 SMP Debian 6.1.176-1"),
			busybox("1:1.35.0-4", "bin/busybox"))},
		archivetest.Suite{Name: "bookworm-security", Packages: oldLayout("6.1.0-57-cloud-amd64", "6.1.192-3", "#1 SMP Debian 6.1.192-3")},
		archivetest.Suite{Name: "sid", SuiteField: "unstable", Packages: append(newLayout("7.2.13+deb14-cloud-amd64", "7.2.13-1", "#1 SMP Debian 7.2.13-1", "zst"),
			busybox("1:1.38.0-3", "usr/bin/busybox"))},
		archivetest.Suite{Name: "experimental", NotAutomatic: true, Packages: newLayout("7.3-cloud-amd64", "7.3~rc7-1~exp1", "#1 SMP Debian 7.3~rc7-1~exp1", "xz")},
	)
	cache := t.TempDir()
	for _, tt := range []struct {
		guest, version, kernelFrom, vmlinuxFrom, busyboxSuite string
	}{
		{"debian-cloud", "6.1.0-57-cloud-amd64", "linux-image-6.1.0-57-cloud-amd64-unsigned 6.1.192-3:/boot/vmlinuz-6.1.0-57-cloud-amd64",
			"linux-image-6.1.0-57-cloud-amd64-dbg 6.1.192-3:/usr/lib/debug/boot/vmlinux-6.1.0-57-cloud-amd64", "bookworm"},
		{"debian-sid-cloud", "7.2.13+deb14-cloud-amd64", "linux-binary-unsigned-7.2.13+deb14-cloud-amd64 7.2.13-1:/usr/lib/modules/7.2.13+deb14-cloud-amd64/vmlinuz.unsigned",
			"linux-image-7.2.13+deb14-cloud-amd64-dbg 7.2.13-1:/usr/lib/debug/lib/modules/7.2.13+deb14-cloud-amd64/vmlinux", "sid"},
		{"debian-experimental-cloud", "7.3-cloud-amd64", "linux-binary-unsigned-7.3-cloud-amd64 7.3~rc7-1~exp1:/usr/lib/modules/7.3-cloud-amd64/vmlinuz.unsigned",
			"linux-image-7.3-cloud-amd64-dbg 7.3~rc7-1~exp1:/usr/lib/debug/lib/modules/7.3-cloud-amd64/vmlinux", "sid"},
	} {
		t.Run(tt.guest, func(t *testing.T) {
			var progress strings.Builder
			opts := PrepareOptions{CacheDir: cache, Mirror: m.URL, SecurityMirror: m.URL, Keyring: m.KeyringFile, Progress: &progress}
			spec, res, err := Prepare(t.Context(), tt.guest, opts)
			if err != nil {
				t.Fatalf("%v\n%s", err, progress.String())
			}
			if !res.Built || spec.Version != tt.version || res.Manifest.BuildID == "" {
				t.Errorf("Prepare = %+v, %+v", spec, res)
			}
			from := map[string]string{}
			for _, a := range res.Manifest.Artifacts {
				from[a.File] = a.From
			}
			if from[FileKernel] != tt.kernelFrom || from[FileSymbols] != tt.vmlinuxFrom {
				t.Errorf("kernel from %q, vmlinux from %q; want %q, %q", from[FileKernel], from[FileSymbols], tt.kernelFrom, tt.vmlinuxFrom)
			}
			for _, p := range res.Manifest.Packages {
				if p.Name == busyboxPackage && p.Suite != tt.busyboxSuite {
					t.Errorf("busybox from %s, want %s", p.Suite, tt.busyboxSuite)
				}
				if p.SHA256 == "" || p.Version == "" {
					t.Errorf("manifest package %+v lacks version or checksum", p)
				}
			}
			if err := Verify(res.Dir); err != nil {
				t.Error(err)
			}
			// Again: nothing to build, and no .deb is downloaded again.
			spec2, res2, err := Prepare(t.Context(), tt.guest, opts)
			if err != nil || res2.Built || spec2.Version != spec.Version {
				t.Errorf("second Prepare = %+v, %+v, %v", spec2, res2, err)
			}
		})
	}
	if n := m.Requests("pool/main/t/linux-image-7.3-cloud-amd64-dbg/linux-image-7.3-cloud-amd64-dbg_7.3~rc7-1~exp1_amd64.deb"); n != 1 {
		t.Errorf("the experimental -dbg was downloaded %d times, want 1", n)
	}
	// A --force rebuild takes the .debs from the cache, and the cache
	// drops .debs no prepared guest was built from.
	stray := filepath.Join(cache, "archive", "debs", "linux-image-6.1.0-1-cloud-amd64-dbg_6.1.1-1_amd64.deb")
	if err := os.WriteFile(stray, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := m.Requests("pool/main/t/linux-image-7.2.13+deb14-cloud-amd64-dbg/linux-image-7.2.13+deb14-cloud-amd64-dbg_7.2.13-1_amd64.deb")
	if _, res, err := Prepare(t.Context(), "debian-sid-cloud", PrepareOptions{CacheDir: cache, Mirror: m.URL, Keyring: m.KeyringFile, Force: true}); err != nil || !res.Built {
		t.Errorf("--force: %+v, %v", res, err)
	}
	if after := m.Requests("pool/main/t/linux-image-7.2.13+deb14-cloud-amd64-dbg/linux-image-7.2.13+deb14-cloud-amd64-dbg_7.2.13-1_amd64.deb"); after != before {
		t.Errorf("--force downloaded the cached -dbg again")
	}
	if _, err := os.Stat(stray); !os.IsNotExist(err) {
		t.Errorf("a .deb no guest uses was kept in the cache (%v)", err)
	}
	if debs, _ := filepath.Glob(filepath.Join(cache, "archive", "debs", "*-dbg_*.deb")); len(debs) != 3 {
		t.Errorf("cached -dbg packages: %v, want the three the guests use", debs)
	}
}

// TestPrepareArchiveErrors: a suite, flavour or mirror that does not
// exist, and an archive that does not verify, are refused naming why, and
// nothing is left behind.
func TestPrepareArchiveErrors(t *testing.T) {
	other := archivetest.NewKey(t, "not debian")
	m := archivetest.NewMirror(t,
		archivetest.Suite{Name: "sid", Packages: append(newLayout("7.2.13+deb14-cloud-amd64", "7.2.13-1", "#1 SMP", "xz"), busybox("1", "bin/busybox"))},
		archivetest.Suite{Name: "forged", Signer: other, Packages: newLayout("7.2.13+deb14-cloud-amd64", "7.2.13-1", "#1 SMP", "xz")},
		archivetest.Suite{Name: "nodbg", Packages: append(newLayout("7.2.13+deb14-cloud-amd64", "7.2.13-1", "#1 SMP", "xz")[:6], busybox("1", "bin/busybox"))},
		archivetest.Suite{Name: "badsha", Packages: func() []archivetest.Package {
			p := append(newLayout("7.2.13+deb14-cloud-amd64", "7.2.13-1", "#1 SMP", "xz"), busybox("1", "bin/busybox"))
			p[6].WrongSHA = true
			return p
		}()},
	)
	for _, tt := range []struct {
		guest, mirror string
		unknown       bool // wraps ErrUnknownGuest (the CLI's exit 2)
		want          []string
	}{
		{"debian-nosuch-cloud", m.URL, true, []string{"nosuch", "404"}},
		{"debian-sid-generic", m.URL, true, []string{"linux-image-amd64", "flavour generic"}},
		{"debian-sid-cloud", "http://no-such-mirror.invalid/debian", true, []string{"no such host"}},
		{"debian-forged-cloud", m.URL, false, []string{"does not verify", m.KeyringFile}},
		{"debian-nodbg-cloud", m.URL, false, []string{"no debug package"}},
		{"debian-badsha-cloud", m.URL, false, []string{"SHA256", "the archive's index says"}},
	} {
		t.Run(tt.guest, func(t *testing.T) {
			cache := t.TempDir()
			_, _, err := Prepare(context.Background(), tt.guest, PrepareOptions{CacheDir: cache, Mirror: tt.mirror, SecurityMirror: "none", Keyring: m.KeyringFile})
			if err == nil || errors.Is(err, ErrUnknownGuest) != tt.unknown {
				t.Fatalf("Prepare = %v; want an error, ErrUnknownGuest: %v", err, tt.unknown)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			left, _ := filepath.Glob(filepath.Join(cache, "guests", tt.guest, "[^.]*"))
			tmps, _ := filepath.Glob(filepath.Join(cache, "guests", tt.guest, ".tmp-*"))
			if len(left)+len(tmps) != 0 {
				t.Errorf("left %v %v", left, tmps)
			}
			if _, err := os.Stat(filepath.Join(cache, "guests", tt.guest)); tt.unknown && !os.IsNotExist(err) {
				t.Errorf("a guest that does not exist left its directory (%v)", err)
			}
			parts, _ := filepath.Glob(filepath.Join(cache, "archive", "debs", ".part-*"))
			if len(parts) != 0 {
				t.Errorf("left partial downloads %v", parts)
			}
		})
	}
	if _, err := os.Stat(m.KeyringFile); err != nil {
		t.Fatal(err)
	}
}
