package guest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Errors of the console. Test them with errors.Is.
var (
	// ErrLoginIncorrect: the guest rejected the user name or password.
	ErrLoginIncorrect = errors.New("login incorrect")
	// ErrConsoleClosed: reading the console failed or hit EOF (the guest or
	// its QEMU went away).
	ErrConsoleClosed = errors.New("console closed")
	// ErrOverflow: a command printed more than ConsoleOptions.MaxBuffer
	// bytes before its result was collected.
	ErrOverflow = errors.New("console output overflowed the buffer")
	// ErrShellEnded: a command ended the logged-in shell (exit, exec, a
	// signal) or put another shell on the console; see ShellEndedError.
	ErrShellEnded = errors.New("the command ended the login shell")
)

// ConsoleError is a failure on the console together with what the guest
// printed last, which is usually what explains it. It wraps the cause:
// context.DeadlineExceeded for timeouts, ErrConsoleClosed, ErrLoginIncorrect.
type ConsoleError struct {
	// What says what the console was waiting for or doing.
	What string
	// Err is the cause.
	Err error
	// Tail is the end of the console output (kernel messages included).
	Tail string
}

// Error implements error.
func (e *ConsoleError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "guest console: %s: %v", e.What, e.Err)
	if t := strings.TrimSpace(e.Tail); t != "" {
		b.WriteString("\nlast console lines:")
		for _, l := range strings.Split(t, "\n") {
			b.WriteString("\n  | ")
			b.WriteString(l)
		}
	} else {
		b.WriteString(" (the guest printed nothing)")
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *ConsoleError) Unwrap() error { return e.Err }

// ConsoleOptions tunes a Console. The zero value is ready to use.
type ConsoleOptions struct {
	// Transcript, if set, receives every byte read from the guest, as read
	// (from the reader goroutine), except a password login echoed by
	// mistake, which is replaced by asterisks.
	Transcript io.Writer
	// OnKernelLine, if set, is called with every kernel console message
	// (e.g. "[   12.345678] BUG: ..."), from the reader goroutine: it must
	// not block.
	OnKernelLine func(line string)
	// LoginNudge is how long Login waits for a login prompt before sending
	// an empty line to make getty print it again (the prompt may have been
	// printed before anyone read the console); repeated at that interval.
	// 0 means 10s; negative means never.
	LoginNudge time.Duration
	// MaxBuffer bounds the console text kept for matching; 0 means 8 MiB.
	MaxBuffer int
	// PasswordSettle is how long Login waits after the password prompt
	// before it sends the password; 0 means 100ms, negative means not at
	// all. busybox login prints its prompt before it turns off the tty's
	// echo, so a password sent at once is echoed; the console hides an
	// echoed password from the transcript and Tail either way, and the
	// margin makes the echo rare.
	PasswordSettle time.Duration
}

// tailKeep is how much raw console output is kept for Tail.
const tailKeep = 64 << 10

// errorTail is how much console output goes into a ConsoleError.
const errorTail = 1500

// maxKernelLines bounds the kernel messages kept for Result.Kernel.
const maxKernelLines = 4096

// maxLine is the longest command line sent to the guest: a tty in canonical
// mode keeps at most 4095 bytes of a line, and the markers need room.
const maxLine = 3800

// Console drives a shell on a guest's serial console: it logs in and runs
// commands, telling their output, exit status and the kernel's console
// messages apart.
//
// One goroutine reads the console all the time (NewConsole starts it; it
// ends when a Read fails), so the guest never blocks on a full pty and a
// transcript is complete. Everything it reads is kept, with kernel messages
// cut out (see Profile.KernelLine), in a bounded buffer that all waits
// search.
//
// Commands are framed by markers that include a fresh random nonce and that
// the shell assembles with printf, so neither the echo of the command line
// nor stale output can be mistaken for them. After Login the tty's echo is
// off and its "onlcr" is off, so command output arrives exactly as written
// and kernel messages (which the kernel ends with "\r\n") stand out.
//
// Methods may be called from several goroutines; commands run in the order
// they were sent.
type Console struct {
	rw      io.ReadWriter
	profile *Profile
	opts    ConsoleOptions

	wmu sync.Mutex // serialises writes

	mu      sync.Mutex
	changed chan struct{} // closed and replaced whenever anything is read
	cl      cleaner
	text    []byte // user text (complete lines); text[0] is at stream offset base
	base    int64
	kern    []kernelLine
	raw     []byte // the last tailKeep bytes read
	mark    int64  // stream offset up to which Expect and Login consumed
	redact  echoRedactor
	readErr error
	done    chan struct{}

	// The session markers (see Login): the logged-in shell's EXIT trap
	// prints exitMark with its exit status, and an interactive shell
	// started from it prints shellMark (through $ENV). The session nonce
	// lasts as long as the Console, so a shell restored from a snapshot
	// still prints markers this Console knows.
	session   string
	exitMark  *regexp.Regexp
	shellMark *regexp.Regexp
	// loginAgain matches getty's prompt printed after the shell ended.
	loginAgain *regexp.Regexp
	// user and password of the last Login, to log in again after a
	// command ended the shell; never printed.
	user, password string
	// lost is set when a command ended the shell and logging in again
	// failed: there is no shell to run commands in.
	lost error
}

