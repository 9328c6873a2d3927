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

	"github.com/kspec/kspec/qmp"
	"github.com/kspec/kspec/supervisor"
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
	cmd     *exec.Cmd
	sock    string
	stderr  *syncBuffer
	trace   *trace
	qmp     *qmp.Monitor       // the VM's QMP socket: resumes and stops behind the client's back
	version supervisor.Version // QEMU's version (qGDBServerVersion where offered, else QMP)
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
	qmpSock := filepath.Join(filepath.Dir(sock), "qmp.sock")
	var args []string
	for _, d := range supervisor.DataDirs(bin) { // the firmware of an unpacked QEMU (scripts/qemu-extra)
		args = append(args, "-L", d)
	}
	args = append(args, "-S", "-display", "none", "-nodefaults", "-no-user-config",
		"-accel", "tcg", "-m", "64", "-smp", strconv.Itoa(smp),
		"-qmp", "unix:"+qmpSock+",server=on,wait=off",
		"-chardev", "socket,id=gdb0,fd=3,server=on,wait=off", "-gdb", "chardev:gdb0")
	vm.cmd = exec.Command(bin, args...)
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
	if vm.qmp, err = qmp.Dial(ctx, qmpSock); err != nil {
		tb.Fatalf("QMP: %v; QEMU said: %s", err, vm.stderr)
	}
	tb.Cleanup(func() { vm.qmp.Close() })
	vm.version = stubVersion(tb, c, vm.qmp)
	return c, vm
}

