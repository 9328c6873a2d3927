package report

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// guestRun is one guest's part of a recorded run for makeRun.
type guestRun struct {
	guest, kernel string
	junit         string // fixture file
	retry         string // JUnit XML text of the re-run ("" = none)
}

// makeRun does what kspec nightly does after the suites ran, from recorded
// JUnit files: results, re-run, logs, comparison, summary, text and HTML.
func makeRun(t *testing.T, out string, started time.Time, shard string, guests ...guestRun) (*Summary, string) {
	t.Helper()
	id, dir, err := NewRunDir(out, started)
	if err != nil {
		t.Fatal(err)
	}
	s := &Summary{Run: id, Started: started, Finished: started.Add(3 * time.Minute), Host: "testhost", Shard: shard}
	sh, err := ParseShard(shard)
	if err != nil {
		t.Fatal(err)
	}
	for _, gr := range guests {
		g := &GuestResult{Guest: gr.guest, Kernel: gr.kernel, Packages: []Package{{"linux-image-" + gr.kernel, "1.0"}}, Seconds: 42}
		gdir := filepath.Join(dir, gr.guest)
		if err := os.MkdirAll(gdir, 0o755); err != nil {
			t.Fatal(err)
		}
		j := mustJUnit(t, gr.junit)
		if err := copyFile(filepath.Join(gdir, "junit.xml"), filepath.Join("testdata", gr.junit)); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(gdir, "output.log"), []byte("suite output of "+gr.guest+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		g.Files = []string{gr.guest + "/junit.xml", gr.guest + "/output.log"}
		var expected []Case
		for _, c := range Expected(mustJUnit(t, strings.Replace(gr.junit, "-b.", "-a.", 1))) {
			if sh.Has(c.ID) {
				expected = append(expected, c)
			}
		}
		if strings.HasPrefix(gr.junit, "fixture-") {
			expected = nil
			for _, c := range Expected(mustJUnit(t, "fixture-dry-run.xml")) {
				if sh.Has(c.ID) {
					expected = append(expected, c)
				}
			}
		}
		g.Specs, g.Setup, g.BootSeconds = Results(j, expected)
		if gr.retry != "" {
			rj, err := ParseJUnit(strings.NewReader(gr.retry))
			if err != nil {
				t.Fatal(err)
			}
			var want []Case
			for _, id := range NeedsRetry(g.Specs) {
				want = append(want, Case{ID: id})
			}
			retried, _, _ := Results(rj, want)
			ApplyRetry(g.Specs, retried)
		}
		if err := WriteLogs(dir, gr.guest, g); err != nil {
			t.Fatal(err)
		}
		s.Guests = append(s.Guests, g)
	}
	hist, err := Runs(out)
	if err != nil {
		t.Fatal(err)
	}
	s.Changes = Compare(hist, s)
	if err := WriteSummary(dir, s); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, TextFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteText(f, s, dir); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := WriteHTML(out, dir, s); err != nil {
		t.Fatal(err)
	}
	if err := SetLatest(out, id); err != nil {
		t.Fatal(err)
	}
	return s, dir
}

// retryXML is a re-run in which only the panicking spec passes (flaky).
const retryXML = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites><testsuite name="Linux kernel specs">
<testcase name="[BeforeSuite]" classname="Linux kernel specs" status="passed" time="3"></testcase>
<testcase name="[It] system calls reach their kernel implementation mkdir hits do_mkdirat in fs/namei.c [fs, mkdir]" classname="Linux kernel specs" status="failed" time="1"><failure message="kernel failure (mismatch): stopped in do_mkdir, not do_mkdirat" type="failed">[FAILED] kernel failure (mismatch): stopped in do_mkdir, not do_mkdirat</failure></testcase>
<testcase name="[It] system calls reach their kernel implementation does not panic the harness" classname="Linux kernel specs" status="passed" time="1"></testcase>
<testcase name="[It] system calls reach their kernel implementation mkdir hits do_mkdirat in fs/namei.c again [x]" classname="Linux kernel specs" status="skipped" time="0"><skipped message="skipped"></skipped></testcase>
</testsuite></testsuites>`

var (
	night1 = time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC)
	night2 = time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)
)

// twoNights records two nightly runs in out: on the second, the cloud
// kernel changed, mkdir regressed, rmdir was fixed, one spec was flaky.
func twoNights(t *testing.T, out string) (*Summary, string) {
	makeRun(t, out, night1, "",
		guestRun{guest: "debian-cloud", kernel: "6.1.0-55-cloud-amd64", junit: "fixture-a.xml"},
		guestRun{guest: "debian-generic", kernel: "6.1.0-55-amd64", junit: "linux-debian-cloud.xml"})
	return makeRun(t, out, night2, "",
		guestRun{guest: "debian-cloud", kernel: "6.1.0-56-cloud-amd64", junit: "fixture-b.xml", retry: retryXML},
		guestRun{guest: "debian-generic", kernel: "6.1.0-55-amd64", junit: "linux-debian-cloud.xml"})
}

func TestTwoNights(t *testing.T) {
	out := t.TempDir()
	s, dir := twoNights(t, out)
	ch := s.Changes
	const pre = "debian-cloud/system calls reach their kernel implementation "
	if got := names(ch.Regressions); !reflect.DeepEqual(got, []string{pre + "mkdir hits do_mkdirat in fs/namei.c"}) {
		t.Errorf("regressions %q", got)
	}
	if got := names(ch.Fixes); !reflect.DeepEqual(got, []string{pre + "rmdir hits do_rmdir in fs/namei.c"}) {
		t.Errorf("fixes %q", got)
	}
	if got := names(ch.Flaky); !reflect.DeepEqual(got, []string{pre + "does not panic the harness"}) {
		t.Errorf("flaky %q", got)
	}
	if !reflect.DeepEqual(ch.Kernels, []KernelChange{{"debian-cloud", "6.1.0-55-cloud-amd64", "6.1.0-56-cloud-amd64"}}) {
		t.Errorf("kernels %+v", ch.Kernels)
	}
	if v := Verdict(s); v != "1 regression, 2 harness errors" {
		t.Errorf("verdict %q", v)
	}

	// The regression's console log has the failure and the transcript.
	reg := ch.Regressions[0]
	log, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(reg.Log)))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"status:  failed", "guest:   debian-cloud (kernel 6.1.0-56-cloud-amd64)",
		"kernel failure (mismatch): stopped in do_mkdir, not do_mkdirat",
		"--- report entry console ---\n~ # mkdir /tmp/kspec-mkdir",
		"===== re-run: failed", "breakpoint do_mkdirat set",
	} {
		if !strings.Contains(string(log), want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}

	// The summary round-trips; the directory is the run's ID.
	back, err := ReadSummary(dir)
	if err != nil {
		t.Fatal(err)
	}
	if back.Run != s.Run || len(back.Changes.Regressions) != 1 || back.Guest("debian-cloud").Spec(ch.Flaky[0].Spec).Retry.Status != Passed {
		t.Errorf("summary round trip: %+v", back)
	}
	runs, err := Runs(out)
	if err != nil || len(runs) != 2 || runs[0].Run != "2026-11-25T020000Z" || runs[1].Run != "2026-11-26T020000Z" {
		t.Fatalf("runs %v %v", runs, err)
	}
	if l, _ := os.Readlink(filepath.Join(out, LatestLink)); l != s.Run {
		t.Errorf("latest -> %q", l)
	}

	text, _ := os.ReadFile(filepath.Join(dir, TextFile))
	for _, want := range []string{
		"kspec nightly 2026-11-26T020000Z: 1 REGRESSION, 2 HARNESS ERRORS",
		"Changes since 2026-11-25T020000Z:",
		"REGRESSIONS — passed before, fail now (1):",
		"[passed in 2026-11-25T020000Z → failed]",
		"console log: " + filepath.Join(dir, "debian-cloud", "logs"),
		"debian-cloud     6.1.0-55-cloud-amd64 → 6.1.0-56-cloud-amd64",
		"Flaky — failed, then passed when re-run (1):",
	} {
		if !strings.Contains(string(text), want) {
			t.Errorf("summary.txt lacks %q:\n%s", want, text)
		}
	}

	page, _ := os.ReadFile(filepath.Join(dir, RunHTMLFile))
	for _, want := range []string{
		`<div class="verdict bad">1 regression, 2 harness errors</div>`,
		`compared with <a href="../2026-11-25T020000Z/report.html">`,
		`<td class="st failed reg" title="REGRESSION: passed before, failed now — kernel failure (mismatch): stopped in do_mkdir, not do_mkdirat"><a href="` + reg.Log + `">✗▲</a>`,
		`6.1.0-56-cloud-amd64`, `linux-image-6.1.0-56-cloud-amd64 1.0`,
		`~ # mkdir /tmp/kspec-mkdir`, // the log excerpt, inline
	} {
		if !strings.Contains(string(page), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	if strings.Contains(string(page), "http://") || strings.Contains(string(page), "https://") {
		t.Error("report.html refers to external resources")
	}
	index, _ := os.ReadFile(filepath.Join(out, IndexFile))
	// The regressed spec is the first row, the failing and erroring ones next.
	rows := regexp.MustCompile(`<tr><td class="spec">([^<]*)`).FindAllStringSubmatch(string(index), -1)
	if len(rows) != 11 || rows[0][1] != "system calls reach their kernel implementation mkdir hits do_mkdirat in fs/namei.c " ||
		rows[len(rows)-1][1] != "system calls reach their kernel implementation rmdir hits do_rmdir in fs/namei.c " {
		t.Errorf("index rows: %q", rows)
	}
	for _, want := range []string{
		`<a href="2026-11-26T020000Z/report.html">Nov 26 02:00</a>`,
		`<a href="2026-11-25T020000Z/report.html">Nov 25 02:00</a>`,
		`title="6.1.0-56-cloud-amd64"`, `title="6.1.0-55-cloud-amd64"`,
		`<a href="2026-11-26T020000Z/` + reg.Log + `">✗▲</a>`,
	} {
		if !strings.Contains(string(index), want) {
			t.Errorf("index.html lacks %q", want)
		}
	}
}

func TestFirstRunAndNothingChanged(t *testing.T) {
	out := t.TempDir()
	g := guestRun{guest: "debian-cloud", kernel: "6.1.0-56-cloud-amd64", junit: "linux-debian-cloud.xml"}
	s1, _ := makeRun(t, out, night1, "", g)
	if s1.Changes.Previous != "" || Verdict(s1) != "no previous run to compare with" {
		t.Errorf("first run: %+v %q", s1.Changes, Verdict(s1))
	}
	s2, dir := makeRun(t, out, night2, "", g)
	if Verdict(s2) != "no regressions" {
		t.Errorf("second run: %q", Verdict(s2))
	}
	text, _ := os.ReadFile(filepath.Join(dir, TextFile))
	if !strings.Contains(string(text), "nothing changed.") {
		t.Errorf("summary.txt:\n%s", text)
	}
	// Same start second: a fresh directory name.
	id, _, err := NewRunDir(out, night2)
	if err != nil || id != "2026-11-26T020000Z-2" {
		t.Errorf("NewRunDir = %q, %v", id, err)
	}
}

func TestMergeRuns(t *testing.T) {
	shards := t.TempDir()
	var dirs []string
	for i, sh := range []string{"2/2", "1/2"} {
		_, dir := makeRun(t, filepath.Join(shards, sh[:1]), night2.Add(time.Duration(i)*time.Minute), sh,
			guestRun{guest: "debian-cloud", kernel: "6.1.0-56-cloud-amd64", junit: "fixture-a.xml"},
			guestRun{guest: "debian-generic", kernel: "6.1.0-55-amd64", junit: "fixture-harness-boot.xml"})
		dirs = append(dirs, dir)
	}
	// A shard's results directory's latest link names its run.
	if err := SetLatest(filepath.Dir(dirs[1]), filepath.Base(dirs[1])); err != nil {
		t.Fatal(err)
	}
	dirs[1] = filepath.Join(filepath.Dir(dirs[1]), LatestLink)
	out := t.TempDir()
	m, dir, err := MergeRuns(out, dirs, MergeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Shard != "" || m.Run != "2026-11-26T020000Z" || len(m.MergedFrom) != 2 || m.MergedFrom[0] != "1/2 2026-11-26T020100Z" {
		t.Errorf("merged: run %q shard %q from %q", m.Run, m.Shard, m.MergedFrom)
	}
	whole := Expected(mustJUnit(t, "fixture-dry-run.xml"))
	for _, g := range m.Guests {
		if got := len(g.Specs); got != len(whole) {
			t.Errorf("%s: %d specs, want %d", g.Guest, got, len(whole))
		}
	}
	gen := m.Guest("debian-generic")
	if len(gen.Setup) != 2 || gen.Setup[0].Log == gen.Setup[1].Log {
		t.Errorf("set-up failures of both shards, apart: %+v", gen.Setup)
	}
	for _, g := range m.Guests {
		for _, l := range [][]Spec{g.Setup, g.Specs} {
			for _, s := range l {
				if s.Log == "" {
					continue
				}
				if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(s.Log))); err != nil {
					t.Errorf("%s: log %v", s.ID, err)
				}
			}
		}
	}
	if !reflect.DeepEqual(m.Guest("debian-cloud").Files, []string{"debian-cloud/junit.xml", "debian-cloud/output.log", "debian-cloud/output-shard2.log"}) {
		t.Errorf("files %q", m.Guest("debian-cloud").Files)
	}
	j, err := ReadJUnit(filepath.Join(dir, "debian-cloud", "junit.xml"))
	if err != nil || len(j.Cases) != 2*len(mustJUnit(t, "fixture-a.xml").Cases) {
		t.Errorf("merged junit: %v", err)
	}
}

