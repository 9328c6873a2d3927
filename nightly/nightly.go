// Package nightly runs a compiled kspec suite on a matrix of guests and
// records what changed: it prepares each guest's newest kernel, builds the
// suite binary (or takes one), lists its specs, runs it on the guests in
// parallel, re-runs failed specs once to tell flaky from failing, follows
// the suites' progress and writes the run's summary, text and HTML report
// into a results directory beside the earlier runs.
//
// `kspec nightly` is a thin front end:
//
//	guests, err := nightly.ParseGuests("debian-cloud,./my-guest.json")
//	res, err := nightly.Run(ctx, nightly.Options{ResultsDir: dir, Guests: guests, Progress: os.Stderr, Report: os.Stdout})
//
// Run's error tells the outcome: nil (all known, nothing regressed),
// ErrRegressed, ErrIncomplete (harness errors), ErrInterrupted, a bad
// option (errors.Is(err, harness.ErrBadInput)) or a failure to run at all.
package nightly

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kspec/kspec/guest"
	"github.com/kspec/kspec/harness"
	"github.com/kspec/kspec/report"
	"github.com/kspec/kspec/supervisor"
)

// DefaultGuests is the matrix a plain `kspec nightly` covers: the
// newest cloud kernel of each Debian line, oldest first (6.1, 6.12, the
// newest release, the next release candidate), so that a spec failing only
// on the newer lines stands out in the report's matrix.
var DefaultGuests = []string{"debian-bookworm-cloud", "debian-trixie-cloud", "debian-sid-cloud", "debian-experimental-cloud"}

// SuitePackage is the suite compiled from a kspec source tree when no
// suite binary is given.
const SuitePackage = "./suites/linux"

// DefaultTimeout limits one suite run on one guest.
const DefaultTimeout = 30 * time.Minute

// Options describe one nightly run.
type Options struct {
	// ResultsDir holds the runs; each run goes into a new <ResultsDir>/<UTC time>/
	// (see ResultsDir for the default).
	ResultsDir string
	// Guests are prepared guest names or guest config file paths (see
	// ParseGuests); each runs the whole suite.
	Guests []string
	// Shard runs only this deterministic subset of the specs.
	Shard report.Shard
	// Procs is how many guests run at once (default: the number of CPUs, at
	// most the number of guests).
	Procs int
	// Timeout limits one suite run on one guest (default DefaultTimeout).
	Timeout time.Duration
	// SuiteBinary is the compiled suite to run; "" compiles SuitePackage of
	// Source.
	SuiteBinary string
	// Source is the kspec source tree to compile the suite from ("": the
	// one containing the current directory).
	Source string
	// LabelFilter is a Ginkgo label filter: only the specs it selects run.
	LabelFilter string
	// Cache is the guest cache directory ("": $KSPEC_CACHE or ~/.cache/kspec).
	Cache string
	// NoPrepare uses the prepared guests as they are, without looking for
	// newer kernels.
	NoPrepare bool
	// NoRetry does not re-run failed specs (no flaky detection).
	NoRetry bool
	// Progress receives timestamped progress lines (nil: discarded).
	Progress io.Writer
	// Report receives the run's text summary and where its report is (nil:
	// discarded).
	Report io.Writer
}

// Result is a finished (or interrupted) run.
type Result struct {
	// Dir is the run's directory.
	Dir string
	// Summary is what summary.json holds.
	Summary *report.Summary
}

// Outcomes of a run that completed but is not clean; Run's error wraps one.
var (
	// ErrRegressed: specs that passed in the previous run fail now.
	ErrRegressed = errors.New("regressions")
	// ErrIncomplete: harness errors kept specs from giving a verdict.
	ErrIncomplete = errors.New("harness errors")
	// ErrInterrupted: the context ended the run; what ran is recorded.
	ErrInterrupted = errors.New("interrupted")
)

// outcome is an error with its own message that matches a sentinel.
type outcome struct {
	kind error
	msg  string
}

