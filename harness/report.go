package harness

import (
	"context"
	"encoding/binary"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/kspec/kspec/rsp"
)

// transcriptKeep bounds the console transcript a Target keeps for reports.
const transcriptKeep = 1 << 20

// recorder keeps what a failure report needs: the console transcript (with
// the commands kspec typed), where the current spec's part of it starts, and
// the last stop reply. It also remembers shell commands whose result nobody
// collected, which a restore must get out of the way first (see
// Target.RestoreSnapshot).
type recorder struct {
	mu        sync.Mutex
	buf       []byte // the transcript's last bytes; buf[0] is at stream offset base
	base      int64
	specStart int64
	lastStop  *rsp.StopReply
	stopTime  time.Time
	// uncollected are the commands started by Target.Start whose result
	// has not been seen yet; dirty is set when a command may still run
	// (a Shell call that failed).
	uncollected []pendingCmd
	dirty       bool
}

// pendingCmd is a command sent by Target.Start.
type pendingCmd struct {
	cmd  string
	poll func() bool // reports whether the command's result has arrived
}

// Write implements io.Writer for the console's transcript.
func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.appendLocked(p)
	return len(p), nil
}

func (r *recorder) appendLocked(p []byte) {
	r.buf = append(r.buf, p...)
	if len(r.buf) > 2*transcriptKeep {
		drop := len(r.buf) - transcriptKeep
		r.buf = append(r.buf[:0], r.buf[drop:]...)
		r.base += int64(drop)
	}
}

// typed records a command kspec sent to the guest's shell, so that the
// transcript says what produced the output that follows.
func (r *recorder) typed(cmd string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.appendLocked([]byte(typedPrefix + strings.ReplaceAll(cmd, "\n", "\n"+typedPrefix) + "\n"))
}

// typedPrefix starts a line kspec typed in the transcript. It contains a
// byte the guest never prints (the shell's echo is off), so rendering can
// tell typed lines from output.
const typedPrefix = "\x00$ "

func (r *recorder) noteStop(s rsp.StopReply) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastStop, r.stopTime = &s, time.Now()
}

func (r *recorder) started(cmd string, poll func() bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	kept := r.uncollected[:0]
	for _, p := range r.uncollected {
		if !p.poll() {
			kept = append(kept, p)
		}
	}
	r.uncollected = append(kept, pendingCmd{cmd: cmd, poll: poll})
}

func (r *recorder) markDirty() {
	r.mu.Lock()
	r.dirty = true
	r.mu.Unlock()
}

// busy returns the commands that may still be running in the guest's shell
// (started and not collected, or a Shell call that failed).
func (r *recorder) busy() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var cmds []string
	kept := r.uncollected[:0]
	for _, p := range r.uncollected {
		if !p.poll() {
			kept = append(kept, p)
			cmds = append(cmds, p.cmd)
		}
	}
	r.uncollected = kept
	if r.dirty {
		cmds = append(cmds, "(a shell command that failed)")
	}
	return cmds
}

// settled forgets the commands of the old timeline: after a restore the
// shell is the one that was saved.
func (r *recorder) settled() {
	r.mu.Lock()
	r.uncollected, r.dirty = nil, false
	r.mu.Unlock()
}

func (r *recorder) beginSpec() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.specStart = r.base + int64(len(r.buf))
	r.lastStop = nil
}

// since returns the transcript from stream offset off on, and whether its
// beginning was dropped.
func (r *recorder) since(off int64) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	truncated := false
	if off < r.base {
		off, truncated = r.base, true
	}
	return string(r.buf[off-r.base:]), truncated
}

var (
	beginMarker = regexp.MustCompile(`kspec:[0-9a-f]{16}:B`)
	endMarker   = regexp.MustCompile(`^kspec:[0-9a-f]{16}:E:(\d+)$`)
	escapes     = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)
	typedAfter  = regexp.MustCompile(`(?m)^[^\n\x00]+\x00\$ `)
)

