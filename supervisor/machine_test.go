package supervisor

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kspec/kspec/internal/faultinject"
	"github.com/kspec/kspec/qmp"
)

// TestMain doubles as the harness-death helper: re-executed with
// KSPEC_SUPERVISOR_HELPER=orphan, the test binary starts QEMU, prints its
// PID and run dir, and SIGKILLs itself.
func TestMain(m *testing.M) {
	if os.Getenv("KSPEC_SUPERVISOR_HELPER") == "orphan" {
		orphanHelper()
		return
	}
	os.Exit(m.Run())
}

func orphanHelper() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m, err := Start(ctx, Config{FirmwareOnly: true, Accel: "tcg", RunDirBase: os.Getenv("KSPEC_HELPER_BASE")})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	fmt.Printf("QEMU %d %s\n", m.PID(), m.Paths().RunDir)
	_ = os.Stdout.Sync()
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

// needQEMU fails loudly (or skips with KSPEC_SKIP_MISSING=1) without QEMU.
func needQEMU(t *testing.T) {
	t.Helper()
	var errs []error
	qemu := os.Getenv("KSPEC_QEMU")
	if qemu == "" {
		qemu = "qemu-system-x86_64"
	}
	for _, b := range []string{qemu, "qemu-img"} {
		if _, err := exec.LookPath(b); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		msg := fmt.Sprintf("QEMU is needed (apt-get install qemu-system-x86 qemu-utils): %v", err)
		if os.Getenv("KSPEC_SKIP_MISSING") == "1" {
			t.Skip(msg)
		}
		t.Fatal(msg)
	}
}

// needKernel returns $KSPEC_KERNEL, failing loudly (or skipping with
// KSPEC_SKIP_MISSING=1) when it is unset.
func needKernel(t *testing.T) string {
	t.Helper()
	k := os.Getenv("KSPEC_KERNEL")
	if k == "" {
		const msg = "KSPEC_KERNEL is unset: point it at a Linux bzImage (e.g. a Debian vmlinuz) or set KSPEC_SKIP_MISSING=1"
		if os.Getenv("KSPEC_SKIP_MISSING") == "1" {
			t.Skip(msg)
		}
		t.Fatal(msg)
	}
	return k
}

// shortBase returns a short private dir for run dirs (t.TempDir paths can
// approach the unix socket limit).
func shortBase(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "ks")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func start(t *testing.T, cfg Config) *Machine {
	t.Helper()
	needQEMU(t)
	if cfg.QEMU == "" {
		cfg.QEMU = os.Getenv("KSPEC_QEMU") // e.g. QEMU 10.0 unpacked by scripts/qemu-extra
	}
	if cfg.Accel == "" {
		cfg.Accel = "tcg"
	}
	if cfg.RunDirBase == "" {
		cfg.RunDirBase = shortBase(t)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	m, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Stop(context.Background()) })
	return m
}

