package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// SchemaVersion is the version of summary.json's layout.
const SchemaVersion = 1

// File names inside a run directory.
const (
	SummaryFile = "summary.json"
	TextFile    = "summary.txt"
	RunHTMLFile = "report.html"
	IndexFile   = "index.html"
	LatestLink  = "latest"
)

// RunIDLayout is the time layout of run directory names (UTC): sortable,
// and free of characters URLs and shells treat specially.
const RunIDLayout = "2006-01-02T150405Z"

// Summary is the machine-readable record of one run (summary.json).
type Summary struct {
	// Schema is SchemaVersion when written.
	Schema int `json:"schema"`
	// Run is the run's ID: its directory name.
	Run string `json:"run"`
	// Started and Finished bound the run.
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Host is the machine that ran it (for a merge, the shards' hosts).
	Host string `json:"host,omitempty"`
	// QEMU is the version of the QEMU the guests ran under, as
	// supervisor.QEMUVersion reports it ("" if unknown).
	QEMU string `json:"qemu,omitempty"`
	// Suite names the suite that ran (its package or binary).
	Suite string `json:"suite,omitempty"`
	// LabelFilter is the Ginkgo label filter the run used, if any.
	LabelFilter string `json:"label_filter,omitempty"`
	// Shard is "i/n" for one shard of a run; empty for a whole run or a merge.
	Shard string `json:"shard,omitempty"`
	// MergedFrom lists the shard runs a merged run was made of ("i/n run").
	MergedFrom []string `json:"merged_from,omitempty"`
	// Guests are the per-guest results, in the order they were configured.
	Guests []*GuestResult `json:"guests"`
	// Changes compares the run with the ones before it; nil if not compared.
	Changes *Changes `json:"changes,omitempty"`
}

// GuestResult is what one guest's suite run found.
type GuestResult struct {
	// Guest is the guest's name (or config file).
	Guest string `json:"guest"`
	// Kernel is the kernel release, as `uname -r` prints it.
	Kernel string `json:"kernel"`
	// BuildID is the vmlinux's GNU build ID.
	BuildID string `json:"build_id,omitempty"`
	// Arch is the guest's CPU architecture ("x86_64", "aarch64"); QEMU the
	// version of the emulator that ran it (Summary.QEMU is the default
	// architecture's).
	Arch string `json:"arch,omitempty"`
	QEMU string `json:"qemu,omitempty"`
	// Packages are the Debian packages the guest was built from.
	Packages []Package `json:"packages,omitempty"`
	// Prepared says what preparing the guest did: "built", "already
	// prepared", "not prepared" (--no-prepare, config files).
	Prepared string `json:"prepared,omitempty"`
	// Fallback, if set, says why an older prepared kernel was used.
	Fallback string `json:"fallback,omitempty"`
	// Files are the run's files for this guest (JUnit, output logs),
	// relative to the run directory.
	Files []string `json:"files,omitempty"`
	// BootSeconds is how long the suite's BeforeSuite (boot and login) took.
	BootSeconds float64 `json:"boot_seconds,omitempty"`
	// Seconds is the wall time of the guest's whole run, retries included.
	Seconds float64 `json:"seconds"`
	// Error is a harness error that kept the suite from reporting at all
	// (the guest could not be prepared, the suite binary crashed).
	Error string `json:"error,omitempty"`
	// Setup are the suite-level nodes (BeforeSuite, cleanup) that failed.
	Setup []Spec `json:"setup,omitempty"`
	// Specs are the guest's specs, sorted by ID.
	Specs []Spec `json:"specs"`
}

// Package is one package a guest was built from.
type Package struct {
	// Name and Version identify the package.
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Spec is one spec's result on one guest.
type Spec struct {
	// ID is the spec's full text without labels.
	ID string `json:"id"`
	// Labels are its Ginkgo labels.
	Labels []string `json:"labels,omitempty"`
	// Status is the verdict; see the package documentation.
	Status Status `json:"status"`
	// State is Ginkgo's word for how it ended (passed, failed, panicked,
	// timedout, ..., or "not run").
	State string `json:"state"`
	// Reason says in one line why it failed, errored or was skipped.
	Reason string `json:"reason,omitempty"`
	// Seconds is its run time.
	Seconds float64 `json:"seconds"`
	// Flaky is set when it failed or errored and passed when re-run.
	Flaky bool `json:"flaky,omitempty"`
	// Retry is the result of the re-run, if there was one.
	Retry *Attempt `json:"retry,omitempty"`
	// Log is its console log (failure, console transcript, output),
	// relative to the run directory.
	Log string `json:"log,omitempty"`

	// cases are the JUnit test cases it came from (first run, re-run), for
	// its log; not kept in summary.json.
	cases []Case
}

// Attempt is the result of re-running a spec.
type Attempt struct {
	// Status, State and Reason are as in Spec.
	Status Status `json:"status"`
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
}

// Counts tallies statuses.
type Counts struct {
	// Passed includes Flaky.
	Passed, Failed, Error, Skipped, Flaky int
}

// Total is the number of specs counted.
func (c Counts) Total() int { return c.Passed + c.Failed + c.Error + c.Skipped }

// Counts tallies the guest's spec statuses; a guest-level error or a failed
// set-up node counts as one error more.
func (g *GuestResult) Counts() Counts {
	var c Counts
	for _, s := range g.Specs {
		switch s.Status {
		case Passed:
			c.Passed++
		case Failed:
			c.Failed++
		case Error:
			c.Error++
		case Skipped:
			c.Skipped++
		}
		if s.Flaky {
			c.Flaky++
		}
	}
	return c
}

// Spec returns the guest's spec with the given ID, or nil.
func (g *GuestResult) Spec(id string) *Spec {
	for i := range g.Specs {
		if g.Specs[i].ID == id {
			return &g.Specs[i]
		}
	}
	return nil
}

// HarnessErrors reports whether the guest's run had harness errors: a
// guest-level error, a failed set-up node or an errored spec.
func (g *GuestResult) HarnessErrors() bool {
	if g.Error != "" {
		return true
	}
	for _, s := range g.Setup {
		if s.Status == Error {
			return true
		}
	}
	return g.Counts().Error > 0
}

// Guest returns the result for the named guest, or nil.
func (s *Summary) Guest(name string) *GuestResult {
	for _, g := range s.Guests {
		if g.Guest == name {
			return g
		}
	}
	return nil
}

// Counts tallies the statuses of every guest.
func (s *Summary) Counts() Counts {
	var c Counts
	for _, g := range s.Guests {
		gc := g.Counts()
		c.Passed += gc.Passed
		c.Failed += gc.Failed
		c.Error += gc.Error
		c.Skipped += gc.Skipped
		c.Flaky += gc.Flaky
	}
	return c
}

// HarnessErrors reports whether any guest had harness errors.
func (s *Summary) HarnessErrors() bool {
	for _, g := range s.Guests {
		if g.HarnessErrors() {
			return true
		}
	}
	return false
}

// Results turns a suite run's JUnit report into spec results.
//
// expected, if not nil, are the specs the run was meant to run (from a dry
// run with the same filters, see Expected, or the specs a re-run focused on):
// the results are exactly those. Specs the report skipped or has as pending
// that were not expected (focused or filtered away) are left out. An expected spec missing
// from the report is "not run" — pending ones are skipped — with the failed
// set-up node as the reason and its status: Failed if the kernel failed it
// (a kernel that no longer boots fails every spec), else Error.
//
// Passing set-up nodes are dropped, failing ones returned as setup;
// bootSeconds is the BeforeSuite's run time.
func Results(j *JUnit, expected []Case) (specs, setup []Spec, bootSeconds float64) {
	want := map[string]Case{}
	for _, c := range expected {
		want[c.ID] = c
	}
	seen := map[string]bool{}
	var setupFailure string
	notRun := Error // status of specs never reached: that of the failed set-up
	for _, c := range j.Cases {
		st, why := Classify(c)
		sp := Spec{ID: c.ID, Labels: c.Labels, Status: st, State: c.State, Reason: why, Seconds: c.Seconds, cases: []Case{c}}
		if !c.IsSpec() {
			if c.Node == "BeforeSuite" || c.Node == "SynchronizedBeforeSuite" {
				bootSeconds += c.Seconds
			}
			if st != Passed && st != Skipped {
				setup = append(setup, sp)
				if setupFailure == "" {
					setupFailure = c.ID + " " + st.verb() + ": " + why
					notRun = st
				}
			}
			continue
		}
		if _, ok := want[c.ID]; expected != nil && !ok && (c.State == "skipped" || c.State == "pending") {
			continue
		}
		if seen[c.ID] { // two specs with one text: keep both apart
			for n := 2; ; n++ {
				id := fmt.Sprintf("%s #%d", c.ID, n)
				if !seen[id] {
					sp.ID = id
					break
				}
			}
		}
		seen[sp.ID] = true
		specs = append(specs, sp)
	}
	for _, e := range expected {
		if seen[e.ID] {
			continue
		}
		if e.State == "pending" {
			specs = append(specs, Spec{ID: e.ID, Labels: e.Labels, Status: Skipped, State: "pending", Reason: "pending"})
			continue
		}
		why := "not run: the suite stopped before reaching it (see the guest's output log)"
		if setupFailure != "" {
			why = "not run: " + setupFailure
		}
		c := Case{Node: "It", ID: e.ID, Labels: e.Labels, State: StateNotRun, Message: why}
		specs = append(specs, Spec{ID: e.ID, Labels: e.Labels, Status: notRun, State: StateNotRun, Reason: why, cases: []Case{c}})
	}
	sort.Slice(specs, func(a, b int) bool { return specs[a].ID < specs[b].ID })
	return specs, setup, bootSeconds
}

func (s Status) verb() string {
	switch s {
	case Failed:
		return "failed"
	case Error:
		return "broke"
	}
	return string(s)
}

// ApplyRetry folds the re-run of failed or errored specs into specs: a spec
// that passes on the re-run becomes Passed and Flaky; one that does not keeps
// its first result (the evidence), with the re-run recorded, except that a
// first-run Error followed by a Failed re-run becomes Failed, since the
// re-run got far enough to see the kernel misbehave.
func ApplyRetry(specs, retried []Spec) {
	by := map[string]*Spec{}
	for i := range retried {
		by[retried[i].ID] = &retried[i]
	}
	for i := range specs {
		s := &specs[i]
		r := by[s.ID]
		if r == nil || s.Status == Passed || s.Status == Skipped {
			continue
		}
		s.Retry = &Attempt{Status: r.Status, State: r.State, Reason: r.Reason}
		s.cases = append(s.cases, r.cases...)
		switch {
		case r.Status == Passed:
			s.Status, s.Flaky = Passed, true
		case s.Status == Error && r.Status == Failed:
			s.Status, s.State, s.Reason = Failed, r.State, r.Reason
		}
	}
}

// NeedsRetry returns the IDs of the specs that failed or errored.
func NeedsRetry(specs []Spec) []string {
	var ids []string
	for _, s := range specs {
		if s.Status == Failed || s.Status == Error {
			ids = append(ids, s.ID)
		}
	}
	return ids
}

// WriteSummary writes s as dir/summary.json.
func WriteSummary(dir string, s *Summary) error {
	s.Schema = SchemaVersion
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, SummaryFile), append(data, '\n'))
}