// kernelLine is a kernel message and where it appeared in the user text.
type kernelLine struct {
	off  int64
	line string
}

// NewConsole returns a Console on rw (typically the pty of a guest's serial
// port) for an OS described by p, and starts its reader goroutine.
func NewConsole(rw io.ReadWriter, p *Profile, opts ConsoleOptions) *Console {
	if opts.LoginNudge == 0 {
		opts.LoginNudge = 10 * time.Second
	}
	if opts.MaxBuffer <= 0 {
		opts.MaxBuffer = 8 << 20
	}
	if opts.PasswordSettle == 0 {
		opts.PasswordSettle = 100 * time.Millisecond
	}
	session := newNonce()
	c := &Console{
		rw:        rw,
		profile:   p,
		opts:      opts,
		changed:   make(chan struct{}),
		cl:        cleaner{kernel: p.KernelLine},
		done:      make(chan struct{}),
		session:   session,
		exitMark:  regexp.MustCompile(`(?m)^kspec:` + session + `:X:(\d+)\r?\n`),
		shellMark: regexp.MustCompile(`(?m)^kspec:` + session + `:R\r?\n`),
		// In kspec's session the tty's onlcr is off, so programs end their
		// lines with a bare "\n"; getty resets the tty and starts its
		// prompt on a line of its own after "\r\n". A program that prints
		// "...login: " does not look like this.
		loginAgain: regexp.MustCompile(`\r\n[^\n]*(?:` + p.LoginPrompt.String() + `)`),
	}
	go c.readLoop()
	return c
}

// Done is closed when the console's reader has stopped (see Err).
func (c *Console) Done() <-chan struct{} { return c.done }

// Err returns why the reader stopped (io.EOF, a read error), or nil while
// it runs.
func (c *Console) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.readErr
}

func (c *Console) readLoop() {
	buf := make([]byte, 32<<10)
	var kern []string
	for {
		n, err := c.rw.Read(buf)
		if n > 0 || err != nil {
			kern = kern[:0]
			c.mu.Lock()
			p := c.redact.filter(buf[:n], err != nil)
			c.ingest(p, &kern)
			if err != nil {
				c.readErr = err
			}
			close(c.changed)
			c.changed = make(chan struct{})
			c.mu.Unlock()
			if c.opts.Transcript != nil && len(p) > 0 {
				c.opts.Transcript.Write(p)
			}
			if c.opts.OnKernelLine != nil {
				for _, l := range kern {
					c.opts.OnKernelLine(l)
				}
			}
		}
		if err != nil {
			close(c.done)
			return
		}
	}
}

// echoRedactor hides a password that the guest echoed: some login(1)s
// (busybox's among them) print the password prompt before they turn off
// the tty's echo, so a password sent at once is echoed. Armed when the
// password is sent, it holds the output back until the end of the first
// line that is not a kernel message and replaces the password in it.
// Kernel messages (see Profile.KernelLine) that arrive meanwhile, before
// the echo or in the middle of it, pass at once, ahead of the text held
// back: otherwise a message would end the watch before the echo came, or
// split the password so that it is not found, and a kernel panic would
// wait for login(1).
type echoRedactor struct {
	secret string
	kernel *regexp.Regexp // start of a kernel message; nil: none
	armed  bool
	buf    []byte // unfinished line
	user   []byte // text held back, kernel messages cut out
}

// redacted replaces an echoed password.
const redacted = "********"

// arm starts watching for secret; kernel is Profile.KernelLine.
func (r *echoRedactor) arm(secret string, kernel *regexp.Regexp) {
	*r = echoRedactor{secret: secret, kernel: kernel, armed: secret != ""}
}

// kernelAt returns where a kernel message starts in the complete line l,
// or -1: like cleaner.line, the last timestamp of a line ending in "\r\n".
func (r *echoRedactor) kernelAt(l []byte) int {
	if r.kernel == nil || !bytes.HasSuffix(l, []byte("\r\n")) {
		return -1
	}
	locs := r.kernel.FindAllIndex(l, -1)
	if len(locs) == 0 {
		return -1
	}
	return locs[len(locs)-1][0]
}

