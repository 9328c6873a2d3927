package supervisor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/kspec/kspec/arch"
)

// DataDirs returns the firmware and data directories of a QEMU that is not
// installed system-wide (unpacked from Debian packages by scripts/qemu-extra,
// or built and installed under a prefix): <prefix>/share/qemu and
// <prefix>/share/seabios, where <prefix> is the parent of the binary's
// directory, each if it exists, SeaBIOS first (QEMU searches -L directories
// in order, and an unpacked qemu-system-data links bios-256k.bin into
// share/qemu only through the seabios package's files). It returns nil for
// a binary given by name (looked up on $PATH: the system QEMU, which finds
// its own data) and for a binary under /usr or /usr/local, whose compiled-in
// data directory is the right one.
func DataDirs(qemu string) []string {
	if !strings.ContainsRune(qemu, filepath.Separator) {
		return nil
	}
	bin, err := filepath.EvalSymlinks(qemu)
	if err != nil {
		return nil
	}
	bin, err = filepath.Abs(bin)
	if err != nil {
		return nil
	}
	prefix := filepath.Dir(filepath.Dir(bin))
	if prefix == "/usr" || prefix == "/usr/local" || prefix == "/" {
		return nil
	}
	var dirs []string
	for _, d := range []string{"seabios", "qemu"} {
		dir := filepath.Join(prefix, "share", d)
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			dirs = append(dirs, dir)
		}
	}
	return dirs
}

// Version is a QEMU version as `qemu-system-* --version` or QMP's
// query-version reports it.
type Version struct {
	Major, Minor, Micro int
	// Package is the distribution's package version, e.g.
	// "Debian 1:10.0.2+ds-2+deb13u1~bpo12+1" ("" if none).
	Package string
}

// String returns "MAJOR.MINOR.MICRO", with the package in parentheses when known.
func (v Version) String() string {
	s := fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Micro)
	if v.Package != "" {
		s += " (" + v.Package + ")"
	}
	return s
}

// AtLeast reports whether v is major.minor or later.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || v.Major == major && v.Minor >= minor
}

var versionLine = regexp.MustCompile(`(?:^|version )(\d+)\.(\d+)(?:\.(\d+))?(?:[^ (\n]*)?(?: \(([^)\n]*)\))?`)

// ParseVersion parses the first line of `qemu-system-* --version`,
// e.g. "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)",
// or a bare version such as QMP's "10.0.2".
func ParseVersion(out string) (Version, error) {
	m := versionLine.FindStringSubmatch(out)
	if m == nil {
		first, _, _ := strings.Cut(out, "\n")
		return Version{}, fmt.Errorf("supervisor: no QEMU version in %q", first)
	}
	v := Version{Package: m[4]}
	v.Major, _ = strconv.Atoi(m[1])
	v.Minor, _ = strconv.Atoi(m[2])
	if m[3] != "" {
		v.Micro, _ = strconv.Atoi(m[3])
	}
	return v, nil
}

// QEMUVersion runs `qemu --version` and parses it. qemu is a name on $PATH
// or a path ("" means the default architecture's, arch.Default). For the nightly report and
// `kspec boot`; a running Machine's version is Machine.QMP().Version().
func QEMUVersion(ctx context.Context, qemu string) (Version, error) {
	if qemu == "" {
		qemu = arch.Default().QEMU()
	}
	out, err := exec.CommandContext(ctx, qemu, "--version").Output()
	if err != nil {
		return Version{}, fmt.Errorf("supervisor: %s --version: %w", qemu, err)
	}
	v, err := ParseVersion(string(out))
	if err != nil {
		return Version{}, fmt.Errorf("%s --version: %w", qemu, err)
	}
	return v, nil
}
