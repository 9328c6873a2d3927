package harness

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kspec/kspec/guest"
	"github.com/kspec/kspec/kernel"
	"github.com/kspec/kspec/qmp"
	"github.com/kspec/kspec/rsp"
)

// Kernel failure detection. The console's reader hands every kernel message
// to a kernelWatch (guest.ConsoleOptions.OnKernelLine); QMP's
// GUEST_PANICKED event (a pvpanic device with -action panic=pause) feeds it
// too. Pending operations (Shell, Breakpoint.Wait, Target.Collect) watch it
// and return a *KernelError as soon as the kernel fails, instead of waiting
// for their deadline; a QEMU that exits because of the panic (panic=-1 and
// -no-reboot) is reported as the panic, not as "QEMU died".

// windowLines is how many recent kernel lines the matcher keeps: a message
// split over several console lines (a long line broken by the console
// reader, or interleaved with other output) still matches as long as its
// pieces are this close together.
const windowLines = 8

// kernelMatcher finds kernel failures in a stream of console lines over a
// sliding window of the last windowLines lines, trying each line alone,
// then joined with its predecessors (without separator, for a message
// split mid-word), so that split lines still match. The patterns are the
// guest OS's (kernel.Messages). It is not safe for concurrent use
// (kernelWatch serialises it).
type kernelMatcher struct {
	msgs   *kernel.Messages
	window []string // recent lines, timestamps removed
	// inOops counts down the lines of an oops report being printed: its
	// further oops lines ("BUG: ..." is followed by "Oops: ...") belong to
	// the same failure; a panic still counts.
	inOops int
}

// oopsReportLines bounds an oops report (registers, Code:, Call Trace:)
// when its "---[ end trace" line does not come.
const oopsReportLines = 64

// Feed adds one console line and returns the failure it completes, if any:
// its kind ("panic" or "oops") and the failure's text (the panic message
// or the oops' first line). A failure is reported once: the lines that
// made it are dropped from the window.
func (m *kernelMatcher) Feed(line string) (kind, detail string, ok bool) {
	line = strings.TrimRight(strings.ReplaceAll(line, "\r", ""), "\n")
	for _, part := range strings.Split(line, "\n") {
		if kind, detail, ok = m.feedOne(part); ok {
			return kind, detail, ok
		}
	}
	return "", "", false
}

func (m *kernelMatcher) feedOne(line string) (kind, detail string, ok bool) {
	line = m.stripStamp(line)
	if m.inOops > 0 {
		m.inOops--
		if m.msgs.ReportEnd != "" && strings.HasPrefix(line, m.msgs.ReportEnd) {
			m.inOops = 0
		}
	}
	m.window = append(m.window, line)
	if len(m.window) > windowLines {
		m.window = m.window[len(m.window)-windowLines:]
	}
	// The newest line alone, then joined with 1, 2, ... of the lines before
	// it: a match must involve the newest line (older ones were tried).
	n := len(m.window)
	for k := 1; k <= n; k++ {
		joined := strings.Join(m.window[n-k:], "")
		for _, p := range m.msgs.Failures {
			loc := p.Pattern.FindStringIndex(joined)
			if loc == nil {
				continue
			}
			// A match that lies wholly in older lines was already tried.
			if k > 1 && loc[1] <= len(joined)-len(line) {
				continue
			}
			if p.Kind == "oops" && m.inOops > 0 {
				continue // the same oops report
			}
			if p.Kind == "oops" {
				m.inOops = oopsReportLines
			}
			m.window = m.window[:0]
			return p.Kind, strings.TrimSpace(joined[loc[0]:loc[1]]), true
		}
	}
	return "", "", false
}

// stripStamp removes the OS's message prefix (Linux: a printk timestamp)
// from the start of line.
func (m *kernelMatcher) stripStamp(line string) string {
	if m.msgs.Stamp == nil {
		return line
	}
	if loc := m.msgs.Stamp.FindStringIndex(line); loc != nil {
		return line[loc[1]:]
	}
	return line
}

// kernelWatch collects the kernel failures of one Target. An oops is
// reported to one operation (the one running when it happened, or the next
// one) and then consumed, so a spec that expects one does not fail the
// next; a panic stays: the kernel is dead.
type kernelWatch struct {
	mu       sync.Mutex
	m        kernelMatcher
	failures []*KernelError
	consumed int           // failures already reported
	panicked *KernelError  // the first panic, sticky
	changed  chan struct{} // closed and replaced on every failure
	tail     func(n int) string
	// onPanicEnd, if set, is called (once) after the kernel printed the end
	// of a panic: nothing more will come, so waits on the console may end.
	onPanicEnd func()
	ended      bool
}

