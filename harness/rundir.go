package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kspec/kspec/supervisor"
	"golang.org/x/sys/unix"
)

// maxSocketPath is the longest unix socket path Linux accepts (sun_path is
// 108 bytes with its NUL).
const maxSocketPath = 107

// CheckRunDirBase checks the one place a user chooses where kspec's
// sockets live: each QEMU gets a fresh private run directory under
// os.TempDir() ($TMPDIR, default /tmp) holding its QMP and gdbstub unix
// sockets, so $TMPDIR must be an existing, writable directory whose path
// is short enough for a socket path inside it. The error wraps
// ErrBadInput, names $TMPDIR and the problem, and says what to set.
func CheckRunDirBase() error {
	base := os.TempDir()
	fix := "set TMPDIR to a short existing directory you can write, e.g. TMPDIR=/tmp"
	fi, err := os.Stat(base)
	switch {
	case err != nil:
		return fmt.Errorf("%w: TMPDIR %s, where kspec makes its run directory (QEMU's sockets and logs): %w; %s", ErrBadInput, base, err, fix)
	case !fi.IsDir():
		return fmt.Errorf("%w: TMPDIR %s, where kspec makes its run directory, is not a directory; %s", ErrBadInput, base, fix)
	}
	if err := unix.Access(base, unix.W_OK|unix.X_OK); err != nil {
		return fmt.Errorf("%w: TMPDIR %s, where kspec makes its run directory, is not writable: %w; %s", ErrBadInput, base, err, fix)
	}
	p := supervisor.PathsIn(filepath.Join(base, "kspec-run-0000000000"))
	var long []string
	for _, s := range []string{p.QMPSocket, p.GDBSocket} {
		if len(s) > maxSocketPath {
			long = append(long, fmt.Sprintf("%s is %d bytes", s, len(s)))
		}
	}
	if len(long) > 0 {
		return fmt.Errorf("%w: TMPDIR %s is too long for the unix sockets kspec makes under it (%s; the limit is %d bytes); %s",
			ErrBadInput, base, strings.Join(long, ", "), maxSocketPath, fix)
	}
	return nil
}
