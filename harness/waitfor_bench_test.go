package harness

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// BenchmarkBreakAndRun measures one breakpoint spec's core on a real guest:
// Break, Start the command, WaitFor, then clear, resume and collect the
// command. "hit" runs mkdir against do_mkdirat; "not-hit" runs true against
// do_rmdir, which it never reaches, and must cost about as much as "hit"
// (before WaitFor, it cost the whole deadline: 60 s in suites/linux). The
// guest boots once (not timed).
//
//	go test -run '^$' -bench 'BreakAndRun' -benchtime 10x ./harness
func BenchmarkBreakAndRun(b *testing.B) {
	spec := benchGuest(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	b.Cleanup(cancel)
	t, err := Boot(ctx, Options{Spec: spec, Accel: "tcg"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { t.Close() })
	for _, bc := range []struct {
		name, fn string
		cmd      func(i int) string
		hit      bool
	}{
		{"hit", "do_mkdirat", func(i int) string { return fmt.Sprintf("mkdir /tmp/kspec-bench-%d", i) }, true},
		{"not-hit", "do_rmdir", func(int) string { return "true" }, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				i++
				bp, err := t.Break(ctx, bc.fn)
				if err != nil {
					b.Fatal(err)
				}
				p, err := t.Start(ctx, bc.cmd(i))
				if err != nil {
					b.Fatal(err)
				}
				wctx, wcancel := context.WithTimeout(ctx, 60*time.Second) // suites/linux's deadline
				_, err = bp.WaitFor(wctx, p)
				wcancel()
				if bc.hit && err != nil || !bc.hit && !errors.Is(err, ErrCommandFinished) {
					b.Fatalf("WaitFor: %v", err)
				}
				if err := t.ClearBreakpoints(ctx); err != nil {
					b.Fatal(err)
				}
				if _, err := t.Collect(ctx, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
