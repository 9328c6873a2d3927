package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kspec/kspec/rsp"
	"github.com/kspec/kspec/supervisor"
)

// Holding a failing state: the guest stays stopped where the spec failed and
// a person attaches their own gdb to it.
//
// QEMU's gdbstub serves one client at a time. kspec HANDS ITS CONNECTION
// OVER through a relay rather than serving a pass-through gdbstub that
// multiplexes both debuggers:
//   - kspec has nothing left to do in a held guest but wait, so two live
//     debuggers are not needed; a multiplexer would have to reconcile two
//     views of the run state (gdb continues the VM behind kspec's client,
//     kspec's breakpoints fire in gdb's session) and answer gdb's packets
//     the way QEMU's stub does, for every QEMU version;
//   - the person talks to QEMU's real stub, byte for byte, so everything
//     gdb can do with QEMU (monitor commands, hardware watchpoints,
//     per-vCPU threads) works as it does without kspec;
//   - kspec still owns the socket the person connects to (hold.sock in the
//     private 0700 run dir), so it sees the person's gdb quit (EOF) at once,
//     without polling QEMU, and can then tear the guest down as always.
//
// kspec's own client leaves by closing its connection without `D`: `D`
// would resume the VM, while a plain disconnect leaves it stopped (and
// leaves kspec's breakpoints in; the person's gdb sends `?` first, which
// makes QEMU drop every breakpoint, so gdb starts clean). Before relaying,
// kspec selects the failing vCPU on the new connection (Hg/Hc), because
// QEMU answers gdb's `?` with its current vCPU and otherwise starts every
// connection on the first one.

// DefaultHoldLimit bounds how long a held guest waits for a person's gdb to
// attach and, once attached, to quit.
const DefaultHoldLimit = time.Hour

// HoldOptions tune Target.Hold.
type HoldOptions struct {
	// Limit bounds the whole hold: waiting for gdb to attach and the gdb
	// session. Default DefaultHoldLimit. When it passes (or ctx ends, e.g.
	// on Ctrl-C) the session is cut and the guest torn down.
	Limit time.Duration
	// Announce is called once the hold socket accepts connections, with
	// what a person needs to attach. Default: print Held.String() on the
	// controlling terminal (/dev/tty), or on os.Stderr without one.
	Announce func(Held)
}

// Held describes a guest held stopped for a person's gdb.
type Held struct {
	// Stop is where kspec sees the guest stopped (the failing vCPU).
	Stop *Hit
	// Where describes the stop when there is no Stop (a saved state).
	Where string
	// Backtrace is kspec's backtrace at Stop (nil when it could not be
	// read; BacktraceErr says why).
	Backtrace    []Frame
	BacktraceErr error
	// Socket is the unix socket the person's gdb connects to (in the
	// private 0700 run dir).
	Socket string
	// GDBCommand is one shell command line that starts gdb on the
	// kernel's vmlinux attached to the held guest.
	GDBCommand string
	// Limit is how long kspec waits before it tears the guest down anyway.
	Limit time.Duration
	// Source is the source around Stop (numbered lines, the stop's marked
	// "=>") when the guest has a prepared source tree, else "".
	Source string
	// FrameSource is the text of each Backtrace frame's line ("" where
	// unknown), when the guest has a prepared source tree.
	FrameSource []string
}

// String is the text printed for a person: where the guest stopped,
// kspec's backtrace and the gdb command.
func (h Held) String() string {
	var b strings.Builder
	where := h.Where
	if h.Stop != nil {
		where = h.Stop.String()
	}
	fmt.Fprintf(&b, "kspec: holding the guest stopped at %s\n", where)
	switch {
	case h.BacktraceErr != nil:
		fmt.Fprintf(&b, "  (no backtrace: %v)\n", h.BacktraceErr)
	default:
		for i, f := range h.Backtrace {
			fmt.Fprintf(&b, "  #%-2d %#x in %s at %s:%d\n", i, f.PC, f.Function, f.File, f.Line)
			if i < len(h.FrameSource) && h.FrameSource[i] != "" {
				fmt.Fprintf(&b, "        %s\n", strings.TrimSpace(h.FrameSource[i]))
			}
		}
	}
	if h.Source != "" {
		fmt.Fprintf(&b, "kspec: source at the stop:\n%s\n", indent(h.Source, "  "))
	}
	fmt.Fprintf(&b, "kspec: attach gdb to it with (one session; quit gdb to let kspec tear the guest down, or press Ctrl-C here; limit %s):\n", h.Limit)
	fmt.Fprintf(&b, "  %s\n", h.GDBCommand)
	return b.String()
}

