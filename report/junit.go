package report

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// JUnit is one JUnit XML report, as Ginkgo writes it (one testsuite per
// suite run).
type JUnit struct {
	// Suite is the suite description ("Linux kernel specs").
	Suite string
	// Properties are the suite's properties (SuiteSucceeded,
	// SpecialSuiteFailureReason, RandomSeed, LabelFilter, ...).
	Properties map[string]string
	// Seconds is the suite's run time.
	Seconds float64
	// Cases are the test cases in the order of the report.
	Cases []Case
}

// Case is one JUnit test case: a spec or a suite-level node.
type Case struct {
	// Node is the Ginkgo node type without brackets: "It" for specs,
	// "BeforeSuite", "DeferCleanup (Suite)", "ReportAfterSuite", ...
	Node string
	// ID is the spec's full text (container texts and its own, joined by
	// spaces) without labels; for suite-level nodes, "[Node]" plus any text.
	ID string
	// Labels are the spec's labels.
	Labels []string
	// Suite is the suite description (the JUnit classname).
	Suite string
	// State is Ginkgo's spec state: passed, failed, panicked, timedout,
	// interrupted, aborted, skipped, pending (or StateNotRun).
	State string
	// Message is the failure or skip message; Description the failure's
	// full text with its location.
	Message, Description string
	// SystemOut is the spec's captured stdout; SystemErr its timeline:
	// GinkgoWriter output, report entries and failures in order.
	SystemOut, SystemErr string
	// Entries are the spec's report entries (e.g. console transcripts).
	Entries []Entry
	// Seconds is the spec's run time.
	Seconds float64
}

// Entry is a Ginkgo report entry of a spec.
type Entry struct {
	// Name is the entry's name, Value its value as text.
	Name, Value string
}

// IsSpec reports whether c is a spec (an It) rather than a suite-level node.
func (c Case) IsSpec() bool { return c.Node == "It" }

type xmlSuites struct {
	XMLName xml.Name   `xml:"testsuites"`
	Suites  []xmlSuite `xml:"testsuite"`
}

type xmlSuite struct {
	Name       string        `xml:"name,attr"`
	Time       string        `xml:"time,attr"`
	Properties []xmlProperty `xml:"properties>property"`
	Cases      []xmlCase     `xml:"testcase"`
}

type xmlProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type xmlCase struct {
	Name       string        `xml:"name,attr"`
	Classname  string        `xml:"classname,attr"`
	Status     string        `xml:"status,attr"`
	Time       string        `xml:"time,attr"`
	Skipped    *xmlMessage   `xml:"skipped"`
	Error      *xmlMessage   `xml:"error"`
	Failure    *xmlMessage   `xml:"failure"`
	SystemOut  string        `xml:"system-out"`
	SystemErr  string        `xml:"system-err"`
	Properties []xmlProperty `xml:"properties>property"`
}

type xmlMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",chardata"`
}

// ReadJUnit parses the JUnit XML file at path.
func ReadJUnit(path string) (*JUnit, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	j, err := ParseJUnit(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return j, nil
}

// ParseJUnit parses a JUnit XML report with a <testsuites> or a single
// <testsuite> root. Several testsuites (a merged report) become one JUnit
// whose Suite is the first suite's name.
func ParseJUnit(r io.Reader) (*JUnit, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var suites xmlSuites
	if err := xml.Unmarshal(data, &suites); err != nil {
		var one xmlSuite
		if err2 := xml.Unmarshal(data, &one); err2 != nil {
			return nil, fmt.Errorf("not JUnit XML: %w", err)
		}
		suites.Suites = []xmlSuite{one}
	}
	j := &JUnit{Properties: map[string]string{}}
	for i, s := range suites.Suites {
		if i == 0 {
			j.Suite = s.Name
		}
		j.Seconds += parseSeconds(s.Time)
		for _, p := range s.Properties {
			j.Properties[p.Name] = p.Value
		}
		for _, xc := range s.Cases {
			j.Cases = append(j.Cases, caseFromXML(xc))
		}
	}
	return j, nil
}

func caseFromXML(xc xmlCase) Case {
	node, id, labels := SplitName(xc.Name)
	c := Case{
		Node: node, ID: id, Labels: labels, Suite: xc.Classname,
		State: xc.Status, SystemOut: xc.SystemOut, SystemErr: xc.SystemErr,
		Seconds: parseSeconds(xc.Time),
	}
	switch {
	case xc.Failure != nil:
		c.Message, c.Description = xc.Failure.Message, xc.Failure.Body
		if c.State == "" {
			c.State = valueOr(xc.Failure.Type, "failed")
		}
	case xc.Error != nil:
		c.Message, c.Description = xc.Error.Message, xc.Error.Body
		if c.State == "" {
			c.State = valueOr(xc.Error.Type, "panicked")
		}
	case xc.Skipped != nil:
		c.Message = xc.Skipped.Message
		if c.State == "" {
			c.State = "skipped"
		}
	}
	if c.State == "" {
		c.State = "passed"
	}
	for _, p := range xc.Properties {
		c.Entries = append(c.Entries, Entry{Name: p.Name, Value: entryText(p.Value)})
	}
	return c
}

// entryText turns a report entry's JSON-encoded value into text; a JSON
// string becomes its contents (so transcripts keep their line breaks).
func entryText(v string) string {
	var s string
	if json.Unmarshal([]byte(v), &s) == nil {
		return s
	}
	return v
}

var (
	nodeRE   = regexp.MustCompile(`^\[([A-Za-z][^\]]*)\]\s*`)
	labelsRE = regexp.MustCompile(` \[([^\[\]]*)\]$`)
)

// SplitName splits a Ginkgo JUnit test case name, "[It] container text spec
// text [label1, label2]", into the node type ("It"), the spec ID (the full
// text) and the labels. JUnit has no separate label field, so a spec text
// that itself ends in "[...]" loses that part to the labels; the ID stays
// stable from run to run, and FocusRegex still matches the spec.
func SplitName(name string) (node, id string, labels []string) {
	name = strings.TrimSpace(name)
	if m := nodeRE.FindStringSubmatch(name); m != nil {
		node = m[1]
		name = name[len(m[0]):]
	}
	if node != "It" {
		if name == "" {
			return node, "[" + node + "]", nil
		}
		return node, "[" + node + "] " + name, nil
	}
	if m := labelsRE.FindStringSubmatchIndex(name); m != nil && validLabels(name[m[2]:m[3]]) {
		for _, l := range strings.Split(name[m[2]:m[3]], ", ") {
			labels = append(labels, l)
		}
		name = name[:m[0]]
	}
	return node, name, labels
}

// validLabels reports whether s can be a Ginkgo label list: Ginkgo rejects
// labels containing any of &|!,()/ and empty labels.
func validLabels(s string) bool {
	if s == "" {
		return false
	}
	for _, l := range strings.Split(s, ", ") {
		if l == "" || strings.ContainsAny(l, "&|!,()/") {
			return false
		}
	}
	return true
}

func parseSeconds(s string) float64 {
	f, _ := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return f
}

func valueOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// MergeJUnit concatenates JUnit XML files into one report with a
// <testsuites> root: the testsuites of all inputs, totals summed. It is
// how shard results become one JUnit file per guest.
func MergeJUnit(w io.Writer, paths ...string) error {
	type rawSuites struct {
		XMLName  xml.Name `xml:"testsuites"`
		Tests    int      `xml:"tests,attr"`
		Disabled int      `xml:"disabled,attr"`
		Errors   int      `xml:"errors,attr"`
		Failures int      `xml:"failures,attr"`
		Time     float64  `xml:"time,attr"`
		Suites   []struct {
			Inner []byte     `xml:",innerxml"`
			Attrs []xml.Attr `xml:",any,attr"`
		} `xml:"testsuite"`
	}
	var out rawSuites
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var in rawSuites
		if err := xml.Unmarshal(data, &in); err != nil {
			return fmt.Errorf("%s: not JUnit XML with a <testsuites> root: %w", p, err)
		}
		out.Tests += in.Tests
		out.Disabled += in.Disabled
		out.Errors += in.Errors
		out.Failures += in.Failures
		out.Time += in.Time
		out.Suites = append(out.Suites, in.Suites...)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	fmt.Fprintf(w, "<testsuites tests=\"%d\" disabled=\"%d\" errors=\"%d\" failures=\"%d\" time=\"%g\">\n",
		out.Tests, out.Disabled, out.Errors, out.Failures, out.Time)
	for _, s := range out.Suites {
		fmt.Fprint(w, "  <testsuite")
		for _, a := range s.Attrs {
			fmt.Fprintf(w, " %s=\"", a.Name.Local)
			if err := xml.EscapeText(w, []byte(a.Value)); err != nil {
				return err
			}
			fmt.Fprint(w, "\"")
		}
		fmt.Fprint(w, ">")
		if _, err := w.Write(s.Inner); err != nil {
			return err
		}
		fmt.Fprint(w, "</testsuite>\n")
	}
	_, err := fmt.Fprint(w, "</testsuites>\n")
	return err
}

// Expected lists the specs of a dry run's report (-ginkgo.dry-run
// -ginkgo.junit-report): what a real run of the same suite binary with the
// same filters is expected to report. In a dry run nothing executes, so a
// skipped spec is one a filter excluded: those are left out. Pending specs
// are kept (reported as skipped).
func Expected(dry *JUnit) []Case {
	var out []Case
	for _, c := range dry.Cases {
		if c.IsSpec() && c.State != "skipped" {
			out = append(out, c)
		}
	}
	return out
}

// IDs returns the IDs of cases.
func IDs(cases []Case) []string {
	ids := make([]string, len(cases))
	for i, c := range cases {
		ids[i] = c.ID
	}
	return ids
}
