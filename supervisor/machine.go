package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/kspec/kspec/qmp"
)

// Teardown timings of Stop.
const (
	quitTimeout = 2 * time.Second // QMP quit
	quitGrace   = 3 * time.Second // wait for exit after quit
	termGrace   = 2 * time.Second // wait for exit after SIGTERM
	killGrace   = 5 * time.Second // wait for exit after SIGKILL
)

// stderrTailSize is how much of QEMU's stderr is kept in memory.
const stderrTailSize = 64 << 10

// Machine is one running QEMU process. Create it with Start; end it with
// Stop.
type Machine struct {
	cfg         Config
	paths       Paths
	accel       string
	accelReason string
	args        []string // binary first

	cmd    *exec.Cmd
	pid    int
	monMu  sync.Mutex   // guards mon, which ReconnectQMP replaces
	mon    *qmp.Monitor // the current QMP connection
	con    *ConsoleStream
	stderr *tailFile

	done          chan struct{}
	exitErr       error      // set before done is closed; nil after a requested stop
	lastExit      *ExitError // how it ended, requested or not
	stopRequested atomic.Bool

	stopOnce sync.Once
	stopErr  error
}

// Start creates the run dir (0700), the scratch drive (and the disk overlay),
// starts QEMU halted at reset (-S) with its console on a pty, and connects
// to QMP. ctx bounds the start only, not QEMU's life.
//
// If QEMU exits before QMP answers, the error is an *ExitError (wrapping
// ErrQEMUExited) with the exit status, command line and stderr. A missing
// binary gives an error wrapping ErrQEMUNotFound that says what to install.
//
// QEMU runs in its own process group with SIGKILL as its parent-death
// signal, so it dies with the harness. (Linux delivers that signal when the
// thread that started QEMU exits; Go only ends threads whose goroutine
// called runtime.LockOSThread without unlocking, so do not call Start from
// such a goroutine.)
func Start(ctx context.Context, cfg Config) (_ *Machine, err error) {
	cfg = cfg.withDefaults()
	qemuPath, err := exec.LookPath(cfg.QEMU)
	if err != nil {
		return nil, notFound(cfg.QEMU, cfg.Arch.QEMUPackage(), err)
	}
	imgPath, err := exec.LookPath(cfg.QEMUImg)
	if err != nil && cfg.QEMUImg != "qemu-img" {
		imgPath, err = exec.LookPath("qemu-img")
	}
	if err != nil {
		return nil, notFound(cfg.QEMUImg, "qemu-utils", err)
	}
	accel, reason, err := startAccel(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if cfg.DataDirs == nil {
		cfg.DataDirs = DataDirs(qemuPath)
	}
	m, err := startOnce(ctx, cfg, qemuPath, imgPath, accel)
	if note, died := kvmStartFailed(err); died && accel == "kvm" && cfg.Accel == "auto" {
		storeVerdict(cfg.AccelCache, accelKey(cfg.QEMU, cfg.Kernel), accelVerdict{Accel: "tcg", Reason: note})
		accel, reason = "tcg", note+"; KVM said: "+reason
		m, err = startOnce(ctx, cfg, qemuPath, imgPath, accel)
	}
	if err != nil {
		return nil, err
	}
	m.accelReason = reason
	return m, nil
}

// startOnce is one attempt of Start with the accelerator settled.
func startOnce(ctx context.Context, cfg Config, qemuPath, imgPath, accel string) (_ *Machine, err error) {
	if cfg.Disk != "" {
		abs, err := filepath.Abs(cfg.Disk)
		if err != nil {
			return nil, fmt.Errorf("supervisor: disk %s: %w", cfg.Disk, err)
		}
		if _, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("supervisor: disk image: %w", err)
		}
		cfg.Disk = abs
	}
	// Validate before creating anything.
	if _, err := BuildArgs(cfg, PathsIn(filepath.Join(runDirBase(cfg), "kspec-run-0000000000")), accel); err != nil {
		return nil, err
	}

	dir, err := os.MkdirTemp(runDirBase(cfg), "kspec-run-*")
	if err != nil {
		return nil, fmt.Errorf("supervisor: create run dir: %w", err)
	}
	p := PathsIn(dir)
	m := &Machine{cfg: cfg, paths: p, accel: accel, done: make(chan struct{})}
	var cleanups []func()
	defer func() {
		if err == nil {
			return
		}
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
		if !cfg.KeepRunDir {
			_ = os.RemoveAll(dir)
		}
	}()
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("supervisor: %w", err)
	}
	if err := writePIDFile(p.PIDFile, os.Getpid(), 0); err != nil {
		return nil, err
	}
	master, slave, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("supervisor: open pty: %w", err)
	}
	cleanups = append(cleanups, func() { master.Close() })
	cleanups = append(cleanups, func() { slave.Close() })
	if err := makeRaw(slave); err != nil {
		return nil, fmt.Errorf("supervisor: pty raw mode: %w", err)
	}
	p.ConsoleTTY = slave.Name()
	args, err := BuildArgs(cfg, p, accel)
	if err != nil {
		return nil, err
	}
	m.args = append([]string{qemuPath}, args...)

	if cfg.ScratchFrom != "" {
		if err := copyFile(cfg.ScratchFrom, p.Scratch); err != nil {
			return nil, fmt.Errorf("supervisor: scratch drive from %s: %w", cfg.ScratchFrom, err)
		}
	} else if err := qemuImg(ctx, imgPath, "create", "-q", "-f", "qcow2", p.Scratch, fmt.Sprintf("%dM", cfg.ScratchMiB)); err != nil {
		return nil, err
	}
	if cfg.Disk != "" {
		format := cfg.DiskFormat
		if format == "" {
			if format, err = probeFormat(ctx, imgPath, cfg.Disk); err != nil {
				return nil, err
			}
		}
		if err := qemuImg(ctx, imgPath, "create", "-q", "-f", "qcow2", "-b", cfg.Disk, "-F", format, p.DiskOverlay); err != nil {
			return nil, err
		}
	}

	conLog, err := os.OpenFile(p.ConsoleLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("supervisor: %w", err)
	}
	cleanups = append(cleanups, func() { conLog.Close() })
	m.stderr, err = newTailFile(p.StderrLog, stderrTailSize)
	if err != nil {
		return nil, err
	}
	cleanups = append(cleanups, func() { m.stderr.Close() })

	cmd := exec.Command(qemuPath, args...)
	cmd.Dir = dir
	// QEMU opens the console tty itself (Paths.ConsoleTTY); keeping our
	// slave open until it has means the master never sees a hangup.
	cmd.Stdout = m.stderr
	cmd.Stderr = m.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("supervisor: start %s: %w", qemuPath, err)
	}
	m.cmd, m.pid = cmd, cmd.Process.Pid
	// From here the console owns master and its log; teardown is one step.
	m.con = newConsole(master, slave, conLog)
	go m.wait()
	cleanups = []func(){func() {
		m.kill()
		_ = m.con.close()
		_ = m.stderr.Close()
	}}
	if err := writePIDFile(p.PIDFile, os.Getpid(), m.pid); err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			// QEMU's /proc entry is gone (ENOENT), or went while it was
			// read (ESRCH): it died (e.g. aborted under KVM) and m.wait
			// has reaped it, so m.done is about to close.
			<-m.done
			ee := *m.lastExit
			ee.DuringStart = true
			return nil, &ee
		}
		return nil, err
	}

	// Connect to QMP unless QEMU dies first.
	dctx, cancel := m.untilExit(ctx)
	m.mon, err = qmp.Dial(dctx, p.QMPSocket)
	cancel()
	if err != nil {
		select {
		case <-m.done:
			ee := *m.lastExit
			ee.DuringStart = true
			return nil, &ee
		default:
		}
		return nil, fmt.Errorf("supervisor: qemu (pid %d) did not answer on QMP: %w; stderr: %s", m.pid, err, m.StderrTail(2048))
	}
	cleanups = append(cleanups, func() { m.QMP().Close() })

	if cfg.GDB == "tcp" {
		addr, err := m.resolveGDBAddr(ctx)
		if err != nil {
			return nil, err
		}
		m.paths.GDBAddr = addr
		m.paths.GDBSocket = ""
	} else {
		m.paths.GDBAddr = ""
	}
	if cfg.Disk == "" {
		m.paths.DiskOverlay = ""
	}
	return m, nil
}