// filter returns what may be passed on of p; final flushes.
func (r *echoRedactor) filter(p []byte, final bool) []byte {
	if !r.armed {
		return p
	}
	r.buf = append(r.buf, p...)
	var out []byte
	for {
		i := bytes.IndexByte(r.buf, '\n')
		if i < 0 {
			break
		}
		l := r.buf[:i+1]
		r.buf = r.buf[i+1:]
		if at := r.kernelAt(l); at >= 0 {
			out = append(out, l[at:]...)
			r.user = append(r.user, l[:at]...)
			continue
		}
		r.user = append(r.user, l...)
		return r.release(out)
	}
	if final || len(r.user)+len(r.buf) >= len(r.secret)+512 {
		return r.release(out) // no line end came
	}
	return out
}

// release appends to out the text held back, the password replaced, and
// the unfinished line, and disarms.
func (r *echoRedactor) release(out []byte) []byte {
	out = append(out, bytes.ReplaceAll(r.user, []byte(r.secret), []byte(redacted))...)
	out = append(out, r.buf...)
	*r = echoRedactor{}
	return out
}

// ingest adds p to the buffers; c.mu is held.
func (c *Console) ingest(p []byte, kern *[]string) {
	c.raw = append(c.raw, p...)
	if len(c.raw) > 2*tailKeep {
		c.raw = append(c.raw[:0], c.raw[len(c.raw)-tailKeep:]...)
	}
	c.cl.feed(p, func(l []byte) {
		c.text = append(c.text, l...)
	}, func(l string) {
		c.kern = append(c.kern, kernelLine{off: c.base + int64(len(c.text)), line: l})
		*kern = append(*kern, l)
	})
	if len(c.text) > c.opts.MaxBuffer {
		drop := len(c.text) - c.opts.MaxBuffer/2
		c.text = append(c.text[:0], c.text[drop:]...)
		c.base += int64(drop)
	}
	if len(c.kern) > maxKernelLines {
		c.kern = append(c.kern[:0], c.kern[len(c.kern)-maxKernelLines/2:]...)
	}
}

// Retained returns the bytes the console holds in its bounded buffers (the
// raw tail, the cleaned text up to ConsoleOptions.MaxBuffer, the recent
// kernel lines). They grow with the guest's output until their bounds, so
// a leak check subtracts them from the heap it measures.
func (c *Console) Retained() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := cap(c.raw) + cap(c.text)
	for _, k := range c.kern {
		n += len(k.line)
	}
	return n
}

// committed returns the stream offset just past the last complete line.
func (c *Console) committed() int64 { return c.base + int64(len(c.text)) }

// view returns the user text from stream offset from to the end, including
// the unfinished last line, and the offset where it really starts (from may
// point past text that a kernel message has since been cut out of); c.mu is
// held.
func (c *Console) view(from int64) ([]byte, int64, error) {
	if from < c.base {
		return nil, 0, ErrOverflow
	}
	end := c.committed()
	part := c.cl.partial()
	if from >= end {
		skip := min(from-end, int64(len(part)))
		return part[skip:], end + skip, nil
	}
	v := c.text[from-c.base:]
	return append(v[:len(v):len(v)], part...), from, nil
}

// Tail returns the last n bytes the guest printed (at most 64 KiB), kernel
// messages included, for error messages.
func (c *Console) Tail(n int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tailLocked(n)
}

func (c *Console) tailLocked(n int) string {
	r := c.raw
	if n < len(r) {
		r = r[len(r)-n:]
	}
	return string(r)
}

// errTail is the tail for a ConsoleError: carriage returns and escape
// sequences removed, and long runs of kernel messages shortened, so that
// a chatty kernel does not crowd the prompts and output that say what went
// wrong out of the tail.
func (c *Console) errTail() string {
	return condenseKernelRuns(sanitizeTail(c.Tail(16*errorTail)), errorTail, isKernelMessage(c.profile.KernelLine))
}

// isKernelMessage returns a test for whole lines that are kernel messages:
// kernel (Profile.KernelLine) matches at the start, after blanks and an
// optional log level ("<3>"). A nil kernel matches nothing.
func isKernelMessage(kernel *regexp.Regexp) func(line string) bool {
	return func(line string) bool {
		if kernel == nil {
			return false
		}
		loc := kernel.FindStringIndex(line)
		if loc == nil {
			return false
		}
		lead := strings.TrimSpace(line[:loc[0]])
		return lead == "" || len(lead) == 3 && lead[0] == '<' && lead[2] == '>'
	}
}

