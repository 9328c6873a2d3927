package rsp

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// QEMU single-step flags (qqemu.sstepbits): QEMU 7.2 defaults to all three.
const (
	StepEnable  = 0x1 // SSTEP_ENABLE: single-stepping on
	StepNoIRQ   = 0x2 // SSTEP_NOIRQ: no interrupts are delivered during a step
	StepNoTimer = 0x4 // SSTEP_NOTIMER: timers do not advance during a step
	// DefaultStepFlags steps like a hardware debugger: IRQs and timers masked.
	DefaultStepFlags = StepEnable | StepNoIRQ | StepNoTimer
)

// Query sends a raw packet and returns the reply: the escape hatch for
// packets without a method. An empty reply is ErrUnsupported and `Exx` a
// *RemoteError. Packets that resume the target (c, s, vCont;...), detach or
// kill, and qRcmd are refused: use Continue, Step, Detach and Monitor. `?`
// is allowed, and returns the stop reply, but note that QEMU removes every
// breakpoint when it receives `?`.
func (c *Client) Query(ctx context.Context, q string) (string, error) {
	if q == "" {
		return "", pktErr(q, fmt.Errorf("%w: empty packet", ErrBadReply))
	}
	switch {
	case q == "?":
		if err := c.begin(ctx, q); err != nil {
			return "", err
		}
		defer c.release()
		r := newRequest(q)
		r.wantStop = true
		res, err := c.roundTrip(ctx, r)
		if err != nil {
			return "", err
		}
		return res.payload, replyError(q, res.payload)
	case strings.IndexByte("cCsSDkrR", q[0]) >= 0 || strings.HasPrefix(q, "vCont;") ||
		strings.HasPrefix(q, "vKill") || strings.HasPrefix(q, "qRcmd"):
		return "", fmt.Errorf("rsp: Query %q: packet resumes, detaches, kills or runs a monitor command; use the dedicated method", shorten(q))
	}
	return c.call(ctx, q)
}

// Detach sends D: the stub removes the breakpoints and (QEMU) resumes the
// VM. A running target is interrupted first. Later calls return ErrDetached.
func (c *Client) Detach(ctx context.Context) error {
	if c.Running() {
		if err := c.Interrupt(ctx); err != nil {
			return err
		}
		if _, err := c.WaitStop(ctx); err != nil {
			return fmt.Errorf("rsp: detach: %w", err)
		}
	}
	if err := c.expectOK(ctx, "D"); err != nil {
		return err
	}
	c.mu.Lock()
	c.detached = true
	c.running = true
	c.stops = nil
	c.mu.Unlock()
	return nil
}

// ReadRegisterBytes reads a register with `p` and returns its raw value
// (target byte order, the size given by target.xml).
func (c *Client) ReadRegisterBytes(ctx context.Context, name string) ([]byte, error) {
	r, err := c.register(name)
	if err != nil {
		return nil, err
	}
	pkt := "p" + strconv.FormatInt(int64(r.Num), 16)
	reply, err := c.call(ctx, pkt)
	if err != nil {
		return nil, err
	}
	if len(reply) != 2*r.Bytes() || !isHexString(reply) {
		return nil, pktErr(pkt, fmt.Errorf("%w: %q for %d-bit register %s", ErrBadReply, shorten(reply), r.BitSize, name))
	}
	return decodeHex(reply)
}

// ReadRegister reads a register of at most 64 bits (little-endian target)
// and returns it zero-extended. Wider registers: use ReadRegisterBytes.
func (c *Client) ReadRegister(ctx context.Context, name string) (uint64, error) {
	r, err := c.register(name)
	if err != nil {
		return 0, err
	}
	if r.Bytes() > 8 {
		return 0, fmt.Errorf("rsp: register %s is %d bits wide; use ReadRegisterBytes", name, r.BitSize)
	}
	b, err := c.ReadRegisterBytes(ctx, name)
	if err != nil {
		return 0, err
	}
	var buf [8]byte
	copy(buf[:], b)
	return binary.LittleEndian.Uint64(buf[:]), nil
}

// WriteRegister writes a register of at most 64 bits with `P`; v must fit.
func (c *Client) WriteRegister(ctx context.Context, name string, v uint64) error {
	r, err := c.register(name)
	if err != nil {
		return err
	}
	n := r.Bytes()
	if n > 8 {
		return fmt.Errorf("rsp: register %s is %d bits wide; use WriteRegisterBytes", name, r.BitSize)
	}
	if n < 8 && v>>(8*n) != 0 {
		return fmt.Errorf("rsp: value %#x does not fit %d-bit register %s", v, r.BitSize, name)
	}
	var buf [8]byte
	binary.LittleEndian.PutUint64(buf[:], v)
	return c.WriteRegisterBytes(ctx, name, buf[:n])
}

