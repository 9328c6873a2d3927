package guest

import (
	"fmt"
	"strings"
	"testing"
)

func TestCondenseKernelRuns(t *testing.T) {
	linux, err := ProfileFor(OSLinux)
	if err != nil {
		t.Fatal(err)
	}
	kmsg := func(i int) string { return fmt.Sprintf("[   12.%06d] kspec-noise %d", i, i) }
	run := func(from, n int) []string {
		var l []string
		for i := from; i < from+n; i++ {
			l = append(l, kmsg(i))
		}
		return l
	}
	lines := func(parts ...any) string {
		var l []string
		for _, p := range parts {
			switch p := p.(type) {
			case string:
				l = append(l, p)
			case []string:
				l = append(l, p...)
			}
		}
		return strings.Join(l, "\n")
	}
	for _, tc := range []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"no kernel messages", lines("kspec login: root", "Password: ", "Login incorrect"), 100,
			lines("kspec login: root", "Password: ", "Login incorrect")},
		{"a short run stays", lines("login: root", run(0, 3), "Login incorrect"), 1000,
			lines("login: root", run(0, 3), "Login incorrect")},
		{"a long run is counted and its end kept", lines("kspec login: root", "Password: ", run(0, 40), "Login incorrect"), 1000,
			lines("kspec login: root", "Password: ", "[... 38 kernel messages left out ...]", run(38, 2), "Login incorrect")},
		{"runs on both sides", lines(run(0, 5), "$ cmd", run(5, 5)), 1000,
			lines("[... 3 kernel messages left out ...]", run(3, 2), "$ cmd", "[... 3 kernel messages left out ...]", run(8, 2))},
		{"log levels and caller ids count as kernel messages", lines("<3>[    1.000000] a", "[    1.000001][    T1] b", " [    1.000002] c", "[    1.000003] d", "x"), 1000,
			lines("[... 2 kernel messages left out ...]", " [    1.000002] c", "[    1.000003] d", "x")},
		{"text mentioning a time is not a kernel message", lines("[1.5] done", "[1.5] done", "[1.5] done", "[1.5] done", "[1.5] done"), 1000,
			lines("[1.5] done", "[1.5] done", "[1.5] done", "[1.5] done", "[1.5] done")},
		{"cut to max at a line start", lines("first line", "second line", "third"), 15, lines("third")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := condenseKernelRuns(tc.in, tc.max, isKernelMessage(linux.KernelLine)); got != tc.want {
				t.Errorf("condenseKernelRuns:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}
