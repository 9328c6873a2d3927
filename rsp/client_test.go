package rsp

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestConnectReadsTargetXMLWithInclude(t *testing.T) {
	stub := newFakeStub(t)
	c := connectFake(t, stub, Options{})
	if got := c.Architecture(); got != "fake:64" {
		t.Errorf("Architecture() = %q", got)
	}
	want := []Register{
		{Name: "r0", Num: 0, BitSize: 64, Type: "int64", Feature: "org.fake.core", offset: 0},
		{Name: "pc", Num: 1, BitSize: 64, Type: "code_ptr", Feature: "org.fake.more", offset: 8},
		{Name: "v0", Num: 2, BitSize: 128, Group: "vector", Type: "vec128", Feature: "org.fake.more", offset: 16},
		{Name: "flags", Num: 10, BitSize: 32, Feature: "org.fake.tail", offset: 32},
	}
	if got := c.Registers(); !slices.Equal(got, want) {
		t.Errorf("Registers() =\n%+v\nwant\n%+v", got, want)
	}
	if c.PacketSize() != 4096 {
		t.Errorf("PacketSize() = %d, want 4096 (PacketSize=1000 is hex)", c.PacketSize())
	}
	if c.Features()["multiprocess"] != "+" {
		t.Errorf("Features() = %v", c.Features())
	}
}

func TestInitialStopConsumed(t *testing.T) {
	stub := newFakeStub(t)
	stub.initialStop = "T02thread:01;"
	c := connectFake(t, stub, Options{})
	if n := c.Stops(); n != 0 {
		t.Errorf("Stops() = %d after Connect, want the initial T02 consumed", n)
	}
	if c.Running() {
		t.Error("Running() after Connect")
	}
	if v, err := c.ReadRegister(tctx(t), "pc"); err != nil || v != 0xfff0 {
		t.Errorf("ReadRegister(pc) = %#x, %v", v, err)
	}
}

func TestUnsolicitedStopBeforeReply(t *testing.T) {
	stub := newFakeStub(t)
	c := connectFake(t, stub, Options{})
	stub.mu.Lock()
	stub.stopBefore = map[string]string{"p0": "T02thread:02;"}
	stub.mu.Unlock()
	v, err := c.ReadRegister(tctx(t), "r0")
	if err != nil || v != 0x8877665544332211 {
		t.Fatalf("ReadRegister(r0) = %#x, %v", v, err)
	}
	s, err := c.WaitStop(tctx(t))
	if err != nil || s.Raw != "T02thread:02;" || s.Thread != 2 || s.Signal != 2 {
		t.Errorf("WaitStop() = %+v, %v", s, err)
	}
}

func TestRegisters(t *testing.T) {
	stub := newFakeStub(t)
	c := connectFake(t, stub, Options{})
	ctx := tctx(t)
	if v, err := c.ReadRegister(ctx, "flags"); err != nil || v != 2 {
		t.Errorf("ReadRegister(flags) = %#x, %v", v, err)
	}
	if _, err := c.ReadRegister(ctx, "v0"); err == nil {
		t.Error("ReadRegister(v0) of a 128-bit register succeeded")
	}
	if b, err := c.ReadRegisterBytes(ctx, "v0"); err != nil || len(b) != 16 || b[15] != 15 {
		t.Errorf("ReadRegisterBytes(v0) = %x, %v", b, err)
	}
	if err := c.WriteRegister(ctx, "pc", 0xdeadbeef); err != nil {
		t.Fatal(err)
	}
	if v, err := c.ReadRegister(ctx, "pc"); err != nil || v != 0xdeadbeef {
		t.Errorf("after P, ReadRegister(pc) = %#x, %v", v, err)
	}
	if err := c.WriteRegister(ctx, "flags", 1<<32); err == nil {
		t.Error("WriteRegister of a too-wide value succeeded")
	}
	if _, err := c.ReadRegister(ctx, "nosuch"); !errors.Is(err, ErrNoRegister) {
		t.Errorf("ReadRegister(nosuch) error = %v", err)
	}
	all, err := c.ReadAllRegisters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := all["pc"]; !bytes.Equal(got, []byte{0xef, 0xbe, 0xad, 0xde, 0, 0, 0, 0}) {
		t.Errorf("ReadAllRegisters()[pc] = %x", got)
	}
	if len(all["v0"]) != 16 {
		t.Errorf("ReadAllRegisters()[v0] = %x", all["v0"])
	}
	if _, ok := all["flags"]; ok {
		t.Error("flags is beyond the g reply but present")
	}
}