// WriteRegisterBytes writes a register's raw value (target byte order); the
// length must be the register's size.
func (c *Client) WriteRegisterBytes(ctx context.Context, name string, val []byte) error {
	r, err := c.register(name)
	if err != nil {
		return err
	}
	if len(val) != r.Bytes() {
		return fmt.Errorf("rsp: register %s takes %d bytes, got %d", name, r.Bytes(), len(val))
	}
	return c.expectOK(ctx, "P"+strconv.FormatInt(int64(r.Num), 16)+"="+hex.EncodeToString(val))
}

// ReadAllRegisters reads every register with `g` and splits the reply by the
// target description. Registers beyond the end of the reply (QEMU's `g`
// covers the core registers only) are absent from the map.
func (c *Client) ReadAllRegisters(ctx context.Context) (map[string][]byte, error) {
	reply, err := c.call(ctx, "g")
	if err != nil {
		return nil, err
	}
	if len(reply)%2 != 0 || !isHexString(reply) {
		return nil, pktErr("g", fmt.Errorf("%w: %q", ErrBadReply, shorten(reply)))
	}
	data, err := decodeHex(reply)
	if err != nil {
		return nil, pktErr("g", err)
	}
	m := make(map[string][]byte, len(c.regs))
	for _, r := range c.regs {
		if end := r.offset + r.Bytes(); end <= len(data) {
			m[r.Name] = data[r.offset:end:end]
		}
	}
	return m, nil
}

// SetBreakpoint inserts a breakpoint or watchpoint with `Z`. size is the
// breakpoint kind for Software and Hardware (1 on x86; 0 means 1) and the
// watched length for watchpoints.
func (c *Client) SetBreakpoint(ctx context.Context, kind BreakKind, addr uint64, size int) error {
	return c.expectOK(ctx, breakPacket('Z', kind, addr, size))
}

// ClearBreakpoint removes a breakpoint or watchpoint with `z`; the
// arguments must be those given to SetBreakpoint.
func (c *Client) ClearBreakpoint(ctx context.Context, kind BreakKind, addr uint64, size int) error {
	return c.expectOK(ctx, breakPacket('z', kind, addr, size))
}

func breakPacket(op byte, kind BreakKind, addr uint64, size int) string {
	if size <= 0 {
		size = 1
	}
	return fmt.Sprintf("%c%d,%x,%x", op, int(kind), addr, size)
}

// Continue resumes the target (vCont;c, or c if the stub lacks vCont) and
// returns once the packet is queued; WaitStop returns the stop. Stop
// replies still queued are dropped: they describe the stop this ends.
func (c *Client) Continue(ctx context.Context) error {
	pkt := "c"
	if c.vCont {
		pkt = "vCont;c"
	}
	if err := c.begin(ctx, pkt); err != nil {
		return err
	}
	defer c.release()
	frame := EncodePacket([]byte(pkt))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return pktErr(pkt, c.err)
	}
	c.resume()
	if !c.noAck.Load() {
		c.unacked = append(c.unacked, frame)
	}
	c.logf("-> %q", frame)
	c.enqueue(frame)
	return nil
}

// Step single-steps thread (vCont;s:thread, or Hc + s without vCont; a
// thread <= 0 steps the current thread) and waits for the stop. If ctx
// expires first the target is interrupted, so that it does not keep running.
// If the VM had been resumed behind the client's back (QMP cont), the packet
// only stops it, and Step returns that stop (signal 2) without stepping.
func (c *Client) Step(ctx context.Context, thread int) (StopReply, error) {
	var pkt string
	switch {
	case c.vCont && thread > 0:
		pkt = "vCont;s:" + formatThreadID(thread)
	case c.vCont:
		pkt = "vCont;s"
	default:
		pkt = "s"
	}
	if err := c.begin(ctx, pkt); err != nil {
		return StopReply{}, err
	}
	defer c.release()
	if !c.vCont && thread > 0 {
		if reply, err := c.callHeld(ctx, "Hc"+formatThreadID(thread)); err != nil {
			return StopReply{}, err
		} else if reply != "OK" {
			return StopReply{}, pktErr("Hc", fmt.Errorf("%w: %q", ErrBadReply, reply))
		}
	}
	r := newRequest(pkt)
	r.wantStop, r.resumes = true, true
	res, err := c.roundTrip(ctx, r)
	if err != nil {
		if ctx.Err() != nil {
			c.logf("rsp: step timed out; interrupting the target")
			c.enqueue([]byte{0x03})
		}
		return StopReply{}, err
	}
	if err := replyError(pkt, res.payload); err != nil {
		return StopReply{}, err
	}
	s, err := ParseStopReply(res.payload)
	if err != nil {
		return StopReply{}, pktErr(pkt, err)
	}
	return s, nil
}

