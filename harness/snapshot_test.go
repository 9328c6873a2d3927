package harness

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kspec/kspec/guest"
)

// bootForTest boots the default guest (or $KSPEC_GUEST) for a real-guest
// test; a missing guest or QEMU fails the test with the fix, or skips it
// with KSPEC_SKIP_MISSING=1.
func bootForTest(tb testing.TB, opts Options) *Target {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if opts.Accel == "" {
		opts.Accel = os.Getenv("KSPEC_ACCEL")
	}
	t, err := Boot(ctx, opts)
	if err != nil {
		if errors.Is(err, ErrMissing) && os.Getenv(SkipMissingEnv) == "1" {
			tb.Skipf("%s=1: %v", SkipMissingEnv, err)
		}
		tb.Fatal(err)
	}
	tb.Cleanup(func() { t.Close() })
	return t
}

func mustShell(tb testing.TB, ctx context.Context, t *Target, cmd string) guest.Result {
	tb.Helper()
	res, err := t.Shell(ctx, cmd)
	if err != nil {
		tb.Fatalf("%s: %v", cmd, err)
	}
	return res
}

// TestResetRealGuest checks what Reset promises: the guest's state, kspec's
// breakpoints, watchpoints and stop queue, the run state and the console all
// come back to the baseline; a named snapshot restores what it saved; both
// snapshot methods do it.
func TestResetRealGuest(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a guest")
	}
	tg := bootForTest(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := tg.Reset(ctx); err == nil {
		t.Fatal("Reset without a baseline succeeded")
	}
	if err := tg.SaveBaseline(ctx); err != nil {
		t.Fatal(err)
	}
	for _, m := range []SnapshotMethod{SnapshotHMP, SnapshotJob} {
		t.Run(m.String(), func(t *testing.T) {
			tg.SetSnapshotMethod(m)
			if got := tg.SnapshotMethod(); got != m {
				t.Fatalf("method %v, want %v", got, m)
			}
			// Change the guest, arm a breakpoint and a watchpoint, leave the
			// guest stopped at the breakpoint with a stop queued, and a
			// command uncollected.
			mustShell(t, ctx, tg, "echo changed > /tmp/kspec-reset; hostname changed")
			bp, err := tg.Break(ctx, "do_mkdirat")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tg.Watch(ctx, "init_uts_ns.name.nodename", WatchWrite); err != nil {
				t.Fatal(err)
			}
			if _, err := tg.Start(ctx, "mkdir /tmp/kspec-reset-dir; echo after-mkdir > /tmp/kspec-after"); err != nil {
				t.Fatal(err)
			}
			if _, err := bp.Wait(ctx); err != nil {
				t.Fatal(err)
			}
			if tg.gdb.Running() {
				t.Fatal("guest runs at the hit")
			}

			start := time.Now()
			if err := tg.Reset(ctx); err != nil {
				t.Fatal(err)
			}
			t.Logf("reset with %v after a hit: %v", m, time.Since(start))

			if !tg.gdb.Running() {
				t.Error("RSP client thinks the guest is stopped after Reset")
			}
			st, err := tg.QMP().Status(ctx)
			if err != nil || !st.Running {
				t.Errorf("QMP status after Reset: %+v, %v", st, err)
			}
			if bp.active || bp.Hit() || len(tg.breakpoints) != 0 || len(tg.insp.watchpoints) != 0 {
				t.Errorf("debug state survived: bp active %v hit %v, %d breakpoints, %d watchpoints", bp.active, bp.Hit(), len(tg.breakpoints), len(tg.insp.watchpoints))
			}
			// The breakpoint is gone in QEMU too: mkdir and hostname run through.
			res := mustShell(t, ctx, tg, "cat /tmp/kspec-reset /tmp/kspec-after 2>&1; ls -d /tmp/kspec-reset-dir 2>&1; hostname; mkdir /tmp/kspec-reset-dir && hostname other && echo ran")
			for _, want := range []string{"No such file", "kspec\n", "ran"} {
				if !strings.Contains(res.Output, want) {
					t.Errorf("after Reset: output %q lacks %q", res.Output, want)
				}
			}
			if strings.Contains(res.Output, "changed") || strings.Contains(res.Output, "after-mkdir") {
				t.Errorf("the old timeline leaked into the new one: %q", res.Output)
			}
			if n := tg.gdb.Stops(); n != 0 {
				t.Errorf("%d stop replies queued", n)
			}
			if tr := tg.SpecTranscript(); strings.Contains(tr, "changed") || !strings.Contains(tr, "$ cat /tmp/kspec-reset") {
				t.Errorf("spec transcript after Reset:\n%s", tr)
			}

			// A named snapshot brings back what it saved.
			mustShell(t, ctx, tg, "echo named > /tmp/kspec-named")
			if err := tg.SaveSnapshot(ctx, "named"); err != nil {
				t.Fatal(err)
			}
			if err := tg.SaveSnapshot(ctx, "named"); err != nil { // replaces
				t.Fatal(err)
			}
			mustShell(t, ctx, tg, "rm /tmp/kspec-named")
			if err := tg.RestoreSnapshot(ctx, "named"); err != nil {
				t.Fatal(err)
			}
			if res := mustShell(t, ctx, tg, "cat /tmp/kspec-named"); res.Output != "named\n" {
				t.Errorf("after restoring the named snapshot: %q", res.Output)
			}
			if err := tg.DeleteSnapshot(ctx, "named"); err != nil {
				t.Fatal(err)
			}
			if err := tg.RestoreSnapshot(ctx, "named"); err == nil {
				t.Error("restoring a deleted snapshot succeeded")
			}
			// ... and the guest still works after the failed restore.
			if err := tg.Reset(ctx); err != nil {
				t.Fatal(err)
			}

			// A guest resumed behind the debugger's back (QMP stop, then
			// cont) is reset all the same, and no stale stop reply is left
			// to confuse the next spec.
			if err := tg.QMP().Stop(ctx); err != nil {
				t.Fatal(err)
			}
			waitStops(t, tg, 1)
			if err := tg.QMP().Cont(ctx); err != nil {
				t.Fatal(err)
			}
			if err := tg.Reset(ctx); err != nil {
				t.Fatal(err)
			}
			if !tg.gdb.Running() || tg.gdb.Stops() != 0 {
				t.Fatalf("after Reset: running %v, %d stops queued", tg.gdb.Running(), tg.gdb.Stops())
			}
			if err := tg.QMP().Stop(ctx); err != nil {
				t.Fatal(err)
			}
			waitStops(t, tg, 1)
			time.Sleep(200 * time.Millisecond)
			if n := tg.gdb.Stops(); n != 1 {
				t.Errorf("a QMP stop after Reset queued %d stop replies, want 1", n)
			}
			if err := tg.Reset(ctx); err != nil { // from a QMP-paused guest
				t.Fatal(err)
			}
			mustShell(t, ctx, tg, "true")
		})
	}
}