func TestErrorReplies(t *testing.T) {
	stub := newFakeStub(t)
	c := connectFake(t, stub, Options{})
	ctx := tctx(t)
	_, err := c.Query(ctx, "qNoSuchThing")
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "qNoSuchThing") {
		t.Errorf("unsupported: %v", err)
	}
	_, err = c.ReadMemory(ctx, 1<<20, 16)
	var re *RemoteError
	if !errors.As(err, &re) || re.Code != 0x14 || re.Packet != "m100000,10" {
		t.Errorf("ReadMemory of unmapped memory: %v (%#v)", err, re)
	}
	if err := c.SetBreakpoint(ctx, BreakKind(7), 0x1000, 1); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Z7: %v", err)
	}
	if _, err := c.Query(ctx, "vCont;c"); err == nil {
		t.Error("Query(vCont;c) was not refused")
	}
}

func TestChecksumErrorsAreRetransmitted(t *testing.T) {
	stub := newFakeStub(t)
	c := connectFake(t, stub, Options{})
	stub.mu.Lock()
	stub.corruptReplies = 2
	stub.mu.Unlock()
	if v, err := c.ReadRegister(tctx(t), "r0"); err != nil || v != 0x8877665544332211 {
		t.Fatalf("ReadRegister = %#x, %v", v, err)
	}
	if n := stub.stat(func(s *fakeStub) int { return s.nacksGot }); n != 2 {
		t.Errorf("stub got %d NAKs, want 2", n)
	}
}

func TestNackedRequestIsResent(t *testing.T) {
	stub := newFakeStub(t)
	c := connectFake(t, stub, Options{})
	stub.mu.Lock()
	stub.nackRequests = 2
	stub.mu.Unlock()
	if id, err := c.CurrentThread(tctx(t)); err != nil || id != 1 {
		t.Fatalf("CurrentThread = %d, %v", id, err)
	}
}

func TestPipelinedReadHonoursWindow(t *testing.T) {
	for _, tc := range []struct {
		name   string
		window int
		n      int
	}{
		{"default window", 0, 64 << 10},
		{"window 4", 4, 40000},
		{"window 1 is sequential", 1, 10000},
		{"window larger than the read", 64, 5000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stub := newFakeStub(t)
			c := connectFake(t, stub, Options{MaxInFlight: tc.window})
			w := tc.window
			if w == 0 {
				w = 16
			}
			spans := readPlan(0x1000, tc.n, 0x800, w)
			stub.mu.Lock()
			stub.gate, stub.gateAll = w, len(spans)
			stub.mu.Unlock()
			got, err := c.ReadMemory(tctx(t), 0x1000, tc.n)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, stub.mem[0x1000:0x1000+tc.n]) {
				t.Fatal("data mismatch")
			}
			if m := stub.stat(func(s *fakeStub) int { return s.maxOutM }); m != min(w, len(spans)) {
				t.Errorf("at most %d m requests were outstanding, want %d", m, min(w, len(spans)))
			}
		})
	}
}

func TestPipelineFallsBackOnMisbehavingStub(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(*fakeStub)
	}{
		{"drops packets while busy", func(s *fakeStub) { s.dropWhileBusy, s.holdFirstM = true, true }},
		{"NAKs a pipelined packet", func(s *fakeStub) { s.nackNthM, s.holdFirstM = 3, true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stub := newFakeStub(t)
			c := connectFake(t, stub, Options{PipelineTimeout: 200 * time.Millisecond})
			stub.mu.Lock()
			tc.setup(stub)
			stub.mu.Unlock()
			for i := range 3 {
				got, err := c.ReadMemory(tctx(t), 0x3000, 50000)
				if err != nil {
					t.Fatalf("read %d: %v", i, err)
				}
				if !bytes.Equal(got, stub.mem[0x3000:0x3000+50000]) {
					t.Fatalf("read %d: data mismatch", i)
				}
			}
			if !c.pipelineOff.Load() {
				t.Error("pipelining still on")
			}
			if v, err := c.ReadRegister(tctx(t), "r0"); err != nil || v != 0x8877665544332211 {
				t.Errorf("after fallback ReadRegister = %#x, %v", v, err)
			}
		})
	}
}

func TestDeadlineWithoutReply(t *testing.T) {
	stub := newFakeStub(t)
	c := connectFake(t, stub, Options{})
	stub.mu.Lock()
	stub.silent = func(p string) bool { return p == "qC" }
	stub.mu.Unlock()
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := c.CurrentThread(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "qC") {
		t.Fatalf("CurrentThread with a silent stub: %v", err)
	}
	// The next calls must get their own replies, not shifted ones.
	for range 3 {
		if v, err := c.ReadRegister(tctx(t), "r0"); err != nil || v != 0x8877665544332211 {
			t.Fatalf("ReadRegister after a timeout = %#x, %v", v, err)
		}
	}
}

