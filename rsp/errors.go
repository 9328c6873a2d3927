package rsp

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors returned by a Client wrap one of these (or a
// *RemoteError, or a context error) with %w and name the packet concerned.
var (
	// ErrUnsupported is the stub's empty reply: it does not know the packet.
	ErrUnsupported = errors.New("rsp: packet not supported by the stub (empty reply)")
	// ErrConnectionClosed means the connection to the stub is gone (read or
	// write failed, or Close was called). Every pending and later call
	// returns an error wrapping it.
	ErrConnectionClosed = errors.New("rsp: connection closed")
	// ErrRunning is returned by calls that would send a packet while the
	// target runs: such a packet would stop the VM and be lost. Only
	// Interrupt, WaitStop and the queue accessors are allowed then.
	ErrRunning = errors.New("rsp: target is running (only Interrupt and WaitStop are allowed)")
	// ErrMayBeRunning is returned by calls made while the VM may have been
	// resumed behind the client's back (NoteResumed) when the client cannot
	// stop it safely (the stub has no target.xml to probe with): Interrupt
	// and WaitStop first.
	ErrMayBeRunning = errors.New("rsp: target may have been resumed by another party and cannot be stopped safely")
	// ErrDetached is returned by calls made after Detach.
	ErrDetached = errors.New("rsp: detached from the target")
	// ErrChecksum is returned by DecodePacket when the checksum does not
	// match the payload.
	ErrChecksum = errors.New("rsp: bad packet checksum")
	// ErrMalformedPacket is returned by DecodePacket for a frame that is not
	// `$payload#xx` or whose escapes or run-length encoding are invalid.
	ErrMalformedPacket = errors.New("rsp: malformed packet")
	// ErrBadReply means the stub's reply did not have the expected form.
	ErrBadReply = errors.New("rsp: unexpected reply")
	// ErrRequestLost means the stub never processed a request: it arrived
	// while the target was running (the byte stopped the VM and the packet
	// was discarded). Calls retry such a request once before returning it.
	ErrRequestLost = errors.New("rsp: request lost (the target was running when it arrived)")
	// ErrPacketTooLong means a packet would exceed the stub's PacketSize
	// (QEMU silently drops packets of 4096 characters or more).
	ErrPacketTooLong = errors.New("rsp: packet longer than the stub accepts")
	// ErrNoRegister means the register name is not in the target description.
	ErrNoRegister = errors.New("rsp: no such register")
	// ErrNotStopReply is returned by ParseStopReply for a payload that is not
	// a stop reply.
	ErrNotStopReply = errors.New("rsp: not a stop reply")
)

// RemoteError is an error reply from the stub: `Exx` (Code = xx) or
// `E.text` (Code = -1, Message = text).
type RemoteError struct {
	Code    int    // the two hex digits of an `Exx` reply, or -1 for `E.text`
	Message string // the text of an `E.text` reply
	Packet  string // the request that was answered with the error
}

// Error implements error.
func (e *RemoteError) Error() string {
	if e.Code < 0 {
		return fmt.Sprintf("rsp: stub replied error %q to packet %q", e.Message, shorten(e.Packet))
	}
	return fmt.Sprintf("rsp: stub replied E%02x to packet %q", e.Code, shorten(e.Packet))
}

// shorten bounds a packet for error messages (M packets are 4 KiB long).
func shorten(pkt string) string {
	const max = 64
	if len(pkt) <= max {
		return pkt
	}
	return fmt.Sprintf("%s...(%d bytes)", pkt[:max], len(pkt))
}

// pktErr wraps err with the packet it concerns.
func pktErr(pkt string, err error) error {
	return fmt.Errorf("%w (packet %q)", err, shorten(pkt))
}

// replyError interprets an error-shaped reply: empty means unsupported,
// `Exx` and `E.text` are remote errors. It returns nil for any other reply.
func replyError(pkt, reply string) error {
	if reply == "" {
		return pktErr(pkt, ErrUnsupported)
	}
	if reply[0] != 'E' {
		return nil
	}
	if len(reply) == 3 && isHex(reply[1]) && isHex(reply[2]) {
		return &RemoteError{Code: int(unhex(reply[1])<<4 | unhex(reply[2])), Packet: pkt}
	}
	if len(reply) >= 2 && reply[1] == '.' {
		return &RemoteError{Code: -1, Message: reply[2:], Packet: pkt}
	}
	return nil
}