// announceToPerson prints h on the controlling terminal when there is one
// (a test runner such as Ginkgo in parallel mode captures stdout and stderr
// until the spec ends, which would hide the command until too late), and
// on stderr otherwise.
func announceToPerson(h Held) {
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		defer tty.Close()
		if _, err := io.WriteString(tty, h.String()); err == nil {
			return
		}
	}
	fmt.Fprint(os.Stderr, h.String())
}

// HoldRequested reports whether $KSPEC_HOLD asks suites to hold failing
// guests (1, true, yes, on).
func HoldRequested() bool {
	switch strings.ToLower(strings.TrimSpace(os.Getenv("KSPEC_HOLD"))) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

// HoldLimitFromEnv returns $KSPEC_HOLD_LIMIT (a Go duration such as 20m)
// or DefaultHoldLimit; a malformed value is an error naming it.
func HoldLimitFromEnv() (time.Duration, error) {
	s := strings.TrimSpace(os.Getenv("KSPEC_HOLD_LIMIT"))
	if s == "" {
		return DefaultHoldLimit, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%w: KSPEC_HOLD_LIMIT=%q: want a positive duration such as 30m", ErrBadInput, s)
	}
	return d, nil
}

// Hold keeps the guest stopped where it is (a running guest is interrupted
// first, so it stops where it was when the spec failed), announces a gdb
// command that attaches to it, relays one person's gdb session to QEMU's
// gdbstub, and, when that gdb quits or detaches (or the limit or ctx ends
// first), stops QEMU and removes the run directory. Afterwards the Target
// has no guest: Reset boots a fresh one, Close only releases the rest.
//
// Hold returns nil when a session took place and ended; an error when the
// guest could not be held, nobody attached within the limit, or ctx ended.
// The guest is torn down either way.
func (t *Target) Hold(ctx context.Context, o HoldOptions) (err error) {
	if o.Limit <= 0 {
		o.Limit = DefaultHoldLimit
	}
	if o.Announce == nil {
		o.Announce = announceToPerson
	}
	defer func() {
		// Clean up as always: no QEMU, no run dir.
		stopCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if t.machine != nil {
			if serr := t.machine.Stop(stopCtx); serr != nil && err == nil {
				err = &HarnessError{Op: "hold: stop the held guest", Err: serr}
			}
		}
	}()
	if t.gdb == nil || t.machine == nil {
		return &HarnessError{Op: "hold", Err: errors.New("no debugger attached")}
	}
	if err := t.ensureDebugger(ctx, "hold"); err != nil {
		return err
	}
	held, err := t.holdStop(ctx)
	if err != nil {
		return t.harnessErr("hold: find where the guest stopped", err)
	}
	held.Limit = o.Limit

	ln, sock, err := listenHold(t.machine.Paths().RunDir)
	if err != nil {
		return err
	}
	defer ln.Close()
	held.Socket = sock
	tree, _ := t.Source()
	held.GDBCommand = gdbCommand(t.arch().GDB(), t.spec.Symbols, sock, tree)
	held.Source = t.SourceContext(held.Stop.File, held.Stop.Line, 3)

	// Hand over: kspec's client leaves without `D` (the VM stays stopped).
	_ = t.gdb.Close()

	hctx, cancel := context.WithTimeout(ctx, o.Limit)
	defer cancel()
	o.Announce(held)

	if err := handOver(hctx, t.machine, ln, held.Stop.CPU+1); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return &HarnessError{Op: "hold: gdb session", Err: fmt.Errorf("interrupted: %w", ctx.Err())}
	}
	if hctx.Err() != nil {
		return &HarnessError{Op: "hold: gdb session", Err: fmt.Errorf("cut after the hold limit %s", o.Limit)}
	}
	return nil
}

// handOver accepts one gdb on ln, connects it to m's gdbstub with vCPU
// thread selected (Hg/Hc), and relays between them until either side ends
// or ctx does.
func handOver(ctx context.Context, m *supervisor.Machine, ln net.Listener, thread int) error {
	person, err := acceptCtx(ctx, ln)
	if err != nil {
		return &HarnessError{Op: "hold: wait for gdb to attach to " + ln.Addr().String(), Err: err}
	}
	defer person.Close()
	stub, err := m.DialGDB(ctx)
	if err != nil {
		return &HarnessError{Op: "hold: connect to QEMU's gdbstub", Err: err}
	}
	defer stub.Close()
	br := bufio.NewReader(stub)
	for _, p := range []string{"Hg" + strconv.FormatInt(int64(thread), 16), "Hc" + strconv.FormatInt(int64(thread), 16)} {
		if err := rawExchange(ctx, stub, br, p); err != nil {
			return &HarnessError{Op: "hold: select the failing vCPU", Err: err}
		}
	}
	relay(ctx, person, stub, br)
	return nil
}