func runDirBase(cfg Config) string {
	if cfg.RunDirBase != "" {
		return cfg.RunDirBase
	}
	return os.TempDir()
}

func qemuImg(ctx context.Context, img string, args ...string) error {
	out, err := exec.CommandContext(ctx, img, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("supervisor: %s %s: %w: %s", img, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func probeFormat(ctx context.Context, img, disk string) (string, error) {
	out, err := exec.CommandContext(ctx, img, "info", "--output=json", disk).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			out = ee.Stderr
		}
		return "", fmt.Errorf("supervisor: qemu-img info %s: %w: %s", disk, err, strings.TrimSpace(string(out)))
	}
	var info struct {
		Format string `json:"format"`
	}
	if err := json.Unmarshal(out, &info); err != nil || info.Format == "" {
		return "", fmt.Errorf("supervisor: qemu-img info %s: no format in %q", disk, out)
	}
	return info.Format, nil
}

// makeRaw puts a tty into raw mode (cfmakeraw): no echo, no line editing,
// no newline translation.
func makeRaw(f *os.File) error {
	fd := int(f.Fd())
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}

// wait reaps QEMU and records how it ended.
func (m *Machine) wait() {
	_ = m.cmd.Wait()     // the status is in ProcessState
	m.con.releaseSlave() // QEMU is gone: let the console reach its end
	st := m.cmd.ProcessState
	ee := &ExitError{Code: st.ExitCode(), Args: m.args, StderrTail: m.StderrTail(8 << 10)}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		ee.Code = -1
		ee.Signal = unix.SignalName(ws.Signal())
		if ee.Signal == "" {
			ee.Signal = ws.Signal().String()
		}
	}
	m.lastExit = ee
	if !m.stopRequested.Load() {
		m.exitErr = ee
	}
	close(m.done)
}

