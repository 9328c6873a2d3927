package rsp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
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
	// (replies are matched in order). 0 means 16; 1 disables pipelining.
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
	running  bool
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
	defaultWindow          = 16
	defaultPipelineTimeout = 2 * time.Second
	maxFrame               = 1 << 20 // longest frame accepted from the stub
	maxResends             = 8
	qemuMaxRead            = 0x800 // QEMU 7.2 answers m with more than this with E22
)

// Connect starts a client on rw: it starts the reader and writer goroutines,
// negotiates features with qSupported, reads the target description
// (qXfer:features:read:target.xml, following xi:include) into the register
// map, and consumes any stop reply the stub sent on connection (QEMU sends
// T02 when a debugger attaches to a running VM). The target is stopped when
// Connect returns. If Connect fails, rw is closed if it is an io.Closer.
func Connect(ctx context.Context, rw io.ReadWriter, opts Options) (*Client, error) {
	c := &Client{
		rw:         rw,
		opts:       opts,
		sem:        make(chan struct{}, 1),
		wsig:       make(chan struct{}, 1),
		stopSig:    make(chan struct{}),
		dead:       make(chan struct{}),
		output:     make(chan string, 64),
		readerDone: make(chan struct{}),
		writerDone: make(chan struct{}),
		packetSize: 4096,
	}
	w := opts.MaxInFlight
	if w == 0 {
		w = defaultWindow
	}
	c.window.Store(int32(max(w, 1)))
	go c.readLoop()
	go c.writeLoop()
	if err := c.handshake(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Client) handshake(ctx context.Context) error {
	reply, err := c.Query(ctx, "qSupported:swbreak+;hwbreak+;vContSupported+")
	if err != nil && !errors.Is(err, ErrUnsupported) {
		return fmt.Errorf("rsp: connect: %w", err)
	}
	c.features = parseFeatures(reply)
	if c.opts.PacketSize > 0 {
		c.packetSize = c.opts.PacketSize
	} else if s, ok := c.features["PacketSize"]; ok {
		if n, ok := parseHexUint(s); ok && n >= 64 && n <= maxFrame {
			c.packetSize = int(n)
		}
	}
	if c.features["QStartNoAckMode"] == "+" {
		if _, err := c.Query(ctx, "QStartNoAckMode"); err == nil {
			c.mu.Lock()
			c.noAck.Store(true)
			c.unacked = nil
			c.mu.Unlock()
		}
	}
	if v, err := c.Query(ctx, "vCont?"); err == nil {
		acts := strings.Split(strings.TrimPrefix(v, "vCont"), ";")
		c.vCont = contains(acts, "c") && contains(acts, "s")
	}
	if c.features["qXfer:features:read"] == "+" {
		if err := c.readTargetDescription(ctx); err != nil {
			return fmt.Errorf("rsp: connect: %w", err)
		}
	}
	// Any stop reply received so far describes the stop the connection
	// caused; the target is stopped now, so it is not news to anyone.
	for _, s := range c.DrainStops() {
		c.logf("rsp: connect: consumed initial stop reply %q", s.Raw)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// parseFeatures parses a qSupported reply: `name=value`, `name+`, `name-`.
func parseFeatures(reply string) map[string]string {
	f := make(map[string]string)
	for item := range strings.SplitSeq(reply, ";") {
		if item == "" {
			continue
		}
		if k, v, ok := strings.Cut(item, "="); ok {
			f[k] = v
		} else if n := len(item); item[n-1] == '+' || item[n-1] == '-' || item[n-1] == '?' {
			f[item[:n-1]] = item[n-1:]
		} else {
			f[item] = ""
		}
	}
	return f
}

func (c *Client) readTargetDescription(ctx context.Context) error {
	fetch := func(annex string) ([]byte, error) {
		b, err := c.xferRead(ctx, "features", annex)
		if err == nil && annex == "target.xml" {
			c.targetXML = string(b)
		}
		return b, err
	}
	arch, regs, err := parseTargetDescription(fetch)
	if err != nil {
		return err
	}
	c.arch = arch
	c.regs = regs
	c.regIndex = make(map[string]int, len(regs))
	for i, r := range regs {
		if _, dup := c.regIndex[r.Name]; !dup {
			c.regIndex[r.Name] = i
		}
	}
	return nil
}

// xferRead reads a whole qXfer object in pieces.
func (c *Client) xferRead(ctx context.Context, object, annex string) ([]byte, error) {
	chunk := max((c.packetSize-5)/2, 16)
	var out []byte
	for len(out) < maxFrame {
		reply, err := c.Query(ctx, fmt.Sprintf("qXfer:%s:read:%s:%x,%x", object, annex, len(out), chunk))
		if err != nil {
			return nil, err
		}
		switch reply[0] {
		case 'l':
			return append(out, reply[1:]...), nil
		case 'm':
			if len(reply) == 1 {
				return nil, pktErr("qXfer:"+object+":read:"+annex, fmt.Errorf("%w: empty 'm' chunk", ErrBadReply))
			}
			out = append(out, reply[1:]...)
		default:
			return nil, pktErr("qXfer:"+object+":read:"+annex, fmt.Errorf("%w: %q", ErrBadReply, shorten(reply)))
		}
	}
	return nil, pktErr("qXfer:"+object+":read:"+annex, fmt.Errorf("%w: object larger than %d bytes", ErrBadReply, maxFrame))
}

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

// --- writer ---------------------------------------------------------------

// enqueue queues bytes for the writer goroutine; it never blocks on I/O.
func (c *Client) enqueue(b []byte) {
	c.wmu.Lock()
	c.wq = append(c.wq, b...)
	c.wmu.Unlock()
	select {
	case c.wsig <- struct{}{}:
	default:
	}
}

func (c *Client) writeLoop() {
	defer close(c.writerDone)
	for {
		select {
		case <-c.wsig:
		case <-c.dead:
			return
		}
		c.wmu.Lock()
		buf := c.wq
		c.wq = nil
		c.wmu.Unlock()
		if len(buf) == 0 {
			continue
		}
		if _, err := c.rw.Write(buf); err != nil {
			c.fail(fmt.Errorf("write: %w", err))
			return
		}
	}
}

// --- reader ---------------------------------------------------------------

func (c *Client) readLoop() {
	defer close(c.readerDone)
	br := bufio.NewReaderSize(c.rw, 64<<10)
	var frame []byte
	for {
		b, err := br.ReadByte()
		if err != nil {
			c.fail(fmt.Errorf("read: %w", err))
			return
		}
		switch b {
		case '+':
			c.onAck()
			continue
		case '-':
			c.onNack()
			continue
		case '$', '%':
		default:
			continue // line noise between packets
		}
		frame, err = readFrame(br, frame[:0], b)
		if err != nil {
			c.fail(fmt.Errorf("read: %w", err))
			return
		}
		c.logf("<- %q", frame)
		payload, derr := decodeFrame(frame)
		if frame[0] == '%' {
			continue // non-stop notification: never acknowledged, not used by kspec
		}
		if errors.Is(derr, ErrChecksum) {
			c.logf("rsp: %v: asking for retransmission", derr)
			c.enqueueAck('-')
			continue
		}
		c.enqueueAck('+')
		if derr != nil {
			c.dispatchError(derr)
			continue
		}
		c.dispatch(string(payload))
	}
}

// readFrame reads the rest of a frame that started with start. A '$' inside
// the payload restarts the frame (the previous one was truncated), as gdb does.
func readFrame(br *bufio.Reader, buf []byte, start byte) ([]byte, error) {
	buf = append(buf[:0], start)
	for {
		chunk, err := br.ReadSlice('#')
		if bytes.IndexByte(chunk, '$') >= 0 { // rare; IndexByte is the fast test
			buf, chunk = buf[:0], chunk[bytes.LastIndexByte(chunk, '$'):]
		}
		buf = append(buf, chunk...)
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
		if len(buf) > maxFrame {
			return nil, fmt.Errorf("%w: frame longer than %d bytes", ErrMalformedPacket, maxFrame)
		}
	}
	for range 2 {
		b, err := br.ReadByte()
		if err != nil {
			return nil, err
		}
		buf = append(buf, b)
	}
	return buf, nil
}

func (c *Client) enqueueAck(b byte) {
	if !c.noAck.Load() {
		c.enqueue([]byte{b})
	}
}

func (c *Client) onAck() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.unacked) > 0 {
		c.unacked = c.unacked[1:]
	}
	c.resends = 0
}

// onNack handles '-'. With one unacknowledged frame it is resent. With
// several (a pipeline) a resend would reorder requests, so instead every
// pending request is marked faulted: its reply, whatever arrives, is not
// trusted, and the caller resynchronises and falls back.
func (c *Client) onNack() {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case len(c.unacked) == 0:
		return
	case len(c.unacked) == 1 && c.resends < maxResends:
		c.resends++
		c.logf("rsp: stub NAKed %q, resending (%d)", c.unacked[0], c.resends)
		c.enqueue(c.unacked[0])
	default:
		c.logf("rsp: stub NAKed with %d packets outstanding; not resending", len(c.unacked))
		c.unacked = nil
		for _, r := range c.pending {
			r.faulted = true
		}
	}
}

