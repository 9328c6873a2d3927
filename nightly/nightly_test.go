package nightly

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kspec/kspec/harness"
	"github.com/kspec/kspec/internal/fixturesuite"
	"github.com/kspec/kspec/report"
)

// fixture is the fixture suite binary and its guest, built once for the
// package's tests (compiling it is the slow part).
var fixture struct {
	once       sync.Once
	bin, guest string
	dir        string
}

// fixtureSuite returns the compiled fixture suite (specs that pass, fail,
// break the harness, panic, time out and skip, with no guest booted) and a
// guest config file for it.
func fixtureSuite(t *testing.T) (bin, guestFile string) {
	t.Helper()
	fixture.once.Do(func() {
		dir, err := os.MkdirTemp("", "kspec-nightly-fixture-")
		if err != nil {
			t.Fatal(err)
		}
		fixture.dir = dir
		ft := &onceT{T: t, dir: dir}
		fixture.bin, fixture.guest = fixturesuite.Build(ft)
	})
	if fixture.bin == "" {
		t.Fatal("the fixture suite did not build (see the first test's log)")
	}
	return fixture.bin, fixture.guest
}

// onceT is a testing.TB whose temporary directory outlives the test that
// built the fixture, so that later tests reuse it.
type onceT struct {
	*testing.T
	dir string
}

func (o *onceT) TempDir() string { return o.dir }

func TestMain(m *testing.M) {
	code := m.Run()
	if fixture.dir != "" {
		os.RemoveAll(fixture.dir)
	}
	os.Exit(code)
}

// run runs a nightly with o on the fixture suite, its progress in the
// returned buffer.
func run(t *testing.T, o Options) (*Result, string, error) {
	t.Helper()
	var prog, rep bytes.Buffer
	o.Progress, o.Report = &prog, &rep
	if o.ResultsDir == "" {
		o.ResultsDir = t.TempDir()
	}
	res, err := Run(context.Background(), o)
	return res, prog.String(), err
}

// TestRunGuestsOneAtATime: two guests with Procs 1 each run the whole
// suite, one after the other, each recorded with its own kernel.
func TestRunGuestsOneAtATime(t *testing.T) {
	bin, g1 := fixtureSuite(t)
	g2 := fixturesuite.Guest(t, "second-guest", "6.12.0-99-fixture")
	res, prog, err := run(t, Options{SuiteBinary: bin, Guests: []string{g1, g2}, Procs: 1, NoRetry: true})
	if !errors.Is(err, ErrIncomplete) {
		t.Fatalf("err %v, want ErrIncomplete (the fixture's harness errors)\n%s", err, prog)
	}
	s := res.Summary
	if len(s.Guests) != 2 || s.Guests[0].Kernel != "6.1.0-99-fixture" || s.Guests[1].Kernel != "6.12.0-99-fixture" {
		t.Fatalf("guests %+v", s.Guests)
	}
	for _, g := range s.Guests {
		if len(g.Specs) != 9 {
			t.Errorf("%s ran %d specs, want 9", g.Guest, len(g.Specs))
		}
		for _, sp := range g.Specs {
			if sp.Retry != nil {
				t.Errorf("NoRetry, yet %q was re-run", sp.ID)
			}
		}
	}
	// With one slot, no guest starts its suite while another's runs.
	running := ""
	for _, l := range strings.Split(prog, "\n") {
		switch {
		case strings.Contains(l, " running 9 specs"):
			if running != "" {
				t.Errorf("a second suite started while %s ran:\n%s", running, prog)
			}
			running = strings.Fields(l[strings.Index(l, "]")+1:])[0]
		case strings.Contains(l, " done in ") && running != "" && strings.Contains(l, "] "+running+" "):
			running = ""
		}
	}
	if c := strings.Count(prog, " running 9 specs"); c != 2 {
		t.Errorf("%d suite runs in the progress, want 2:\n%s", c, prog)
	}
	if _, err := os.Stat(filepath.Join(res.Dir, "second-guest", "junit.xml")); err != nil {
		t.Errorf("second guest's report: %v", err)
	}
}

// TestRunRetriesFailures: the failed and errored specs, and only those, are
// re-run once, in their own files.
func TestRunRetriesFailures(t *testing.T) {
	bin, g := fixtureSuite(t)
	res, prog, err := run(t, Options{SuiteBinary: bin, Guests: []string{g}})
	if !errors.Is(err, ErrIncomplete) {
		t.Fatalf("err %v\n%s", err, prog)
	}
	if !strings.Contains(prog, "re-running 5 failed specs once") {
		t.Errorf("progress:\n%s", prog)
	}
	gr := res.Summary.Guests[0]
	retried := 0
	for _, sp := range gr.Specs {
		wantRetry := sp.Status == report.Failed || sp.Status == report.Error
		if (sp.Retry != nil) != wantRetry {
			t.Errorf("%q (%s): retry %+v", sp.ID, sp.Status, sp.Retry)
		}
		if sp.Retry != nil {
			retried++
		}
	}
	if retried != 5 {
		t.Errorf("%d specs re-run, want 5", retried)
	}
	for _, f := range []string{"junit.xml", "junit-retry.xml", "output-retry.log"} {
		if _, err := os.Stat(filepath.Join(res.Dir, "fixture-guest", f)); err != nil {
			t.Errorf("%v", err)
		}
	}
}

