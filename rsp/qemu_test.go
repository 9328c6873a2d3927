package rsp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// qemuBinary finds QEMU, failing the test (or skipping it when
// KSPEC_SKIP_MISSING=1) if it is not installed.
func qemuBinary(tb testing.TB) string {
	tb.Helper()
	bin := os.Getenv("KSPEC_QEMU")
	if bin == "" {
		bin = "qemu-system-x86_64"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		msg := fmt.Sprintf("%s is not installed (%v): apt-get install qemu-system-x86", bin, err)
		if os.Getenv("KSPEC_SKIP_MISSING") == "1" {
			tb.Skip(msg)
		}
		tb.Fatal(msg)
	}
	return path
}

// syncBuffer is a bytes.Buffer safe for the process's output copier.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// trace collects a client's packet trace (for the fuzz corpora).
type trace struct {
	mu     sync.Mutex
	frames []string // "<- " or "-> " followed by the raw frame
}

func (tr *trace) logf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	dir, q, ok := strings.Cut(line, " ")
	if !ok || (dir != "<-" && dir != "->") {
		return
	}
	frame, err := strconv.Unquote(q)
	if err != nil {
		return
	}
	tr.mu.Lock()
	tr.frames = append(tr.frames, dir+" "+frame)
	tr.mu.Unlock()
}

// qemuVM is a QEMU halted at the reset vector with its gdbstub on a unix socket.
type qemuVM struct {
	cmd    *exec.Cmd
	sock   string
	stderr *syncBuffer
	trace  *trace
}

