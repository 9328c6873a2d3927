package rsp

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// errStall: the oldest pipelined request got no reply in time.
// errRecheck: a pipelined request got an error reply, to be confirmed alone.
var (
	errStall   = errors.New("rsp: pipelined request unanswered")
	errRecheck = errors.New("rsp: pipelined request failed")
)

// span is one `m` request of a read.
type span struct {
	addr uint64
	off  int // offset in the result
	n    int
}

func (s span) packet() string { return fmt.Sprintf("m%x,%x", s.addr, s.n) }

// readPlan splits a read into requests of at most chunk bytes. When
// pipelining (window > 1), the lengths of any window consecutive requests
// are all different (chunk, chunk-1, ..., chunk-window+1, repeating, and a
// tail chosen not to collide), so a reply matched to the wrong request has
// the wrong length: a stub that drops or reorders pipelined packets is
// detected rather than trusted. Requires chunk >= 2*window.
func readPlan(addr uint64, n, chunk, window int) []span {
	var spans []span
	off := 0
	for i := 0; off < n; i++ {
		want := chunk
		if window > 1 {
			want = chunk - i%window
		}
		l := min(want, n-off)
		if window > 1 && l < want && collides(spans, l, window) {
			a := chunk - window
			spans = append(spans, span{addr + uint64(off), off, a})
			off += a
			l = n - off
		}
		spans = append(spans, span{addr + uint64(off), off, l})
		off += l
	}
	return spans
}

// collides reports whether l equals the length of one of the last window-1 spans.
func collides(spans []span, l, window int) bool {
	for j := len(spans) - 1; j >= 0 && j >= len(spans)-(window-1); j-- {
		if spans[j].n == l {
			return true
		}
	}
	return false
}

// readChunk is the largest `m` request: half the packet size, since the
// reply is hex. QEMU's handle_read_mem answers E22 to a length above
// MAX_PACKET_LENGTH / 2, the PacketSize it offers: 0x800 bytes on QEMU 7.2
// (PacketSize=1000), 0x10010 from QEMU 10.2 (PacketSize=20020).
func (c *Client) readChunk() int { return max(1, min(c.packetSize, maxFrame)/2) }

// defaultWindowFor is the default number of outstanding `m` requests of
// chunk bytes: about pipelineBytes of data in flight, between 2 and
// defaultWindow. Larger requests need fewer in flight to hide the round
// trip, and a window of 0x10010-byte reads would otherwise queue 2 MiB of
// hex replies behind QEMU's blocking writes.
func defaultWindowFor(chunk int) int {
	return max(2, min(defaultWindow, pipelineBytes/max(chunk, 1)))
}

// ReadMemory reads n bytes at addr with `m` requests of at most half the
// packet size (0x800 bytes on QEMU 7.2), keeping up to Options.MaxInFlight
// of them outstanding. If the stub
// misbehaves with pipelined requests (NAKs them, drops them, or answers one
// with the wrong length) the client resynchronises, rereads what was not
// confirmed, and uses one request at a time from then on. On error it returns
// the bytes read before the failing request.
func (c *Client) ReadMemory(ctx context.Context, addr uint64, n int) ([]byte, error) {
	pkt := fmt.Sprintf("m%x,%x", addr, n)
	if n < 0 {
		return nil, fmt.Errorf("rsp: read memory: negative length %d", n)
	}
	if n == 0 {
		return []byte{}, nil
	}
	if err := c.begin(ctx, pkt); err != nil {
		return nil, err
	}
	defer c.release()
	return c.readMemoryHeld(ctx, addr, n)
}

// QEMU's physical-memory mode (Qqemu.PhyMemMode, QEMU >= 4.1): while it is 1,
// m and M packets address guest-physical memory.
const (
	phyMemModeOn  = "Qqemu.PhyMemMode:1"
	phyMemModeOff = "Qqemu.PhyMemMode:0"
)

// ReadPhysicalMemory reads n bytes of guest-physical memory at addr, with
// QEMU's physical-memory mode switched on for the reads and off again
// before it returns (also on error): a kernel-virtual read fails while the
// stopped vCPU's translation regime cannot see the kernel (an arm64 CPU in
// EL0 with E0PD), and a caller that walked the page tables itself reads the
// physical address instead. A stub without the mode is ErrUnsupported.
func (c *Client) ReadPhysicalMemory(ctx context.Context, addr uint64, n int) ([]byte, error) {
	if n < 0 {
		return nil, fmt.Errorf("rsp: read physical memory: negative length %d", n)
	}
	if n == 0 {
		return []byte{}, nil
	}
	if err := c.begin(ctx, phyMemModeOn); err != nil {
		return nil, err
	}
	defer c.release()
	if reply, err := c.callHeld(ctx, phyMemModeOn); err != nil {
		return nil, err
	} else if reply != "OK" {
		return nil, pktErr(phyMemModeOn, fmt.Errorf("%w: %q, want OK", ErrBadReply, shorten(reply)))
	}
	buf, err := c.readMemoryHeld(ctx, addr, n)
	// The mode is global in QEMU (it outlives this connection): switch it
	// off even when the read failed or ctx is done.
	offCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, offErr := c.callHeld(offCtx, phyMemModeOff); offErr != nil && err == nil {
		err = offErr
	}
	return buf, err
}

