package rsp

import (
	"context"
	"fmt"
)

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
