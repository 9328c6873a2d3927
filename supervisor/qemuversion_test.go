package supervisor

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Version
		err  bool
	}{
		{"QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright (c) 2003-2022 Fabrice Bellard\n",
			Version{7, 2, 22, "Debian 1:7.2+dfsg-7+deb12u18+b3"}, false},
		{"QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\n", Version{10, 0, 2, "Debian 1:10.0.2+ds-2+deb13u1~bpo12+1"}, false},
		{"QEMU emulator version 10.1.50 (v10.1.0-1234-gabcdef)\n", Version{10, 1, 50, "v10.1.0-1234-gabcdef"}, false},
		{"QEMU emulator version 9.2.0\n", Version{9, 2, 0, ""}, false},
		{"QEMU emulator version 11.1\n", Version{11, 1, 0, ""}, false},
		{"10.0.2", Version{10, 0, 2, ""}, false},
		{"qemu-system-x86_64: unknown option\n", Version{}, true},
		{"", Version{}, true},
	} {
		got, err := ParseVersion(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseVersion(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestVersionAtLeast(t *testing.T) {
	v := Version{Major: 8, Minor: 1}
	for _, tc := range []struct {
		major, minor int
		want         bool
	}{{7, 2, true}, {8, 0, true}, {8, 1, true}, {8, 2, false}, {10, 0, false}} {
		if got := v.AtLeast(tc.major, tc.minor); got != tc.want {
			t.Errorf("8.1.AtLeast(%d, %d) = %v", tc.major, tc.minor, got)
		}
	}
	if s := (Version{10, 0, 2, "Debian x"}).String(); s != "10.0.2 (Debian x)" {
		t.Errorf("String() = %q", s)
	}
}

// TestDataDirs lays out what scripts/qemu-extra unpacks (usr/bin,
// usr/share/qemu, usr/share/seabios) and a prefix without seabios.
func TestDataDirs(t *testing.T) {
	root := t.TempDir()
	mk := func(p string) string {
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	unpacked := mk("10.0.2/usr/bin/qemu-system-x86_64")
	for _, d := range []string{"10.0.2/usr/share/qemu/x", "10.0.2/usr/share/seabios/x", "build/share/qemu/x"} {
		mk(d)
		if err := os.Mkdir(filepath.Dir(filepath.Join(root, d)), 0o755); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(unpacked, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	built := mk("build/bin/qemu-system-x86_64")
	if err := os.WriteFile(built, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(root, "qemu10")
	if err := os.Symlink(unpacked, link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		qemu string
		want []string
	}{
		{unpacked, []string{filepath.Join(root, "10.0.2/usr/share/seabios"), filepath.Join(root, "10.0.2/usr/share/qemu")}},
		{link, []string{filepath.Join(root, "10.0.2/usr/share/seabios"), filepath.Join(root, "10.0.2/usr/share/qemu")}},
		{built, []string{filepath.Join(root, "build/share/qemu")}},
		{"qemu-system-x86_64", nil},
		{"/usr/bin/qemu-system-x86_64", nil},
		{filepath.Join(root, "missing/bin/qemu"), nil},
	} {
		if got := DataDirs(tc.qemu); !slices.Equal(got, tc.want) {
			t.Errorf("DataDirs(%s) = %q, want %q", tc.qemu, got, tc.want)
		}
	}
}
