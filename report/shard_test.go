package report

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"testing"
)

func TestParseShard(t *testing.T) {
	tests := []struct {
		in      string
		want    Shard
		wantErr bool
	}{
		{"", Shard{}, false},
		{"1/1", Shard{1, 1}, false},
		{"2/3", Shard{2, 3}, false},
		{"0/3", Shard{}, true},
		{"4/3", Shard{}, true},
		{"1/0", Shard{}, true},
		{"a/b", Shard{}, true},
		{"3", Shard{}, true},
		{"-1/3", Shard{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseShard(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseShard(%q) = %v, %v", tt.in, got, err)
			}
			if err == nil && got.String() != tt.in {
				t.Errorf("String() = %q", got.String())
			}
		})
	}
}

// TestShardPartition: for every n, each spec is in exactly one shard, and the
// choice does not depend on the other specs.
func TestShardPartition(t *testing.T) {
	var ids []string
	for i := 0; i < 200; i++ {
		ids = append(ids, fmt.Sprintf("spec number %d does something", i))
	}
	for n := 1; n <= 7; n++ {
		count := map[string]int{}
		sizes := make([]int, n)
		for i := 1; i <= n; i++ {
			for _, id := range (Shard{i, n}).Select(ids) {
				count[id]++
				sizes[i-1]++
			}
		}
		for _, id := range ids {
			if count[id] != 1 {
				t.Errorf("n=%d: %q in %d shards", n, id, count[id])
			}
		}
		for i, sz := range sizes {
			if sz < len(ids)/n/2 {
				t.Errorf("n=%d: shard %d has %d of %d specs", n, i+1, sz, len(ids))
			}
		}
		// Stable: a spec's shard does not move when others come and go.
		for _, id := range ids[:20] {
			for i := 1; i <= n; i++ {
				if (Shard{i, n}).Has(id) != (len((Shard{i, n}).Select([]string{id})) == 1) {
					t.Errorf("n=%d: %q moved", n, id)
				}
			}
		}
	}
	// Pinned so that every machine agrees forever (FNV-1a 32).
	letters := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}
	for i, want := range []string{"[g]", "[a b d h]", "[c e f i j]"} {
		if got := (Shard{i + 1, 3}).Select(letters); fmt.Sprint(got) != want {
			t.Errorf("shard %d/3 of a..j = %v, want %s", i+1, got, want)
		}
	}
}

func TestFocusRegex(t *testing.T) {
	tests := []struct {
		id      string
		matches []string
		not     []string
	}{
		{"system calls mkdir hits do_mkdirat in fs/namei.c",
			[]string{"Linux kernel specs system calls mkdir hits do_mkdirat in fs/namei.c"},
			[]string{"Linux kernel specs system calls mkdir hits do_mkdirat in fs/namei.c too", "x Linux kernel specs system calls mkdir hits do_mkdirat in fs/namei.c"}},
		{"uses (parens) and .* chars", []string{"Linux kernel specs uses (parens) and .* chars"}, []string{"Linux kernel specs uses (parens) and XX chars"}},
		// SplitName took "[x]" for labels: the spec's text really ends in it.
		{"has brackets", []string{"Linux kernel specs has brackets", "Linux kernel specs has brackets [x]"}, []string{"Linux kernel specs has brackets and more"}},
	}
	for _, tt := range tests {
		re := regexp.MustCompile(FocusRegex("Linux kernel specs", tt.id))
		for _, m := range tt.matches {
			if !re.MatchString(m) {
				t.Errorf("%s does not match %q", re, m)
			}
		}
		for _, m := range tt.not {
			if re.MatchString(m) {
				t.Errorf("%s matches %q", re, m)
			}
		}
	}
}

func TestProgress(t *testing.T) {
	f, err := os.Open("testdata/fixture-a-verbose.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var p Progress
	var events []Event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if e, ok := p.Line(sc.Text()); ok {
			events = append(events, e)
		}
	}
	if p.Total != 8 || p.Done != 8 || p.Failed != 5 {
		t.Errorf("total %d done %d failed %d, want 8 8 5", p.Total, p.Done, p.Failed)
	}
	want := []string{
		"start  ",
		"setup [BeforeSuite] passed",
		"spec system calls reach their kernel implementation mkdir hits do_mkdirat in fs/namei.c passed",
		"spec system calls reach their kernel implementation rmdir hits do_rmdir in fs/namei.c FAILED",
		"spec system calls reach their kernel implementation uname hits __do_sys_newuname in kernel/sys.c FAILED",
		"spec system calls reach their kernel implementation reads a register while stopped FAILED",
		"spec system calls reach their kernel implementation does not panic the harness PANICKED",
		"spec system calls reach their kernel implementation waits for a breakpoint forever TIMEDOUT",
		"spec system calls reach their kernel implementation needs a FreeBSD guest skipped",
		"spec system calls reach their kernel implementation has [brackets] in its text passed",
		"setup [ReportAfterSuite] passed",
	}
	if len(events) != len(want) {
		t.Fatalf("%d events: %+v", len(events), events)
	}
	for i, e := range events {
		if got := e.Kind + " " + e.Text + " " + e.Result; got != want[i] {
			t.Errorf("event %d = %q, want %q", i, got, want[i])
		}
	}
}
