package rsp

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The request life cycle: taking the call slot, sending, waiting for the
// reply, and resynchronising with probes when a reply may be lost.

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
	if err := c.settle(ctx); err != nil {
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
	return c.probe(ctx, p)
}

// probe sends p and waits for its reply, which settles every request before
// it. A stub that dropped requests may drop the probe too (and QEMU >= 8.1
// swallows a packet that reaches a running VM): another probe is sent
// whenever one stays unanswered for the pipeline timeout. The caller holds
// the call slot.
func (c *Client) probe(ctx context.Context, p *request) error {
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
