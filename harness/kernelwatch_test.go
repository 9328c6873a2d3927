package harness

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kspec/kspec/kernel/linux"
	"github.com/kspec/kspec/qmp"
)

func TestKernelMatcher(t *testing.T) {
	tests := []struct {
		name       string
		lines      []string
		kind, want string // want: the detail; "" means no failure
	}{
		{"sysrq panic", []string{
			"[    3.599129] sysrq: Trigger a crash",
			"[    3.600620] Kernel panic - not syncing: sysrq triggered crash",
		}, "panic", "Kernel panic - not syncing: sysrq triggered crash"},
		{"panic split mid-word", []string{
			"[    3.600620] Kernel pan",
			"ic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)",
		}, "panic", "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)"},
		{"panic split with noise between", []string{
			"[    1.000000] Kernel panic - not",
			"[    1.000001] random: crng init done",
			" syncing: Attempted to kill init!",
		}, "", ""}, // pieces not adjacent: no false joins over unrelated lines
		{"null deref", []string{
			"[   12.000000] BUG: kernel NULL pointer dereference, address: 0000000000000000",
			"[   12.000001] #PF: supervisor write access in kernel mode",
			"[   12.000002] Oops: 0002 [#1] PREEMPT SMP NOPTI",
		}, "oops", "BUG: kernel NULL pointer dereference, address: 0000000000000000"},
		{"oops line", []string{"[ 5.1] Oops: 0000 [#1] SMP PTI"}, "oops", "Oops: 0000 [#1] SMP PTI"},
		{"gpf", []string{"[    7.123456] general protection fault, probably for non-canonical address 0xdead: 0000 [#1] SMP"},
			"oops", "general protection fault, probably for non-canonical address 0xdead: 0000 [#1] SMP"},
		{"gpf split", []string{"[    7.123456] general protection", " fault: 0000 [#1] SMP"},
			"oops", "general protection fault: 0000 [#1] SMP"},
		{"kernel BUG at", []string{"[ 9.000000] kernel BUG at mm/slub.c:123!"}, "oops", "kernel BUG at mm/slub.c:123!"},
		{"caller id stamp", []string{"[    4.000000][    T1] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000009"},
			"panic", "Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000009"},
		{"noise only", []string{
			"[    0.000000] Linux version 6.1.0-56-cloud-amd64",
			"[    1.000000] Call Trace:",
			"[    1.000001]  <TASK>",
			"[    2.000000] pvpanic: loaded",
			"[    2.100000] Some driver says DEBUG: ok",
			"[    2.200000] no BUG: here, mid-line",
		}, "", ""},
		{"interleaved noise before panic", []string{
			"[    1.0] audit: type=1400",
			"[    1.1] random: fast init done",
			"[    1.2] Kernel panic - not syncing: Fatal exception",
		}, "panic", "Kernel panic - not syncing: Fatal exception"},
		{"carriage returns and two lines in one", []string{
			"[    1.0] foo\r\n[    1.1] Kernel panic - not syncing: oom\r\n",
		}, "panic", "Kernel panic - not syncing: oom"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := kernelMatcher{msgs: linux.OS{}.Messages()}
			var kind, detail string
			for _, l := range tc.lines {
				if k, d, ok := m.Feed(l); ok {
					if kind != "" {
						t.Fatalf("second failure %s %q after %s %q", k, d, kind, detail)
					}
					kind, detail = k, d
				}
			}
			if kind != tc.kind || detail != tc.want {
				t.Errorf("got (%q, %q), want (%q, %q)", kind, detail, tc.kind, tc.want)
			}
		})
	}
}

// TestKernelMatcherReportsOnce checks that a failure's lines do not match
// again when more lines arrive.
func TestKernelMatcherReportsOnce(t *testing.T) {
	m := kernelMatcher{msgs: linux.OS{}.Messages()}
	n := 0
	for _, l := range []string{"[1.0] Oops: 0002 [#1] SMP", "[1.1] CPU: 0 PID: 1", "[1.2] Call Trace:", "[1.3]  <TASK>"} {
		if _, _, ok := m.Feed(l); ok {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d failures, want 1", n)
	}
}

func TestKernelWatch(t *testing.T) {
	w := newKernelWatch(linux.OS{}.Messages(), func(int) string { return "tail" })
	mark := w.mark()
	ctx, release := w.watch(context.Background(), mark)
	defer release()
	w.line("[ 1.0] Oops: 0002 [#1] SMP")
	<-ctx.Done() // the watch ends the wait, no timer involved
	if !errors.Is(context.Cause(ctx), errKernelFailed) {
		t.Fatalf("cause %v", context.Cause(ctx))
	}
	k := w.since(mark)
	if k == nil || k.Kind != "oops" || k.ConsoleTail != "tail" {
		t.Fatalf("since = %+v", k)
	}
	// The oops was reported: an operation that starts now does not see it.
	if k := w.since(w.mark()); k != nil {
		t.Fatalf("oops reported twice: %v", k)
	}
	// A panic event, then the console's panic line replaces its text; the
	// panic stays for every later operation.
	w.gotPanicEvent(qmp.Event{Name: "GUEST_PANICKED"})
	w.line("[ 2.0] Kernel panic - not syncing: Fatal exception")
	for i := 0; i < 2; i++ {
		k := w.since(w.mark())
		if k == nil || k.Kind != "panic" || k.Detail != "Kernel panic - not syncing: Fatal exception" {
			t.Fatalf("since = %+v", k)
		}
		if !strings.Contains(k.Error(), "kernel failure (panic): Kernel panic") {
			t.Errorf("Error() = %q", k.Error())
		}
	}
	// An event alone still says "kernel panic".
	w2 := newKernelWatch(linux.OS{}.Messages(), nil)
	w2.gotPanicEvent(qmp.Event{Name: "GUEST_PANICKED"})
	if k := w2.since(0); k == nil || !strings.Contains(k.Error(), "kernel panic") {
		t.Errorf("event only: %v", k)
	}
	// A released watch ends its goroutine and leaves the parent alone.
	ctx2, release2 := w2.watch(context.Background(), 0)
	<-ctx2.Done()
	release2()
}

// TestKernelWatchPanicEnd checks that the last line of a panic calls the hook once.
func TestKernelWatchPanicEnd(t *testing.T) {
	w := newKernelWatch(linux.OS{}.Messages(), nil)
	n := 0
	w.onPanicEnd = func() { n++ }
	w.line("[ 1.0] Kernel panic - not syncing: x")
	w.line("[ 1.1] ---[ end Kernel panic - not syncing: x ]---")
	w.line("[ 1.2] ---[ end Kernel panic - not syncing: x ]---")
	if n != 1 {
		t.Errorf("onPanicEnd called %d times", n)
	}
}

// TestKernelMatcherSecondOops checks that an oops after the end of the
// previous report is a failure of its own.
func TestKernelMatcherSecondOops(t *testing.T) {
	m := kernelMatcher{msgs: linux.OS{}.Messages()}
	n := 0
	for _, l := range []string{
		"[1.0] BUG: unable to handle page fault for address: 0000000000001000",
		"[1.1] Oops: 0000 [#1] SMP",
		"[1.2] Call Trace:",
		"[1.3] ---[ end trace 0000000000000000 ]---",
		"[2.0] general protection fault: 0000 [#2] SMP",
	} {
		if _, _, ok := m.Feed(l); ok {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d failures, want 2", n)
	}
}