// ReadSummary reads dir/summary.json.
func ReadSummary(dir string) (*Summary, error) {
	data, err := os.ReadFile(filepath.Join(dir, SummaryFile))
	if err != nil {
		return nil, err
	}
	var s Summary
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, SummaryFile), err)
	}
	if s.Schema > SchemaVersion {
		return nil, fmt.Errorf("%s: schema %d is newer than this kspec's %d", filepath.Join(dir, SummaryFile), s.Schema, SchemaVersion)
	}
	return &s, nil
}

// Runs reads the summaries of every run in a results directory, oldest
// first. Directories without a summary (runs in progress, other files) are
// left out; unreadable summaries are errors.
func Runs(out string) ([]*Summary, error) {
	entries, err := os.ReadDir(out)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var runs []*Summary
	for _, e := range entries {
		if !e.IsDir() || e.Name() == LatestLink {
			continue
		}
		s, err := ReadSummary(filepath.Join(out, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		s.Run = e.Name() // the directory is the truth (copied runs)
		runs = append(runs, s)
	}
	sort.Slice(runs, func(a, b int) bool { return runs[a].Run < runs[b].Run })
	return runs, nil
}

// NewRunDir creates a new run directory in out named after t (UTC, see
// RunIDLayout), with a "-2", "-3", ... suffix if that name is taken, and
// returns its ID and path.
func NewRunDir(out string, t time.Time) (id, dir string, err error) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", "", err
	}
	base := t.UTC().Format(RunIDLayout)
	for n := 1; n < 1000; n++ {
		id = base
		if n > 1 {
			id = fmt.Sprintf("%s-%d", base, n)
		}
		dir = filepath.Join(out, id)
		err = os.Mkdir(dir, 0o755)
		if err == nil {
			return id, dir, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", "", err
		}
	}
	return "", "", fmt.Errorf("no free run directory name for %s in %s", base, out)
}

