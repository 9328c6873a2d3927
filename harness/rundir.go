package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kspec/kspec/supervisor"
	"golang.org/x/sys/unix"
)

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
	if long := supervisor.PathsIn(filepath.Join(base, "kspec-run-0000000000")).LongSockets(); len(long) > 0 {
		return fmt.Errorf("%w: TMPDIR %s is too long for the unix sockets kspec makes under it (%s; the limit is %d bytes); %s",
			ErrBadInput, base, strings.Join(long, ", "), supervisor.MaxSocketPath, fix)
	}
	return nil
}