// stubVersion is QEMU's version: qGDBServerVersion (QEMU >= 10.1:
// "name:qemu;version:10.1.0;") where the stub offers it, else QMP's
// query-version.
func stubVersion(tb testing.TB, c *Client, mon *qmp.Monitor) supervisor.Version {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := mon.Version()
	if reply, err := c.Query(ctx, "qGDBServerVersion"); err == nil {
		for f := range strings.SplitSeq(reply, ";") {
			if v, ok := strings.CutPrefix(f, "version:"); ok {
				s = v
			}
		}
	} else if !errors.Is(err, ErrUnsupported) {
		tb.Fatalf("qGDBServerVersion: %v", err)
	}
	v, err := supervisor.ParseVersion(s)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// silentStops reports whether the stub is QEMU >= 8.1, whose gdbstub sends
// a stop reply only after a packet that allows one (see state.go).
func (vm *qemuVM) silentStops() bool { return vm.version.AtLeast(8, 1) }

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
	t.Logf("QEMU %s", vm.version)
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
		// QEMU 10.2 raised MAX_PACKET_LENGTH from 4096 to 0x20020.
		want := 0x1000
		if vm.version.AtLeast(10, 2) {
			want = 0x20020
		}
		if c.PacketSize() != want {
			t.Errorf("PacketSize() = %#x, want %#x for QEMU %s", c.PacketSize(), want, vm.version)
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
		w := c.window.Swap(1)
		seq, err := c.ReadMemory(qctx(t), 0xf0000, 0x10000)
		c.window.Store(w)
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

	// The monitor's cont (qRcmd) runs the VM without the stub's knowledge;
	// the client knows it sent one, and stops the VM before its next
	// request: 0x03 (a stop reply follows on every version, 0x03 allows
	// one) and a probe. No stale stop reply is left queued.
	t.Run("VM resumed by a monitor cont is stopped before the next request", func(t *testing.T) {
		if _, err := c.Monitor(qctx(t), "cont"); err != nil {
			t.Fatal(err)
		}
		if !c.MayBeRunning() || c.Running() {
			t.Fatalf("after cont: MayBeRunning() %v, Running() %v", c.MayBeRunning(), c.Running())
		}
		mustReg(t, c, "rip")
		if c.MayBeRunning() {
			t.Error("MayBeRunning() after the client stopped the VM")
		}
		if n := c.Stops(); n != 0 {
			t.Errorf("%d stop replies queued, want none (the interrupt's is consumed)", n)
		}
		expectQMPStopped(t, vm)
		if _, err := c.Monitor(qctx(t), "cont"); err != nil {
			t.Fatal(err)
		}
		got, err := c.ReadMemory(qctx(t), 0xf0000, 0x10000)
		if err != nil {
			t.Fatal(err)
		}
		// SeaBIOS has shadowed and changed the F segment by now: compare
		// with a one-at-a-time read of the stopped VM.
		w := c.window.Swap(1)
		want, err := c.ReadMemory(qctx(t), 0xf0000, 0x10000)
		c.window.Store(w)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("pipelined read after a cont: equal %v, err %v", bytes.Equal(got, want), err)
		}
		if c.pipelineOff.Load() || c.Stops() != 0 {
			t.Errorf("pipelining off %v, %d stop replies queued", c.pipelineOff.Load(), c.Stops())
		}
	})

	// What the harness does: QMP resumes the VM and the client is told
	// (NoteResumed, from the RESUME event).
	t.Run("VM resumed by QMP and reported is stopped before the next request", func(t *testing.T) {
		if err := vm.qmp.Cont(qctx(t)); err != nil {
			t.Fatal(err)
		}
		c.NoteResumed()
		if _, err := c.ReadMemory(qctx(t), 0xf0000, 0x4000); err != nil {
			t.Fatal(err)
		}
		if n := c.Stops(); n != 0 || c.MayBeRunning() {
			t.Errorf("%d stop replies queued, MayBeRunning() %v", n, c.MayBeRunning())
		}
		expectQMPStopped(t, vm)
	})

	// QMP stop after QMP cont: QEMU 7.2 sends T02; QEMU >= 8.1 sends
	// nothing (no packet allowed a stop reply). The client relies on
	// neither: its 0x03 reaches a stopped VM and is ignored, the probe
	// answers.
	t.Run("QMP stop after QMP cont", func(t *testing.T) {
		if err := vm.qmp.Cont(qctx(t)); err != nil {
			t.Fatal(err)
		}
		c.NoteResumed()
		if err := vm.qmp.Stop(qctx(t)); err != nil {
			t.Fatal(err)
		}
		if !vm.silentStops() {
			s, err := c.WaitStop(qctx(t))
			if err != nil || s.Signal != 2 {
				t.Fatalf("QEMU %s: stop reply for the QMP stop = %+v, %v; want T02", vm.version, s, err)
			}
		}
		mustReg(t, c, "rip")
		if n := c.Stops(); n != 0 {
			t.Errorf("QEMU %s: %d stop replies queued after the QMP stop, want 0", vm.version, n)
		}
	})

	// Resumed by QMP and NOT reported: the packet reaches a running VM.
	// QEMU 7.2 stops the VM, discards the packet and sends T02, from which
	// the client learns that the packet was lost and sends it again.
	// QEMU >= 8.1 stops the VM, discards the packet and sends nothing: the
	// request is never answered. That is why the harness must report every
	// RESUME; the client recovers once the caller gives up on the request.
	t.Run("VM resumed by QMP behind the client's back", func(t *testing.T) {
		stopped := vm.qmp.NewWaiter("STOP")
		defer stopped.Close()
		if err := vm.qmp.Cont(qctx(t)); err != nil {
			t.Fatal(err)
		}
		if !vm.silentStops() {
			mustReg(t, c, "rip")
			if n := len(c.DrainStops()); n != 1 {
				t.Errorf("QEMU %s: %d stop replies queued, want the T02 of the swallowed packet", vm.version, n)
			}
			return
		}
		ctx, cancel := context.WithCancel(qctx(t))
		errc := make(chan error, 1)
		go func() {
			_, err := c.ReadRegister(ctx, "rip")
			errc <- err
		}()
		if _, err := stopped.Wait(qctx(t)); err != nil { // the packet's first byte stopped the VM
			t.Fatal(err)
		}
		select {
		case err := <-errc:
			t.Fatalf("QEMU %s answered a packet sent to a running VM (%v); QEMU >= 8.1 discards it", vm.version, err)
		default:
		}
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("the unanswered request: %v", err)
		}
		mustReg(t, c, "rip") // resynchronises past the lost request
		if n := c.Stops(); n != 0 {
			t.Errorf("QEMU %s: %d stop replies queued, want none", vm.version, n)
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

// expectQMPStopped fails unless QMP reports the VM stopped.
func expectQMPStopped(t *testing.T, vm *qemuVM) {
	t.Helper()
	st, err := vm.qmp.Status(qctx(t))
	if err != nil || st.Running {
		t.Errorf("QMP status %+v, %v; want stopped", st, err)
	}
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