// dispatch routes one decoded payload.
func (c *Client) dispatch(p string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if isOutputPacket(p) {
		text, _ := decodeHex(p[1:])
		if len(c.pending) > 0 && c.pending[0].monitor {
			c.pending[0].out = append(c.pending[0].out, text...)
			return
		}
		select {
		case c.output <- string(text):
		default:
			c.drops.Add(1)
		}
		return
	}
	if looksLikeStopReply(p) {
		s, err := ParseStopReply(p)
		if err != nil {
			c.logf("rsp: stop reply %q: %v (using what could be parsed)", shorten(p), err)
		}
		c.onStop(s)
		return
	}
	// A resynchronisation probe's reply settles every request before it:
	// those never answered were lost.
	for i, r := range c.pending {
		if r.probe && p == r.expect {
			for _, lost := range c.pending[:i] {
				lost.done <- result{err: ErrRequestLost}
			}
			c.pending = c.pending[i+1:]
			r.done <- result{payload: p}
			return
		}
	}
	if len(c.pending) == 0 {
		c.logf("rsp: discarding unsolicited reply %q", shorten(p))
		return
	}
	r := c.pending[0]
	if r.probe {
		c.logf("rsp: discarding stale reply %q", shorten(p))
		return
	}
	c.pending = c.pending[1:]
	if r.wantStop {
		c.running = false // the stub refused to resume
	}
	if r.faulted {
		r.done <- result{err: errFault}
		return
	}
	r.done <- result{payload: p, out: r.out, suspect: r.suspect}
}

