package supervisor

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"time"
)

// Console buffer sizes.
const (
	// ConsoleBuffer bounds the bytes kept for Console readers. When the
	// guest prints more than that before anyone reads, the oldest bytes are
	// dropped (counted by ConsoleStream.Dropped): the reader sees the most
	// recent output, QEMU is never blocked, and the log file still has
	// everything.
	ConsoleBuffer = 4 << 20
	// ConsoleTailSize is how much ConsoleTail can return.
	ConsoleTailSize = 1 << 20
)

// ring is a bounded byte buffer that drops its oldest bytes when full.
type ring struct {
	buf     []byte // len == cap once full
	size    int
	dropped uint64
}

func (r *ring) write(p []byte) {
	if len(p) >= r.size {
		r.dropped += uint64(len(r.buf) + len(p) - r.size)
		r.buf = append(r.buf[:0], p[len(p)-r.size:]...)
		return
	}
	if over := len(r.buf) + len(p) - r.size; over > 0 {
		r.dropped += uint64(over)
		r.buf = append(r.buf[:0], r.buf[over:]...)
	}
	r.buf = append(r.buf, p...)
}

// last returns a copy of the last n bytes.
func (r *ring) last(n int) []byte {
	n = min(max(n, 0), len(r.buf))
	return append([]byte(nil), r.buf[len(r.buf)-n:]...)
}

// take moves up to len(p) of the oldest bytes into p.
func (r *ring) take(p []byte) int {
	n := copy(p, r.buf)
	r.buf = append(r.buf[:0], r.buf[n:]...)
	return n
}

// ConsoleStream is the guest's serial console: what Machine.Console
// returns. Read returns bytes the guest printed (from a bounded buffer, see
// ConsoleBuffer) and io.EOF once QEMU has exited and the buffer is drained;
// Write types to the guest.
type ConsoleStream struct {
	master *os.File
	// slave is kspec's own hold on the pty's slave side, so that the
	// master sees no hangup before QEMU has opened it (QEMU opens it by
	// path, see Paths.ConsoleTTY).
	slave     *os.File
	slaveOnce sync.Once
	log       *os.File

	mu       sync.Mutex
	pending  ring // for readers
	tail     ring // for ConsoleTail
	closed   bool
	notify   chan struct{} // closed and replaced on every change
	deadline time.Time

	readerDone chan struct{}
}

func newConsole(master, slave, log *os.File) *ConsoleStream {
	c := &ConsoleStream{
		master:     master,
		slave:      slave,
		log:        log,
		pending:    ring{size: ConsoleBuffer},
		tail:       ring{size: ConsoleTailSize},
		notify:     make(chan struct{}),
		readerDone: make(chan struct{}),
	}
	go c.pump()
	return c
}

// releaseSlave drops kspec's hold on the pty's slave side. Once QEMU has
// exited too, the master reads EIO and the console ends.
func (c *ConsoleStream) releaseSlave() {
	c.slaveOnce.Do(func() {
		if c.slave != nil {
			c.slave.Close()
		}
	})
}

// pump copies everything the guest prints into the log, the tail and the
// reader buffer. Nothing here waits for a consumer, so QEMU's writes to the
// pty never block on kspec.
func (c *ConsoleStream) pump() {
	defer close(c.readerDone)
	buf := make([]byte, 32<<10)
	for {
		n, err := c.master.Read(buf)
		if n > 0 {
			if c.log != nil {
				_, _ = c.log.Write(buf[:n])
			}
			c.mu.Lock()
			c.pending.write(buf[:n])
			c.tail.write(buf[:n])
			c.wake()
			c.mu.Unlock()
		}
		if err != nil {
			// EIO once QEMU (the only holder of the pty's slave side)
			// has exited; os.ErrClosed after Stop closed the master.
			c.mu.Lock()
			c.closed = true
			c.wake()
			c.mu.Unlock()
			return
		}
	}
}

// wake must be called with mu held.
func (c *ConsoleStream) wake() {
	close(c.notify)
	c.notify = make(chan struct{})
}

// Read implements io.Reader: it blocks until the guest has printed
// something, the read deadline passes (os.ErrDeadlineExceeded), or the
// console ends (io.EOF).
func (c *ConsoleStream) Read(p []byte) (int, error) {
	return c.ReadContext(context.Background(), p)
}

// ReadContext is Read bounded by ctx as well.
func (c *ConsoleStream) ReadContext(ctx context.Context, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		c.mu.Lock()
		if len(c.pending.buf) > 0 {
			n := c.pending.take(p)
			c.mu.Unlock()
			return n, nil
		}
		if c.closed {
			c.mu.Unlock()
			return 0, io.EOF
		}
		notify, deadline := c.notify, c.deadline
		c.mu.Unlock()

		var timer *time.Timer
		var timeout <-chan time.Time
		if !deadline.IsZero() {
			d := time.Until(deadline)
			if d <= 0 {
				return 0, os.ErrDeadlineExceeded
			}
			timer = time.NewTimer(d)
			timeout = timer.C
		}
		select {
		case <-notify:
		case <-timeout:
			return 0, os.ErrDeadlineExceeded
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return 0, ctx.Err()
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// SetReadDeadline makes Read fail with os.ErrDeadlineExceeded after t
// (zero: no deadline). It also wakes blocked readers to re-check.
func (c *ConsoleStream) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.wake()
	c.mu.Unlock()
	return nil
}

// Write implements io.Writer: bytes typed on the guest's console. It can
// block when the guest does not read its UART (e.g. the VM is paused) and
// the pty buffer is full; SetWriteDeadline bounds that.
func (c *ConsoleStream) Write(p []byte) (int, error) {
	return c.master.Write(p)
}

// SetWriteDeadline bounds Write (zero: no deadline).
func (c *ConsoleStream) SetWriteDeadline(t time.Time) error {
	return c.master.SetWriteDeadline(t)
}

// Dropped is how many console bytes readers never saw because the reader
// buffer (ConsoleBuffer) was full. The log file has them.
func (c *ConsoleStream) Dropped() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pending.dropped
}

// Discard empties the reader buffer, so the next Read sees only output
// printed from now on.
func (c *ConsoleStream) Discard() {
	c.mu.Lock()
	c.pending.buf = c.pending.buf[:0]
	c.mu.Unlock()
}

// Tail returns the last n bytes the guest printed (at most
// ConsoleTailSize), whether or not anyone read them.
func (c *ConsoleStream) Tail(n int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.tail.last(n))
}

// close stops the pump (closing the master) and waits for it.
func (c *ConsoleStream) close() error {
	// Close our slave first: with QEMU gone that was the last holder, so
	// the pump's blocking read on the master ends with EIO. (Closing the
	// master alone does not interrupt a read in progress on a pty.)
	c.releaseSlave()
	err := c.master.Close()
	<-c.readerDone
	if c.log != nil {
		err = errors.Join(err, c.log.Close())
	}
	return err
}