// TestRunShard: a shard runs its share of the specs and says so.
func TestRunShard(t *testing.T) {
	bin, g := fixtureSuite(t)
	sh, err := report.ParseShard("2/3")
	if err != nil {
		t.Fatal(err)
	}
	res, prog, _ := run(t, Options{SuiteBinary: bin, Guests: []string{g}, Shard: sh, NoRetry: true})
	if res == nil {
		t.Fatalf("no result\n%s", prog)
	}
	n := len(res.Summary.Guests[0].Specs)
	if n == 0 || n >= 9 || !strings.Contains(prog, "of 9 specs in shard 2/3") || res.Summary.Shard != "2/3" {
		t.Errorf("shard ran %d specs, shard %q\n%s", n, res.Summary.Shard, prog)
	}
}

func TestRunBadOptions(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"no guests", Options{ResultsDir: dir}, "no guest given"},
		{"negative timeout", Options{ResultsDir: dir, Guests: []string{"debian-cloud"}, Timeout: -1}, "--timeout must be positive"},
		{"suite binary missing", Options{ResultsDir: dir, Guests: []string{"debian-cloud"}, SuiteBinary: filepath.Join(dir, "nope")}, "not an executable file"},
		{"suite binary a directory", Options{ResultsDir: dir, Guests: []string{"debian-cloud"}, SuiteBinary: dir}, "not an executable file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Run(context.Background(), tt.o)
			if !errors.Is(err, harness.ErrBadInput) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %v, want bad input saying %q", err, tt.want)
			}
		})
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("bad options left files behind: %v", entries)
	}
}

func TestParseGuests(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "g.json")
	if err := os.WriteFile(cfg, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(mustGetwd(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		list    string
		want    []string
		wantErr string
	}{
		{"debian-cloud,debian-generic", []string{"debian-cloud", "debian-generic"}, ""},
		{" debian-cloud , ," + rel, []string{"debian-cloud", cfg}, ""},
		{"debian-nope", nil, `"debian-nope" is neither`},
		{"debian-cloud,debian-cloud", nil, "given twice"},
		{cfg + "," + rel, nil, "given twice"},
		{",", nil, "no guest given"},
	}
	for _, tt := range tests {
		got, err := ParseGuests(tt.list)
		if tt.wantErr != "" {
			if !errors.Is(err, harness.ErrBadInput) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseGuests(%q) = %v, %v; want bad input %q", tt.list, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("ParseGuests(%q) = %v, %v; want %v", tt.list, got, err, tt.want)
		}
	}
}

func mustGetwd(t *testing.T) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}

func TestVerdict(t *testing.T) {
	failed := []report.Spec{{ID: "a", Status: report.Failed}}
	errored := []report.Spec{{ID: "b", Status: report.Error}}
	tests := []struct {
		name string
		s    *report.Summary
		want error
	}{
		{"clean", &report.Summary{Guests: []*report.GuestResult{{Specs: failed}}}, nil},
		{"harness errors", &report.Summary{Guests: []*report.GuestResult{{Specs: errored}}}, ErrIncomplete},
		{"regression", &report.Summary{Changes: &report.Changes{Previous: "r1", Regressions: []report.Change{{Spec: "a"}}}}, ErrRegressed},
	}
	for _, tt := range tests {
		err := Verdict(tt.s)
		if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("%s: Verdict = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestLineWriterThrottlesCounters(t *testing.T) {
	var b bytes.Buffer
	p := &progress{w: &b, width: 4}
	w := &lineWriter{p: p, who: "g", pre: "prepare: "}
	for _, chunk := range []string{
		"resolving g: apt-cache show x\ndownloading: 0/9", "30 MB\ndownloading: 1/930 MB\n",
		"downloading: 2/930 MB\nextracted vmlinuz (8 MB)\n\nextracting vmlinux: 1/600 MB\n", "partial line without newline",
	} {
		if _, err := w.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		_, rest, _ := strings.Cut(l, "] ")
		got = append(got, rest)
	}
	want := []string{
		"g    prepare: resolving g: apt-cache show x",
		"g    prepare: downloading: 0/930 MB",
		"g    prepare: extracted vmlinuz (8 MB)",
		"g    prepare: extracting vmlinux: 1/600 MB",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestRunGuestsInParallel: with Procs 2 both guests' suites run at once:
// each fixture suite hangs in its boot until interrupted, and both reach
// it; the interrupted run is still recorded, for both guests.
func TestRunGuestsInParallel(t *testing.T) {
	bin, g1 := fixtureSuite(t)
	g2 := fixturesuite.Guest(t, "second-guest", "6.12.0-99-fixture")
	t.Setenv("FIXTURE_BOOT", "hang")
	hanging := t.TempDir()
	t.Setenv("FIXTURE_HANG_DIR", hanging)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var prog bytes.Buffer // read only after Run returned
	type ran struct {
		res *Result
		err error
	}
	done := make(chan ran)
	go func() {
		res, err := Run(ctx, Options{ResultsDir: t.TempDir(), SuiteBinary: bin, Guests: []string{g1, g2}, Procs: 2, NoRetry: true, Progress: &prog})
		done <- ran{res, err}
	}()
	// Poll for both suites' sign that they are inside the hanging boot.
	deadline := time.Now().Add(60 * time.Second)
	for {
		ents, _ := os.ReadDir(hanging)
		if len(ents) == 2 {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("%d of 2 suites reached their boot at once\n%s", len(ents), prog.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	r := <-done
	if !errors.Is(r.err, ErrInterrupted) || r.res == nil {
		t.Fatalf("err %v, want ErrInterrupted with a recorded run\n%s", r.err, prog.String())
	}
	for _, g := range r.res.Summary.Guests {
		if c := g.Counts(); c.Error != 8 {
			t.Errorf("%s: counts %+v, want the 8 specs that do not skip as errors", g.Guest, c)
		}
	}
}