// renderTranscript makes a raw transcript readable: typed commands start
// with "$ ", the framing markers of each become one "[exit N]" line after
// its output, and carriage returns and terminal escapes are removed.
// Commands kspec runs for itself (console syncs, shell set-up) leave
// nothing behind.
func renderTranscript(raw string) string {
	s := escapes.ReplaceAllString(raw, "")
	s = strings.ReplaceAll(s, "\r", "")
	// A command typed at a prompt starts a line of its own, without the prompt.
	s = typedAfter.ReplaceAllStringFunc(s, func(m string) string {
		i := strings.Index(m, typedPrefix)
		if looksLikePrompt(m[:i]) {
			return typedPrefix
		}
		return m[:i] + "\n" + typedPrefix
	})
	var b strings.Builder
	open := 0      // typed commands whose end marker has not been seen
	blank := false // an empty line held back: it may be an end marker's
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, typedPrefix) {
			if blank {
				b.WriteString("\n")
				blank = false
			}
			b.WriteString("$ " + line[len(typedPrefix):] + "\n")
			open++
			continue
		}
		if m := endMarker.FindStringSubmatch(line); m != nil {
			blank = false // printed by the marker's printf
			if open > 0 {
				b.WriteString("[exit " + m[1] + "]\n")
				open--
			}
			continue
		}
		had := line != ""
		if loc := beginMarker.FindStringIndex(line); loc != nil && looksLikePrompt(line[:loc[0]]) {
			line = line[loc[0]:] // the prompt the command was typed at
		}
		line = beginMarker.ReplaceAllString(line, "")
		line = strings.ReplaceAll(line, "\x00", "")
		if line == "" {
			if !had {
				if blank {
					b.WriteString("\n")
				}
				blank = true
			}
			continue
		}
		if blank {
			b.WriteString("\n")
			blank = false
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// looksLikePrompt reports whether s ends like a shell prompt ("# ", "$ ",
// "% ", "> ").
func looksLikePrompt(s string) bool {
	t := strings.TrimRight(s, " ")
	return t != "" && len(t) < len(s) && strings.ContainsRune("#$%>", rune(t[len(t)-1]))
}

// BeginSpec marks the start of a spec: SpecReport's transcript starts here
// and the last stop is forgotten. Reset calls it; call it yourself in a
// suite that does not reset between specs.
func (t *Target) BeginSpec() { t.rec.beginSpec() }

// RetainedBytes is what the Target keeps of the guest's output on purpose,
// within fixed bounds: the console's buffers and the transcript for failure
// reports (at most a few MiB). A leak check subtracts it from the heap.
func (t *Target) RetainedBytes() int {
	t.rec.mu.Lock()
	n := cap(t.rec.buf)
	t.rec.mu.Unlock()
	if t.console != nil {
		n += t.console.Retained()
	}
	return n
}

// SpecTranscript returns the console transcript since BeginSpec (or Reset):
// the commands kspec typed (as "$ command" lines, with "[exit N]" after
// each) and everything the guest printed, kernel messages included.
func (t *Target) SpecTranscript() string {
	raw, truncated := t.rec.since(t.rec.specStartOffset())
	s := renderTranscript(raw)
	if truncated {
		s = "[... earlier output dropped ...]\n" + s
	}
	return s
}

func (r *recorder) specStartOffset() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.specStart
}

// SpecReport is what kspec knows about the current spec's run on a Target,
// for the report of a failed spec.
type SpecReport struct {
	// Transcript is the console transcript since the spec began (see
	// SpecTranscript).
	Transcript string
	// LastStop describes the last stop of the guest in the debugger since
	// the spec began: the raw stop reply, its vCPU and where (function,
	// file:line); "none" if it did not stop.
	LastStop string
	// Registers lists the general registers of the last stop's vCPU as
	// "name value" pairs; it says where they were read.
	Registers string
	// Source is the kernel source around where the guest is stopped
	// (numbered lines, the stop's line marked "=>") when the guest has a
	// prepared source tree, else "".
	Source string
}

