package supervisor

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestFirmwareFromDataDirs boots the QEMU under test ($KSPEC_QEMU, e.g. one
// unpacked by scripts/qemu-extra) and checks that it runs the firmware of
// its own data directories: the BIOS ROM in guest memory is the
// bios-256k.bin that -L names, not the system QEMU's. It also checks that
// QEMUVersion(binary) agrees with QMP.
func TestFirmwareFromDataDirs(t *testing.T) {
	m := start(t, Config{FirmwareOnly: true})
	bin := m.Args()[0]
	v, err := QEMUVersion(t.Context(), bin)
	if err != nil {
		t.Fatal(err)
	}
	qv, err := ParseVersion(m.QMP().Version())
	if err != nil || qv.Major != v.Major || qv.Minor != v.Minor || qv.Micro != v.Micro {
		t.Errorf("QMP says %s (%v), %s --version says %s", m.QMP().Version(), err, bin, v)
	}
	t.Logf("QEMU %s (%s)", v, bin)
	dirs := DataDirs(bin)
	for _, d := range dirs {
		if !hasSeq(m.Args(), "-L", d) {
			t.Errorf("command line %q lacks -L %s", m.Args(), d)
		}
	}
	want := "/usr/share/seabios/bios-256k.bin" // the system QEMU's
	for _, d := range dirs {
		if f := filepath.Join(d, "bios-256k.bin"); fileExists(f) {
			want = f
			break
		}
	}
	rom, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	dump := filepath.Join(t.TempDir(), "rom")
	// The 256 KiB BIOS is mapped just below 4 GiB.
	if out, err := m.QMP().HumanMonitorCommand(t.Context(), "pmemsave 0xfffc0000 0x40000 \""+dump+"\""); err != nil || out != "" {
		t.Fatalf("pmemsave: %q, %v", out, err)
	}
	got, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, rom) {
		t.Errorf("the BIOS in guest memory is not %s (data dirs %q)", want, dirs)
	}
	if slices.Contains(m.Args(), "-L") != (len(dirs) > 0) {
		t.Errorf("-L on the command line %q, data dirs %q", m.Args(), dirs)
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
