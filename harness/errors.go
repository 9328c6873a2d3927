package harness

import (
	"errors"
	"fmt"
	"strings"
)

// ErrMissing marks a prerequisite that is not on this machine (QEMU, the
// prepared guest, a symbol file). Its message always says how to fix it.
var ErrMissing = errors.New("prerequisite missing")

// ErrNotHit is returned by Breakpoint.Wait when the breakpoint was not hit
// before the deadline. The guest is interrupted and left stopped so that the
// caller can inspect it; the error carries a diagnosis.
var ErrNotHit = errors.New("breakpoint not hit")

// ErrBadInput marks a user error (unknown symbol, malformed expression, a
// missing file named on the command line). The CLI exits 2 for these.
var ErrBadInput = errors.New("bad input")

// KernelError is a failure of the guest kernel: a panic, an oops, or a spec
// whose kernel-side expectation did not hold. It is never used for faults of
// the harness itself, so a report can tell "the kernel misbehaved" apart from
// "the harness broke".
type KernelError struct {
	// Kind is "panic", "oops" or "mismatch".
	Kind string
	// Detail is the kernel's own text (the panic message) or the mismatch.
	Detail string
	// ConsoleTail is the end of the serial console when the failure was seen.
	ConsoleTail string
}

func (e *KernelError) Error() string {
	detail := e.Detail
	if e.Kind == "panic" && !strings.Contains(strings.ToLower(detail), "kernel panic") {
		detail = "kernel panic: " + detail // what a person greps for
	}
	return fmt.Sprintf("kernel failure (%s): %s%s", e.Kind, detail, tailSuffix(e.ConsoleTail))
}

// HarnessError is a failure of kspec or its environment: QEMU died or could
// not start, the gdbstub or QMP connection was lost, a wait timed out, the
// guest could not be logged into. Op names what kspec was doing.
type HarnessError struct {
	Op  string
	Err error
	// Diagnosis says where the guest was when a wait on it timed out
	// (each vCPU's function, file:line and pc), when kspec could look.
	Diagnosis   string
	ConsoleTail string
}

func (e *HarnessError) Error() string {
	if e.Diagnosis != "" {
		return fmt.Sprintf("harness error: %s: %s; %v%s", e.Op, e.Diagnosis, e.Err, tailSuffix(e.ConsoleTail))
	}
	return fmt.Sprintf("harness error: %s: %v%s", e.Op, e.Err, tailSuffix(e.ConsoleTail))
}

// Unwrap returns the underlying cause.
func (e *HarnessError) Unwrap() error { return e.Err }

// IsKernelFailure reports whether err is (or wraps) a KernelError.
func IsKernelFailure(err error) bool {
	var k *KernelError
	return errors.As(err, &k)
}

func tailSuffix(tail string) string {
	tail = strings.TrimRight(tail, "\r\n ")
	if tail == "" {
		return ""
	}
	lines := strings.Split(strings.ReplaceAll(tail, "\r", ""), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return "\n--- last console lines ---\n" + strings.Join(lines, "\n")
}