// kill SIGKILLs QEMU's process group (if QEMU is not yet reaped) and waits.
func (m *Machine) kill() {
	select {
	case <-m.done:
		return
	default:
	}
	_ = syscall.Kill(-m.pid, syscall.SIGKILL)
	<-m.done
}

// resolveGDBAddr finds the port QEMU bound for the gdbstub (port 0 = any).
func (m *Machine) resolveGDBAddr(ctx context.Context) (string, error) {
	cs, err := m.QMP().Chardevs(ctx)
	if err != nil {
		return "", fmt.Errorf("supervisor: find gdbstub port: %w", err)
	}
	for _, c := range cs {
		if c.Label == GDBChardev {
			addr, err := parseChardevTCP(c.Filename)
			if err != nil {
				return "", fmt.Errorf("supervisor: find gdbstub port: %w", err)
			}
			return addr, nil
		}
	}
	return "", fmt.Errorf("supervisor: find gdbstub port: no chardev %q in query-chardev", GDBChardev)
}

// parseChardevTCP extracts "host:port" from a query-chardev filename such
// as "disconnected:tcp:127.0.0.1:42443,server=on".
func parseChardevTCP(filename string) (string, error) {
	s := strings.TrimPrefix(filename, "disconnected:")
	rest, ok := strings.CutPrefix(s, "tcp:")
	if !ok {
		return "", fmt.Errorf("chardev %q is not a tcp socket", filename)
	}
	addr, _, _ := strings.Cut(rest, ",")
	// A connected client shows as "tcp:LOCAL:PORT<->REMOTE:PORT".
	addr, _, _ = strings.Cut(addr, "<->")
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" || port == "0" {
		return "", fmt.Errorf("chardev %q: no bound address", filename)
	}
	return net.JoinHostPort(host, port), nil
}

// Paths returns the run's files. GDBSocket is empty in TCP mode, GDBAddr
// empty in unix mode; DiskOverlay is empty without a Disk.
func (m *Machine) Paths() Paths { return m.paths }