func (e outcome) Error() string { return e.msg }
func (e outcome) Unwrap() error { return e.kind }

// badInput is an option's mistake; it matches harness.ErrBadInput.
func badInput(format string, args ...any) error {
	return outcome{kind: harness.ErrBadInput, msg: fmt.Sprintf(format, args...)}
}

// ParseGuests splits a comma-separated guest list, checking that each is a
// guest kspec prepares or an existing config file (made absolute, since the
// suites run in another directory) and that none is given twice.
func ParseGuests(list string) ([]string, error) {
	var guests []string
	for _, g := range strings.Split(list, ",") {
		g = strings.TrimSpace(g)
		if g == "" {
			continue
		}
		if !guest.CanPrepare(g) {
			if _, err := os.Stat(g); err != nil {
				return nil, badInput("kspec nightly: --guests: %q is neither a guest kspec prepares (%s) nor a guest config file", g, strings.Join(guest.KnownGuests(), ", "))
			}
			var err error
			if g, err = filepath.Abs(g); err != nil {
				return nil, err
			}
		}
		if slices.Contains(guests, g) {
			return nil, badInput("kspec nightly: --guests: %q given twice", g)
		}
		guests = append(guests, g)
	}
	if len(guests) == 0 {
		return nil, badInput("kspec nightly: --guests: no guest given")
	}
	return guests, nil
}

// ResultsDir resolves a results directory: dir, else $KSPEC_RESULTS, else
// $XDG_DATA_HOME/kspec/nightly (~/.local/share/kspec/nightly), made absolute.
func ResultsDir(dir string) (string, error) {
	if dir == "" {
		dir = os.Getenv("KSPEC_RESULTS")
	}
	if dir == "" {
		base := os.Getenv("XDG_DATA_HOME")
		if base == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", badInput("kspec: no results directory: give --out DIR (%v)", err)
			}
			base = filepath.Join(home, ".local", "share")
		}
		dir = filepath.Join(base, "kspec", "nightly")
	}
	return filepath.Abs(dir)
}

