package rsp

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// The fake stub with silentStops behaves like QEMU >= 8.1: a packet that
// reaches a running VM stops it and is lost, with no stop reply. A client
// told that the VM was resumed behind its back (NoteResumed) interrupts it
// first and is answered.
func TestResumedVMIsInterruptedBeforeARequest(t *testing.T) {
	for _, tc := range []struct {
		name    string
		silent  bool // QEMU >= 8.1
		running bool // the VM still runs (else: it stopped silently, e.g. a QMP stop)
	}{
		{"QEMU 7.2, running", false, true},
		{"QEMU 7.2, stopped meanwhile", false, false},
		{"QEMU 8.1+, running", true, true},
		{"QEMU 8.1+, stopped without a stop reply", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stub := newFakeStub(t)
			stub.silentStops = tc.silent
			c := connectFake(t, stub, Options{})
			c.NoteResumed()
			stub.setRunning(tc.running)
			if !c.MayBeRunning() || c.Running() {
				t.Fatalf("MayBeRunning() %v, Running() %v", c.MayBeRunning(), c.Running())
			}
			v, err := c.ReadRegister(tctx(t), "pc")
			if err != nil || v != 0xfff0 {
				t.Fatalf("ReadRegister(pc) = %#x, %v", v, err)
			}
			if n := stub.stat(func(s *fakeStub) int { return s.interrupts }); n != 1 {
				t.Errorf("%d interrupts sent, want 1", n)
			}
			if n := c.Stops(); n != 0 || c.MayBeRunning() {
				t.Errorf("%d stop replies queued (the interrupt's must be consumed), MayBeRunning() %v", n, c.MayBeRunning())
			}
			// The next request goes straight out.
			if _, err := c.ReadRegister(tctx(t), "pc"); err != nil {
				t.Fatal(err)
			}
			if n := stub.stat(func(s *fakeStub) int { return s.interrupts }); n != 1 {
				t.Errorf("%d interrupts sent after a settled VM, want 1", n)
			}
		})
	}
}

// A breakpoint hit that QEMU 7.2 reported while the VM ran behind the
// client's back stays queued for WaitStop; only the interrupt's SIGINT stop
// is consumed.
func TestSettleKeepsABreakpointStop(t *testing.T) {
	stub := newFakeStub(t)
	c := connectFake(t, stub, Options{})
	c.NoteResumed()
	stub.setRunning(true)
	stub.sendStop("T05thread:01;swbreak:;")
	if _, err := c.ReadMemory(tctx(t), 0x1000, 0x2000); err != nil {
		t.Fatal(err)
	}
	stops := c.DrainStops()
	if len(stops) != 1 || stops[0].Signal != 5 || !stops[0].SWBreak {
		t.Errorf("queued stops %+v, want the breakpoint's T05", stops)
	}
}

// Without target.xml there is no probe: the client cannot tell when the
// interrupt has been handled, and refuses rather than risk a lost request.
func TestSettleWithoutProbeFails(t *testing.T) {
	stub := newFakeStub(t)
	stub.features = "PacketSize=1000;vContSupported+"
	c := connectFake(t, stub, Options{})
	c.NoteResumed()
	if _, err := c.ReadMemory(tctx(t), 0, 16); !errors.Is(err, ErrMayBeRunning) {
		t.Errorf("ReadMemory: %v, want ErrMayBeRunning", err)
	}
}

// A monitor command that resumes the VM (cont, c, loadvm) is a resumption
// behind the stub's back; others are not.
func TestMonitorContMayResume(t *testing.T) {
	stub := newFakeStub(t)
	stub.silentStops = true
	c := connectFake(t, stub, Options{})
	for _, tc := range []struct {
		cmd     string
		resumes bool
	}{{"info registers", false}, {"cont", true}, {"xp /4xb 0", false}, {"c", true}, {"loadvm snap", true}, {"continue-not", false}} {
		if _, err := c.Monitor(tctx(t), tc.cmd); err != nil {
			t.Fatal(err)
		}
		if got := c.MayBeRunning(); got != tc.resumes {
			t.Errorf("after %q MayBeRunning() = %v, want %v", tc.cmd, got, tc.resumes)
		}
		if _, err := c.ReadRegister(tctx(t), "pc"); err != nil { // settles
			t.Fatal(err)
		}
	}
}

// QEMU 10.2 offers PacketSize=20020 and answers m up to 0x10010 bytes:
// the client reads in chunks of that size with a window of about 32 KiB of
// data (2 requests), and writes M packets that fit the packet size.
func TestLargePacketSize(t *testing.T) {
	for _, tc := range []struct {
		name      string
		features  string
		maxRead   int
		chunk     int
		maxWindow int
	}{
		{"QEMU 7.2", "PacketSize=1000;qXfer:features:read+;vContSupported+", 0x800, 0x800, 16},
		{"QEMU 10.2", "PacketSize=20020;qXfer:features:read+;vContSupported+;multiprocess+", 0x10010, 0x10010, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stub := newFakeStub(t)
			stub.features = tc.features
			stub.maxRead = tc.maxRead
			c := connectFake(t, stub, Options{})
			if got := c.readChunk(); got != tc.chunk {
				t.Fatalf("readChunk() = %#x, want %#x", got, tc.chunk)
			}
			const addr, n = 0x1234, 1<<20 - 0x3000
			// The stub answers a request only once the window's worth after
			// it has arrived: a client that pipelines less stalls and falls
			// back (caught below), one that pipelines more is caught by maxOutM.
			stub.gate, stub.gateAll = tc.maxWindow, len(readPlan(addr, n, tc.chunk, tc.maxWindow))
			got, err := c.ReadMemory(tctx(t), addr, n)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, stub.mem[addr:addr+n]) {
				t.Fatal("ReadMemory returned other bytes than the stub's")
			}
			biggest, count := 0, 0
			for _, p := range stub.receivedPackets() {
				if p[0] != 'm' {
					continue
				}
				count++
				var a, l uint64
				if _, err := fmt.Sscanf(p, "m%x,%x", &a, &l); err != nil {
					t.Fatal(err)
				}
				biggest = max(biggest, int(l))
			}
			if biggest != tc.chunk || count > n/(tc.chunk-tc.maxWindow)+2 {
				t.Errorf("%d m requests, the largest %#x bytes; want about %d of at most %#x", count, biggest, n/tc.chunk, tc.chunk)
			}
			if out := stub.stat(func(s *fakeStub) int { return s.maxOutM }); out != tc.maxWindow {
				t.Errorf("%d m requests outstanding at most, want %d", out, tc.maxWindow)
			}
			if c.pipelineOff.Load() {
				t.Error("the client gave up pipelining")
			}
			data := bytes.Repeat([]byte{0xa5, 0x5a, 0x0f}, 100000)
			if err := c.WriteMemory(tctx(t), 0x40, data); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(stub.mem[0x40:0x40+len(data)], data) {
				t.Error("WriteMemory wrote other bytes")
			}
			if fl := stub.stat(func(s *fakeStub) int { return s.maxFrameLen }); fl >= c.PacketSize() || fl < c.PacketSize()-64 {
				t.Errorf("longest frame sent %d characters, PacketSize %d: want just below it", fl, c.PacketSize())
			}
		})
	}
}