// onStop handles a stop reply; c.mu is held.
func (c *Client) onStop(s StopReply) {
	c.running = false
	if len(c.pending) > 0 && c.pending[0].wantStop {
		r := c.pending[0]
		c.pending = c.pending[1:]
		if !r.abandoned {
			r.done <- result{payload: s.Raw}
			return
		}
		// Nobody waits for it: queue it so that WaitStop sees the target stop.
	}
	c.stops = append(c.stops, s)
	close(c.stopSig)
	c.stopSig = make(chan struct{})
	// The target was running although requests were outstanding: the first
	// byte of the oldest one stopped it and that packet may have been
	// discarded, so that every later reply would be matched to the request
	// before its own. A lone request finds out with a probe (see wait); a
	// pipeline does not trust the replies and starts again (readPipelined).
	for _, r := range c.pending {
		if r.abandoned || r.probe {
			continue
		}
		r.suspect = true
		select {
		case r.stopSeen <- struct{}{}:
		default:
		}
	}
}

// dispatchError delivers a reply that could not be decoded to the oldest request.
func (c *Client) dispatchError(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) == 0 || c.pending[0].probe {
		c.logf("rsp: discarding undecodable reply: %v", err)
		return
	}
	r := c.pending[0]
	c.pending = c.pending[1:]
	r.done <- result{err: err}
}

// isOutputPacket reports whether p is an `O` console output packet.
func isOutputPacket(p string) bool {
	return len(p) >= 3 && p[0] == 'O' && len(p)%2 == 1 && isHexString(p[1:])
}

// --- sending --------------------------------------------------------------

// acquire takes the call slot, honouring ctx.
func (c *Client) acquire(ctx context.Context) error {
	select {
	case c.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.dead:
		return c.deadErr()
	}
}

func (c *Client) release() { <-c.sem }

