package report

import (
	"regexp"
	"strconv"
	"strings"
)

// Progress follows a Ginkgo suite's verbose output (-ginkgo.v
// -ginkgo.no-color) line by line and says how far the suite is. It is for
// showing progress only: results come from the JUnit report.
type Progress struct {
	// Total is the number of specs the suite will run (0 until known).
	Total int
	// Done counts specs that finished (skipped ones included), Failed those
	// of them that failed, panicked, timed out, ...
	Done, Failed int

	header     bool   // the next line is a spec's header
	lastHeader string // the current spec's text
}

// Event is something Progress saw.
type Event struct {
	// Kind is "start" (the total is known), "spec" (a spec finished),
	// "setup" (a suite node such as BeforeSuite finished).
	Kind string
	// Text is the spec's or node's text; Result its outcome as Ginkgo
	// printed it ("passed", "skipped", "FAILED", "PANICKED", "TIMEDOUT", ...).
	Text, Result string
	// Seconds is how long it took, if Ginkgo said.
	Seconds float64
}

var (
	willRunRE = regexp.MustCompile(`^Will run (\d+) of (\d+) specs?`)
	specEndRE = regexp.MustCompile(`^(?:• (?:\[([A-Z!]+)\] )?|S \[(SKIPPED)\] )\[([0-9.]+) seconds\]`)
	nodeEndRE = regexp.MustCompile(`^\[([A-Za-z ()]+)\] (PASSED|\[[A-Z!]+\]) \[([0-9.]+) seconds\]`)
)

// separator is the line Ginkgo prints between specs in verbose mode.
const separator = "------------------------------"

// Line consumes one line of output and returns what happened, if anything.
func (p *Progress) Line(line string) (Event, bool) {
	line = strings.TrimRight(line, "\r")
	if line == separator {
		p.header = true
		return Event{}, false
	}
	if p.header {
		p.header = false
		p.lastHeader = labelsRE.ReplaceAllString(line, "")
		return Event{}, false
	}
	if m := willRunRE.FindStringSubmatch(line); m != nil {
		p.Total, _ = strconv.Atoi(m[1])
		return Event{Kind: "start"}, true
	}
	if m := specEndRE.FindStringSubmatch(line); m != nil {
		p.Done++
		result := "passed"
		switch {
		case m[2] != "":
			result = "skipped"
		case m[1] != "":
			result = strings.TrimSuffix(m[1], "!")
			p.Failed++
		}
		secs, _ := strconv.ParseFloat(m[3], 64)
		return Event{Kind: "spec", Text: p.lastHeader, Result: result, Seconds: secs}, true
	}
	if m := nodeEndRE.FindStringSubmatch(line); m != nil {
		result := strings.Trim(m[2], "[]")
		if result == "PASSED" {
			result = "passed"
		}
		secs, _ := strconv.ParseFloat(m[3], 64)
		return Event{Kind: "setup", Text: "[" + m[1] + "]", Result: result, Seconds: secs}, true
	}
	return Event{}, false
}