// Interrupt sends the raw interrupt byte 0x03; the stop reply that follows
// goes to WaitStop. It is the one thing allowed while the target runs, and
// harmless while it is stopped (QEMU ignores it).
func (c *Client) Interrupt(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("rsp: interrupt: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.err != nil:
		return fmt.Errorf("rsp: interrupt: %w", c.err)
	case c.detached:
		return fmt.Errorf("rsp: interrupt: %w", ErrDetached)
	}
	c.logf("-> %q", "\x03")
	c.enqueue([]byte{0x03})
	return nil
}

// Threads lists the thread ids with qfThreadInfo/qsThreadInfo. In QEMU a
// thread is a vCPU, id = cpu index + 1.
func (c *Client) Threads(ctx context.Context) ([]int, error) {
	if err := c.begin(ctx, "qfThreadInfo"); err != nil {
		return nil, err
	}
	defer c.release()
	var ids []int
	pkt := "qfThreadInfo"
	for range 1 << 16 {
		reply, err := c.callHeld(ctx, pkt)
		if err != nil {
			return nil, err
		}
		if reply == "l" {
			return ids, nil
		}
		if reply[0] != 'm' {
			return nil, pktErr(pkt, fmt.Errorf("%w: %q", ErrBadReply, shorten(reply)))
		}
		for s := range strings.SplitSeq(reply[1:], ",") {
			id, err := parseThreadID(s)
			if err != nil {
				return nil, pktErr(pkt, fmt.Errorf("%w: %v", ErrBadReply, err))
			}
			ids = append(ids, id)
		}
		pkt = "qsThreadInfo"
	}
	return nil, pktErr(pkt, fmt.Errorf("%w: thread list does not end", ErrBadReply))
}

// SelectThread makes id the thread of later register and memory accesses (Hg).
func (c *Client) SelectThread(ctx context.Context, id int) error {
	return c.expectOK(ctx, "Hg"+formatThreadID(id))
}

// CurrentThread returns the stub's current thread (qC).
func (c *Client) CurrentThread(ctx context.Context) (int, error) {
	reply, err := c.call(ctx, "qC")
	if err != nil {
		return 0, err
	}
	if !strings.HasPrefix(reply, "QC") {
		return 0, pktErr("qC", fmt.Errorf("%w: %q", ErrBadReply, shorten(reply)))
	}
	id, err := parseThreadID(reply[2:])
	if err != nil {
		return 0, pktErr("qC", fmt.Errorf("%w: %v", ErrBadReply, err))
	}
	return id, nil
}

// Monitor runs a monitor command with qRcmd (QEMU: an HMP command) and
// returns its output, collected from the `O` packets that precede the
// final OK.
func (c *Client) Monitor(ctx context.Context, cmd string) (string, error) {
	pkt := "qRcmd," + hex.EncodeToString([]byte(cmd))
	if err := c.begin(ctx, pkt); err != nil {
		return "", err
	}
	defer c.release()
	r := newRequest(pkt)
	r.monitor = true
	res, err := c.roundTrip(ctx, r)
	if resumingMonitorCommand(cmd) {
		// The VM runs without the stub's knowledge (no stop reply is
		// promised on QEMU >= 8.1): the next request stops it first.
		c.NoteResumed()
	}
	if err != nil {
		return "", err
	}
	if err := replyError(pkt, res.payload); err != nil {
		return string(res.out), err
	}
	out := res.out
	if res.payload != "OK" {
		// A stub may answer with the hex-encoded output itself.
		b, err := decodeHex(res.payload)
		if err != nil {
			return string(out), pktErr(pkt, err)
		}
		out = append(out, b...)
	}
	return string(out), nil
}

// SetStepFlags sets QEMU's single-step flags (Qqemu.sstep): a combination
// of StepEnable, StepNoIRQ and StepNoTimer. QEMU 7.2 starts with
// DefaultStepFlags, which masks interrupts and timers while stepping.
func (c *Client) SetStepFlags(ctx context.Context, flags int) error {
	return c.expectOK(ctx, "Qqemu.sstep="+strconv.FormatInt(int64(flags), 16))
}

// StepFlags reads QEMU's single-step flags (qqemu.sstep).
func (c *Client) StepFlags(ctx context.Context) (int, error) {
	reply, err := c.call(ctx, "qqemu.sstep")
	if err != nil {
		return 0, err
	}
	v, perr := strconv.ParseUint(reply, 0, 32)
	if perr != nil {
		return 0, pktErr("qqemu.sstep", fmt.Errorf("%w: %q", ErrBadReply, shorten(reply)))
	}
	return int(v), nil
}