// readMemoryHeld is ReadMemory for a caller that holds the call slot.
func (c *Client) readMemoryHeld(ctx context.Context, addr uint64, n int) ([]byte, error) {
	buf := make([]byte, n)
	chunk := c.readChunk()
	window := c.pipelineWindow(chunk)
	spans := readPlan(addr, n, chunk, window)
	done, retries := 0, 0
	for done < len(spans) {
		if window > 1 && !c.pipelineOff.Load() && len(spans)-done > 1 && retries < 3 {
			k, err := c.readPipelined(ctx, spans[done:], buf, window)
			done += k
			if err == nil {
				break
			}
			switch {
			case errors.Is(err, errFault), errors.Is(err, errStall):
				c.logf("rsp: stub mishandles pipelined reads (%v); reading one request at a time from now on", err)
				c.pipelineOff.Store(true)
			case errors.Is(err, errSuspect), errors.Is(err, ErrRequestLost):
				c.logf("rsp: target stopped during a pipelined read; rereading from %#x", spans[done].addr)
			case errors.Is(err, errRecheck):
			default:
				return buf[:spans[done].off], err
			}
			retries++
			if err := c.resync(ctx); err != nil {
				return buf[:spans[done].off], pktErr(spans[done].packet(), err)
			}
		}
		if err := c.readOne(ctx, spans[done], buf); err != nil {
			return buf[:spans[done].off], err
		}
		done++
	}
	return buf, nil
}

// pipelineWindow is the number of outstanding reads, 1 if not pipelining.
func (c *Client) pipelineWindow(chunk int) int {
	w := int(c.window.Load())
	if c.pipelineOff.Load() {
		return 1
	}
	return max(1, min(w, chunk/2))
}

// readOne reads one span with a single request.
func (c *Client) readOne(ctx context.Context, s span, buf []byte) error {
	pkt := s.packet()
	reply, err := c.callHeld(ctx, pkt)
	if err != nil {
		return err
	}
	if len(reply) != 2*s.n {
		return pktErr(pkt, fmt.Errorf("%w: %d hex digits, want %d", ErrBadReply, len(reply), 2*s.n))
	}
	if _, err := hex.Decode(buf[s.off:s.off+s.n], []byte(reply)); err != nil {
		return pktErr(pkt, fmt.Errorf("%w: %v", ErrBadReply, err))
	}
	return nil
}

// readPipelined reads spans with up to window requests outstanding and
// returns how many leading spans it completed. It returns errFault, errStall,
// errSuspect, ErrRequestLost or errRecheck when the client should
// resynchronise and continue differently; every request not completed is
// abandoned by then.
func (c *Client) readPipelined(ctx context.Context, spans []span, buf []byte, window int) (int, error) {
	reqs := make([]*request, len(spans))
	next, done := 0, 0
	abandonFrom := func(i int) {
		for ; i < next; i++ {
			c.abandon(reqs[i])
		}
	}
	timeout := c.pipelineTimeout()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for done < len(spans) {
		for next < len(spans) && next-done < window {
			r := newRequest(spans[next].packet())
			if err := c.start(r); err != nil {
				abandonFrom(done)
				return done, err
			}
			reqs[next] = r
			next++
		}
		r, s := reqs[done], spans[done]
		select {
		case res := <-r.done:
			if res.err != nil {
				abandonFrom(done + 1)
				switch {
				case errors.Is(res.err, errFault), errors.Is(res.err, errSuspect), errors.Is(res.err, ErrRequestLost):
					return done, res.err
				}
				return done, pktErr(r.pkt, res.err)
			}
			if res.suspect {
				abandonFrom(done + 1)
				return done, errSuspect
			}
			if replyError(r.pkt, res.payload) != nil {
				abandonFrom(done + 1)
				return done, errRecheck
			}
			if len(res.payload) != 2*s.n {
				abandonFrom(done + 1)
				return done, fmt.Errorf("%w: reply of %d hex digits to %q", errFault, len(res.payload), r.pkt)
			}
			if _, err := hex.Decode(buf[s.off:s.off+s.n], []byte(res.payload)); err != nil {
				abandonFrom(done + 1)
				return done, fmt.Errorf("%w: %v", errFault, err)
			}
			done++
			timer.Reset(timeout)
		case <-r.stopSeen:
			abandonFrom(done)
			return done, errSuspect
		case <-timer.C:
			abandonFrom(done)
			return done, fmt.Errorf("%w for %v", errStall, timeout)
		case <-ctx.Done():
			abandonFrom(done)
			return done, pktErr(r.pkt, ctx.Err())
		case <-c.dead:
			return done, pktErr(r.pkt, c.deadErr())
		}
	}
	return done, nil
}

// WriteMemory writes data at addr with `M` requests, each kept below the
// stub's PacketSize (QEMU drops a packet of 4096 characters or more without
// a word).
func (c *Client) WriteMemory(ctx context.Context, addr uint64, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	pkt := fmt.Sprintf("M%x,%x:...", addr, len(data))
	if err := c.begin(ctx, pkt); err != nil {
		return err
	}
	defer c.release()
	for off := 0; off < len(data); {
		a := addr + uint64(off)
		// header "M<addr>,<len>:", the length's digits bounded by those of
		// the longest possible length (5 with QEMU 10.2's 0x20020 packets)
		hdr := len(fmt.Sprintf("M%x,%x:", a, c.maxPayload()/2))
		n := min(len(data)-off, (c.maxPayload()-hdr)/2)
		if n <= 0 {
			return pktErr(pkt, fmt.Errorf("%w: packet size %d leaves no room for data", ErrPacketTooLong, c.packetSize))
		}
		p := fmt.Sprintf("M%x,%x:%s", a, n, hex.EncodeToString(data[off:off+n]))
		reply, err := c.callHeld(ctx, p)
		if err != nil {
			return err
		}
		if reply != "OK" {
			return pktErr(p, fmt.Errorf("%w: %q, want OK", ErrBadReply, shorten(reply)))
		}
		off += n
	}
	return nil
}