func (c *Client) deadErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// begin takes the call slot for packet pkt, checks that a packet may be
// sent, and resynchronises if an earlier call abandoned a request.
func (c *Client) begin(ctx context.Context, pkt string) error {
	if err := c.acquire(ctx); err != nil {
		return pktErr(pkt, err)
	}
	if err := c.checkState(pkt); err != nil {
		c.release()
		return err
	}
	if err := c.resync(ctx); err != nil {
		c.release()
		return pktErr(pkt, err)
	}
	return nil
}

func (c *Client) checkState(pkt string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.err != nil:
		return pktErr(pkt, c.err)
	case c.detached:
		return pktErr(pkt, ErrDetached)
	case c.running:
		return pktErr(pkt, ErrRunning)
	}
	return nil
}

// maxPayload is the longest payload sent: QEMU drops frames of PacketSize
// characters or more, and a frame adds 4 to the payload.
func (c *Client) maxPayload() int { return c.packetSize - 5 }

// send queues a frame and registers r (if any) as awaiting a reply, atomically
// so that the pending order is the wire order.
func (c *Client) send(r *request, frame []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	if r != nil {
		c.pending = append(c.pending, r)
		if r.resumes {
			c.resume()
		}
	}
	if !c.noAck.Load() {
		c.unacked = append(c.unacked, frame)
	}
	c.logf("-> %q", frame)
	c.enqueue(frame)
	return nil
}

// resume records that the target is about to run; c.mu is held. Queued stop
// replies are dropped: they describe a stop that this resumption ends.
func (c *Client) resume() {
	for _, s := range c.stops {
		c.logf("rsp: dropping stale stop reply %q on resume", s.Raw)
	}
	c.stops = nil
	c.running = true
}

func newRequest(pkt string) *request {
	return &request{pkt: pkt, done: make(chan result, 1), stopSeen: make(chan struct{}, 1)}
}

// start encodes and sends pkt as a request.
func (c *Client) start(r *request) error {
	frame := EncodePacket([]byte(r.pkt))
	if len(frame) > c.packetSize-1 {
		return pktErr(r.pkt, fmt.Errorf("%w: %d bytes, stub accepts %d", ErrPacketTooLong, len(frame), c.packetSize-1))
	}
	if err := c.send(r, frame); err != nil {
		return pktErr(r.pkt, err)
	}
	return nil
}

// abandon marks r as no longer awaited.
func (c *Client) abandon(r *request) {
	c.mu.Lock()
	r.abandoned = true
	c.mu.Unlock()
}

// roundTrip sends one request and waits for its reply. If a stop reply
// arrives meanwhile (the target was running: the packet may have been
// swallowed), it sends a probe; if the probe is answered first the request
// was lost and is sent again, once. The caller holds the call slot.
func (c *Client) roundTrip(ctx context.Context, r *request) (result, error) {
	for attempt := 0; ; attempt++ {
		res := c.wait(ctx, r)
		if errors.Is(res.err, ErrRequestLost) && attempt == 0 {
			c.logf("rsp: %q was lost (target was running); resending", shorten(r.pkt))
			r = r.clone()
			continue
		}
		if res.err != nil {
			return res, pktErr(r.pkt, res.err)
		}
		return res, nil
	}
}

// clone returns a fresh request for the same packet.
func (r *request) clone() *request {
	n := newRequest(r.pkt)
	n.wantStop, n.monitor, n.resumes = r.wantStop, r.monitor, r.resumes
	return n
}

// wait sends r and waits for its reply; a monitor request's output is
// then in r.out.
func (c *Client) wait(ctx context.Context, r *request) result {
	if err := c.start(r); err != nil {
		return result{err: err}
	}
	probed := false
	for {
		select {
		case res := <-r.done:
			return res
		case <-r.stopSeen:
			if !probed && !r.wantStop {
				probed = true
				if p := c.newProbe(); p != nil {
					p.abandoned = true // its reply only settles r
					if err := c.start(p); err != nil {
						return result{err: err}
					}
				}
			}
		case <-ctx.Done():
			c.abandon(r)
			return result{err: ctx.Err()}
		case <-c.dead:
			return result{err: c.deadErr()}
		}
	}
}

// newProbe returns a request whose reply is recognisable: a read of
// target.xml at offset 0 with a length no other request uses, answered with
// exactly 'm' and that prefix of the document. nil if no probe is possible.
func (c *Client) newProbe() *request {
	if len(c.targetXML) < 2 {
		return nil
	}
	n := 1 + int(c.probeSeq.Add(1)%uint64(len(c.targetXML)-1))
	r := newRequest(fmt.Sprintf("qXfer:features:read:target.xml:0,%x", n))
	r.probe = true
	r.expect = "m" + c.targetXML[:n]
	return r
}

