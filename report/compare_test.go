package report

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// run builds a summary: guests "g:kernel" map to "spec=status" lists, where
// status is p, f, e, s or ~ (flaky).
func run(id string, guests map[string][]string) *Summary {
	s := &Summary{Run: id, Started: time.Date(2026, 11, 1, 2, 0, 0, 0, time.UTC)}
	for _, gk := range sortedKeys(guests) {
		name, kernel, _ := strings.Cut(gk, ":")
		g := &GuestResult{Guest: name, Kernel: kernel}
		for _, ss := range guests[gk] {
			spec, st, _ := strings.Cut(ss, "=")
			sp := Spec{ID: spec}
			switch st {
			case "p":
				sp.Status = Passed
			case "f":
				sp.Status, sp.Reason = Failed, "kernel said no"
			case "e":
				sp.Status, sp.Reason = Error, "harness error: x"
			case "s":
				sp.Status = Skipped
			case "~":
				sp.Status, sp.Flaky = Passed, true
			default:
				panic(st)
			}
			g.Specs = append(g.Specs, sp)
		}
		s.Guests = append(s.Guests, g)
	}
	return s
}

// names lists a change list as "guest/spec" (or "guest/spec:from>to").
func names(l []Change) []string {
	var out []string
	for _, c := range l {
		out = append(out, c.Guest+"/"+c.Spec)
	}
	return out
}