// SpecReport collects the failure report of the current spec: its console
// transcript, the last stop reply and the registers. The registers are
// read now: when the guest is stopped (at the last stop, normally) they
// are that stop's; when it runs, it is interrupted for the read and then
// resumed. SpecReport never fails: what cannot be read is described in the
// field instead.
func (t *Target) SpecReport(ctx context.Context) SpecReport {
	r := SpecReport{Transcript: t.SpecTranscript(), LastStop: "none", Registers: "no debugger attached"}
	t.rec.mu.Lock()
	stop, when := t.rec.lastStop, t.rec.stopTime
	t.rec.mu.Unlock()
	if stop != nil {
		r.LastStop = fmt.Sprintf("%q (%s) at %s", stop.Raw, stop, when.Format("15:04:05.000"))
	}
	if t.gdb == nil {
		return r
	}
	thread := 1
	if stop != nil && stop.Thread > 0 {
		thread = stop.Thread
	}
	var pc uint64
	r.Registers, pc = t.reportRegisters(ctx, thread, stop)
	if stop != nil && pc != 0 {
		h := t.describeStop(pc, *stop)
		r.LastStop += "; the guest is stopped at " + h.String()
		if h.Source != "" {
			r.LastStop += ": " + strings.TrimSpace(h.Source)
		}
		r.Source = t.SourceContext(h.File, h.Line, 3)
	}
	return r
}

// reportRegisters reads and formats thread's registers; pc is the thread's
// rip when the guest was stopped at the last stop, else 0.
func (t *Target) reportRegisters(ctx context.Context, thread int, stop *rsp.StopReply) (s string, pc uint64) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	where := "where the guest is stopped (the last stop)"
	stopped := stop != nil
	if stop == nil {
		where = "where the guest is stopped (no stop since the spec began)"
	}
	if t.gdb.Running() {
		if err := t.gdb.Interrupt(ctx); err != nil {
			return "the guest runs; interrupting it failed: " + err.Error(), 0
		}
		if _, err := t.gdb.WaitStop(ctx); err != nil {
			return "the guest runs; interrupting it failed: " + err.Error(), 0
		}
		where = "where the guest was when the report was made (it was running; interrupted for the read and resumed)"
		stopped = false
		defer func() {
			if err := t.gdb.Continue(ctx); err != nil {
				s += "\n(resuming the guest failed: " + err.Error() + ")"
			}
		}()
	}
	if err := t.gdb.SelectThread(ctx, thread); err != nil {
		return "selecting vCPU thread " + fmt.Sprint(thread) + ": " + err.Error(), 0
	}
	regs, err := t.gdb.ReadAllRegisters(ctx)
	if err != nil {
		return "reading registers: " + err.Error(), 0
	}
	var b strings.Builder
	fmt.Fprintf(&b, "cpu %d, %s\n", thread-1, where)
	n := 0
	for _, reg := range t.gdb.Registers() {
		v, ok := regs[reg.Name]
		if !ok || reg.BitSize > 64 || reg.Group == "vector" || strings.HasPrefix(reg.Name, "f") && reg.Name != "fs" && reg.Name != "fs_base" {
			continue
		}
		var buf [8]byte
		copy(buf[:], v)
		val := binary.LittleEndian.Uint64(buf[:])
		if reg.Name == t.arch().PC() && stopped {
			pc = val
		}
		fmt.Fprintf(&b, "%-9s 0x%016x", reg.Name, val)
		if reg.Name == t.arch().PC() && t.syms != nil {
			if sym, off, err := t.syms.SymbolAt(val); err == nil {
				fmt.Fprintf(&b, " <%s+%#x>", sym.Name, off)
			}
		}
		n++
		if n%3 == 0 {
			b.WriteByte('\n')
		} else {
			b.WriteString("   ")
		}
	}
	return strings.TrimRight(b.String(), " \n"), pc
}