// resync makes sure no abandoned request is still pending, so that the
// next reply belongs to the next request. The caller holds the call slot.
func (c *Client) resync(ctx context.Context) error {
	c.mu.Lock()
	need := len(c.pending) > 0
	c.mu.Unlock()
	if !need {
		return nil
	}
	p := c.newProbe()
	if p == nil {
		c.logf("rsp: cannot resynchronise (no target.xml to probe with); carrying on")
		return nil
	}
	c.logf("rsp: resynchronising after an abandoned request")
	// A stub that dropped requests may drop the probe too: send another
	// one whenever a probe stays unanswered for the pipeline timeout.
	timer := time.NewTimer(c.pipelineTimeout())
	defer timer.Stop()
	for {
		if err := c.start(p); err != nil {
			return err
		}
		select {
		case res := <-p.done:
			return res.err
		case <-timer.C:
			c.abandon(p)
			c.logf("rsp: probe %q unanswered; sending another", p.pkt)
			p = c.newProbe()
			timer.Reset(c.pipelineTimeout())
		case <-ctx.Done():
			c.abandon(p)
			return fmt.Errorf("resynchronising: %w", ctx.Err())
		case <-c.dead:
			return c.deadErr()
		}
	}
}

func (c *Client) pipelineTimeout() time.Duration {
	if c.opts.PipelineTimeout > 0 {
		return c.opts.PipelineTimeout
	}
	return defaultPipelineTimeout
}

// call is the common path for a packet with one reply: it interprets empty
// and Exx replies as errors.
func (c *Client) call(ctx context.Context, pkt string) (string, error) {
	if err := c.begin(ctx, pkt); err != nil {
		return "", err
	}
	defer c.release()
	return c.callHeld(ctx, pkt)
}

// callHeld is call for a caller that holds the call slot.
func (c *Client) callHeld(ctx context.Context, pkt string) (string, error) {
	res, err := c.roundTrip(ctx, newRequest(pkt))
	if err != nil {
		return "", err
	}
	if err := replyError(pkt, res.payload); err != nil {
		return "", err
	}
	return res.payload, nil
}

// expectOK runs pkt and requires the reply OK.
func (c *Client) expectOK(ctx context.Context, pkt string) error {
	reply, err := c.call(ctx, pkt)
	if err != nil {
		return err
	}
	if reply != "OK" {
		return pktErr(pkt, fmt.Errorf("%w: %q, want OK", ErrBadReply, shorten(reply)))
	}
	return nil
}

// --- stops ----------------------------------------------------------------

// WaitStop returns the next stop reply: a queued one first, else the next
// one to arrive. Stop replies are queued when no request is waiting for one:
// after Continue, and when the VM stops for another reason (QEMU sends T02
// when QMP or the monitor stops it).
func (c *Client) WaitStop(ctx context.Context) (StopReply, error) {
	for {
		c.mu.Lock()
		if len(c.stops) > 0 {
			s := c.stops[0]
			c.stops = c.stops[1:]
			c.mu.Unlock()
			return s, nil
		}
		if c.err != nil {
			err := c.err
			c.mu.Unlock()
			return StopReply{}, fmt.Errorf("waiting for a stop: %w", err)
		}
		sig := c.stopSig
		c.mu.Unlock()
		select {
		case <-sig:
		case <-ctx.Done():
			return StopReply{}, fmt.Errorf("waiting for a stop: %w", ctx.Err())
		case <-c.dead:
		}
	}
}

// Stops returns the number of queued stop replies.
func (c *Client) Stops() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.stops)
}

// DrainStops removes and returns the queued stop replies.
func (c *Client) DrainStops() []StopReply {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stops
	c.stops = nil
	return s
}

// Running reports whether the target was resumed (Continue, Step in
// progress, Detach) and no stop reply has arrived since. The client cannot
// see a VM resumed by other means (QMP cont); a packet sent then stops the
// VM and is lost, which the client detects and recovers from.
func (c *Client) Running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.running
}

// Output returns the channel of console output (`O` packets) that arrives
// outside a Monitor call. It is buffered; output is dropped when it is full.
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