// QMP returns the connected QMP monitor.
func (m *Machine) QMP() *qmp.Monitor {
	m.monMu.Lock()
	defer m.monMu.Unlock()
	return m.mon
}

// untilExit returns a context that ends with ctx or as soon as QEMU exits.
func (m *Machine) untilExit(ctx context.Context) (context.Context, context.CancelFunc) {
	c, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-m.done:
			cancel()
		case <-c.Done():
		}
	}()
	return c, cancel
}

// ReconnectQMP replaces a QMP connection that was lost while QEMU still
// runs: QEMU's QMP socket accepts a new client once the old one is gone.
// When the current connection is up it is returned unchanged. The error
// says why no connection could be made: QEMU exited (its *ExitError), a stop
// was requested, or the socket did not answer before ctx ended. Events sent
// while no connection was up are lost; subscribers of the old Monitor see
// their channels closed and must subscribe again.
func (m *Machine) ReconnectQMP(ctx context.Context) (*qmp.Monitor, error) {
	m.monMu.Lock()
	defer m.monMu.Unlock()
	old := m.mon
	if old.Err() == nil {
		return old, nil
	}
	if m.stopRequested.Load() {
		return nil, fmt.Errorf("supervisor: QMP connection lost (%w) while QEMU is being stopped", old.Err())
	}
	if err := m.Err(); err != nil {
		return nil, fmt.Errorf("supervisor: QMP connection lost: %w", err)
	}
	dctx, cancel := m.untilExit(ctx) // QEMU dying ends the redial at once
	defer cancel()
	mon, err := qmp.Dial(dctx, m.paths.QMPSocket)
	if err != nil {
		select {
		case <-m.done:
			if m.exitErr != nil {
				return nil, fmt.Errorf("supervisor: QMP connection lost (%v), and QEMU exited: %w", old.Err(), m.exitErr)
			}
			return nil, fmt.Errorf("supervisor: QMP connection lost (%v), and QEMU exited", old.Err())
		default:
		}
		return nil, fmt.Errorf("supervisor: QMP connection lost (%v), and reconnecting failed: %w", old.Err(), err)
	}
	_ = old.Close()
	m.mon = mon
	return mon, nil
}

// Console returns the guest's serial console (a *ConsoleStream): reads
// return what the guest printed, writes type to the guest. See
// ConsoleStream for buffering and drop behaviour.
func (m *Machine) Console() io.ReadWriter { return m.con }

// ConsoleStream is Console with its concrete type (deadlines, Dropped,
// Discard).
func (m *Machine) ConsoleStream() *ConsoleStream { return m.con }

// ConsoleTail returns the last n bytes (at most ConsoleTailSize) the guest
// printed, read or not.
func (m *Machine) ConsoleTail(n int) string { return m.con.Tail(n) }

// StderrTail returns the last n bytes (at most 64 KiB) of QEMU's stderr.
func (m *Machine) StderrTail(n int) string { return m.stderr.Tail(n) }

// DialGDB connects to the gdbstub. QEMU serves one debugger at a time and
// sends a stop reply (the VM stops) as soon as one connects.
func (m *Machine) DialGDB(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	network, addr := "unix", m.paths.GDBSocket
	if m.paths.GDBAddr != "" {
		network, addr = "tcp", m.paths.GDBAddr
	}
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("supervisor: dial gdbstub: %w", err)
	}
	return c, nil
}

// GDBTarget is the gdb command that attaches to this machine, for a person
// to paste: "target remote /path/gdb.sock" or "target remote 127.0.0.1:PORT".
func (m *Machine) GDBTarget() string {
	if m.paths.GDBAddr != "" {
		return "target remote " + m.paths.GDBAddr
	}
	return "target remote " + m.paths.GDBSocket
}

// Accel returns the accelerator in use: "kvm" or "tcg".
func (m *Machine) Accel() string { return m.accel }

// AccelReason says why Accel was chosen: "requested", a probe's or a
// cached verdict, or that QEMU died under an automatically chosen KVM and
// was started again under TCG.
func (m *Machine) AccelReason() string { return m.accelReason }