func TestCompare(t *testing.T) {
	type want struct {
		prev                                                       string
		regressions, fixes, flaky, failing, errors, added, removed []string
		kernels                                                    []KernelChange
	}
	tests := []struct {
		name    string
		history []*Summary
		cur     *Summary
		want    want
	}{
		{
			name: "first run: failures are not regressions",
			cur:  run("r1", map[string][]string{"a:1": {"x=p", "y=f", "z=e"}}),
			want: want{failing: []string{"a/y"}, errors: []string{"a/z"}},
		},
		{
			name:    "passed then failed is a regression, failed then passed a fix",
			history: []*Summary{run("r1", map[string][]string{"a:1": {"x=p", "y=f"}})},
			cur:     run("r2", map[string][]string{"a:1": {"x=f", "y=p"}}),
			want:    want{prev: "r1", regressions: []string{"a/x"}, fixes: []string{"a/y"}},
		},
		{
			name:    "flaky is not a regression",
			history: []*Summary{run("r1", map[string][]string{"a:1": {"x=p"}})},
			cur:     run("r2", map[string][]string{"a:1": {"x=~"}}),
			want:    want{prev: "r1", flaky: []string{"a/x"}},
		},
		{
			name: "a harness error in between hides no regression",
			history: []*Summary{
				run("r1", map[string][]string{"a:1": {"x=p"}}),
				run("r2", map[string][]string{"a:1": {"x=e"}}),
			},
			cur:  run("r3", map[string][]string{"a:1": {"x=f"}}),
			want: want{prev: "r2", regressions: []string{"a/x"}},
		},
		{
			name:    "passed then error is a harness error, not a regression",
			history: []*Summary{run("r1", map[string][]string{"a:1": {"x=p"}})},
			cur:     run("r2", map[string][]string{"a:1": {"x=e"}}),
			want:    want{prev: "r1", errors: []string{"a/x"}},
		},
		{
			name:    "still failing",
			history: []*Summary{run("r1", map[string][]string{"a:1": {"x=f"}})},
			cur:     run("r2", map[string][]string{"a:1": {"x=f"}}),
			want:    want{prev: "r1", failing: []string{"a/x"}},
		},
		{
			name:    "skipped baseline is no baseline",
			history: []*Summary{run("r1", map[string][]string{"a:1": {"x=s"}})},
			cur:     run("r2", map[string][]string{"a:1": {"x=f"}}),
			want:    want{prev: "r1", failing: []string{"a/x"}},
		},
		{
			name:    "new and removed specs, new one failing",
			history: []*Summary{run("r1", map[string][]string{"a:1": {"x=p", "old=p"}})},
			cur:     run("r2", map[string][]string{"a:1": {"x=p", "new=f"}}),
			want:    want{prev: "r1", failing: []string{"a/new"}, added: []string{"a/new"}, removed: []string{"a/old"}},
		},
		{
			name:    "kernel changes, guests added (their specs are not listed as new) and gone",
			history: []*Summary{run("r1", map[string][]string{"a:1": {"x=p"}, "b:1": {"x=p"}, "gone:7": {"x=p"}})},
			cur:     run("r2", map[string][]string{"a:2": {"x=f"}, "b:1": {"x=p"}, "c:3": {"x=f"}}),
			want: want{prev: "r1", regressions: []string{"a/x"}, failing: []string{"c/x"},
				kernels: []KernelChange{{"a", "1", "2"}, {"c", "", "3"}, {"gone", "7", ""}}},
		},
		{
			name: "baseline is the latest definitive status",
			history: []*Summary{
				run("r1", map[string][]string{"a:1": {"x=f"}}),
				run("r2", map[string][]string{"a:1": {"x=p"}}),
				run("r3", map[string][]string{"a:1": {"x=s"}}),
			},
			cur:  run("r4", map[string][]string{"a:1": {"x=f"}}),
			want: want{prev: "r3", regressions: []string{"a/x"}},
		},
		{
			name: "later runs and other shards are ignored",
			history: []*Summary{
				func() *Summary { s := run("r0", map[string][]string{"a:1": {"x=f"}}); s.Shard = "1/2"; return s }(),
				run("r1", map[string][]string{"a:1": {"x=p"}}),
				run("r9", map[string][]string{"a:1": {"x=f"}}),
			},
			cur:  run("r2", map[string][]string{"a:1": {"x=f"}}),
			want: want{prev: "r1", regressions: []string{"a/x"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := Compare(tt.history, tt.cur)
			got := want{prev: ch.Previous, regressions: names(ch.Regressions), fixes: names(ch.Fixes), flaky: names(ch.Flaky),
				failing: names(ch.Failing), errors: names(ch.Errors), added: names(ch.New), removed: names(ch.Removed), kernels: ch.Kernels}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			if ch.Regressed() != (len(tt.want.regressions) > 0) {
				t.Errorf("Regressed() = %v", ch.Regressed())
			}
		})
	}
}

func TestCompareGuestErrors(t *testing.T) {
	cur := run("r2", map[string][]string{"a:1": {"x=p"}})
	cur.Guests[0].Error = "prepare: apt-get download failed"
	cur.Guests[0].Setup = []Spec{{ID: "[BeforeSuite]", Status: Error, Reason: "harness error: boot"}}
	ch := Compare(nil, cur)
	if got := names(ch.Errors); !reflect.DeepEqual(got, []string{"a/", "a/[BeforeSuite]"}) {
		t.Errorf("errors %q", got)
	}
	if !cur.HarnessErrors() || Verdict(&Summary{Guests: cur.Guests, Changes: ch}) != "2 harness errors" {
		t.Errorf("verdict %q", Verdict(&Summary{Guests: cur.Guests, Changes: ch}))
	}
}

func TestApplyRetry(t *testing.T) {
	tests := []struct {
		first, retry Status // retry "" = not re-run
		want         Status
		flaky        bool
	}{
		{Failed, Passed, Passed, true},
		{Error, Passed, Passed, true},
		{Failed, Failed, Failed, false},
		{Failed, Error, Failed, false},
		{Error, Failed, Failed, false},
		{Error, Error, Error, false},
		{Failed, "", Failed, false},
		{Passed, Failed, Passed, false}, // never re-run a pass
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s then %s", tt.first, tt.retry), func(t *testing.T) {
			specs := []Spec{{ID: "x", Status: tt.first, Reason: "first"}}
			var retried []Spec
			if tt.retry != "" {
				retried = []Spec{{ID: "x", Status: tt.retry, Reason: "second"}}
			}
			ApplyRetry(specs, retried)
			s := specs[0]
			if s.Status != tt.want || s.Flaky != tt.flaky {
				t.Errorf("got %s flaky=%v, want %s flaky=%v", s.Status, s.Flaky, tt.want, tt.flaky)
			}
			if (s.Retry != nil) != (tt.retry != "" && tt.first != Passed) {
				t.Errorf("retry recorded: %+v", s.Retry)
			}
		})
	}
	if got := NeedsRetry([]Spec{{ID: "a", Status: Passed}, {ID: "b", Status: Failed}, {ID: "c", Status: Error}, {ID: "d", Status: Skipped}}); !reflect.DeepEqual(got, []string{"b", "c"}) {
		t.Errorf("NeedsRetry = %q", got)
	}
}