func TestLateReplyIsDiscarded(t *testing.T) {
	stub := newFakeStub(t)
	c := connectFake(t, stub, Options{})
	release := make(chan struct{})
	stub.mu.Lock()
	stub.delay = map[string]chan struct{}{"p1": release}
	stub.mu.Unlock()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.ReadRegister(ctx, "pc"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ReadRegister(pc) = %v, want deadline exceeded", err)
	}
	close(release) // the late reply (pc) arrives now
	for range 3 {
		if v, err := c.ReadRegister(tctx(t), "r0"); err != nil || v != 0x8877665544332211 {
			t.Fatalf("ReadRegister(r0) after a late reply = %#x, %v", v, err)
		}
	}
}

func TestConnectionDropFailsCalls(t *testing.T) {
	stub := newFakeStub(t)
	c := connectFake(t, stub, Options{})
	stub.mu.Lock()
	stub.silent = func(p string) bool { return p == "qC" }
	stub.mu.Unlock()
	errc := make(chan error, 1)
	go func() {
		_, err := c.CurrentThread(context.Background()) // no deadline: only the drop ends it
		errc <- err
	}()
	waitFor(t, func() bool { return slices.Contains(stub.receivedPackets(), "qC") })
	stub.close()
	if err := <-errc; !errors.Is(err, ErrConnectionClosed) {
		t.Errorf("pending call: %v", err)
	}
	if _, err := c.ReadMemory(context.Background(), 0, 16); !errors.Is(err, ErrConnectionClosed) {
		t.Errorf("later call: %v", err)
	}
	if _, err := c.WaitStop(context.Background()); !errors.Is(err, ErrConnectionClosed) {
		t.Errorf("WaitStop: %v", err)
	}
	if err := c.Interrupt(context.Background()); !errors.Is(err, ErrConnectionClosed) {
		t.Errorf("Interrupt: %v", err)
	}
}