func newKernelWatch(msgs *kernel.Messages, tail func(n int) string) *kernelWatch {
	return &kernelWatch{m: kernelMatcher{msgs: msgs}, changed: make(chan struct{}), tail: tail}
}

// line is the console's OnKernelLine hook; it must not block.
func (w *kernelWatch) line(l string) {
	w.mu.Lock()
	kind, detail, ok := w.m.Feed(l)
	if ok {
		w.addLocked(kind, detail)
	}
	var end func()
	if re := w.m.msgs.EndOfPanic; re != nil && re.MatchString(l) && !w.ended {
		w.ended, end = true, w.onPanicEnd
	}
	w.mu.Unlock()
	if end != nil {
		end()
	}
}

// gotPanicEvent records QEMU's GUEST_PANICKED event. When the console
// already showed the panic, that failure stands; otherwise the event is one
// (and a panic line read later replaces its text).
func (w *kernelWatch) gotPanicEvent(ev qmp.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.panicked != nil {
		return
	}
	w.addLocked("panic", panicEventDetail+" ("+ev.String()+")")
}

const panicEventDetail = "QEMU reported GUEST_PANICKED"

func (w *kernelWatch) addLocked(kind, detail string) {
	if kind == "panic" && w.panicked != nil {
		if strings.HasPrefix(w.panicked.Detail, panicEventDetail) {
			w.panicked.Detail = detail
		}
		return
	}
	f := &KernelError{Kind: kind, Detail: detail}
	if kind == "panic" {
		w.panicked = f
	}
	w.failures = append(w.failures, f)
	if len(w.failures) > 256 { // forget what was reported long ago
		drop := min(w.consumed, len(w.failures)-128)
		w.failures = append(w.failures[:0], w.failures[drop:]...)
		w.consumed -= drop
	}
	close(w.changed)
	w.changed = make(chan struct{})
}

// panic returns the kernel panic seen on this guest, or nil.
func (w *kernelWatch) panic() *KernelError {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.panicked
}

