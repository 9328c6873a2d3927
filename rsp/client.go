package rsp

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a Client. The zero value is usable.
type Options struct {
	// PacketSize is the largest packet the stub accepts, in bytes. 0 means
	// use what qSupported reports (QEMU 7.2: PacketSize=1000, i.e. 4096).
	PacketSize int
	// Logf, if set, receives a trace of every packet sent (`->`) and
	// received (`<-`), each frame quoted with %q so that it can be replayed.
	Logf func(format string, args ...any)
	// MaxInFlight is the number of `m` requests ReadMemory keeps outstanding
	// (replies are matched in order). 0 means enough requests for about
	// 32 KiB of data in flight, at least 2 and at most 16: 16 with QEMU
	// 7.2's 0x800-byte reads, 2 with QEMU 10.2's 0x10010. 1 disables
	// pipelining.
	MaxInFlight int
	// PipelineTimeout is how long a pipelined ReadMemory waits for the
	// oldest outstanding reply before it decides the stub drops pipelined
	// requests and falls back to one request at a time. 0 means 2s.
	PipelineTimeout time.Duration
}

// Client is a GDB Remote Serial Protocol client. Its methods may be called
// from several goroutines; requests are serialised (ReadMemory pipelines
// internally). Interrupt, WaitStop, DrainStops, Stops, Running, Registers and
// Output never wait for another call.
type Client struct {
	rw   io.ReadWriter
	opts Options

	sem chan struct{} // one request-issuing call at a time

	// writer queue
	wmu  sync.Mutex
	wq   []byte
	wsig chan struct{}

	mu       sync.Mutex
	pending  []*request // requests awaiting a reply, oldest first
	unacked  [][]byte   // frames sent and not yet acknowledged, oldest first
	resends  int        // consecutive '-' for the same frame
	stops    []StopReply
	stopSig  chan struct{} // closed and replaced whenever a stop is queued
	running  bool          // resumed by the client (c, s, D): a stop reply will come
	mayRun   bool          // perhaps resumed by another party (NoteResumed): no stop reply is promised
	detached bool
	err      error         // why the connection is gone; set once
	dead     chan struct{} // closed when err is set

	output     chan string
	readerDone chan struct{}
	writerDone chan struct{}
	closeOnce  sync.Once
	closeErr   error

	// Set during Connect, read-only afterwards.
	packetSize int
	features   map[string]string
	vCont      bool
	arch       string
	regs       []Register
	regIndex   map[string]int
	targetXML  string // raw target.xml annex, the resynchronisation probe's source

	noAck       atomic.Bool // QStartNoAckMode is in effect
	probeSeq    atomic.Uint64
	pipelineOff atomic.Bool
	window      atomic.Int32
	drops       atomic.Int64 // O packets dropped because Output was full
}

// request is one packet awaiting a reply.
type request struct {
	pkt      string
	wantStop bool // the reply is a stop reply (step, ?)
	monitor  bool // collect O packets (qRcmd)
	resumes  bool // sending it resumes the target (step)
	probe    bool // a resynchronisation probe; expect is its exact reply
	expect   string
	done     chan result   // buffered(1); receives exactly one result
	stopSeen chan struct{} // buffered(1); an unsolicited stop arrived while waiting

	// guarded by Client.mu
	abandoned bool   // nobody waits for the reply any more
	suspect   bool   // a stop arrived while this was pending: the reply may be another's
	faulted   bool   // the stub NAKed while several packets were unacknowledged
	out       []byte // monitor output
}

type result struct {
	payload string
	out     []byte // a monitor request's collected output
	suspect bool   // a stop reply arrived while the request was pending
	err     error
}

// Internal delivery errors; calls turn them into fallbacks or retries.
var (
	errFault   = errors.New("rsp: the stub rejected a pipelined packet")
	errSuspect = errors.New("rsp: a stop reply arrived while several requests were outstanding")
)

const (
	defaultWindow          = 16         // the most m requests outstanding by default
	pipelineBytes          = 16 * 0x800 // data in flight by default: the measured optimum on QEMU 7.2
	defaultPipelineTimeout = 2 * time.Second
	maxFrame               = 1 << 20 // longest frame accepted from the stub
	maxResends             = 8
)

// Close stops the goroutines, fails every pending call with
// ErrConnectionClosed and closes rw if it is an io.Closer (if it is not,
// the reader goroutine ends only when a Read on rw returns). It does not
// detach: QEMU keeps the breakpoints and leaves the VM stopped.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.fail(errors.New("client closed"))
		closer, ok := c.rw.(io.Closer)
		if ok {
			c.closeErr = closer.Close()
		}
		<-c.writerDone
		if ok {
			<-c.readerDone
		}
	})
	return c.closeErr
}

// Done returns a channel that is closed when the connection is gone: the
// stub closed it, a read or write failed, or Close was called. Err says why.
func (c *Client) Done() <-chan struct{} { return c.dead }

// Err returns nil while the connection is up, else why it went away (an
// error wrapping ErrConnectionClosed).
func (c *Client) Err() error { return c.deadErr() }

// InFlight returns the number of requests sent and not yet answered (for
// diagnostics, and for tests that must act while a request is on the wire).
func (c *Client) InFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// fail records that the connection is gone and fails every pending request.
func (c *Client) fail(cause error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = fmt.Errorf("%w: %v", ErrConnectionClosed, cause)
	close(c.dead)
	for _, r := range c.pending {
		r.done <- result{err: c.err}
	}
	c.pending = nil
	c.unacked = nil
	c.logf("rsp: connection closed: %v", cause)
}

func (c *Client) logf(format string, args ...any) {
	if c.opts.Logf != nil {
		c.opts.Logf(format, args...)
	}
}

func (c *Client) Output() <-chan string { return c.output }

// Registers returns the registers of the target description, in document
// order. It is empty if the stub has no qXfer:features:read.
func (c *Client) Registers() []Register { return append([]Register(nil), c.regs...) }

// Architecture returns the <architecture> of the target description,
// e.g. "i386:x86-64".
func (c *Client) Architecture() string { return c.arch }

// PacketSize returns the negotiated maximum packet size.
func (c *Client) PacketSize() int { return c.packetSize }

// Features returns the stub's qSupported features: name to value, or to
// "+", "-", "?" for boolean features.
func (c *Client) Features() map[string]string {
	m := make(map[string]string, len(c.features))
	for k, v := range c.features {
		m[k] = v
	}
	return m
}

func (c *Client) register(name string) (Register, error) {
	i, ok := c.regIndex[name]
	if !ok {
		return Register{}, fmt.Errorf("%w: %q", ErrNoRegister, name)
	}
	return c.regs[i], nil
}