func TestMergeSummariesErrors(t *testing.T) {
	shard := func(id, sh, kernel string) *Summary {
		s := run(id, map[string][]string{"a:" + kernel: {"x=p"}})
		s.Shard = sh
		return s
	}
	tests := []struct {
		name   string
		shards []*Summary
		opts   MergeOptions
		err    string
	}{
		{"none", nil, MergeOptions{}, "no shard runs"},
		{"not a shard", []*Summary{shard("r1", "", "1")}, MergeOptions{}, "not a shard run"},
		{"mixed totals", []*Summary{shard("r1", "1/2", "1"), shard("r2", "2/3", "1")}, MergeOptions{}, "of 2 shards"},
		{"twice", []*Summary{shard("r1", "1/2", "1"), shard("r2", "1/2", "1")}, MergeOptions{}, "given twice"},
		{"missing", []*Summary{shard("r1", "1/3", "1"), shard("r2", "3/3", "1")}, MergeOptions{}, "shards 2/3 are missing"},
		{"partial ok", []*Summary{shard("r1", "1/3", "1"), shard("r2", "3/3", "1")}, MergeOptions{Partial: true}, ""},
		{"kernels differ", []*Summary{shard("r1", "1/2", "1"), shard("r2", "2/2", "2")}, MergeOptions{}, "ran kernel 2 in shard 2/2 but 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := MergeSummaries(tt.shards, tt.opts)
			if tt.err == "" {
				if err != nil || m == nil {
					t.Fatalf("err %v", err)
				}
				if !strings.Contains(strings.Join(m.MergedFrom, ";"), "missing 2/3") {
					t.Errorf("merged from %q", m.MergedFrom)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("err %v, want %q", err, tt.err)
			}
		})
	}
}