// waitFor polls cond; used only to observe the fake stub, never QEMU.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestContinueInterruptWaitStop(t *testing.T) {
	stub := newFakeStub(t)
	c := connectFake(t, stub, Options{})
	ctx := tctx(t)
	if err := c.Continue(ctx); err != nil {
		t.Fatal(err)
	}
	if !c.Running() {
		t.Fatal("not Running() after Continue")
	}
	if _, err := c.ReadMemory(ctx, 0, 4); !errors.Is(err, ErrRunning) {
		t.Errorf("ReadMemory while running: %v", err)
	}
	if err := c.Continue(ctx); !errors.Is(err, ErrRunning) {
		t.Errorf("Continue while running: %v", err)
	}
	if err := c.Interrupt(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := c.WaitStop(ctx)
	if err != nil || s.Kind != 'T' || s.Signal != 2 || s.Thread != 1 {
		t.Fatalf("WaitStop = %+v, %v", s, err)
	}
	if c.Running() {
		t.Error("Running() after the stop")
	}
	// A breakpoint stop delivered while running.
	if err := c.Continue(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return stub.stat(func(s *fakeStub) int { return boolInt(s.running) }) == 1 })
	stub.sendStop("T05thread:02;swbreak:;")
	s, err = c.WaitStop(ctx)
	if err != nil || s.Signal != 5 || s.Thread != 2 || !s.SWBreak {
		t.Fatalf("WaitStop = %+v, %v", s, err)
	}
	if got := c.DrainStops(); len(got) != 0 {
		t.Errorf("DrainStops() = %v", got)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestContinueDropsStaleStops(t *testing.T) {
	stub := newFakeStub(t)
	c := connectFake(t, stub, Options{})
	stub.sendStop("T02thread:01;")
	waitFor(t, func() bool { return c.Stops() == 1 })
	if err := c.Continue(tctx(t)); err != nil {
		t.Fatal(err)
	}
	if n := c.Stops(); n != 0 {
		t.Errorf("Stops() = %d after Continue, want stale stops dropped", n)
	}
}

func TestStep(t *testing.T) {
	stub := newFakeStub(t)
	c := connectFake(t, stub, Options{})
	s, err := c.Step(tctx(t), 2)
	if err != nil || s.Thread != 2 || s.Signal != 5 {
		t.Fatalf("Step = %+v, %v", s, err)
	}
	if !slices.Contains(stub.receivedPackets(), "vCont;s:2") {
		t.Errorf("stub received %q", stub.receivedPackets())
	}
	if c.Running() {
		t.Error("Running() after Step")
	}
}

func TestStepTimeoutInterrupts(t *testing.T) {
	stub := newFakeStub(t)
	c := connectFake(t, stub, Options{})
	stub.mu.Lock()
	stub.silent = func(p string) bool {
		if strings.HasPrefix(p, "vCont;s") {
			stub.running = true // the CPU runs (halted with IRQs masked, say) and never stops
			return true
		}
		return false
	}
	stub.mu.Unlock()
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.Step(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Step = %v", err)
	}
	s, err := c.WaitStop(tctx(t))
	if err != nil || s.Signal != 2 {
		t.Fatalf("WaitStop after the interrupted step = %+v, %v", s, err)
	}
	if v, err := c.ReadRegister(tctx(t), "r0"); err != nil || v != 0x8877665544332211 {
		t.Errorf("ReadRegister = %#x, %v", v, err)
	}
}

func TestRequestLostWhileTargetRanBehindOurBack(t *testing.T) {
	stub := newFakeStub(t)
	c := connectFake(t, stub, Options{})
	stub.setRunning(true) // e.g. QMP cont: the client cannot know
	v, err := c.ReadRegister(tctx(t), "r0")
	if err != nil || v != 0x8877665544332211 {
		t.Fatalf("ReadRegister = %#x, %v", v, err)
	}
	if n := c.Stops(); n != 1 {
		t.Errorf("Stops() = %d, want the T02 the lost packet caused", n)
	}
	// A pipelined read too.
	stub.setRunning(true)
	got, err := c.ReadMemory(tctx(t), 0x100, 40000)
	if err != nil || !bytes.Equal(got, stub.mem[0x100:0x100+40000]) {
		t.Fatalf("ReadMemory while the target ran: err %v, equal %v", err, bytes.Equal(got, stub.mem[0x100:0x100+40000]))
	}
	if c.pipelineOff.Load() {
		t.Error("a stop during a pipelined read turned pipelining off")
	}
}

func TestWriteMemoryRespectsPacketSize(t *testing.T) {
	stub := newFakeStub(t)
	c := connectFake(t, stub, Options{})
	data := make([]byte, 10000)
	for i := range data {
		data[i] = byte(i * 13)
	}
	if err := c.WriteMemory(tctx(t), 0x8000, data); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stub.mem[0x8000:0x8000+len(data)], data) {
		t.Fatal("data mismatch")
	}
	if m := stub.stat(func(s *fakeStub) int { return s.maxFrameLen }); m >= 4096 {
		t.Errorf("longest frame %d bytes; QEMU drops frames of 4096 or more", m)
	}
}

