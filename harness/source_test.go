package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// gdbInfoLine matches gdb's `info line` answer.
var gdbInfoLine = regexp.MustCompile(`Line (\d+) of "([^"]+)"`)

// On the real guest with a prepared source tree (`kspec guest prepare
// --source`; skipped, saying so, without one): a do_mkdirat hit names the
// file and line gdb's `info line do_mkdirat` names, with that line's text
// as the file in the tree has it; the backtrace's frames have their text;
// the failure report shows the lines around the stop.
func TestSourceLinesOnRealGuest(t *testing.T) {
	tg := bootForTest(t, Options{})
	tree, err := tg.Source()
	if err != nil {
		msg := fmt.Sprintf("no source tree for the guest (%v); kspec guest prepare --source makes one", err)
		if os.Getenv("KSPEC_TEST_SOURCE") == "1" { // scripts/test prepared it: it must be used
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bp, err := tg.Break(ctx, "do_mkdirat")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tg.Start(ctx, "mkdir /tmp/src"); err != nil {
		t.Fatal(err)
	}
	hit, err := bp.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, "gdb", "-batch", "-ex", "info line do_mkdirat", tg.spec.Symbols).CombinedOutput()
	m := gdbInfoLine.FindStringSubmatch(string(out))
	if err != nil || m == nil {
		t.Fatalf("gdb info line: %v\n%s", err, out)
	}
	if line, _ := strconv.Atoi(m[1]); hit.File != m[2] || hit.Line != line {
		t.Errorf("hit at %s:%d, gdb says %s:%s", hit.File, hit.Line, m[2], m[1])
	}
	path, err := tree.Path(hit.File)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Split(string(data), "\n")[hit.Line-1]; hit.Source != want || want == "" {
		t.Errorf("hit.Source = %q, line %d of %s is %q", hit.Source, hit.Line, path, want)
	}
	frames, err := hit.Backtrace(ctx)
	if err != nil {
		t.Fatal(err)
	}
	text := tg.FramesSource(frames)
	for i, f := range frames {
		t.Logf("#%d %s at %s:%d: %s", i, f.Function, f.File, f.Line, text[i])
		if text[i] == "" {
			t.Errorf("frame #%d (%s at %s:%d) has no source text", i, f.Function, f.File, f.Line)
		}
	}
	r := tg.SpecReport(ctx)
	if want := fmt.Sprintf("=> %5d  %s", hit.Line, hit.Source); !strings.Contains(r.Source, want) || !strings.Contains(r.LastStop, hit.Source) {
		t.Errorf("report source:\n%s\nlast stop: %s\nwant a line %q", r.Source, r.LastStop, want)
	}
}