// TestArgsRealGuest reads a breakpoint's arguments and the memory they
// point to.
func TestArgsRealGuest(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a guest")
	}
	tg := bootForTest(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bp, err := tg.Break(ctx, "do_mkdirat")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tg.Start(ctx, "mkdir /tmp/kspec-args"); err != nil {
		t.Fatal(err)
	}
	hit, err := bp.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// do_mkdirat(int dfd, struct filename *name, umode_t mode)
	dfd, err := hit.Arg(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if int32(dfd) != -100 { // AT_FDCWD
		t.Errorf("dfd = %d, want AT_FDCWD", int32(dfd))
	}
	name, err := hit.Arg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	ptr, err := tg.ReadUint64(ctx, name) // filename->name
	if err != nil {
		t.Fatal(err)
	}
	s, err := tg.ReadCString(ctx, ptr, 4096)
	if err != nil || s != "/tmp/kspec-args" {
		t.Errorf("filename %q, %v", s, err)
	}
	if _, err := tg.ReadCString(ctx, ptr, 4); err == nil {
		t.Error("ReadCString beyond max succeeded")
	}
	if mode, err := hit.Arg(ctx, 2); err != nil || mode&0o7777 != 0o777 { // busybox: mkdir(path, 0777), then chmod for -m
		t.Errorf("mode %o, %v", mode, err)
	}
	if _, err := hit.Arg(ctx, 6); !errors.Is(err, ErrBadInput) {
		t.Errorf("Arg(6): %v", err)
	}
	if _, err := tg.ReadMemory(ctx, 0, 8); err == nil {
		t.Error("reading address 0 succeeded")
	}
	if err := tg.ClearBreakpoints(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := hit.Arg(ctx, 0); err == nil {
		t.Error("Arg after the guest resumed succeeded")
	}
	if _, err := tg.ReadMemory(ctx, ptr, 8); err == nil {
		t.Error("ReadMemory of a running guest succeeded")
	}
}

// The restore benchmarks compare kspec's per-spec Reset (restore + RSP and
// console resync) with raw restores of the same snapshot in the same run:
//
//	go test -run '^$' -bench Restore -benchtime 20x ./harness
//
// The goal is Reset <= 1.25 x the fastest raw restore. A loadvm flushes
// QEMU's translated code (cpu_common_post_load calls tb_flush), so the first
// thing the guest does afterwards runs while TCG retranslates the kernel and
// shell paths it takes (~5000-7000 blocks, ~100 ms here). A bare loadvm does
// not pay that; a restore followed by any guest command does, so
// raw-hmp-loadvm+first-command (a raw loadvm, then the cheapest proof that
// the guest's shell answers) is the floor for a usable restore.
func BenchmarkRestore(b *testing.B) {
	mem, _ := strconv.Atoi(os.Getenv("KSPEC_BENCH_MEMORY_MIB")) // e.g. 128, to compare guest RAM sizes
	tg := bootForTest(b, Options{MemoryMiB: mem})
	ctx := context.Background()
	if err := tg.SaveBaseline(ctx); err != nil {
		b.Fatal(err)
	}
	vmstate, devices := tg.machine.SnapshotNodes()
	mon := tg.QMP()
	b.Run("raw-hmp-loadvm", func(b *testing.B) {
		for b.Loop() {
			if err := mon.HMPLoadVM(ctx, BaselineSnapshot); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw-qmp-snapshot-load", func(b *testing.B) {
		for b.Loop() {
			if err := mon.SnapshotLoad(ctx, BaselineSnapshot, vmstate, devices); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw-hmp-loadvm+first-command", func(b *testing.B) {
		for b.Loop() {
			if err := mon.HMPLoadVM(ctx, BaselineSnapshot); err != nil {
				b.Fatal(err)
			}
			if err := tg.console.Sync(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, m := range []SnapshotMethod{SnapshotHMP, SnapshotJob} {
		b.Run("reset-"+m.String(), func(b *testing.B) {
			tg.SetSnapshotMethod(m)
			for b.Loop() {
				if err := tg.Reset(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	tg.SetSnapshotMethod(SnapshotAuto)
	b.Run("reset-after-hit", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			bp, err := tg.Break(ctx, "__do_sys_newuname")
			if err != nil {
				b.Fatal(err)
			}
			p, err := tg.Start(ctx, "uname")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := bp.Wait(ctx); err != nil {
				b.Fatal(err)
			}
			if err := tg.ClearBreakpoints(ctx); err != nil {
				b.Fatal(err)
			}
			if _, err := p.Wait(ctx); err != nil {
				b.Fatal(err)
			}
			if _, err := tg.Break(ctx, "do_rmdir"); err != nil { // left armed
				b.Fatal(err)
			}
			b.StartTimer()
			if err := tg.Reset(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("interleaved", func(b *testing.B) {
		// The same iteration times each variant once, so that load on the
		// machine hits them alike; ratios are reported against the fastest
		// raw restore.
		tg.SetSnapshotMethod(SnapshotAuto)
		var hmp, job, first, reset time.Duration
		for b.Loop() {
			t0 := time.Now()
			if err := mon.HMPLoadVM(ctx, BaselineSnapshot); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			if err := mon.SnapshotLoad(ctx, BaselineSnapshot, vmstate, devices); err != nil {
				b.Fatal(err)
			}
			t2 := time.Now()
			if err := mon.HMPLoadVM(ctx, BaselineSnapshot); err != nil {
				b.Fatal(err)
			}
			if err := tg.console.Sync(ctx); err != nil {
				b.Fatal(err)
			}
			t3 := time.Now()
			if err := tg.Reset(ctx); err != nil {
				b.Fatal(err)
			}
			t4 := time.Now()
			hmp, job, first, reset = hmp+t1.Sub(t0), job+t2.Sub(t1), first+t3.Sub(t2), reset+t4.Sub(t3)
		}
		n := float64(b.N)
		ms := func(d time.Duration) float64 { return float64(d) / n / 1e6 }
		b.ReportMetric(ms(hmp), "raw-hmp-ms")
		b.ReportMetric(ms(job), "raw-job-ms")
		b.ReportMetric(ms(first), "raw+cmd-ms")
		b.ReportMetric(ms(reset), "reset-ms")
		b.ReportMetric(float64(reset)/float64(min(hmp, job)), "reset/raw")
		b.ReportMetric(float64(reset)/float64(first), "reset/raw+cmd")
	})
	b.Run("console-sync", func(b *testing.B) {
		for b.Loop() {
			if err := tg.console.Sync(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("rsp-stop-forget-continue", func(b *testing.B) {
		for b.Loop() {
			if err := tg.stopAndForget(ctx); err != nil {
				b.Fatal(err)
			}
			if err := tg.gdb.Continue(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// waitStops waits until n stop replies are queued.
func waitStops(t *testing.T, tg *Target, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for tg.gdb.Stops() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d stop replies queued, want %d", tg.gdb.Stops(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