// keptOfRun is how many kernel messages of a long run condenseKernelRuns
// keeps (the last ones).
const keptOfRun = 2

// condenseKernelRuns replaces each run of more than keptOfRun+1 kernel
// messages (lines for which isKernel holds) in s by a line counting the
// messages left out, followed by the run's last keptOfRun messages, and
// returns at most the last max bytes, cut at a line start.
func condenseKernelRuns(s string, max int, isKernel func(string) bool) string {
	var out []string
	var run []string
	flush := func() {
		if len(run) > keptOfRun+1 {
			out = append(out, fmt.Sprintf("[... %d kernel messages left out ...]", len(run)-keptOfRun))
			run = run[len(run)-keptOfRun:]
		}
		out = append(out, run...)
		run = run[:0]
	}
	for _, line := range strings.Split(s, "\n") {
		if isKernel(line) {
			run = append(run, line)
			continue
		}
		flush()
		out = append(out, line)
	}
	flush()
	r := strings.Join(out, "\n")
	if len(r) > max {
		r = r[len(r)-max:]
		if i := strings.IndexByte(r, '\n'); i >= 0 {
			r = r[i+1:]
		}
	}
	return r
}

var escapeSeq = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

func sanitizeTail(s string) string {
	s = escapeSeq.ReplaceAllString(s, "")
	s = strings.ReplaceAll(s, "\r", "")
	return strings.TrimRight(s, "\n")
}

// wait calls check (with c.mu held) every time something was read, until
// it reports done or fails, ctx ends or the reader stops.
func (c *Console) wait(ctx context.Context, what string, check func() (bool, error)) error {
	for {
		c.mu.Lock()
		ok, err := check()
		ch, rerr := c.changed, c.readErr
		c.mu.Unlock()
		if err != nil {
			return &ConsoleError{What: what, Err: err, Tail: c.errTail()}
		}
		if ok {
			return nil
		}
		if rerr != nil {
			return &ConsoleError{What: what, Err: fmt.Errorf("%w: %w", ErrConsoleClosed, rerr), Tail: c.errTail()}
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return &ConsoleError{What: what, Err: context.Cause(ctx), Tail: c.errTail()}
		}
	}
}

// Expect waits until re matches the console text that follows the previous
// match (of Expect, Login or a command) and returns the matched text. Kernel
// messages are cut out of the text first (see Profile.KernelLine), so a
// message printed inside a prompt does not hide it. A timeout wraps
// ctx's error and carries the console's tail.
func (c *Console) Expect(ctx context.Context, re *regexp.Regexp) (string, error) {
	_, m, err := c.expectAny(ctx, "never printed "+strconv.Quote(re.String()), re)
	return m, err
}

// expectAny waits for the earliest match of any of res; on success it
// consumes the text up to the end of the match.
func (c *Console) expectAny(ctx context.Context, what string, res ...*regexp.Regexp) (int, string, error) {
	idx, match := -1, ""
	err := c.wait(ctx, what, func() (bool, error) {
		v, start, err := c.view(c.mark)
		if err != nil {
			return false, err
		}
		best := []int(nil)
		for i, re := range res {
			if loc := re.FindIndex(v); loc != nil && (best == nil || loc[0] < best[0]) {
				best, idx = loc, i
			}
		}
		if best == nil {
			return false, nil
		}
		match = string(v[best[0]:best[1]])
		c.mark = start + int64(best[1])
		return true, nil
	})
	return idx, match, err
}

// send writes s to the guest.
func (c *Console) send(ctx context.Context, s string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if _, err := io.WriteString(c.rw, s); err != nil {
		return &ConsoleError{What: "writing to the console", Err: fmt.Errorf("%w: %w", ErrConsoleClosed, err), Tail: c.errTail()}
	}
	return nil
}