// PID returns QEMU's process id.
func (m *Machine) PID() int { return m.pid }

// Args returns QEMU's full command line, binary first.
func (m *Machine) Args() []string { return append([]string(nil), m.args...) }

// SnapshotNodes returns the vmstate node and device list for qmp's
// snapshot calls (see the package-level SnapshotNodes).
func (m *Machine) SnapshotNodes() (vmstate string, devices []string) {
	return SnapshotNodes(m.cfg)
}

// Done is closed when QEMU has exited (and been reaped).
func (m *Machine) Done() <-chan struct{} { return m.done }

// Err reports, after Done, why QEMU exited: an *ExitError when it exited on
// its own (guest shutdown with -no-reboot, crash), nil when Stop ended it.
// Before Done it returns nil.
func (m *Machine) Err() error {
	select {
	case <-m.done:
		return m.exitErr
	default:
		return nil
	}
}

// Stop ends QEMU: QMP quit, a bounded wait, then SIGTERM and SIGKILL to its
// process group; then it closes QMP and the console and removes the run dir
// (see Config.KeepRunDir). ctx bounds the graceful part; the kill always
// happens. Stop is idempotent: later calls return the first call's result.
func (m *Machine) Stop(ctx context.Context) error {
	m.stopOnce.Do(func() { m.stopErr = m.stop(ctx) })
	return m.stopErr
}

func (m *Machine) stop(ctx context.Context) error {
	m.stopRequested.Store(true)
	var errs []error
	if !m.exited(0) {
		qctx, cancel := context.WithTimeout(ctx, quitTimeout)
		quitErr := m.QMP().Quit(qctx) // on failure, signals follow at once
		cancel()
		if quitErr != nil || !m.exitedCtx(ctx, quitGrace) {
			_ = syscall.Kill(-m.pid, syscall.SIGTERM)
			if !m.exited(termGrace) {
				_ = syscall.Kill(-m.pid, syscall.SIGKILL)
				if !m.exited(killGrace) {
					errs = append(errs, fmt.Errorf("supervisor: qemu pid %d survived SIGKILL for %v", m.pid, killGrace))
				}
			}
		}
	}
	_ = m.QMP().Close()
	if err := m.con.close(); err != nil && !errors.Is(err, os.ErrClosed) {
		errs = append(errs, fmt.Errorf("supervisor: close console: %w", err))
	}
	if m.exited(0) {
		_ = m.stderr.Close()
	}
	if m.cfg.KeepRunDir {
		for _, s := range []string{m.paths.QMPSocket, m.paths.GDBSocket} {
			if s != "" {
				_ = os.Remove(s)
			}
		}
	} else if err := os.RemoveAll(m.paths.RunDir); err != nil {
		errs = append(errs, fmt.Errorf("supervisor: remove run dir: %w", err))
	}
	return errors.Join(errs...)
}

// exited waits up to d for QEMU to have exited.
func (m *Machine) exited(d time.Duration) bool {
	if d <= 0 {
		select {
		case <-m.done:
			return true
		default:
			return false
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-m.done:
		return true
	case <-t.C:
		return false
	}
}

// exitedCtx is exited bounded by ctx too.
func (m *Machine) exitedCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-m.done:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return m.exited(0)
	}
}

// tailFile is QEMU's stderr: every byte goes to a file and the last ones
// stay in memory.
type tailFile struct {
	mu   sync.Mutex
	f    *os.File
	ring ring
}

func newTailFile(path string, size int) (*tailFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("supervisor: %w", err)
	}
	return &tailFile{f: f, ring: ring{size: size}}, nil
}

func (t *tailFile) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ring.write(p)
	if t.f != nil {
		_, _ = t.f.Write(p) // a full disk must not block QEMU's stderr
	}
	return len(p), nil
}

// Tail returns the last n bytes written.
func (t *tailFile) Tail(n int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.ring.last(n))
}

// Close closes the file; later writes only reach memory.
func (t *tailFile) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.f == nil {
		return nil
	}
	err := t.f.Close()
	t.f = nil
	return err
}

// copyFile copies src to a new file dst (mode 0600).
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
