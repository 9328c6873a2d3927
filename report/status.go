package report

import (
	"regexp"
	"strings"
)

// Status is what a spec's result says about the kernel.
type Status string

// The four statuses; see the package documentation.
const (
	// Passed: the kernel behaved as specified.
	Passed Status = "passed"
	// Failed: the kernel did not behave as specified.
	Failed Status = "failed"
	// Error: the harness broke; nothing is known about the kernel.
	Error Status = "error"
	// Skipped: the spec did not run, by its own or the run's choice.
	Skipped Status = "skipped"
)

// StateNotRun is the State of a spec the suite was expected to run but never
// reached (a failed BeforeSuite, a crashed suite binary, an interrupt).
const StateNotRun = "not run"

// Definitive reports whether s says something about the kernel (passed or
// failed), as opposed to error and skipped.
func (s Status) Definitive() bool { return s == Passed || s == Failed }

var (
	// Gomega prints the dynamic type of an unexpected error, e.g.
	// "<*harness.HarnessError | 0xc000123>"; the messages themselves start
	// with these prefixes (harness/errors.go).
	kernelErrRE  = regexp.MustCompile(`<\*harness\.(KernelError|NotHitError) \||(?m)^\s*kernel failure \(`)
	harnessErrRE = regexp.MustCompile(`<\*harness\.HarnessError \||(?m)(^|: )harness error: |prerequisite missing`)
)

// Classify decides a JUnit test case's status and a one-line reason.
//
// The rules, first match wins:
//  1. Ginkgo's passed → Passed; skipped or pending → Skipped.
//  2. panicked, timedout, interrupted, aborted → Error: Go code panicked or a
//     deadline ran out, which blames no kernel. (A kernel that hangs shows up
//     as a breakpoint that is not hit, which the harness reports itself.)
//  3. failed with a harness.KernelError or harness.NotHitError (by type or
//     message) → Failed, wherever it happened: a kernel that panics while
//     booting fails BeforeSuite.
//  4. failed with a harness.HarnessError or a missing prerequisite → Error.
//  5. failed in a suite-level node (BeforeSuite, AfterSuite, suite
//     DeferCleanup, ReportAfterSuite) → Error: the set-up broke.
//  6. any other failure in a spec → Failed: an assertion about the kernel.
func Classify(c Case) (Status, string) {
	switch c.State {
	case "passed":
		return Passed, ""
	case "skipped", "pending":
		return Skipped, skipReason(c)
	case "panicked":
		return Error, "panicked: " + firstLine(c.Message)
	case "timedout":
		// Ginkgo records what the spec was waiting for when the deadline
		// ended it, if the spec reported it: that says more.
		const then = "and then the following failure was recorded in the timedout node before it exited:"
		if _, after, ok := strings.Cut(c.Description, then); ok {
			return Error, "timed out: " + reason(after)
		}
		return Error, "timed out: " + firstLine(c.Message)
	case "interrupted", "aborted":
		return Error, c.State + ": " + firstLine(c.Message)
	case StateNotRun:
		return Error, c.Message // Results gives it the status of the failed set-up
	}
	text := c.Message + "\n" + c.Description
	switch {
	case kernelErrRE.MatchString(text):
		return Failed, reason(c.Message)
	case harnessErrRE.MatchString(text):
		return Error, reason(c.Message)
	case c.Node != "" && c.Node != "It":
		return Error, reason(c.Message)
	}
	return Failed, reason(c.Message)
}

func skipReason(c Case) string {
	if c.State == "pending" {
		return "pending"
	}
	r := strings.TrimPrefix(c.Message, "skipped")
	return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(r), "-"))
}

// reason makes a failure message into one readable line: the error's own
// text rather than Gomega's "Unexpected error: <*T | 0x…>:" wrapping, and
// the "Expected … to equal …" of a mismatch folded onto one line.
func reason(msg string) string {
	lines := strings.Split(strings.ReplaceAll(msg, "\r", ""), "\n")
	var out []string
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		switch {
		case l == "", l == "occurred", l == "Unexpected error:":
			continue
		case strings.HasPrefix(l, "<") && strings.HasSuffix(l, ">:"): // <*T | 0x…>:
			continue
		case l == "{": // Gomega's %#v dump of the error value follows: stop.
			i = len(lines)
			continue
		case strings.HasPrefix(l, "--- last console lines ---"):
			i = len(lines)
			continue
		}
		out = append(out, l)
	}
	r := strings.Join(out, " ")
	const max = 240
	if len(r) > max {
		r = r[:max] + "…"
	}
	return r
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
