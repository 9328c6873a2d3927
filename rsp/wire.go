package rsp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
)

// The reader and writer goroutines: frames in, acknowledgements, and the
// routing of each reply to the request awaiting it.

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
