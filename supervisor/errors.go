package supervisor

import (
	"errors"
	"fmt"
	"strings"
)

// ErrQEMUExited is wrapped by *ExitError: QEMU exited without being asked to.
var ErrQEMUExited = errors.New("supervisor: qemu exited")

// ErrQEMUNotFound is wrapped by the error of Start (and ProbeKVM's verdict)
// when the QEMU system emulator or qemu-img is missing.
var ErrQEMUNotFound = errors.New("supervisor: qemu not found")

// ExitError describes a QEMU process that exited on its own: during Start
// (bad arguments, missing files, KVM unavailable) or later (guest shutdown
// with -no-reboot, a crash).
type ExitError struct {
	// Code is the exit status, or -1 when a signal killed QEMU.
	Code int
	// Signal names the signal that killed QEMU ("" if it exited).
	Signal string
	// Args is the full command line, binary first.
	Args []string
	// StderrTail is the end of QEMU's stderr.
	StderrTail string
	// DuringStart is true when QEMU exited before QMP answered.
	DuringStart bool
}

// Error implements error.
func (e *ExitError) Error() string {
	var b strings.Builder
	b.WriteString("supervisor: qemu ")
	if e.Signal != "" {
		fmt.Fprintf(&b, "killed by %s", e.Signal)
	} else {
		fmt.Fprintf(&b, "exited with status %d", e.Code)
	}
	if e.DuringStart {
		b.WriteString(" during start")
	}
	if t := strings.TrimSpace(e.StderrTail); t != "" {
		fmt.Fprintf(&b, ": %s", t)
	}
	fmt.Fprintf(&b, " (command: %s)", shellQuote(e.Args))
	return b.String()
}

// Unwrap returns ErrQEMUExited.
func (e *ExitError) Unwrap() error { return ErrQEMUExited }

// shellQuote renders args as a command a person can paste into a shell.
func shellQuote(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && !strings.ContainsAny(a, " \t\n'\"\\$`;&|<>()*?[]{}!#~") {
			out[i] = a
			continue
		}
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}

// notFound builds the error for a missing binary.
func notFound(name, pkg string, err error) error {
	return fmt.Errorf("%w: %s (install it: apt-get install %s): %w", ErrQEMUNotFound, name, pkg, err)
}