// mark returns where an operation that starts now begins to look for
// failures (see since).
func (w *kernelWatch) mark() int {
	if w == nil {
		return 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.consumed
}

// since returns the kernel's failure to report to an operation that began
// at mark: the panic if there was one, else the first oops not yet
// reported; nil if none. It carries the console tail and marks what it
// returns as reported.
func (w *kernelWatch) since(mark int) *KernelError {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	found := w.panicked
	if found == nil {
		for _, f := range w.failures[min(max(mark, 0), len(w.failures)):] {
			found = f
			break
		}
	}
	if found != nil {
		w.consumed = len(w.failures)
	}
	w.mu.Unlock()
	if found == nil {
		return nil
	}
	e := *found
	if w.tail != nil {
		e.ConsoleTail = w.tail(4096)
	}
	return &e
}

// pendingLocked reports whether there is a failure to report at mark.
func (w *kernelWatch) pendingLocked(mark int) bool {
	return w.panicked != nil || len(w.failures) > mark
}

// watch returns a context that is cancelled when ctx is, or when a kernel
// failure to report at mark is seen, and a function that releases it.
func (w *kernelWatch) watch(ctx context.Context, mark int) (context.Context, context.CancelFunc) {
	if w == nil {
		return context.WithCancel(ctx)
	}
	wctx, cancel := context.WithCancelCause(ctx)
	stop := make(chan struct{})
	go func() {
		for {
			w.mu.Lock()
			changed, failed := w.changed, w.pendingLocked(mark)
			w.mu.Unlock()
			if failed {
				cancel(errKernelFailed)
				return
			}
			select {
			case <-changed:
			case <-wctx.Done():
				return
			case <-stop:
				return
			}
		}
	}()
	var once sync.Once
	return wctx, func() {
		once.Do(func() { close(stop) })
		cancel(context.Canceled)
	}
}

// errKernelFailed is the cause of a watch context cancelled by a kernel
// failure.
var errKernelFailed = errors.New("the kernel failed")

// startKernelWatch hooks the watch to QMP's GUEST_PANICKED event and lets a
// panic's last line end the console, so that every wait on it ends.
func (t *Target) startKernelWatch() {
	t.kw.mu.Lock()
	t.kw.onPanicEnd = func() {
		if cs := t.machine.ConsoleStream(); cs != nil {
			cs.SetReadDeadline(time.Now())
		}
	}
	t.kw.mu.Unlock()
	t.subscribePanics(t.machine.QMP())
}

// subscribePanics feeds mon's GUEST_PANICKED events to the kernel watch
// (again after a QMP reconnection, ending the old subscription).
func (t *Target) subscribePanics(mon *qmp.Monitor) {
	if t.unwatch != nil {
		t.unwatch()
	}
	t.trackResumes(mon) // runstate.go
	events, unsubscribe := mon.Subscribe(16)
	t.unwatch = unsubscribe
	go func() {
		for ev := range events {
			if ev.Name == "GUEST_PANICKED" {
				t.kw.gotPanicEvent(ev)
			}
		}
	}()
}

// kernelFailure returns the kernel failure to report to an operation that
// began at mark and failed, or nil. When QEMU has exited (panic=-1 with
// -no-reboot turns a panic into an exit), it first lets the console read
// the rest of what the guest printed, which ends with QEMU, so that the
// panic is reported rather than "QEMU died".
func (t *Target) kernelFailure(mark int) *KernelError {
	if t.kw == nil {
		return nil
	}
	if k := t.kw.since(mark); k != nil {
		return k
	}
	if t.machine == nil || t.console == nil {
		return nil
	}
	select {
	case <-t.machine.Done():
	default:
		return nil
	}
	// The console's reader ends when QEMU's pty does; the timer only bounds
	// a reader that would not.
	timer := time.NewTimer(5 * time.Second)
	defer timer.Stop()
	select {
	case <-t.console.Done():
	case <-timer.C:
	}
	return t.kw.since(mark)
}

// fail turns the error of an operation that began at mark into a
// *KernelError when the kernel failed meanwhile, else a *HarnessError.
func (t *Target) fail(op string, mark int, err error) error {
	if t.machine != nil && lostQEMU(err) {
		// A connection that ends is usually QEMU exiting: wait for the
		// supervisor to reap it, so that the error names the cause (a
		// signal, an exit status). The timer only bounds the wait.
		timer := time.NewTimer(5 * time.Second)
		select {
		case <-t.machine.Done():
		case <-timer.C:
		}
		timer.Stop()
	}
	if k := t.kernelFailure(mark); k != nil {
		return k
	}
	var diagnosis string
	if errors.Is(err, context.DeadlineExceeded) {
		diagnosis = t.diagnoseHang()
	}
	herr := t.harnessErr(op, err)
	if he, ok := herr.(*HarnessError); ok && diagnosis != "" {
		he.Diagnosis = diagnosis
	}
	return herr
}

// diagnoseHang is called when the guest did not answer in time: it stops
// a running guest in the debugger, lists where each vCPU is (function,
// file:line, pc) and resumes it, so the report says where the kernel hangs
// while the guest stays as it was. It returns "" when there is no debugger
// or the guest is not running under it.
func (t *Target) diagnoseHang() string {
	if t.gdb == nil || t.gdb.Err() != nil || !t.gdb.Running() || t.machineGone() != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, stopped := t.interruptAndLocate(ctx)
	if !stopped {
		return d
	}
	if err := t.resume(ctx); err != nil {
		d += " (resuming it failed: " + err.Error() + ")"
	}
	return d
}

// Collect waits for the result of a command sent with Start, like
// guest.Pending.Wait, but returns a *KernelError as soon as the kernel
// panics or oopses instead of waiting for ctx to end.
func (t *Target) Collect(ctx context.Context, p *guest.Pending) (guest.Result, error) {
	mark := t.kw.mark()
	wctx, release := t.kw.watch(ctx, mark)
	defer release()
	res, err := p.Wait(wctx)
	if err != nil {
		return res, t.shellFailed("wait for a started command", mark, err, false)
	}
	if k := t.kw.since(mark); k != nil {
		return res, k
	}
	return res, nil
}

// lostQEMU reports whether err says a connection to QEMU ended.
func lostQEMU(err error) bool {
	return errors.Is(err, rsp.ErrConnectionClosed) || errors.Is(err, guest.ErrConsoleClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
