package guest

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeBzImage writes a file with an x86 boot setup header whose
// kernel_version string is version.
func fakeBzImage(t *testing.T, version string) string {
	t.Helper()
	img := make([]byte, 0x1000)
	copy(img[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(img[0x206:], 0x020f)
	binary.LittleEndian.PutUint16(img[0x20e:], 0x0c00-0x200)
	copy(img[0x0c00:], version+"\x00")
	path := filepath.Join(t.TempDir(), "bzImage")
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestKernelRelease(t *testing.T) {
	tests := []struct {
		version, want string
	}{
		{"6.1.0-56-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-11-16)", "6.1.0-56-cloud-amd64"},
		{"6.9.0-rc1+ (me@box) #3 SMP", "6.9.0-rc1+"},
	}
	for _, tt := range tests {
		got, err := KernelRelease(fakeBzImage(t, tt.version))
		if err != nil || got != tt.want {
			t.Errorf("KernelRelease(%q) = %q, %v; want %q", tt.version, got, err, tt.want)
		}
	}
	notKernel := filepath.Join(t.TempDir(), "x")
	os.WriteFile(notKernel, []byte("#!/bin/sh\n"), 0o644)
	if _, err := KernelRelease(notKernel); err == nil || !strings.Contains(err.Error(), "not an x86 bzImage") {
		t.Errorf("KernelRelease(script) = %v", err)
	}
}

func TestFindBuildID(t *testing.T) {
	note := func(name string, typ uint32, desc []byte) []byte {
		b := binary.LittleEndian.AppendUint32(nil, uint32(len(name)+1))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(desc)))
		b = binary.LittleEndian.AppendUint32(b, typ)
		b = append(b, name+"\x00"...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		b = append(b, desc...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	id := []byte{0x3b, 0x43, 0xfa, 0xd5, 0x03}
	tests := []struct {
		name  string
		notes []byte
		want  string
		ok    bool
	}{
		{"build id", note("GNU", 3, id), "3b43fad503", true},
		{"after another note", append(note("Xen", 1, []byte{1, 2, 3}), note("GNU", 3, id)...), "3b43fad503", true},
		{"wrong owner", note("Go", 3, id), "", false},
		{"other type", note("GNU", 1, id), "", false},
		{"truncated", note("GNU", 3, id)[:14], "", false},
	}
	for _, tt := range tests {
		got, ok := findBuildID(tt.notes, binary.LittleEndian)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%s: findBuildID = %q, %v; want %q, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

// TestPreparedKernelFiles checks KernelRelease, BuildID and CheckSymbols on
// the prepared debian-cloud guest, if there is one.
func TestPreparedKernelFiles(t *testing.T) {
	spec, err := Find(defaultGuest, "")
	if err != nil {
		t.Skipf("needs the prepared guest: %v", err)
	}
	if rel, err := KernelRelease(spec.Kernel); err != nil || rel != spec.Version {
		t.Errorf("KernelRelease = %q, %v; want %q", rel, err, spec.Version)
	}
	m, err := readManifest(filepath.Dir(spec.Symbols))
	if err != nil {
		t.Fatal(err)
	}
	if id, err := BuildID(spec.Symbols); err != nil || id != m.BuildID || len(id) != 40 {
		t.Errorf("BuildID = %q, %v; manifest has %q", id, err, m.BuildID)
	}
	if err := CheckSymbols(spec.Kernel, spec.Symbols); err != nil {
		t.Error(err)
	}
	busybox := filepath.Join(filepath.Dir(spec.Symbols), FileBusybox)
	if err := CheckSymbols(spec.Kernel, busybox); err == nil {
		t.Error("CheckSymbols accepted busybox as the kernel's symbols")
	}
	other := fakeBzImage(t, spec.Version+" (someone@else) #2 SMP Tue Jan 1 00:00:00 UTC 2030")
	if err := CheckSymbols(other, spec.Symbols); err == nil || !strings.Contains(err.Error(), "do not match") {
		t.Errorf("CheckSymbols of another build = %v", err)
	}
}