// SetLatest points out/latest at the run id.
func SetLatest(out, id string) error {
	link := filepath.Join(out, LatestLink)
	tmp := link + ".tmp"
	_ = os.Remove(tmp)
	if err := os.Symlink(id, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, link)
}

// Slug makes a spec ID into a file name: lower case letters, digits and
// dashes, at most 80 characters, plus a short hash so that IDs that differ
// only in punctuation do not collide.
func Slug(id string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(id) {
		ok := (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9')
		if !ok {
			if !dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = true
			continue
		}
		dash = false
		b.WriteRune(r)
	}
	s := strings.TrimRight(b.String(), "-")
	if len(s) > 80 {
		s = strings.TrimRight(s[:80], "-")
	}
	return fmt.Sprintf("%s-%08x", s, fnv32(id))
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// NotRun returns expected specs as not run for the given reason, with the
// given status (Error when the harness could not run them; pending specs
// are skipped as always).
func NotRun(expected []Case, status Status, why string) []Spec {
	var specs []Spec
	for _, e := range expected {
		if e.State == "pending" {
			specs = append(specs, Spec{ID: e.ID, Labels: e.Labels, Status: Skipped, State: "pending", Reason: "pending"})
			continue
		}
		c := Case{Node: "It", ID: e.ID, Labels: e.Labels, State: StateNotRun, Message: why}
		specs = append(specs, Spec{ID: e.ID, Labels: e.Labels, Status: status, State: StateNotRun, Reason: why, cases: []Case{c}})
	}
	sort.Slice(specs, func(a, b int) bool { return specs[a].ID < specs[b].ID })
	return specs
}
