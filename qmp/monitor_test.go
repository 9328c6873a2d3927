package qmp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func dialFake(t *testing.T, f *fakeQMP) *Monitor {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := Dial(ctx, f.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestEncodeCommand(t *testing.T) {
	type custom struct {
		Execute   string `json:"execute"`
		Arguments struct {
			ID string `json:"id"`
		} `json:"arguments"`
	}
	var c custom
	c.Execute = "job-dismiss"
	c.Arguments.ID = "j1"
	tests := []struct {
		name     string
		cmd      any
		wantName string
		wantJSON string
		wantErr  bool
	}{
		{"string", "query-status", "query-status", `{"execute":"query-status"}`, false},
		{"Command no args", Command{Execute: "stop"}, "stop", `{"execute":"stop"}`, false},
		{"Command args", Command{Execute: "human-monitor-command", Arguments: map[string]any{"command-line": "info status"}},
			"human-monitor-command", `{"execute":"human-monitor-command","arguments":{"command-line":"info status"}}`, false},
		{"custom struct", c, "job-dismiss", `{"execute":"job-dismiss","arguments":{"id":"j1"}}`, false},
		{"raw map", map[string]any{"execute": "cont"}, "cont", `{"execute":"cont"}`, false},
		{"no execute", map[string]any{"arguments": 1}, "", "", true},
		{"not an object", 42, "", "", true},
		{"unmarshalable", Command{Execute: "x", Arguments: func() {}}, "", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name, raw, err := encodeCommand(tc.cmd)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("want error, got %q %s", name, raw)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if name != tc.wantName || string(raw) != tc.wantJSON {
				t.Fatalf("got %q %s, want %q %s", name, raw, tc.wantName, tc.wantJSON)
			}
		})
	}
}

func TestHMPFailed(t *testing.T) {
	tests := []struct {
		out  string
		fail bool
	}{
		{"", false},
		{"\r\n", false},
		{"warning: something odd\r\n", false},
		{"Error: Snapshot 'x' does not exist in one or more devices\r\n", true},
		{"Error: No block device can accept snapshots\r\n", true},
		{"Error -22 while loading VM state\r\n", true},
		{"warning: a\r\nError: b\r\n", true},
		{"Device 'd' does not have the requested snapshot\r\n", true},
	}
	for _, tc := range tests {
		if got := hmpFailed(tc.out); got != tc.fail {
			t.Errorf("hmpFailed(%q) = %v, want %v", tc.out, got, tc.fail)
		}
	}
}

func TestCheckTag(t *testing.T) {
	for tag, ok := range map[string]bool{"base": true, "kspec-1.2_x": true, "": false, "a b": false, "a\"b": false, "a\nb": false, `a\b`: false} {
		if err := checkTag(tag); (err == nil) != ok {
			t.Errorf("checkTag(%q) = %v, want ok=%v", tag, err, ok)
		}
	}
}

func TestRunDecodesReturnAndErrors(t *testing.T) {
	f := newFakeQMP(t, func(c *fakeConn, cmd fakeCmd) {
		switch cmd.Execute {
		case "query-status":
			cmd.ok(map[string]any{"status": "prelaunch", "running": false, "singlestep": false})
		case "human-monitor-command":
			cmd.ok("echo:" + cmd.Arguments["command-line"].(string))
		case "device_del":
			cmd.fail("DeviceNotFound", "Device 'x' not found")
		default:
			cmd.fail("CommandNotFound", fmt.Sprintf("The command %s has not been found", cmd.Execute))
		}
	})
	m := dialFake(t, f)
	ctx := t.Context()
	if m.Version() != "7.2.0" {
		t.Errorf("Version = %q", m.Version())
	}
	st, err := m.Status(ctx)
	if err != nil || st != (Status{Running: false, State: "prelaunch"}) {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	out, err := m.HumanMonitorCommand(ctx, "info status")
	if err != nil || out != "echo:info status" {
		t.Fatalf("HMP = %q, %v", out, err)
	}
	err = m.Run(ctx, "nosuch", nil)
	var ce *CommandError
	if !errors.As(err, &ce) || ce.Class != "CommandNotFound" || ce.Command != "nosuch" || !strings.Contains(ce.Desc, "nosuch") {
		t.Fatalf("nosuch: %#v", err)
	}
	err = m.Run(ctx, Command{Execute: "device_del", Arguments: map[string]any{"id": "x"}}, nil)
	if !errors.As(err, &ce) || ce.Class != "DeviceNotFound" || ce.Command != "device_del" || ce.Desc != "Device 'x' not found" {
		t.Fatalf("device_del: %#v", err)
	}
	// A wrong result type is a decode error naming the command.
	var wrong int
	if err := m.Run(ctx, "query-status", &wrong); err == nil || !strings.Contains(err.Error(), "query-status") {
		t.Fatalf("decode into int: %v", err)
	}
	// The monitor still works after all of that.
	if _, err := m.Status(ctx); err != nil {
		t.Fatal(err)
	}
}

// Pitfall 1: go-qemu's event channel is unbuffered. An event flood with a
// subscriber that never reads must not block commands.
func TestEventFloodWithUnreadSubscriberDoesNotBlockRun(t *testing.T) {
	const flood = 5000
	f := newFakeQMP(t, func(c *fakeConn, cmd fakeCmd) {
		if cmd.Execute == "flood" {
			for range flood {
				c.event("RESUME", nil)
			}
		}
		cmd.ok(map[string]any{})
	})
	m := dialFake(t, f)
	unread, cancelUnread := m.Subscribe(1)
	defer cancelUnread()
	all, cancelAll := m.Subscribe(flood + 10)
	defer cancelAll()

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for range 3 {
		if err := m.Run(ctx, "flood", nil); err != nil {
			t.Fatal(err)
		}
		// Drain the big subscriber between rounds.
		for range flood {
			select {
			case <-all:
			case <-ctx.Done():
				t.Fatal("events did not arrive")
			}
		}
	}
	if got := m.DroppedEvents(); got < 3*flood-1 {
		t.Fatalf("DroppedEvents = %d, want >= %d", got, 3*flood-1)
	}
	if len(unread) != 1 {
		t.Fatalf("unread subscriber holds %d events, want 1", len(unread))
	}
	// Events that arrive while nobody subscribed at all are discarded too.
	cancelUnread()
	cancelAll()
	if err := m.Run(ctx, "flood", nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-unread; !ok {
		t.Fatal("buffered event lost on unsubscribe")
	}
	if _, ok := <-unread; ok {
		t.Fatal("channel not closed after unsubscribe")
	}
}

// Pitfall 2: go-qemu's 64 KiB line limit. Long replies and events simply
// work; only a message over the (test-lowered) maximum ends the connection,
// with a clear error and without a hang.
func TestLongRepliesAndEvents(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	f := newFakeQMP(t, func(c *fakeConn, cmd fakeCmd) {
		switch cmd.Execute {
		case "big":
			c.event("BIG", map[string]any{"blob": big})
			cmd.ok(big)
		default:
			cmd.ok(map[string]any{})
		}
	})
	m := dialFake(t, f)
	w := m.NewWaiter("BIG")
	defer w.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	var s string
	if err := m.Run(ctx, "big", &s); err != nil || s != big {
		t.Fatalf("1 MiB reply: len %d, %v", len(s), err)
	}
	ev, err := w.Wait(ctx)
	if err != nil || ev.DataString("blob") != big {
		t.Fatalf("1 MiB event: %v", err)
	}
	if err := m.Run(ctx, "stop", nil); err != nil {
		t.Fatal(err)
	}
}

func TestOverLargeMessageEndsConnection(t *testing.T) {
	old := maxMessage
	maxMessage = 256 << 10
	t.Cleanup(func() { maxMessage = old })
	f := newFakeQMP(t, func(c *fakeConn, cmd fakeCmd) {
		if cmd.Execute == "huge" {
			cmd.ok(strings.Repeat("h", 1<<20))
			return
		}
		cmd.ok(map[string]any{})
	})
	m := dialFake(t, f)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := m.Run(ctx, "ping", nil); err != nil {
		t.Fatal(err)
	}
	var s string
	err := m.Run(ctx, "huge", &s)
	if !errors.Is(err, ErrMessageTooLarge) || !errors.Is(err, ErrClosed) || !strings.Contains(err.Error(), "huge") {
		t.Fatalf("got %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("took until the deadline")
	}
	if err := m.Run(ctx, "stop", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("after the oversized message: %v", err)
	}
}

// go-qemu's SocketMonitor hands its scanner's buffer to the command's
// goroutine and scans on, so a reply followed by a burst of events (as QEMU
// sends for jobs) is overwritten while decoded. Every reply here must be
// intact (run with -race).
func TestReplyFollowedByEventBurst(t *testing.T) {
	pad := strings.Repeat("e", 150)
	f := newFakeQMP(t, func(c *fakeConn, cmd fakeCmd) {
		n := cmd.Arguments["n"]
		var b strings.Builder
		fmt.Fprintf(&b, `{"return": {"n": %v, "pad": "%s"}, "id": %q}`+"\r\n", n, strings.Repeat("r", 100), cmd.ID.(string))
		for range 30 {
			fmt.Fprintf(&b, `{"event": "X", "data": {"pad": "%s"}, "timestamp": {"seconds": 1, "microseconds": 1}}`+"\r\n", pad)
		}
		c.mu.Lock()
		_, _ = c.Write([]byte(b.String()))
		c.mu.Unlock()
	})
	m := dialFake(t, f)
	sub, cancelSub := m.Subscribe(16)
	defer cancelSub()
	go func() {
		for range sub {
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for i := range 500 {
		var r struct {
			N   int    `json:"n"`
			Pad string `json:"pad"`
		}
		if err := m.Run(ctx, Command{Execute: "x", Arguments: map[string]any{"n": i}}, &r); err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		if r.N != i || len(r.Pad) != 100 {
			t.Fatalf("reply %d corrupted: %+v", i, r)
		}
	}
}

// Pitfall 3: no per-call timeout. A command QEMU answers late returns at
// the deadline; the monitor stays usable, the late reply is discarded
// rather than taken as the next command's, and no goroutine is left over.
func TestRunTimeoutKeepsMonitorAndDiscardsLateReply(t *testing.T) {
	f := newFakeQMP(t, func(c *fakeConn, cmd fakeCmd) {
		switch cmd.Execute {
		case "slow":
			time.Sleep(300 * time.Millisecond) // holds the server, like a busy QEMU
			cmd.ok("slow-result")
		case "hang":
			// never answer
		default:
			cmd.ok(cmd.Execute + "-result")
		}
	})
	before := runtime.NumGoroutine()
	m := dialFake(t, f)
	for _, name := range []string{"slow", "hang"} {
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		start := time.Now()
		err := m.Run(ctx, name, nil)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), name) {
			t.Fatalf("%s: got %v", name, err)
		}
		if d := time.Since(start); d > 250*time.Millisecond {
			t.Fatalf("%s: Run returned after %v", name, d)
		}
	}
	var s string
	if err := m.Run(t.Context(), "next", &s); err != nil || s != "next-result" {
		t.Fatalf("next command got %q, %v", s, err)
	}
	if m.OrphanReplies() != 1 {
		t.Fatalf("OrphanReplies = %d, want 1 (the slow reply)", m.OrphanReplies())
	}
	if m.Err() != nil {
		t.Fatal(m.Err())
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	// Every goroutine of the monitor ends. The fake server's connection
	// goroutine may still be alive, hence +1.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+1 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines leaked: %d > %d\n%s", runtime.NumGoroutine(), before+1, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Replies are matched by id, not by order.
func TestRepliesMatchedByID(t *testing.T) {
	var held []func()
	var mu sync.Mutex
	f := newFakeQMP(t, func(c *fakeConn, cmd fakeCmd) {
		mu.Lock()
		defer mu.Unlock()
		name := cmd.Execute
		held = append(held, func() { cmd.ok(name) })
		if len(held) == 3 { // answer in reverse order
			for i := len(held) - 1; i >= 0; i-- {
				held[i]()
			}
			held = nil
		}
	})
	m := dialFake(t, f)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, name := range []string{"a", "b", "c"} {
		wg.Go(func() {
			var s string
			if err := m.Run(ctx, name, &s); err != nil || s != name {
				t.Errorf("%s got %q, %v", name, s, err)
			}
		})
		time.Sleep(20 * time.Millisecond)
	}
	wg.Wait()
}

func TestDialRetriesUntilSocketAppears(t *testing.T) {
	f := newFakeQMP(t, nil)
	f.ln.Close() // not there yet
	f.wg.Wait()
	go func() {
		time.Sleep(300 * time.Millisecond)
		_ = removeIfExists(f.path)
		f.listen()
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	start := time.Now()
	m, err := Dial(ctx, f.path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("connected after %v, before the socket existed?", d)
	}
}

func TestDialErrorNamesSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.sock")
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err := Dial(ctx, path)
	if err == nil || !strings.Contains(err.Error(), path) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
}

// A server that accepts but never greets (QEMU serving another client)
// does not hang Dial.
func TestDialHandshakeHangIsBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mute.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			defer c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = Dial(ctx, path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Dial took %v", d)
	}
	if accepted.Load() == 0 {
		t.Fatal("never connected")
	}
}

func TestQuitConnectionCloseIsSuccess(t *testing.T) {
	for _, replyFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("reply=%v", replyFirst), func(t *testing.T) {
			f := newFakeQMP(t, func(c *fakeConn, cmd fakeCmd) {
				if cmd.Execute == "quit" {
					c.event("SHUTDOWN", map[string]any{"guest": false, "reason": "host-qmp-quit"})
					if replyFirst {
						cmd.ok(map[string]any{})
					}
					c.Close()
					return
				}
				cmd.ok(map[string]any{})
			})
			m := dialFake(t, f)
			w := m.NewWaiter("SHUTDOWN")
			defer w.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			if err := m.Quit(ctx); err != nil {
				t.Fatal(err)
			}
			if ev, err := w.Wait(ctx); err != nil || ev.DataString("reason") != "host-qmp-quit" {
				t.Fatalf("SHUTDOWN: %v %v", ev, err)
			}
			if err := m.Quit(ctx); !errors.Is(err, ErrClosed) {
				t.Fatalf("second Quit: %v", err)
			}
		})
	}
}

func TestWaiterSeesEventCausedByCommand(t *testing.T) {
	f := newFakeQMP(t, func(c *fakeConn, cmd fakeCmd) {
		switch cmd.Execute {
		case "stop":
			c.event("STOP", nil) // QEMU sends the event before the reply
		case "cont":
			c.event("RESUME", nil)
		}
		cmd.ok(map[string]any{})
	})
	m := dialFake(t, f)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	w := m.NewWaiter("STOP", "RESUME")
	defer w.Close()
	if err := m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Cont(ctx); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"STOP", "RESUME"} {
		ev, err := w.Wait(ctx)
		if err != nil || ev.Name != want {
			t.Fatalf("got %v %v, want %s", ev, err, want)
		}
		if ev.Timestamp.Unix() != 1700000000 || ev.Timestamp.Nanosecond() != 5000 {
			t.Fatalf("timestamp %v", ev.Timestamp)
		}
	}
	// WaitEvent for a later, externally caused event.
	go func() {
		time.Sleep(50 * time.Millisecond)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.conns[0].event("GUEST_PANICKED", map[string]any{"action": "pause"})
	}()
	ev, err := m.WaitEvent(ctx, "GUEST_PANICKED")
	if err != nil || ev.DataString("action") != "pause" {
		t.Fatalf("WaitEvent: %v %v", ev, err)
	}
	// WaitEvent ends with the context.
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	if _, err := m.WaitEvent(short, "NEVER"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitEvent timeout: %v", err)
	}
}

func TestConnectionLossEndsSubscriptionsAndCalls(t *testing.T) {
	f := newFakeQMP(t, func(c *fakeConn, cmd fakeCmd) {
		if cmd.Execute == "die" {
			c.Close()
			return
		}
		cmd.ok(map[string]any{})
	})
	m := dialFake(t, f)
	sub, cancelSub := m.Subscribe(4)
	defer cancelSub()
	w := m.NewWaiter("SHUTDOWN")
	defer w.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	err := m.Run(ctx, "die", nil)
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("got %v", err)
	}
	if _, ok := <-sub; ok {
		t.Fatal("subscription not closed")
	}
	if _, err := w.Wait(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Wait: %v", err)
	}
	// Subscribing after the end yields a closed channel, not a hang.
	late, cancelLate := m.Subscribe(1)
	defer cancelLate()
	if _, ok := <-late; ok {
		t.Fatal("late subscription open")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSnapshotJobsFake(t *testing.T) {
	type job struct{ id, typ, status, err string }
	var jobs []*job
	var dismissed []string
	f := newFakeQMP(t, func(c *fakeConn, cmd fakeCmd) {
		switch cmd.Execute {
		case "snapshot-save", "snapshot-load", "snapshot-delete":
			id := cmd.Arguments["job-id"].(string)
			j := &job{id: id, typ: cmd.Execute, status: "concluded"}
			if cmd.Arguments["tag"] == "missing" {
				j.err = "Snapshot 'missing' does not exist in one or more devices"
			}
			jobs = append(jobs, j)
			c.event("JOB_STATUS_CHANGE", map[string]any{"id": id, "status": "created"})
			cmd.ok(map[string]any{})
			// Conclusion arrives after the reply, as in QEMU.
			time.AfterFunc(20*time.Millisecond, func() {
				c.event("JOB_STATUS_CHANGE", map[string]any{"id": "someone-else", "status": "concluded"})
				c.event("JOB_STATUS_CHANGE", map[string]any{"id": id, "status": "concluded"})
			})
		case "query-jobs":
			var out []map[string]any
			for _, j := range jobs {
				e := map[string]any{"id": j.id, "type": j.typ, "status": j.status}
				if j.err != "" {
					e["error"] = j.err
				}
				out = append(out, e)
			}
			cmd.ok(out)
		case "job-dismiss":
			id := cmd.Arguments["id"].(string)
			dismissed = append(dismissed, id)
			for i, j := range jobs {
				if j.id == id {
					jobs = append(jobs[:i], jobs[i+1:]...)
					break
				}
			}
			cmd.ok(map[string]any{})
		default:
			cmd.ok(map[string]any{})
		}
	})
	m := dialFake(t, f)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	devs := []string{"kspec-scratch"}
	if err := m.SnapshotSave(ctx, "base", "kspec-scratch", devs); err != nil {
		t.Fatal(err)
	}
	if err := m.SnapshotLoad(ctx, "base", "kspec-scratch", devs); err != nil {
		t.Fatal(err)
	}
	err := m.SnapshotLoad(ctx, "missing", "kspec-scratch", devs)
	var je *JobError
	if !errors.As(err, &je) || je.Type != "snapshot-load" || !strings.Contains(je.Desc, "does not exist") {
		t.Fatalf("missing snapshot: %v", err)
	}
	if err := m.SnapshotDelete(ctx, "base", devs); err != nil {
		t.Fatal(err)
	}
	if len(dismissed) != 4 || len(jobs) != 0 {
		t.Fatalf("dismissed %v, left %d jobs", dismissed, len(jobs))
	}
	seen := map[string]bool{}
	for _, id := range dismissed {
		if seen[id] {
			t.Fatalf("job id %s reused", id)
		}
		seen[id] = true
	}
	// Argument checks happen before anything is sent.
	for _, tc := range []struct {
		tag, vm string
		devs    []string
	}{{"", "n", devs}, {"t", "", devs}, {"t", "n", nil}} {
		if err := m.SnapshotSave(ctx, tc.tag, tc.vm, tc.devs); err == nil {
			t.Errorf("SnapshotSave(%q, %q, %v) accepted", tc.tag, tc.vm, tc.devs)
		}
	}
}

func TestHMPSnapshotErrorsFake(t *testing.T) {
	f := newFakeQMP(t, func(c *fakeConn, cmd fakeCmd) {
		line := cmd.Arguments["command-line"].(string)
		switch line {
		case "loadvm missing":
			cmd.ok("Error: Snapshot 'missing' does not exist in one or more devices\r\n")
		default:
			cmd.ok("")
		}
	})
	m := dialFake(t, f)
	ctx := t.Context()
	if err := m.HMPSaveVM(ctx, "base"); err != nil {
		t.Fatal(err)
	}
	if err := m.HMPLoadVM(ctx, "base"); err != nil {
		t.Fatal(err)
	}
	err := m.HMPLoadVM(ctx, "missing")
	var he *HMPError
	if !errors.As(err, &he) || he.Command != "loadvm missing" || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("got %v", err)
	}
	if err := m.HMPSaveVM(ctx, "two words"); err == nil {
		t.Fatal("tag with a space accepted")
	}
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}