// Login logs in on the console: it waits for the login prompt, sends user,
// waits for the password prompt, sends password and waits for the shell
// prompt; then it makes the shell machine-friendly (Profile.PreSetup and
// Setup) and proves it with a marker. A wrong user or password gives an
// error wrapping ErrLoginIncorrect as soon as the guest says so; the error
// names the user, never the password. A timeout wraps ctx's error and
// carries the console's tail.
func (c *Console) Login(ctx context.Context, user, password string) error {
	p := c.profile
	if user == "" {
		user = p.DefaultUser
	}
	c.mu.Lock()
	c.lost = nil
	c.mu.Unlock()
	if err := c.waitLoginPrompt(ctx); err != nil {
		return err
	}
	if err := c.send(ctx, user+p.Enter); err != nil {
		return err
	}
	// Not the login prompt here: an empty line from a nudge can make getty
	// print it once more before it reads the user name.
	what := fmt.Sprintf("logging in as %q: no password or shell prompt", user)
	i, _, err := c.expectAny(ctx, what, p.PasswordPrompt, p.ShellPrompt, p.LoginIncorrect)
	if err != nil {
		return err
	}
	if i == 0 {
		if d := c.opts.PasswordSettle; d > 0 {
			// See ConsoleOptions.PasswordSettle: not synchronisation, a
			// margin for login to turn the echo off.
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
		}
		c.mu.Lock()
		c.redact.arm(password, p.KernelLine)
		c.mu.Unlock()
		if err := c.send(ctx, password+p.Enter); err != nil {
			return err
		}
		what = fmt.Sprintf("logging in as %q: no shell prompt after the password", user)
		i, _, err = c.expectAny(ctx, what, p.PasswordPrompt, p.ShellPrompt, p.LoginIncorrect, p.LoginPrompt)
		if err != nil {
			return err
		}
		if i == 0 {
			return &ConsoleError{What: fmt.Sprintf("logging in as %q", user), Err: errors.New("asked for a password twice"), Tail: c.errTail()}
		}
	}
	if i >= 2 {
		return &ConsoleError{What: fmt.Sprintf("logging in as %q", user), Err: ErrLoginIncorrect, Tail: c.errTail()}
	}
	for _, line := range p.PreSetup {
		if err := c.send(ctx, line+p.Enter); err != nil {
			return err
		}
		if _, _, err := c.expectAny(ctx, fmt.Sprintf("no shell prompt after %q", line), p.ShellPrompt); err != nil {
			return err
		}
	}
	if p.Setup != "" {
		res, err := c.Run(ctx, p.Setup)
		if err != nil {
			return fmt.Errorf("setting up the shell: %w", err)
		}
		if res.Status != 0 {
			return &ConsoleError{What: "setting up the shell", Err: fmt.Errorf("%q exited with status %d: %s", p.Setup, res.Status, res.Output), Tail: c.errTail()}
		}
	}
	if res, err := c.Run(ctx, sessionSetup(c.session)); err != nil {
		return fmt.Errorf("setting up the shell's session markers: %w", err)
	} else if res.Status != 0 {
		return &ConsoleError{What: "setting up the shell's session markers", Err: fmt.Errorf("exited with status %d: %s", res.Status, res.Output), Tail: c.errTail()}
	}
	c.mu.Lock()
	c.user, c.password, c.lost = user, password, nil
	c.mu.Unlock()
	return nil
}

// sessionSetup returns the POSIX sh command that lets the console see a
// command end the logged-in shell (see ShellEndedError):
//   - an EXIT trap prints the session's exit marker with the shell's exit
//     status, so "exit 3" is reported with its 3;
//   - $ENV names a file (in /tmp) that prints the session's shell marker,
//     so an interactive shell started from the login shell ("exec sh",
//     "sh", "su") announces itself; it then sources the $ENV the user had.
//
// Like the command markers, the printed markers are assembled by printf,
// so neither the trap's text (trap lists it) nor the file's holds them.
// A shell killed by a signal runs no trap: getty's new login prompt tells
// that case (Console.loginAgain). A command that sets its own EXIT trap or
// ENV loses the exit status, not the detection.
func sessionSetup(session string) string {
	return `trap 'printf "\n%s:%s:X:%d\n" kspec ` + session + ` "$?"' EXIT; ` +
		`kspec_f=/tmp/.kspec-` + session + `.sh; ` +
		`{ printf 'printf "\\n%%s:%%s:R\\n" kspec ` + session + `\n'; ` +
		`if [ -n "${ENV:-}" ] && [ "$ENV" != "$kspec_f" ]; then printf '. "%s"\n' "$ENV"; fi; } >"$kspec_f" 2>/dev/null && ` +
		`ENV=$kspec_f && export ENV; unset kspec_f; :`
}

// Logout ends the logged-in shell (it sends "exit") and returns once the
// guest prints a login prompt again (its init respawns getty), so that
// Login can follow. The prompt is left for Login to find: Logout does not
// consume it. No command may be pending (see Start). Kernel messages are
// cut out as in Expect, so one printed inside the prompt does not hide it.
// A timeout (e.g. a guest whose init does not respawn getty) wraps ctx's
// error and carries the console's tail.
func (c *Console) Logout(ctx context.Context) error {
	if err := c.send(ctx, "exit"+c.profile.Enter); err != nil {
		return err
	}
	what := "logging out: never printed the login prompt (" + c.profile.LoginPrompt.String() + ")"
	return c.wait(ctx, what, func() (bool, error) {
		v, _, err := c.view(c.mark)
		if err != nil {
			return false, err
		}
		return c.profile.LoginPrompt.Match(v), nil
	})
}

