package rsp

import (
	"context"
	"fmt"
	"strings"
)

// Where the target is: stopped, running because the client resumed it, or
// perhaps running because another party (QMP, the monitor) resumed it.
//
// What QEMU's gdbstub sends depends on its version (gdbstub/gdbstub.c
// gdb_read_byte, gdbstub/system.c gdb_vm_state_change):
//
//   - Up to 8.0 (7.2 here) every VM stop sends a stop reply: a breakpoint
//     hit, a QMP or monitor stop (T02), and the stop caused by any byte
//     that arrives while the VM runs (the packet itself is discarded).
//   - From 8.1 ("gdbstub: only send stop-reply packets when allowed to"),
//     gdb_vm_state_change sends a stop reply only while
//     gdbserver_state.allow_stop_reply is set, which the packets c, C, s,
//     S, vCont, vAttach, ? and the 0x03 interrupt set and each stop reply
//     clears: once per resume by the debugger. A VM resumed by QMP "cont"
//     stops without a word, at a breakpoint too. A byte other than 0x03
//     that reaches a running VM stops it (vm_stop) with no stop reply
//     (trace_gdbstub_err_unexpected_runpkt) and the packet is lost: a
//     client that sends `p` then waits forever.
//   - On both, 0x03 reaching a stopped VM is discarded as garbage
//     (trace_gdbstub_err_garbage), with no reply.
//
// So the client never relies on a stop reply it did not ask for. When the
// VM may have been resumed behind its back (NoteResumed; Monitor("cont")),
// the next request first settles: it sends 0x03 and then a probe whose
// reply it recognises. Bytes are handled in order, so when the probe is
// answered the VM is stopped (by the interrupt, or it already was) and the
// interrupt's stop reply, if there was one, has arrived before it. That
// stop reply (signal 2) is dropped; any other (a 7.2 breakpoint hit that
// happened meanwhile) stays queued for WaitStop.

// NoteResumed tells the client that the VM may have been resumed by
// another party: a QMP "cont", a RESUME event. The harness calls it for
// every RESUME event it sees (a RESUME of the client's own continue is
// harmless: settling a stopped VM costs one round trip). Until the client
// has settled the VM, no packet but 0x03 is sent.
func (c *Client) NoteResumed() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.detached {
		c.mayRun = true
	}
}

// MayBeRunning reports whether the VM may have been resumed by another
// party since the client last settled it (see NoteResumed). Running reports
// a resumption by the client itself.
func (c *Client) MayBeRunning() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mayRun
}

// resumingMonitorCommand reports whether an HMP command run with qRcmd may
// resume the VM behind the stub's back: cont, c, and loadvm (which resumes
// a VM that ran before it).
func resumingMonitorCommand(cmd string) bool {
	f := strings.Fields(cmd)
	return len(f) > 0 && (f[0] == "cont" || f[0] == "c" || f[0] == "loadvm")
}

// settle stops a VM that may have been resumed by another party, as
// described above. The caller holds the call slot. Without target.xml
// there is nothing to probe with, and a request would be lost on a running
// QEMU >= 8.1, so it fails with ErrMayBeRunning.
func (c *Client) settle(ctx context.Context) error {
	c.mu.Lock()
	if !c.mayRun || c.running || c.detached || c.err != nil {
		c.mu.Unlock()
		return nil
	}
	p := c.newProbe()
	if p == nil {
		c.mu.Unlock()
		return ErrMayBeRunning
	}
	c.mayRun = false // a NoteResumed from now on calls for another settle
	mark := len(c.stops)
	c.logf("rsp: the VM may have been resumed behind the client's back: interrupting it first")
	c.logf("-> %q", "\x03")
	c.enqueue([]byte{0x03})
	c.mu.Unlock()
	if err := c.probe(ctx, p); err != nil {
		c.mu.Lock()
		c.mayRun = true
		c.mu.Unlock()
		return fmt.Errorf("stopping a VM resumed behind the client's back: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	mark = min(mark, len(c.stops)) // DrainStops may have run meanwhile
	kept := c.stops[:mark]
	for _, s := range c.stops[mark:] {
		if (s.Kind == 'T' || s.Kind == 'S') && s.Signal == 2 {
			c.logf("rsp: consumed the interrupt's stop reply %q", s.Raw)
			continue
		}
		kept = append(kept, s)
	}
	c.stops = kept
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

// Running reports whether the target was resumed by the client (Continue,
// Step in progress, Detach) and no stop reply has arrived since. A VM
// resumed by other means (QMP cont) is invisible to the stub's protocol:
// the harness reports it with NoteResumed (see MayBeRunning), and the next
// request stops the VM first. Unreported, a packet sent then stops the VM
// and is lost: QEMU 7.2 says so with a stop reply, which the client
// detects and recovers from; QEMU >= 8.1 says nothing.
func (c *Client) Running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.running
}

// Output returns the channel of console output (`O` packets) that arrives
// outside a Monitor call. It is buffered; output is dropped when it is full.