// startQEMU starts `qemu-system-x86_64 -S ... -gdb` and connects a Client.
// The gdbstub listens on <tmpdir>/gdb.sock: the test creates the listening
// socket itself and hands it to QEMU as fd 3 (`-chardev socket,fd=3,
// server=on,wait=off`, the same as `-gdb unix:...,server=on,wait=off`), so
// it can connect at once: no polling for the socket, no sleep.
func startQEMU(tb testing.TB, smp int, opts Options) (*Client, *qemuVM) {
	tb.Helper()
	bin := qemuBinary(tb)
	sock := filepath.Join(tb.TempDir(), "gdb.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		tb.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	lf, err := l.File()
	l.Close()
	if err != nil {
		tb.Fatal(err)
	}
	vm := &qemuVM{sock: sock, stderr: &syncBuffer{}, trace: &trace{}}
	vm.cmd = exec.Command(bin, "-S", "-display", "none", "-nodefaults", "-no-user-config",
		"-m", "64", "-smp", strconv.Itoa(smp),
		"-chardev", "socket,id=gdb0,fd=3,server=on,wait=off", "-gdb", "chardev:gdb0")
	vm.cmd.ExtraFiles = []*os.File{lf}
	vm.cmd.Stdout = vm.stderr
	vm.cmd.Stderr = vm.stderr
	vm.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := vm.cmd.Start(); err != nil {
		lf.Close()
		tb.Fatalf("starting %s: %v", bin, err)
	}
	lf.Close()
	tb.Cleanup(func() {
		syscall.Kill(-vm.cmd.Process.Pid, syscall.SIGKILL) //nolint:errcheck // already gone is fine
		vm.cmd.Wait()                                      //nolint:errcheck // killed on purpose
	})
	conn, err := net.Dial("unix", sock)
	if err != nil {
		tb.Fatalf("dialing the gdbstub: %v; QEMU said: %s", err, vm.stderr)
	}
	if opts.Logf == nil {
		opts.Logf = vm.trace.logf
		if os.Getenv("KSPEC_RSP_TRACE") == "1" {
			opts.Logf = func(format string, args ...any) {
				vm.trace.logf(format, args...)
				tb.Logf(format, args...)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := Connect(ctx, conn, opts)
	if err != nil {
		tb.Fatalf("Connect: %v; QEMU said: %s", err, vm.stderr)
	}
	tb.Cleanup(func() { c.Close() })
	return c, vm
}

func qctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustReg(t *testing.T, c *Client, name string) uint64 {
	t.Helper()
	v, err := c.ReadRegister(qctx(t), name)
	if err != nil {
		t.Fatalf("ReadRegister(%s): %v", name, err)
	}
	return v
}

// monitorBytes parses the output of HMP `xp /Nxb addr`.
func monitorBytes(t *testing.T, out string) []byte {
	t.Helper()
	var b []byte
	for line := range strings.SplitSeq(out, "\n") {
		_, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		for f := range strings.FieldsSeq(rest) {
			v, err := strconv.ParseUint(f, 0, 8)
			if err != nil {
				t.Fatalf("monitor output %q: %v", out, err)
			}
			b = append(b, byte(v))
		}
	}
	return b
}

func TestQEMU(t *testing.T) {
	c, vm := startQEMU(t, 2, Options{})
	defer writeCorpus(t, vm.trace)
	t.Cleanup(func() {
		if t.Failed() {
			vm.trace.mu.Lock()
			defer vm.trace.mu.Unlock()
			tail := vm.trace.frames[max(0, len(vm.trace.frames)-40):]
			t.Logf("last packets:\n%s", strings.Join(tail, "\n"))
		}
	})

	t.Run("target description", func(t *testing.T) {
		if a := c.Architecture(); a != "i386:x86-64" {
			t.Errorf("Architecture() = %q", a)
		}
		var names []string
		for _, r := range c.Registers() {
			names = append(names, r.Name)
		}
		for _, want := range []string{"rax", "r15", "rip", "eflags", "cs", "fs_base", "gs_base", "k_gs_base",
			"cr0", "cr8", "efer", "st0", "xmm15", "mxcsr"} {
			if !slices.Contains(names, want) {
				t.Errorf("register %s missing from %v", want, names)
			}
		}
		if c.PacketSize() != 0x1000 {
			t.Errorf("PacketSize() = %#x", c.PacketSize())
		}
	})

	t.Run("registers at reset", func(t *testing.T) {
		// 16-bit real mode at the reset vector: cs=f000 (base ffff0000), ip=fff0.
		if rip := mustReg(t, c, "rip"); rip != 0xfff0 {
			t.Errorf("rip = %#x, want 0xfff0", rip)
		}
		if cs := mustReg(t, c, "cs"); cs != 0xf000 {
			t.Errorf("cs = %#x, want 0xf000", cs)
		}
		if fl := mustReg(t, c, "eflags"); fl != 0x2 {
			t.Errorf("eflags = %#x, want 0x2", fl)
		}
		all, err := c.ReadAllRegisters(qctx(t))
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, v := range all {
			total += len(v)
		}
		if total != 608 || !bytes.Equal(all["rip"], []byte{0xf0, 0xff, 0, 0, 0, 0, 0, 0}) {
			t.Errorf("g: %d bytes, rip %x", total, all["rip"])
		}
		if x, err := c.ReadRegisterBytes(qctx(t), "xmm0"); err != nil || len(x) != 16 {
			t.Errorf("ReadRegisterBytes(xmm0) = %x, %v", x, err)
		}
	})

	t.Run("threads", func(t *testing.T) {
		ids, err := c.Threads(qctx(t))
		if err != nil || !slices.Equal(ids, []int{1, 2}) {
			t.Fatalf("Threads() = %v, %v (want vCPUs 1 and 2)", ids, err)
		}
		if err := c.SelectThread(qctx(t), 2); err != nil {
			t.Fatal(err)
		}
		// The application processor waits for SIPI; it is at the reset vector too.
		if rip := mustReg(t, c, "rip"); rip != 0xfff0 {
			t.Errorf("vCPU 2 rip = %#x", rip)
		}
		if err := c.SelectThread(qctx(t), 1); err != nil {
			t.Fatal(err)
		}
		if id, err := c.CurrentThread(qctx(t)); err != nil || id != 1 {
			t.Errorf("CurrentThread() = %d, %v", id, err)
		}
	})

	var rom []byte
	t.Run("read BIOS ROM pipelined and one at a time", func(t *testing.T) {
		var err error
		rom, err = c.ReadMemory(qctx(t), 0xf0000, 0x10000)
		if err != nil {
			t.Fatal(err)
		}
		c.window.Store(1)
		seq, err := c.ReadMemory(qctx(t), 0xf0000, 0x10000)
		c.window.Store(defaultWindow)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(rom, seq) {
			t.Fatal("pipelined and sequential reads differ")
		}
		// The reset vector holds a far jump to f000:e05b (SeaBIOS entry).
		if !bytes.HasPrefix(rom[0xfff0:], []byte{0xea, 0x5b, 0xe0, 0x00, 0xf0}) {
			t.Errorf("reset vector bytes % x", rom[0xfff0:0xfff8])
		}
		// The monitor sees the same bytes...
		out, err := c.Monitor(qctx(t), "xp /32xb 0xfffe0")
		if err != nil {
			t.Fatal(err)
		}
		if got := monitorBytes(t, out); !bytes.Equal(got, rom[0xffe0:]) {
			t.Errorf("xp says % x, m says % x", got, rom[0xffe0:])
		}
		// ...and so does the ROM's alias below 4 GiB.
		top, err := c.ReadMemory(qctx(t), 0xffff0000, 0x10000)
		if err != nil || !bytes.Equal(top, rom) {
			t.Errorf("alias at 0xffff0000 differs (err %v)", err)
		}
		if c.pipelineOff.Load() {
			t.Error("QEMU made the client give up pipelining")
		}
	})

	t.Run("write memory round trip", func(t *testing.T) {
		data := make([]byte, 20000)
		r := rand.New(rand.NewPCG(1, 2))
		for i := range data {
			data[i] = byte(r.Uint32())
		}
		if err := c.WriteMemory(qctx(t), 0x10000, data); err != nil {
			t.Fatal(err)
		}
		got, err := c.ReadMemory(qctx(t), 0x10000, len(data))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read back: equal %v, err %v", bytes.Equal(got, data), err)
		}
	})

	t.Run("step flags", func(t *testing.T) {
		bits, err := c.Query(qctx(t), "qqemu.sstepbits")
		if err != nil || bits != "ENABLE=1,NOIRQ=2,NOTIMER=4" {
			t.Errorf("qqemu.sstepbits = %q, %v", bits, err)
		}
		if f, err := c.StepFlags(qctx(t)); err != nil || f != DefaultStepFlags {
			t.Errorf("StepFlags() = %#x, %v; QEMU 7.2 defaults to 7", f, err)
		}
		if err := c.SetStepFlags(qctx(t), StepEnable); err != nil {
			t.Fatal(err)
		}
		if f, err := c.StepFlags(qctx(t)); err != nil || f != StepEnable {
			t.Errorf("StepFlags() = %#x, %v", f, err)
		}
		if err := c.SetStepFlags(qctx(t), DefaultStepFlags); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("step advances rip", func(t *testing.T) {
		s, err := c.Step(qctx(t), 1)
		if err != nil {
			t.Fatal(err)
		}
		if s.Kind != 'T' || s.Signal != 5 || s.Thread != 1 {
			t.Errorf("Step() = %+v", s)
		}
		if rip := mustReg(t, c, "rip"); rip != 0xe05b {
			t.Errorf("after the far jump rip = %#x, want 0xe05b", rip)
		}
		if cs := mustReg(t, c, "cs"); cs != 0xf000 {
			t.Errorf("cs = %#x", cs)
		}
		if c.Running() {
			t.Error("Running() after Step")
		}
	})

	for _, kind := range []BreakKind{Hardware, Software} {
		t.Run("breakpoint at BIOS entry/"+kind.String(), func(t *testing.T) {
			if _, err := c.Monitor(qctx(t), "system_reset"); err != nil {
				t.Fatal(err)
			}
			if rip := mustReg(t, c, "rip"); rip != 0xfff0 {
				t.Fatalf("after system_reset rip = %#x", rip)
			}
			if err := c.SetBreakpoint(qctx(t), kind, 0xfe05b, 1); err != nil {
				t.Fatal(err)
			}
			if err := c.Continue(qctx(t)); err != nil {
				t.Fatal(err)
			}
			s, err := c.WaitStop(qctx(t))
			if err != nil {
				t.Fatal(err)
			}
			if s.Signal != 5 || s.Thread != 1 {
				t.Errorf("stop = %+v", s)
			}
			if rip := mustReg(t, c, "rip"); rip != 0xe05b {
				t.Errorf("stopped at rip %#x, want 0xe05b", rip)
			}
			if err := c.ClearBreakpoint(qctx(t), kind, 0xfe05b, 1); err != nil {
				t.Fatal(err)
			}
		})
	}

	t.Run("write watchpoint", func(t *testing.T) {
		// SeaBIOS fills the interrupt vector table early in its start-up.
		if _, err := c.Monitor(qctx(t), "system_reset"); err != nil {
			t.Fatal(err)
		}
		if err := c.SetBreakpoint(qctx(t), WriteWatch, 0x20, 4); err != nil {
			t.Fatal(err)
		}
		if err := c.Continue(qctx(t)); err != nil {
			t.Fatal(err)
		}
		s, err := c.WaitStop(qctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if s.Watch == nil || s.Watch.Kind != WriteWatch || s.Watch.Addr != 0x20 {
			t.Errorf("stop = %+v (%s)", s, s.Raw)
		}
		if err := c.ClearBreakpoint(qctx(t), WriteWatch, 0x20, 4); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("interrupt while running", func(t *testing.T) {
		if err := c.Continue(qctx(t)); err != nil {
			t.Fatal(err)
		}
		if !c.Running() {
			t.Fatal("not Running() after Continue")
		}
		if _, err := c.ReadMemory(qctx(t), 0xf0000, 16); !errors.Is(err, ErrRunning) {
			t.Errorf("ReadMemory while running: %v", err)
		}
		if err := c.Interrupt(qctx(t)); err != nil {
			t.Fatal(err)
		}
		s, err := c.WaitStop(qctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if s.Signal != 2 || s.Kind != 'T' {
			t.Errorf("stop = %+v", s)
		}
		if c.Running() {
			t.Error("Running() after the stop")
		}
		mustReg(t, c, "rip")
	})

	t.Run("VM resumed behind the client's back", func(t *testing.T) {
		// `cont` from the monitor runs the VM without the client knowing;
		// the next packet stops it and is swallowed, QEMU sends T02.
		if _, err := c.Monitor(qctx(t), "cont"); err != nil {
			t.Fatal(err)
		}
		if c.Running() {
			t.Fatal("the client cannot know, yet Running() is true")
		}
		mustReg(t, c, "rip")
		if n := len(c.DrainStops()); n != 1 {
			t.Errorf("%d stop replies queued, want the T02 of the swallowed packet", n)
		}
		if _, err := c.Monitor(qctx(t), "cont"); err != nil {
			t.Fatal(err)
		}
		got, err := c.ReadMemory(qctx(t), 0xf0000, 0x10000)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(c.DrainStops()); n != 1 {
			t.Errorf("%d stop replies queued, want 1", n)
		}
		// SeaBIOS has shadowed and changed the F segment by now: compare
		// with a one-at-a-time read of the stopped VM.
		c.window.Store(1)
		want, err := c.ReadMemory(qctx(t), 0xf0000, 0x10000)
		c.window.Store(defaultWindow)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("pipelined read across the swallowed packet: equal %v, err %v", bytes.Equal(got, want), err)
		}
		if c.pipelineOff.Load() {
			t.Error("the swallowed packet made the client give up pipelining")
		}
	})

	t.Run("detach", func(t *testing.T) {
		if err := c.Detach(qctx(t)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ReadMemory(qctx(t), 0, 1); !errors.Is(err, ErrDetached) {
			t.Errorf("after Detach: %v", err)
		}
	})
}

func TestQEMUConnectionDrop(t *testing.T) {
	c, vm := startQEMU(t, 1, Options{})
	if err := c.Continue(qctx(t)); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := c.WaitStop(context.Background()) // only the drop can end it
		errc <- err
	}()
	if err := syscall.Kill(-vm.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrConnectionClosed) {
		t.Errorf("WaitStop after QEMU died: %v", err)
	}
	if _, err := c.ReadMemory(context.Background(), 0, 1); !errors.Is(err, ErrConnectionClosed) {
		t.Errorf("ReadMemory after QEMU died: %v", err)
	}
}

// writeCorpus turns the captured QEMU traffic into fuzz seed corpora when
// KSPEC_RSP_CAPTURE=1.
func writeCorpus(t *testing.T, tr *trace) {
	if os.Getenv("KSPEC_RSP_CAPTURE") != "1" {
		return
	}
	tr.mu.Lock()
	frames := slices.Clone(tr.frames)
	tr.mu.Unlock()
	seen := map[string]bool{}
	kinds := map[string]int{}
	mHex := regexp.MustCompile(`^\$[0-9a-f]{200,}#`)
	for _, f := range frames {
		frame := f[3:]
		payload, err := DecodePacket([]byte(frame))
		if err != nil || seen[frame] || len(frame) > 5000 {
			continue
		}
		seen[frame] = true
		// keep a few of each shape, not 64 memory replies
		key := f[:3] + string(frame[1:min(3, len(frame))])
		if mHex.MatchString(frame) {
			key = "hex"
		}
		if kinds[key] >= 4 {
			continue
		}
		kinds[key]++
		writeSeed(t, "FuzzDecodePacket", "[]byte("+strconv.Quote(frame)+")")
		if f[:2] == "<-" && looksLikeStopReply(string(payload)) {
			writeSeed(t, "FuzzParseStopReply", "string("+strconv.Quote(string(payload))+")")
		}
	}
}

func writeSeed(t *testing.T, fuzz, value string) {
	content := "go test fuzz v1\n" + value + "\n"
	sum := sha256.Sum256([]byte(content))
	dir := filepath.Join("testdata", "fuzz", fuzz)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, "qemu-"+fmt.Sprintf("%x", sum[:8]))
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkReadMemory(b *testing.B) {
	c, _ := startQEMU(b, 1, Options{Logf: func(string, ...any) {}})
	for _, bc := range []struct {
		name   string
		window int
		addr   uint64
		n      int
	}{
		{"sequential/64KiB-ROM", 1, 0xf0000, 64 << 10},
		{"pipelined-16/64KiB-ROM", 16, 0xf0000, 64 << 10},
		{"pipelined-64/64KiB-ROM", 64, 0xf0000, 64 << 10},
		{"sequential/1MiB-RAM", 1, 0x100000, 1 << 20},
		{"pipelined-16/1MiB-RAM", 16, 0x100000, 1 << 20},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c.window.Store(int32(bc.window))
			b.SetBytes(int64(bc.n))
			for b.Loop() {
				if _, err := c.ReadMemory(context.Background(), bc.addr, bc.n); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkRoundTrip(b *testing.B) {
	c, _ := startQEMU(b, 1, Options{Logf: func(string, ...any) {}})
	b.Run("qC", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.CurrentThread(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("p-rip", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.ReadRegister(context.Background(), "rip"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