// waitGone polls /proc until pid is gone or a zombie, up to d.
func waitGone(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for alive(pid, 0) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

func TestStartFirmwareOnlyAndStop(t *testing.T) {
	needQEMU(t)
	goroutines := runtime.NumGoroutine()
	m := start(t, Config{FirmwareOnly: true})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	p := m.Paths()

	st, err := m.QMP().Status(ctx)
	if err != nil || st.Running || st.State != "prelaunch" {
		t.Fatalf("status %+v, %v", st, err)
	}
	fi, err := os.Stat(p.RunDir)
	if err != nil || fi.Mode().Perm() != 0o700 || !strings.HasPrefix(filepath.Base(p.RunDir), "kspec-run-") {
		t.Fatalf("run dir %s: %v %v", p.RunDir, fi.Mode(), err)
	}
	for _, s := range []string{p.QMPSocket, p.GDBSocket} {
		fi, err := os.Stat(s)
		if err != nil || fi.Mode().Type() != os.ModeSocket || filepath.Dir(s) != p.RunDir {
			t.Fatalf("socket %s: %v %v", s, fi, err)
		}
	}
	for _, f := range []string{p.Scratch, p.ConsoleLog, p.StderrLog, p.PIDFile} {
		if _, err := os.Stat(f); err != nil || filepath.Dir(f) != p.RunDir {
			t.Fatalf("%s: %v", f, err)
		}
	}
	if p.DiskOverlay != "" || p.GDBAddr != "" {
		t.Fatalf("unexpected paths %+v", p)
	}
	recs, err := readPIDFile(p.PIDFile)
	if err != nil || recs["harness"].pid != os.Getpid() || recs["qemu"].pid != m.PID() {
		t.Fatalf("pid file %v, %v", recs, err)
	}
	if m.Accel() != "tcg" || !slices.Contains(m.Args(), "-S") {
		t.Fatalf("accel %s args %q", m.Accel(), m.Args())
	}
	if got, want := m.GDBTarget(), "target remote "+p.GDBSocket; got != want {
		t.Fatalf("GDBTarget %q, want %q", got, want)
	}
	vm, devs := m.SnapshotNodes()
	if err := m.QMP().SnapshotSave(ctx, "s", vm, devs); err != nil {
		t.Fatal(err)
	}

	pid := m.PID()
	if err := m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if !waitGone(pid, 5*time.Second) {
		t.Fatalf("qemu %d still alive after Stop", pid)
	}
	if _, err := os.Stat(p.RunDir); !os.IsNotExist(err) {
		t.Fatalf("run dir survives Stop: %v", err)
	}
	select {
	case <-m.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	if err := m.Err(); err != nil {
		t.Fatalf("Err after a requested stop: %v", err)
	}
	if err := m.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > goroutines {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines left after Stop: %d > %d\n%s", runtime.NumGoroutine(), goroutines, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestKeepRunDir(t *testing.T) {
	m := start(t, Config{FirmwareOnly: true, KeepRunDir: true})
	p := m.Paths()
	if err := m.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{p.ConsoleLog, p.StderrLog, p.Scratch, p.PIDFile} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("kept run dir lacks %s: %v", f, err)
		}
	}
	for _, s := range []string{p.QMPSocket, p.GDBSocket} {
		if _, err := os.Stat(s); !os.IsNotExist(err) {
			t.Errorf("socket %s left: %v", s, err)
		}
	}
}

// gdbHandshake sends "?" and expects a stop reply.
func gdbHandshake(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "$?#3f"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	var got []byte
	for !bytes.Contains(got, []byte("#")) {
		b, err := r.ReadByte()
		if err != nil {
			t.Fatalf("gdbstub: %v after %q", err, got)
		}
		got = append(got, b)
	}
	if !bytes.Contains(got, []byte("$T")) && !bytes.Contains(got, []byte("$S")) {
		t.Fatalf("gdbstub answered %q", got)
	}
}

func TestGDBOverUnixAndTCP(t *testing.T) {
	for _, mode := range []string{"unix", "tcp"} {
		t.Run(mode, func(t *testing.T) {
			m := start(t, Config{FirmwareOnly: true, GDB: mode})
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			p := m.Paths()
			if mode == "tcp" {
				host, port, err := net.SplitHostPort(p.GDBAddr)
				if err != nil || host != "127.0.0.1" || port == "0" || p.GDBSocket != "" {
					t.Fatalf("paths %+v", p)
				}
				if m.GDBTarget() != "target remote "+p.GDBAddr {
					t.Fatalf("GDBTarget %q", m.GDBTarget())
				}
			}
			c, err := m.DialGDB(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			gdbHandshake(t, c)
		})
	}
}

func TestEarlyExitIsExitError(t *testing.T) {
	needQEMU(t)
	base := shortBase(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, err := Start(ctx, Config{FirmwareOnly: true, Accel: "tcg", RunDirBase: base, ExtraArgs: []string{"-no-such-option-kspec"}})
	var ee *ExitError
	if !errors.As(err, &ee) || !errors.Is(err, ErrQEMUExited) {
		t.Fatalf("want *ExitError, got %v", err)
	}
	if ee.Code == 0 || !ee.DuringStart || !slices.Contains(ee.Args, "-no-such-option-kspec") ||
		!strings.Contains(ee.StderrTail, "-no-such-option-kspec") || !strings.Contains(err.Error(), "invalid option") {
		t.Fatalf("ExitError %+v", ee)
	}
	if ctx.Err() != nil {
		t.Fatal("early exit detected only at the deadline")
	}
	if left, _ := filepath.Glob(filepath.Join(base, "kspec-run-*")); len(left) != 0 {
		t.Fatalf("run dir left after a failed start: %v", left)
	}
}

func TestMissingBinaries(t *testing.T) {
	ctx := t.Context()
	_, err := Start(ctx, Config{FirmwareOnly: true, QEMU: "/nonexistent/qemu-system-x86_64"})
	if !errors.Is(err, ErrQEMUNotFound) || !strings.Contains(err.Error(), "apt-get install qemu-system-x86") {
		t.Fatalf("missing qemu: %v", err)
	}
	needQEMU(t)
	m, err := Start(ctx, Config{FirmwareOnly: true, QEMUImg: "/nonexistent/qemu-img-kspec", QEMU: "qemu-system-x86_64", RunDirBase: shortBase(t)})
	if err != nil {
		// "/nonexistent/qemu-img-kspec" is not "qemu-img", so Start falls
		// back to qemu-img on $PATH, which exists here.
		t.Fatalf("fallback to qemu-img on PATH: %v", err)
	}
	if err := m.Stop(context.Background()); err != nil { // leave no QEMU or run dir behind
		t.Fatal(err)
	}
	// qemu-system-x86_64 in a directory without qemu-img, and no qemu-img
	// on $PATH either.
	real, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	if err := os.Symlink(real, filepath.Join(bin, "qemu-system-x86_64")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", t.TempDir())
	_, err = Start(ctx, Config{FirmwareOnly: true, QEMU: filepath.Join(bin, "qemu-system-x86_64")})
	if !errors.Is(err, ErrQEMUNotFound) || !strings.Contains(err.Error(), "apt-get install qemu-utils") {
		t.Fatalf("missing qemu-img: %v", err)
	}
}

func TestBadConfigCreatesNothing(t *testing.T) {
	needQEMU(t)
	base := shortBase(t)
	_, err := Start(t.Context(), Config{Accel: "tcg", RunDirBase: base})
	if err == nil || !strings.Contains(err.Error(), "-kernel") || !strings.Contains(err.Error(), "-drive") {
		t.Fatalf("got %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(base, "*")); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
	if _, err := Start(t.Context(), Config{Accel: "bogus", FirmwareOnly: true}); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("bad accel: %v", err)
	}
	if _, err := Start(t.Context(), Config{Disk: "/nonexistent/disk.img"}); err == nil || !strings.Contains(err.Error(), "disk.img") {
		t.Fatalf("missing disk: %v", err)
	}
}

// A guest-side reset with -no-reboot makes QEMU exit on its own: Err then
// reports an *ExitError.
func TestUnrequestedExitIsReported(t *testing.T) {
	m := start(t, Config{FirmwareOnly: true})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := m.QMP().Cont(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.QMP().Run(ctx, "system_reset", nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-m.Done():
	case <-ctx.Done():
		t.Fatal("QEMU did not exit on reset with -no-reboot")
	}
	var ee *ExitError
	if !errors.As(m.Err(), &ee) || ee.Code != 0 || ee.DuringStart {
		t.Fatalf("Err = %v", m.Err())
	}
	// The console ends with QEMU.
	if _, err := io.ReadAll(m.Console()); err != nil {
		t.Fatalf("console after exit: %v", err)
	}
	if err := m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if !errors.As(m.Err(), &ee) {
		t.Fatal("Stop after an unrequested exit must keep the ExitError")
	}
}

// The disk image is never written: the guest sees a qcow2 overlay in the
// run dir, and snapshots cover it.
func TestDiskOverlayAndSnapshots(t *testing.T) {
	needQEMU(t)
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.raw")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "raw", disk, "16M").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	sum := func() [32]byte {
		b, err := os.ReadFile(disk)
		if err != nil {
			t.Fatal(err)
		}
		return sha256.Sum256(b)
	}
	before := sum()
	m := start(t, Config{Disk: disk})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	p := m.Paths()
	if _, err := os.Stat(p.DiskOverlay); err != nil {
		t.Fatal(err)
	}
	nodes, err := m.QMP().BlockNodeInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range nodes {
		names = append(names, n.NodeName+":"+n.Driver)
	}
	if !slices.Contains(names, DiskNode+":qcow2") || !slices.Contains(names, ScratchNode+":qcow2") {
		t.Fatalf("block nodes %v", names)
	}
	// Let the guest write the disk through the overlay: HMP qemu-io.
	if out, err := m.QMP().HumanMonitorCommand(ctx, `qemu-io `+DiskNode+` "write -P 0x5a 0 64k"`); err != nil || strings.Contains(out, "rror") {
		t.Fatalf("qemu-io write: %q %v", out, err)
	}
	vm, devs := m.SnapshotNodes()
	if !slices.Equal(devs, []string{ScratchNode, DiskNode}) {
		t.Fatalf("devices %v", devs)
	}
	if err := m.QMP().SnapshotSave(ctx, "d1", vm, devs); err != nil {
		t.Fatal(err)
	}
	if out, err := m.QMP().HumanMonitorCommand(ctx, `qemu-io `+DiskNode+` "write -P 0x11 0 64k"`); err != nil || strings.Contains(out, "rror") {
		t.Fatalf("qemu-io write: %q %v", out, err)
	}
	if err := m.QMP().SnapshotLoad(ctx, "d1", vm, devs); err != nil {
		t.Fatal(err)
	}
	out, err := m.QMP().HumanMonitorCommand(ctx, `qemu-io `+DiskNode+` "read -P 0x5a 0 64k"`)
	if err != nil || strings.Contains(out, "rror") || strings.Contains(out, "Pattern verification failed") {
		t.Fatalf("after loading the snapshot the disk should hold 0x5a: %q %v", out, err)
	}
	if err := m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if sum() != before {
		t.Fatal("the disk image was modified")
	}
}

func TestConsoleWithRealKernel(t *testing.T) {
	needQEMU(t)
	kernel := needKernel(t)
	// No initrd: the kernel panics at "VFS: Unable to mount root fs".
	m := start(t, Config{Kernel: kernel, Append: "console=ttyS0 nokaslr", Accel: "tcg"})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	startBoot := time.Now()
	if err := m.QMP().Cont(ctx); err != nil {
		t.Fatal(err)
	}
	con := m.ConsoleStream()
	var seen []byte
	buf := make([]byte, 4096)
	readUntil := func(marker string) {
		for !bytes.Contains(seen, []byte(marker)) {
			n, err := con.ReadContext(ctx, buf)
			if err != nil {
				t.Fatalf("console: %v waiting for %q; got ...%q", err, marker, seen[max(0, len(seen)-300):])
			}
			seen = append(seen, buf[:n]...)
		}
		t.Logf("%q on the console %v after cont", marker, time.Since(startBoot))
	}
	readUntil("Linux version")
	readUntil("end Kernel panic")
	if con.Dropped() != 0 {
		t.Fatalf("dropped %d bytes", con.Dropped())
	}
	// Everything also reached the tail and the log.
	tail := m.ConsoleTail(ConsoleTailSize)
	if !strings.Contains(tail, "Linux version") || !strings.Contains(tail, "Kernel panic") {
		t.Fatalf("tail lacks boot or panic text: ...%s", tail[max(0, len(tail)-500):])
	}
	short := m.ConsoleTail(10)
	logged, err := os.ReadFile(m.Paths().ConsoleLog)
	if err != nil || !bytes.Contains(logged, []byte("Kernel panic")) {
		t.Fatalf("console log: %v", err)
	}
	if len(short) != 10 || !bytes.Contains(logged, []byte(short)) {
		t.Fatalf("ConsoleTail(10) = %q", short)
	}
}

// bootSector is a 512-byte MBR that prints "KSPEC-BOOT" on COM1, waits for
// one byte on COM1 and echoes it as "<x>", then writes 1 (panicked) to the
// ISA pvpanic port 0x505 and halts.
func bootSector() []byte {
	code := []byte{
		0x31, 0xC0, // xor ax, ax
		0x8E, 0xD8, // mov ds, ax
		0xBE, 0x00, 0x00, // mov si, msg (patched below)
		0xBA, 0xF8, 0x03, // mov dx, 0x3f8
		// print:
		0xAC,       // lodsb
		0x84, 0xC0, // test al, al
		0x74, 0x03, // jz wait
		0xEE,       // out dx, al
		0xEB, 0xF8, // jmp print
		// wait: poll the line status register for a received byte
		0xBA, 0xFD, 0x03, // mov dx, 0x3fd
		0xEC,       // in al, dx
		0xA8, 0x01, // test al, 1
		0x74, 0xFB, // jz (back to in)
		0xBA, 0xF8, 0x03, // mov dx, 0x3f8
		0xEC,       // in al, dx
		0x88, 0xC3, // mov bl, al
		0xB0, '<', 0xEE, // mov al, '<'; out dx, al
		0x88, 0xD8, 0xEE, // mov al, bl; out dx, al
		0xB0, '>', 0xEE, // mov al, '>'; out dx, al
		0xBA, 0x05, 0x05, // mov dx, 0x505
		0xB0, 0x01, // mov al, 1
		0xEE,       // out dx, al
		0xFA,       // cli
		0xF4,       // hlt
		0xEB, 0xFD, // jmp hlt
	}
	msgAt := 0x7C00 + len(code)
	code[5], code[6] = byte(msgAt), byte(msgAt>>8)
	code = append(code, "KSPEC-BOOT\r\n\x00"...)
	sector := make([]byte, 512)
	copy(sector, code)
	sector[510], sector[511] = 0x55, 0xAA
	return sector
}

// Boot a disk image (no kernel): console output arrives, console input
// reaches the guest, and a pvpanic write pauses the VM with GUEST_PANICKED.
func TestDiskBootConsoleAndPanicDevice(t *testing.T) {
	needQEMU(t)
	disk := filepath.Join(t.TempDir(), "boot.img")
	if err := os.WriteFile(disk, bootSector(), 0o600); err != nil {
		t.Fatal(err)
	}
	m := start(t, Config{Disk: disk, DiskFormat: "raw", PanicDevice: true})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	panicked := m.QMP().NewWaiter("GUEST_PANICKED")
	defer panicked.Close()
	begin := time.Now()
	if err := m.QMP().Cont(ctx); err != nil {
		t.Fatal(err)
	}
	con := m.ConsoleStream()
	var seen []byte
	buf := make([]byte, 256)
	readUntil := func(marker string) {
		for !bytes.Contains(seen, []byte(marker)) {
			n, err := con.ReadContext(ctx, buf)
			if err != nil {
				t.Fatalf("console: %v waiting for %q; got %q", err, marker, seen)
			}
			seen = append(seen, buf[:n]...)
		}
	}
	readUntil("KSPEC-BOOT")
	t.Logf("boot sector output %v after cont", time.Since(begin))
	if _, err := io.WriteString(m.Console(), "k"); err != nil {
		t.Fatal(err)
	}
	readUntil("<k>")
	ev, err := panicked.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ev.DataString("action") != "pause" {
		t.Fatalf("GUEST_PANICKED %v", ev)
	}
	st, err := m.QMP().Status(ctx)
	if err != nil || st.State != "guest-panicked" || st.Running {
		t.Fatalf("status %+v %v", st, err)
	}
	// The run is still debuggable: the gdbstub answers.
	c, err := m.DialGDB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	gdbHandshake(t, c)
}

// Killing the harness (SIGKILL, no cleanup) takes QEMU down with it
// (Pdeathsig), and CleanStale then removes the orphaned run dir.
func TestHarnessDeathKillsQEMU(t *testing.T) {
	needQEMU(t)
	base := shortBase(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "KSPEC_SUPERVISOR_HELPER=orphan", "KSPEC_HELPER_BASE="+base)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("helper: %v; stderr %s", err, stderr.String())
	}
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "QEMU" {
		t.Fatalf("helper said %q", line)
	}
	pid, _ := strconv.Atoi(f[1])
	runDir := f[2]
	werr := cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("helper did not die by SIGKILL: %v", werr)
	}
	start := time.Now()
	if !waitGone(pid, 10*time.Second) {
		t.Fatalf("qemu %d survived its harness", pid)
	}
	t.Logf("qemu gone %v after the harness died", time.Since(start))
	if _, err := os.Stat(runDir); err != nil {
		t.Fatalf("run dir should still be there for CleanStale: %v", err)
	}
	removed, err := CleanStale(base)
	if err != nil || !slices.Contains(removed, runDir) {
		t.Fatalf("CleanStale = %v, %v", removed, err)
	}
	if _, err := os.Stat(runDir); !os.IsNotExist(err) {
		t.Fatalf("run dir survives CleanStale: %v", err)
	}
}

// CleanStale kills an orphan QEMU whose harness is dead, and leaves live
// runs and fresh dirs alone.
func TestCleanStale(t *testing.T) {
	needQEMU(t)
	base := shortBase(t)
	deadPID := func() int {
		c := exec.Command("true")
		if err := c.Run(); err != nil {
			t.Fatal(err)
		}
		return c.Process.Pid
	}
	mkRun := func(name string) string {
		d := filepath.Join(base, name)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		return d
	}
	writeRecs := func(dir string, lines ...string) {
		if err := os.WriteFile(filepath.Join(dir, "pids"), []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	self, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}

	// An orphan QEMU: harness dead, QEMU alive with the dir in its command line.
	orphanDir := mkRun("kspec-run-orphan")
	q := exec.Command("qemu-system-x86_64", "-S", "-nodefaults", "-no-user-config", "-display", "none", "-accel", "tcg",
		"-qmp", "unix:"+filepath.Join(orphanDir, "qmp.sock")+",server=on,wait=off")
	q.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := q.Start(); err != nil {
		t.Fatal(err)
	}
	qdone := make(chan error, 1)
	go func() { qdone <- q.Wait() }()
	t.Cleanup(func() { _ = q.Process.Kill() })
	for !alive(q.Process.Pid, 0) {
		time.Sleep(time.Millisecond)
	}
	qi, err := readProc(q.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	writeRecs(orphanDir, fmt.Sprintf("harness %d 1", deadPID()), fmt.Sprintf("qemu %d %d", q.Process.Pid, qi.startTime))

	// A dead run whose QEMU PID is now someone else's (wrong start time).
	reusedDir := mkRun("kspec-run-reused")
	writeRecs(reusedDir, fmt.Sprintf("harness %d 1", deadPID()), fmt.Sprintf("qemu %d %d", os.Getpid(), self.startTime+1))

	// A live run (this process is its harness).
	liveDir := mkRun("kspec-run-live")
	writeRecs(liveDir, fmt.Sprintf("harness %d %d", os.Getpid(), self.startTime))

	// A harness PID reused by a live process: start time differs, so dead.
	reusedHarness := mkRun("kspec-run-reusedharness")
	writeRecs(reusedHarness, fmt.Sprintf("harness %d %d", os.Getpid(), self.startTime+7))

	// No pid file: fresh (kept) and old (removed).
	fresh := mkRun("kspec-run-fresh")
	old := mkRun("kspec-run-old")
	long := time.Now().Add(-2 * staleGrace)
	if err := os.Chtimes(old, long, long); err != nil {
		t.Fatal(err)
	}
	// Not ours by name.
	other := mkRun("something-else")

	removed, err := CleanStale(base)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed)
	want := []string{old, orphanDir, reusedDir, reusedHarness}
	slices.Sort(want)
	if !slices.Equal(removed, want) {
		t.Fatalf("removed %v, want %v", removed, want)
	}
	for _, d := range []string{liveDir, fresh, other} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s should be kept: %v", d, err)
		}
	}
	select {
	case <-qdone:
	case <-time.After(5 * time.Second):
		t.Fatal("orphan QEMU not killed")
	}
	if ws := q.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("orphan QEMU ended with %v", q.ProcessState)
	}
}

func TestKVMUsableAndProbe(t *testing.T) {
	ok, why := KVMUsable()
	t.Logf("KVMUsable: %v (%s)", ok, why)
	if why == "" {
		t.Fatal("no reason given")
	}
	needQEMU(t)
	kernel := needKernel(t)
	start := time.Now()
	ok, verdict := ProbeKVM(t.Context(), "", kernel)
	d := time.Since(start)
	t.Logf("ProbeKVM: %v in %v: %s", ok, d, verdict)
	if d > ProbeKVMTimeout+3*time.Second {
		t.Fatalf("ProbeKVM took %v", d)
	}
	if verdict == "" {
		t.Fatal("no verdict text")
	}
	// A cancelled context returns at once.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	start = time.Now()
	if ok, _ := ProbeKVM(ctx, "", kernel); ok {
		t.Fatal("probe with a cancelled context succeeded")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("cancelled probe took %v", d)
	}
	// ResolveAccel honours explicit choices without probing.
	if a, _ := ResolveAccel(t.Context(), Config{Accel: "tcg", Kernel: kernel}); a != "tcg" {
		t.Fatalf("ResolveAccel tcg = %s", a)
	}
	// "auto" follows the probe, whatever this machine's KVM does, and
	// caches the verdict.
	cache := filepath.Join(t.TempDir(), "accel.json")
	a, reason := ResolveAccel(t.Context(), Config{Kernel: kernel, AccelCache: cache})
	t.Logf("auto: %s (%s)", a, reason)
	if want := map[bool]string{true: "kvm", false: "tcg"}[ok]; a != want {
		t.Fatalf("auto = %s (%s), but the probe said %v (%s)", a, reason, ok, verdict)
	}
	// A probe's verdict is cached; without a usable /dev/kvm there is no
	// probe and nothing to cache.
	v, cached := loadVerdicts(cache)[accelKey("qemu-system-x86_64", kernel)]
	if usable, _ := KVMUsable(); cached != usable || (cached && v.Accel != a) {
		t.Fatalf("cached %+v (present %v), want %s cached only when /dev/kvm is usable (%v)", v, cached, a, usable)
	}
}

// A kernel boots under explicit "kvm". This test needs a working KVM: it
// skips, saying why, when the boot probe fails on this machine.
func TestKVMStartsKernel(t *testing.T) {
	needQEMU(t)
	kernel := needKernel(t)
	if ok, verdict := ProbeKVM(t.Context(), "", kernel); !ok {
		t.Skipf("needs a working KVM; the boot probe failed here: %s", verdict)
	}
	m := start(t, Config{Kernel: kernel, Append: "console=ttyS0", Accel: "kvm"})
	if m.Accel() != "kvm" || m.AccelReason() != "requested" {
		t.Fatalf("accel %s (%s)", m.Accel(), m.AccelReason())
	}
	if err := m.QMP().Cont(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// Stop on a machine whose QMP is wedged still ends QEMU (signals), and a
// QEMU that ignores nothing dies by SIGTERM.
func TestStopWithoutQMP(t *testing.T) {
	m := start(t, Config{FirmwareOnly: true})
	_ = m.QMP().Close() // quit cannot be sent
	pid := m.PID()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	begin := time.Now()
	if err := m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if !waitGone(pid, 5*time.Second) {
		t.Fatal("qemu survived Stop")
	}
	t.Logf("Stop without QMP took %v", time.Since(begin))
	if m.Err() != nil {
		t.Fatalf("Err = %v", m.Err())
	}
}

// TestReconnectQMP drops QEMU's end of the QMP connection for real and
// checks that ReconnectQMP gets a working monitor back, and that after QEMU
// is killed it says so instead of retrying.
func TestReconnectQMP(t *testing.T) {
	needQEMU(t)
	m := start(t, Config{FirmwareOnly: true, RunDirBase: shortBase(t)})
	ctx := t.Context()
	old := m.QMP()
	if same, err := m.ReconnectQMP(ctx); err != nil || same != old {
		t.Fatalf("ReconnectQMP on a live connection = %p, %v; want the same monitor %p", same, err, old)
	}
	n, err := faultinject.SeverUnixConnections(m.PID(), m.Paths().QMPSocket)
	if err != nil || n != 1 {
		t.Fatalf("sever QMP: %d connections, %v", n, err)
	}
	<-old.Done()
	if !errors.Is(old.Err(), qmp.ErrClosed) {
		t.Fatalf("old monitor's error %v does not wrap qmp.ErrClosed", old.Err())
	}
	mon, err := m.ReconnectQMP(ctx)
	if err != nil {
		t.Fatalf("ReconnectQMP after a lost connection: %v", err)
	}
	if mon == old || m.QMP() != mon {
		t.Fatal("ReconnectQMP did not install a new monitor")
	}
	if _, err := mon.Status(ctx); err != nil {
		t.Fatalf("query-status on the new connection: %v", err)
	}

	if err := syscall.Kill(m.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-m.Done()
	<-mon.Done()
	_, err = m.ReconnectQMP(ctx)
	if err == nil || !strings.Contains(err.Error(), "SIGKILL") {
		t.Fatalf("ReconnectQMP after QEMU was killed = %v; want an error naming SIGKILL", err)
	}
}