func TestThreadsMonitorFlagsDetach(t *testing.T) {
	stub := newFakeStub(t)
	stub.threads = []int{1, 2, 3}
	c := connectFake(t, stub, Options{})
	ctx := tctx(t)
	if ids, err := c.Threads(ctx); err != nil || !slices.Equal(ids, []int{1, 2, 3}) {
		t.Errorf("Threads() = %v, %v", ids, err)
	}
	if err := c.SelectThread(ctx, 2); err != nil {
		t.Error(err)
	}
	if out, err := c.Monitor(ctx, "info registers"); err != nil || out != "you said: info registers\n" {
		t.Errorf("Monitor() = %q, %v", out, err)
	}
	if err := c.SetStepFlags(ctx, StepEnable); err != nil {
		t.Error(err)
	}
	if f, err := c.StepFlags(ctx); err != nil || f != StepEnable {
		t.Errorf("StepFlags() = %#x, %v", f, err)
	}
	var re *RemoteError
	if err := c.SetStepFlags(ctx, 0x10); !errors.As(err, &re) || re.Code != 0x22 {
		t.Errorf("SetStepFlags(0x10) = %v", err)
	}
	if err := c.SetBreakpoint(ctx, Hardware, 0xfe05b, 1); err != nil {
		t.Error(err)
	}
	if err := c.ClearBreakpoint(ctx, Hardware, 0xfe05b, 1); err != nil {
		t.Error(err)
	}
	if err := c.Detach(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadMemory(ctx, 0, 1); !errors.Is(err, ErrDetached) {
		t.Errorf("after Detach: %v", err)
	}
}

func TestConcurrentCalls(t *testing.T) {
	stub := newFakeStub(t)
	c := connectFake(t, stub, Options{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				addr := uint64(g*0x10000 + i*0x100)
				got, err := c.ReadMemory(tctx(t), addr, 5000)
				if err != nil {
					t.Error(err)
					return
				}
				if !bytes.Equal(got, stub.mem[addr:addr+5000]) {
					t.Errorf("goroutine %d read %d: data mismatch", g, i)
					return
				}
				if v, err := c.ReadRegister(tctx(t), "r0"); err != nil || v != 0x8877665544332211 {
					t.Errorf("ReadRegister = %#x, %v", v, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestOutputOutsideMonitor(t *testing.T) {
	stub := newFakeStub(t)
	c := connectFake(t, stub, Options{})
	stub.write(EncodePacket([]byte("O68690a")))
	select {
	case s := <-c.Output():
		if s != "hi\n" {
			t.Errorf("Output() got %q", s)
		}
	case <-tctx(t).Done():
		t.Fatal("no output")
	}
}

func TestPipelinedReadIntoUnmappedMemory(t *testing.T) {
	stub := newFakeStub(t)
	c := connectFake(t, stub, Options{})
	start := uint64(1<<20 - 10000)
	got, err := c.ReadMemory(tctx(t), start, 20000)
	var re *RemoteError
	if !errors.As(err, &re) || re.Code != 0x14 {
		t.Fatalf("ReadMemory across the end of memory: %v", err)
	}
	// The error names the first request that failed; the bytes before it are returned.
	if !strings.HasPrefix(re.Packet, "m") || len(got) > 10000 || !bytes.Equal(got, stub.mem[start:start+uint64(len(got))]) {
		t.Errorf("packet %q, %d bytes returned", re.Packet, len(got))
	}
	if c.pipelineOff.Load() {
		t.Error("an error reply turned pipelining off")
	}
	if v, err := c.ReadRegister(tctx(t), "r0"); err != nil || v != 0x8877665544332211 {
		t.Errorf("ReadRegister after the failed read = %#x, %v", v, err)
	}
}

func TestMalformedStopReplyStillStops(t *testing.T) {
	stub := newFakeStub(t)
	c := connectFake(t, stub, Options{})
	if err := c.Continue(tctx(t)); err != nil {
		t.Fatal(err)
	}
	stub.sendStop("T05thread:zz;")
	s, err := c.WaitStop(tctx(t))
	if err != nil || s.Raw != "T05thread:zz;" || s.Signal != 5 || c.Running() {
		t.Errorf("WaitStop = %+v, %v; Running %v", s, err, c.Running())
	}
}

func TestReadPhysicalMemory(t *testing.T) {
	stub := newFakeStub(t)
	stub.phys = make([]byte, 0x3000)
	for i := range stub.phys {
		stub.phys[i] = byte(0xa0 ^ i)
	}
	c := connectFake(t, stub, Options{})
	// Across a page and longer than one m packet: every byte physical.
	got, err := c.ReadPhysicalMemory(tctx(t), 0xff0, 0x1020)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, stub.phys[0xff0:0xff0+0x1020]) {
		t.Error("ReadPhysicalMemory returned other bytes than physical memory's")
	}
	// The mode is off again: a virtual read reads virtual memory.
	v, err := c.ReadMemory(tctx(t), 0x10, 4)
	if err != nil || !bytes.Equal(v, stub.mem[0x10:0x14]) {
		t.Errorf("ReadMemory after ReadPhysicalMemory = % x, %v; want % x", v, err, stub.mem[0x10:0x14])
	}
	// A failed read also switches the mode off.
	if _, err := c.ReadPhysicalMemory(tctx(t), 0x2ff0, 0x20); !errors.As(err, new(*RemoteError)) {
		t.Errorf("read past physical memory: %v, want a RemoteError", err)
	}
	pkts := stub.receivedPackets()
	if last := pkts[len(pkts)-1]; last != "Qqemu.PhyMemMode:0" {
		t.Errorf("last packet %q, want the mode switched off", last)
	}
	if _, err := c.ReadPhysicalMemory(tctx(t), 0, -1); err == nil {
		t.Error("negative length accepted")
	}
}

func TestReadPhysicalMemoryUnsupported(t *testing.T) {
	stub := newFakeStub(t) // no physical-memory mode: empty reply
	c := connectFake(t, stub, Options{})
	if _, err := c.ReadPhysicalMemory(tctx(t), 0, 8); !errors.Is(err, ErrUnsupported) {
		t.Errorf("ReadPhysicalMemory on a stub without the mode: %v, want ErrUnsupported", err)
	}
}