// waitLoginPrompt waits for the login prompt, nudging getty with an empty
// line every LoginNudge.
func (c *Console) waitLoginPrompt(ctx context.Context) error {
	what := "never printed the login prompt (" + c.profile.LoginPrompt.String() + ")"
	for {
		wctx, cancel := ctx, context.CancelFunc(func() {})
		if c.opts.LoginNudge > 0 {
			wctx, cancel = context.WithTimeout(ctx, c.opts.LoginNudge)
		}
		_, _, err := c.expectAny(wctx, what, c.profile.LoginPrompt)
		cancel()
		if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		if err := c.send(ctx, c.profile.Enter); err != nil {
			return err
		}
	}
}

// Result is the outcome of one shell command.
type Result struct {
	// Output is what the command printed (stdout and stderr), with "\r\n"
	// turned into "\n" and kernel console messages cut out; a final newline
	// is kept if the command printed one.
	Output string
	// Status is the command's exit status ($?).
	Status int
	// Kernel holds the kernel console messages printed while the command
	// ran (e.g. an oops it caused).
	Kernel []string
}

// Pending is a command sent by Start whose result has not been collected.
type Pending struct {
	c       *Console
	cmd     string
	begin   *regexp.Regexp
	end     *regexp.Regexp
	scan    int64 // stream offset from which to search (complete lines only)
	outFrom int64 // -1 until the begin marker was seen
	mu      sync.Mutex
	res     *Result
	ended   error // the *ShellEndedError, once seen
}

// Command returns the command as given to Start.
func (p *Pending) Command() string { return p.cmd }

// Run runs cmd in the guest's shell and waits for its result. cmd may be
// any POSIX sh command list, several lines included; it runs in the login
// shell itself (so cd and variables persist) with the console as its
// stdin. It must not contain control characters other than tab and
// newline, nor a line longer than 3800 bytes. A timeout wraps ctx's error
// and carries the console's tail; the command may still be running then.
func (c *Console) Run(ctx context.Context, cmd string) (Result, error) {
	p, err := c.Start(ctx, cmd)
	if err != nil {
		return Result{}, err
	}
	return p.Wait(ctx)
}

// Start sends cmd (see Run) without waiting for it. Collect its result
// with Wait; the guest may be stopped (e.g. by a debugger) in between.
func (c *Console) Start(ctx context.Context, cmd string) (*Pending, error) {
	if err := checkCommand(cmd); err != nil {
		return nil, err
	}
	c.mu.Lock()
	lost := c.lost
	c.mu.Unlock()
	if lost != nil {
		return nil, &ConsoleError{What: fmt.Sprintf("running %q", cmd), Err: lost, Tail: c.errTail()}
	}
	nonce := newNonce()
	p := &Pending{
		c:       c,
		cmd:     cmd,
		begin:   regexp.MustCompile(`kspec:` + nonce + `:B\r?\n`),
		end:     regexp.MustCompile(`(?m)^kspec:` + nonce + `:E:(\d+)\r?\n`),
		outFrom: -1,
	}
	c.mu.Lock()
	p.scan = c.committed()
	c.mu.Unlock()
	if err := c.send(ctx, commandLine(nonce, cmd, c.profile.Enter)); err != nil {
		return nil, err
	}
	return p, nil
}

// commandLine frames cmd with markers. The shell's printf assembles each
// marker from separate arguments, so the command line (and its echo) never
// contains a marker; the braces make the shell read cmd completely before
// it runs anything, so cmd cannot swallow the end marker's line, and end a
// trailing comment. The end marker starts on a line of its own.
func commandLine(nonce, cmd, enter string) string {
	return fmt.Sprintf(`printf '%%s:%%s:B\n' kspec %s; { %s`+enter+`}; printf '\n%%s:%%s:E:%%d\n' kspec %s $?`+enter,
		nonce, strings.ReplaceAll(cmd, "\n", enter), nonce)
}

// checkCommand rejects what a tty would mangle.
func checkCommand(cmd string) error {
	if strings.TrimSpace(cmd) == "" {
		return errors.New("guest console: empty command")
	}
	for _, r := range cmd {
		if r < 0x20 && r != '\t' && r != '\n' || r == 0x7f {
			return fmt.Errorf("guest console: command %q contains the control character %U, which the tty would interpret", cmd, r)
		}
	}
	for _, l := range strings.Split(cmd, "\n") {
		if len(l) > maxLine {
			return fmt.Errorf("guest console: a line of command %.40q... is %d bytes long; a tty line holds at most %d (write long input to a file in pieces)", cmd, len(l), maxLine)
		}
	}
	return nil
}