// Run runs the suite on every guest and records the run in o.ResultsDir,
// even when interrupted. The error is nil for a clean run, or wraps
// ErrRegressed, ErrIncomplete or ErrInterrupted (Result is then set too),
// or says why the run could not start (bad options match
// harness.ErrBadInput).
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Report == nil {
		o.Report = io.Discard
	}
	if len(o.Guests) == 0 {
		return nil, badInput("kspec nightly: no guest given")
	}
	if o.Procs <= 0 {
		o.Procs = min(runtime.NumCPU(), len(o.Guests))
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Timeout < 0 {
		return nil, badInput("kspec nightly: --timeout must be positive")
	}
	if o.ResultsDir == "" {
		return nil, badInput("kspec nightly: no results directory")
	}
	start := time.Now()
	prog := &progress{w: o.Progress, start: start, width: 8}
	for _, g := range o.Guests {
		prog.width = max(prog.width, len(report.GuestDir(g)))
	}
	tmp, err := os.MkdirTemp("", "kspec-nightly-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	// Check the suite binary before making the run directory: bad input
	// leaves nothing behind.
	if o.SuiteBinary != "" {
		if _, err := givenBinary(o.SuiteBinary); err != nil {
			return nil, err
		}
	}
	id, runDir, err := report.NewRunDir(o.ResultsDir, start)
	if err != nil {
		return nil, fmt.Errorf("results directory: %w", err)
	}
	title := "run " + id
	if !o.Shard.Whole() {
		title += ", shard " + o.Shard.String()
	}
	prog.printf("nightly", "%s: %s on %s, into %s", title, strings.Join(o.Guests, " and "), plural(o.Procs, "guest at a time", "guests at a time"), runDir)

	su, err := buildSuite(ctx, o, tmp, prog)
	if err != nil {
		os.RemoveAll(runDir)
		return nil, err
	}
	expected := inShard(o, su.expected)
	if o.Shard.Whole() {
		prog.printf("nightly", "suite %q: %s", su.desc, plural(len(expected), "spec", "specs"))
	} else {
		prog.printf("nightly", "suite %q: %d of %d specs in shard %s", su.desc, len(expected), len(su.expected), o.Shard)
	}

	host, _ := os.Hostname()
	s := &report.Summary{Run: id, Started: start, Host: host, Suite: su.name, LabelFilter: o.LabelFilter, Shard: o.Shard.String()}
	// The suite's processes inherit KSPEC_QEMU and boot that QEMU.
	if v, err := supervisor.QEMUVersion(ctx, os.Getenv("KSPEC_QEMU")); err == nil {
		s.QEMU = v.String()
	} else {
		prog.printf("nightly", "QEMU version unknown: %v", err)
	}
	s.Guests = make([]*report.GuestResult, len(o.Guests))
	sem := make(chan struct{}, o.Procs)
	var wg sync.WaitGroup
	for i, name := range o.Guests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &guestRun{o: o, name: name, su: su, runDir: runDir,
				dir: report.GuestDir(name), expected: expected, prog: prog, sem: sem, tmp: tmp}
			s.Guests[i] = r.run(ctx)
		}()
	}
	wg.Wait()
	s.Finished = time.Now()

	// Record the run even when interrupted: what ran is evidence.
	hist, err := report.Runs(o.ResultsDir)
	if err != nil {
		return nil, fmt.Errorf("reading earlier runs: %w", err)
	}
	s.Changes = report.Compare(hist, s)
	if err := Finish(o.ResultsDir, runDir, s); err != nil {
		return nil, err
	}
	res := &Result{Dir: runDir, Summary: s}
	prog.printf("nightly", "done in %s: %s", time.Since(start).Round(time.Second), filepath.Join(runDir, report.RunHTMLFile))
	if err := WriteReport(o.Report, o.ResultsDir, runDir, s); err != nil {
		return res, err
	}
	if ctx.Err() != nil {
		return res, outcome{kind: ErrInterrupted, msg: fmt.Sprintf("interrupted; the guests were stopped and what ran is recorded in %s", runDir)}
	}
	return res, Verdict(s)
}

// Finish writes a run's summary.json, summary.txt, report.html, the
// results directory's index and its latest link.
func Finish(resultsDir, runDir string, s *report.Summary) error {
	if err := report.WriteSummary(runDir, s); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(runDir, report.TextFile))
	if err != nil {
		return err
	}
	if err := report.WriteText(f, s, runDir); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := report.WriteHTML(resultsDir, runDir, s); err != nil {
		return err
	}
	return report.SetLatest(resultsDir, filepath.Base(runDir))
}

// WriteReport prints a run's text summary and where its HTML report and
// the results directory's index are.
func WriteReport(w io.Writer, resultsDir, runDir string, s *report.Summary) error {
	if err := report.WriteText(w, s, runDir); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\nreport: %s\nindex:  %s\n", filepath.Join(runDir, report.RunHTMLFile), filepath.Join(resultsDir, report.IndexFile))
	return err
}

// Verdict judges a recorded run: an error wrapping ErrRegressed for
// regressions, ErrIncomplete for harness errors, nil otherwise (known
// failures, flaky specs and fixes included).
func Verdict(s *report.Summary) error {
	switch {
	case s.Changes.Regressed():
		return outcome{kind: ErrRegressed, msg: fmt.Sprintf("%s since %s", plural(len(s.Changes.Regressions), "regression", "regressions"), s.Changes.Previous)}
	case s.HarnessErrors():
		return outcome{kind: ErrIncomplete, msg: "harness errors: the run is incomplete (see the report)"}
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// inShard keeps the specs of cases that belong to o's shard.
func inShard(o Options, cases []report.Case) []report.Case {
	if o.Shard.Whole() {
		return cases
	}
	var mine []report.Case
	for _, c := range cases {
		if o.Shard.Has(c.ID) {
			mine = append(mine, c)
		}
	}
	return mine
}