// listenHold makes the hold socket in runDir, for the owner only.
func listenHold(runDir string) (net.Listener, string, error) {
	sock := filepath.Join(runDir, "hold.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return nil, "", &HarnessError{Op: "hold: listen for gdb", Err: err}
	}
	if err := os.Chmod(sock, 0o600); err != nil {
		ln.Close()
		return nil, "", &HarnessError{Op: "hold: restrict the hold socket", Err: err}
	}
	return ln, sock, nil
}

// holdStop stops the guest if it runs and describes where the failing
// vCPU is: the vCPU of the last stop, or of the interrupt's stop.
func (t *Target) holdStop(ctx context.Context) (Held, error) {
	t.rec.mu.Lock()
	var stop rsp.StopReply
	if t.rec.lastStop != nil {
		stop = *t.rec.lastStop
	}
	t.rec.mu.Unlock()
	if t.gdb.Running() {
		s, err := t.Interrupt(ctx)
		if err != nil {
			return Held{}, err
		}
		stop = s
	}
	if stop.Thread <= 0 {
		stop.Thread = 1
	}
	pc, err := t.cpuRegister(ctx, stop.Thread-1, t.arch().PC())
	if err != nil {
		return Held{}, err
	}
	h := Held{Stop: t.describeStop(pc, stop)}
	h.Backtrace, h.BacktraceErr = h.Stop.Backtrace(ctx)
	h.FrameSource = t.FramesSource(h.Backtrace)
	return h, nil
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:@%+,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// acceptCtx accepts one connection on ln, or fails when ctx ends.
func acceptCtx(ctx context.Context, ln net.Listener) (net.Conn, error) {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	c, err := ln.Accept()
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("nobody attached: %w", context.Cause(ctx))
		}
		return nil, err
	}
	return c, nil
}

// rawExchange sends one packet on a fresh gdbstub connection and reads its
// `+` and reply, which must be OK. Other packets before the reply (a stop
// reply QEMU sends when the connection stopped a running VM) are acked and
// skipped.
func rawExchange(ctx context.Context, c net.Conn, br *bufio.Reader, payload string) error {
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(rsp.EncodePacket([]byte(payload))); err != nil {
		return fmt.Errorf("send %s: %w", payload, err)
	}
	for {
		b, err := br.ReadByte()
		if err != nil {
			return fmt.Errorf("reply to %s: %w", payload, err)
		}
		switch b {
		case '+':
			continue
		case '-':
			return fmt.Errorf("the stub refused %s (nack)", payload)
		case '$':
		default:
			continue
		}
		body, err := br.ReadString('#')
		if err != nil {
			return fmt.Errorf("reply to %s: %w", payload, err)
		}
		if _, err := io.ReadFull(br, make([]byte, 2)); err != nil {
			return fmt.Errorf("reply to %s: %w", payload, err)
		}
		if _, err := c.Write([]byte{'+'}); err != nil {
			return fmt.Errorf("ack the reply to %s: %w", payload, err)
		}
		body = strings.TrimSuffix(body, "#")
		switch {
		case body == "OK":
			return nil
		case strings.HasPrefix(body, "T") || strings.HasPrefix(body, "S"):
			continue // a stop reply, not ours
		default:
			return fmt.Errorf("%s: stub answered %q", payload, body)
		}
	}
}

// relay copies bytes both ways between the person's gdb and QEMU's stub
// until either side closes or ctx ends; then both are closed.
func relay(ctx context.Context, person, stub net.Conn, stubBuf *bufio.Reader) {
	var once sync.Once
	done := make(chan struct{})
	end := func() {
		once.Do(func() {
			person.Close()
			stub.Close()
			close(done)
		})
	}
	stop := context.AfterFunc(ctx, end)
	defer stop()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); io.Copy(stub, person); end() }()
	go func() { defer wg.Done(); io.Copy(person, stubBuf); end() }()
	<-done
	wg.Wait()
}