// newNonce returns 16 random hex digits.
func newNonce() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Wait waits for the command's result. It may be called again after a
// timeout; after success it returns the same result.
//
// When the command ends the logged-in shell (exit, exec, kill -9 $$, a
// hang-up of its session) or starts an interactive shell on the console,
// Wait notices at once, logs in again (with the user and password of the
// last Login) and returns a *ShellEndedError (wrapping ErrShellEnded) that
// carries the exit status where the shell printed one. The next command
// then runs in a fresh login shell.
func (p *Pending) Wait(ctx context.Context) (Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.res != nil {
		return *p.res, nil
	}
	if p.ended != nil {
		return Result{}, p.ended
	}
	c := p.c
	var res Result
	var gone shellGone
	err := c.wait(ctx, fmt.Sprintf("command %q did not finish", p.cmd), func() (bool, error) {
		if p.scan < c.base {
			return false, ErrOverflow
		}
		end := c.committed()
		if p.outFrom < 0 {
			loc := p.begin.FindIndex(c.text[p.scan-c.base:])
			if loc == nil {
				p.scan = end
				return false, nil
			}
			p.outFrom = p.scan + int64(loc[1])
			p.scan = p.outFrom
		}
		txt := c.text[p.scan-c.base:]
		which, loc := earliest(txt, p.end, c.exitMark, c.shellMark)
		if loc == nil {
			if at, ok := c.loginPromptAgain(p.outFrom); ok {
				gone = shellGone{how: ShellKilled, at: at}
				return true, nil
			}
			p.scan = end
			return false, nil
		}
		mStart, mEnd := p.scan+int64(loc[0]), p.scan+int64(loc[1])
		switch which {
		case 2: // exitMark
			status, _ := strconv.Atoi(string(txt[loc[2]:loc[3]]))
			gone = shellGone{how: ShellExited, at: mEnd, status: status, known: true}
			return true, nil
		case 3: // shellMark
			gone = shellGone{how: ShellReplaced, at: mEnd}
			return true, nil
		}
		status, _ := strconv.Atoi(string(txt[loc[2]:loc[3]]))
		out := c.text[p.outFrom-c.base : mStart-c.base]
		out = bytes.TrimSuffix(out, []byte("\n"))
		out = bytes.TrimSuffix(out, []byte("\r"))
		res = Result{Output: strings.ReplaceAll(string(out), "\r\n", "\n"), Status: status}
		for _, k := range c.kern {
			if k.off >= p.outFrom && k.off <= mStart {
				res.Kernel = append(res.Kernel, k.line)
			}
		}
		c.mark = max(c.mark, mEnd)
		return true, nil
	})
	if err != nil {
		return Result{}, err
	}
	if gone.how != 0 {
		p.ended = p.recover(ctx, gone)
		return Result{}, p.ended
	}
	p.res = &res
	return res, nil
}

// shellGone is how and where (stream offset) Wait saw the shell end.
type shellGone struct {
	how    ShellEnd
	at     int64
	status int
	known  bool
}

// earliest returns which of res (1-based) matches txt first, and its
// submatch indexes; 0 and nil when none does.
func earliest(txt []byte, res ...*regexp.Regexp) (int, []int) {
	which, best := 0, []int(nil)
	for i, re := range res {
		if loc := re.FindSubmatchIndex(txt); loc != nil && (best == nil || loc[0] < best[0]) {
			which, best = i+1, loc
		}
	}
	return which, best
}

// loginPromptAgain reports whether getty's prompt, printed on a reset tty
// (see Console.loginAgain), is the last thing on the console after stream
// offset from, and where it starts; c.mu is held.
func (c *Console) loginPromptAgain(from int64) (int64, bool) {
	from = max(from, c.committed()-512) // the prompt is at the end
	v, start, err := c.view(from)
	if err != nil {
		return 0, false
	}
	loc := c.loginAgain.FindIndex(v)
	if loc == nil {
		return 0, false
	}
	return start + int64(loc[0]), true
}

