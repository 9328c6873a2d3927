package harness

import (
	"context"
	"testing"
	"time"
)

// The debugger benchmarks measure inspection at a real do_mkdirat hit: a
// backtrace from the live registers and stack, and the current task. The
// guest boots once per benchmark (not timed).
//
//	go test -run '^$' -bench 'Backtrace|CurrentTask' ./harness

func benchHit(b *testing.B) (*Target, *Hit) {
	b.Helper()
	spec := benchGuest(b)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	b.Cleanup(cancel)
	t, err := Boot(ctx, Options{Spec: spec, Accel: "tcg"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { t.Close() })
	bp, err := t.Break(ctx, "do_mkdirat")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := t.Start(ctx, "mkdir /tmp/kspec-bench"); err != nil {
		b.Fatal(err)
	}
	hit, err := bp.Wait(ctx)
	if err != nil {
		b.Fatal(err)
	}
	return t, hit
}

func BenchmarkBacktrace(b *testing.B) {
	t, hit := benchHit(b)
	ctx := context.Background()
	for b.Loop() {
		frames, err := t.backtrace(ctx, hit) // uncached
		if err != nil || len(frames) < 4 {
			b.Fatalf("%d frames, %v", len(frames), err)
		}
	}
}

func BenchmarkCurrentTask(b *testing.B) {
	t, hit := benchHit(b)
	ctx := context.Background()
	for b.Loop() {
		task, err := t.CurrentTask(ctx, hit.CPU)
		if err != nil || task.Comm != "mkdir" {
			b.Fatalf("%+v, %v", task, err)
		}
	}
}