// recover gets a shell back after the command ended (or covered) the
// login shell: it exits a shell that took over the console, and logs in
// again when the login shell is gone.
func (p *Pending) recover(ctx context.Context, g shellGone) error {
	c := p.c
	e := &ShellEndedError{Command: p.cmd, How: g.how, Status: g.status, StatusKnown: g.known}
	c.mu.Lock()
	c.mark = max(c.mark, g.at)
	c.mu.Unlock()
	if g.how == ShellReplaced {
		// Another shell reads the console. Exit it: either the login shell
		// under it resumes and prints the command's end marker (the command
		// started a shell), or the console's shell is gone (exec) and
		// getty prompts again.
		if err := c.send(ctx, "exit"+c.profile.Enter); err != nil {
			e.Err = err
			return p.lose(e)
		}
		nested := false
		err := c.wait(ctx, fmt.Sprintf("command %q put another shell on the console; after kspec exited it, neither the command's end marker nor a login prompt came", p.cmd), func() (bool, error) {
			from := min(max(c.mark, c.base), c.committed())
			if loc := p.end.FindIndex(c.text[from-c.base:]); loc != nil {
				nested = true
				c.mark = from + int64(loc[1])
				return true, nil
			}
			if at, ok := c.loginPromptAgain(c.mark); ok {
				c.mark = at
				return true, nil
			}
			return false, nil
		})
		if err != nil {
			e.Err = err
			return p.lose(e)
		}
		if nested {
			e.How = ShellNested
			return e
		}
	}
	if err := c.Login(ctx, c.user, c.password); err != nil {
		e.Err = fmt.Errorf("logging in again: %w", err)
		return p.lose(e)
	}
	e.LoggedIn = true
	return e
}

// lose records that the console has no shell any more: later commands
// fail at once, naming why, until a Login succeeds.
func (p *Pending) lose(e *ShellEndedError) error {
	p.c.mu.Lock()
	p.c.lost = fmt.Errorf("command %q ended the login shell and kspec could not get a shell back (log in again): %w", p.cmd, e.Err)
	p.c.mu.Unlock()
	return e
}

// ShellEnd says how a command ended the console's shell.
type ShellEnd int

// How a command ended the console's shell (ShellEndedError.How).
const (
	// ShellExited: the login shell exited (exit N, logout, end of input);
	// its exit status is known.
	ShellExited ShellEnd = iota + 1
	// ShellKilled: getty prompted for a login again with no exit status
	// from the shell: it was killed by a signal (kill -9 $$) or its
	// session was hung up.
	ShellKilled
	// ShellReplaced: the command replaced the login shell with another
	// interactive shell (exec sh); kspec exited that one.
	ShellReplaced
	// ShellNested: the command started an interactive shell reading the
	// console (sh, su); kspec exited it, and the login shell survived.
	ShellNested
)

// ShellEndedError says that a command ended the logged-in shell (or put
// another shell on the console), how, with the exit status when the shell
// printed one, and whether kspec got a shell back. It wraps ErrShellEnded
// and, when logging in again failed, that failure.
type ShellEndedError struct {
	// Command is the command that ended the shell.
	Command string
	How     ShellEnd
	// Status is the shell's exit status when StatusKnown (exit 3: 3).
	Status      int
	StatusKnown bool
	// LoggedIn is set when kspec logged in again: the next command runs
	// in a fresh login shell (working directory and variables reset).
	LoggedIn bool
	// Err is why kspec has no shell now (logging in again failed), or nil.
	Err error
}

// Error implements error.
func (e *ShellEndedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "guest console: %q: ", e.Command)
	switch e.How {
	case ShellExited:
		fmt.Fprintf(&b, "%v (exit status %d)", ErrShellEnded, e.Status)
	case ShellKilled:
		fmt.Fprintf(&b, "%v (exit status unknown: the shell was killed or its session hung up; getty prompted for a login again)", ErrShellEnded)
	case ShellReplaced:
		fmt.Fprintf(&b, "%v (it replaced the shell with another interactive shell, e.g. exec sh, which kspec exited; exit status unknown)", ErrShellEnded)
	case ShellNested:
		b.WriteString("the command started an interactive shell on the console, which kspec exited; the login shell survived")
	}
	switch {
	case e.Err != nil:
		fmt.Fprintf(&b, "; no shell now: %v", e.Err)
	case e.LoggedIn:
		b.WriteString("; kspec logged in again (working directory and variables are reset)")
	}
	return b.String()
}

// Unwrap lets errors.Is match ErrShellEnded and the recovery's failure.
func (e *ShellEndedError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrShellEnded, e.Err}
	}
	return []error{ErrShellEnded}
}

// Sync proves that the console is live and the shell is reading commands:
// it runs a no-op framed by fresh markers.
func (c *Console) Sync(ctx context.Context) error {
	res, err := c.Run(ctx, ":")
	if err != nil {
		return err
	}
	if res.Status != 0 {
		return &ConsoleError{What: "sync", Err: fmt.Errorf("':' exited with status %d", res.Status), Tail: c.errTail()}
	}
	return nil
}

// Interrupt sends the tty's interrupt character (^C) to the guest, e.g. to
// stop a command whose Run timed out.
func (c *Console) Interrupt(ctx context.Context) error {
	return c.send(ctx, "\x03")
}
