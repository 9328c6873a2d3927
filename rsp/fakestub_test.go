package rsp

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeXML is a small target description with an xi:include in the middle
// of the document and a regnum jump, like QEMU's (which includes i386-64bit.xml).
var fakeXML = map[string]string{
	"target.xml": `<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd">` +
		`<target><architecture>fake:64</architecture>` +
		`<feature name="org.fake.core"><reg name="r0" bitsize="64" type="int64"/></feature>` +
		`<xi:include href="more.xml"/>` +
		`<feature name="org.fake.tail"><reg name="flags" bitsize="32" regnum="10"/></feature></target>`,
	"more.xml": `<?xml version="1.0"?><!DOCTYPE feature SYSTEM "gdb-target.dtd">` +
		`<feature name="org.fake.more"><reg name="pc" bitsize="64" type="code_ptr"/>` +
		`<reg name="v0" bitsize="128" type="vec128" group="vector"/></feature>`,
}

// stubPacket is a packet the fake stub received.
type stubPacket struct {
	payload     string
	outstanding int // packets received and not yet answered when it arrived
}

// fakeStub is a scriptable gdbstub that behaves like QEMU 7.2 where it
// matters (acks, one thread per qsThreadInfo reply, p empty before
// target.xml is read, m capped at 0x800, a packet stops a running target
// and is lost) and can be told to misbehave.
type fakeStub struct {
	t    testing.TB
	conn net.Conn
	in   chan stubPacket
	wmu  sync.Mutex

	mu   sync.Mutex
	cond *sync.Cond

	// configuration
	features    string
	files       map[string]string
	mem         []byte
	regs        map[int][]byte
	threads     []int
	initialStop string
	maxRead     int    // the longest m answered (QEMU: PacketSize/2); default 0x800
	silentStops bool   // QEMU >= 8.1: a packet that reaches a running target stops it without a stop reply
	phys        []byte // guest-physical memory for Qqemu.PhyMemMode (nil: no such mode)

	// misbehaviour
	corruptReplies int                      // corrupt the checksum of the next N replies
	nackRequests   int                      // NAK and discard the next N requests
	nackNthM       int                      // NAK and discard the m request with this 1-based index
	silent         func(pkt string) bool    // never answer such packets
	delay          map[string]chan struct{} // answer a packet only once its channel is closed
	stopBefore     map[string]string        // send this stop reply before answering
	gate, gateAll  int                      // answer the i-th m only once min(i+gate, gateAll) have arrived
	dropWhileBusy  bool                     // drop packets that arrive while another is unanswered
	holdFirstM     bool                     // hold the first m reply until a second m arrives
	deferredNack   bool

	// state
	running   bool
	xmlRead   bool
	threadIdx int
	lastReply []byte
	closed    bool
	bps       map[string]bool
	sstep     int
	phyMode   bool

	// statistics
	received    []string
	recv        int // packets received
	replied     int // packets answered (or dropped)
	recvM       int
	repliedM    int
	maxOutM     int // the most m packets outstanding at once
	nacksGot    int
	interrupts  int
	maxFrameLen int
	held        bool
}

func newFakeStub(t testing.TB) *fakeStub {
	s := &fakeStub{
		t:        t,
		in:       make(chan stubPacket, 1024),
		features: "PacketSize=1000;qXfer:features:read+;vContSupported+;multiprocess+",
		files:    fakeXML,
		mem:      make([]byte, 1<<20),
		regs:     map[int][]byte{},
		threads:  []int{1, 2},
		bps:      map[string]bool{},
		sstep:    7,
		maxRead:  0x800,
	}
	s.cond = sync.NewCond(&s.mu)
	for i := range s.mem {
		s.mem[i] = byte(i*7 + i>>8)
	}
	s.regs[0], _ = hex.DecodeString("1122334455667788")
	s.regs[1], _ = hex.DecodeString("f0ff000000000000")
	s.regs[2] = make([]byte, 16)
	for i := range s.regs[2] {
		s.regs[2][i] = byte(i)
	}
	s.regs[10], _ = hex.DecodeString("02000000")
	return s
}

// start serves conn until it is closed.
func (s *fakeStub) start(conn net.Conn) {
	s.conn = conn
	go s.readLoop()
	go s.process()
}

func (s *fakeStub) write(b []byte) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.conn.Write(b) //nolint:errcheck // a closed pipe ends the test anyway
}

func (s *fakeStub) close() {
	s.mu.Lock()
	s.closed = true
	s.cond.Broadcast()
	s.mu.Unlock()
	s.conn.Close()
}

func (s *fakeStub) readLoop() {
	defer close(s.in)
	defer func() {
		s.mu.Lock()
		s.closed = true
		s.cond.Broadcast()
		s.mu.Unlock()
	}()
	br := bufio.NewReader(s.conn)
	for {
		b, err := br.ReadByte()
		if err != nil {
			return
		}
		switch b {
		case '+':
			continue
		case '-':
			s.mu.Lock()
			s.nacksGot++
			last := s.lastReply
			s.mu.Unlock()
			if last != nil {
				s.writeReply(last)
			}
			continue
		case 0x03:
			s.mu.Lock()
			s.interrupts++
			wasRunning := s.running
			s.running = false
			s.mu.Unlock()
			if wasRunning {
				s.write(EncodePacket([]byte("T02thread:01;")))
			}
			continue
		case '$':
		default:
			continue
		}
		frame, err := readFrame(br, nil, b)
		if err != nil {
			return
		}
		s.mu.Lock()
		s.maxFrameLen = max(s.maxFrameLen, len(frame))
		if s.running {
			// QEMU: the first byte stops the VM, the rest is garbage;
			// 7.2 says so with T02, 8.1 and later say nothing.
			s.running = false
			silent := s.silentStops
			s.mu.Unlock()
			if !silent {
				s.write(EncodePacket([]byte("T02thread:01;")))
			}
			continue
		}
		s.mu.Unlock()
		payload, err := DecodePacket(frame)
		if err != nil {
			s.write([]byte("-"))
			continue
		}
		p := string(payload)
		s.mu.Lock()
		s.received = append(s.received, p)
		nack := s.nackRequests > 0
		if nack {
			s.nackRequests--
		}
		if p[0] == 'm' {
			s.recvM++
			if s.recvM == s.nackNthM {
				nack = true
			}
		}
		if nack && p[0] == 'm' && s.nackNthM > 0 && s.recvM == s.nackNthM {
			// NAK it only once the next packet is in, so that the client
			// has several packets unacknowledged.
			s.deferredNack = true
			s.mu.Unlock()
			continue
		}
		if nack {
			s.mu.Unlock()
			s.write([]byte("-"))
			continue
		}
		if s.deferredNack {
			s.deferredNack = false
			s.mu.Unlock()
			s.write([]byte("-"))
			s.mu.Lock()
		}
		if p == "c" || p == "vCont;c" {
			s.running = true // in wire order, as QEMU does
		}
		sp := stubPacket{payload: p, outstanding: s.recv - s.replied}
		s.recv++
		if p[0] == 'm' {
			s.maxOutM = max(s.maxOutM, s.recvM-s.repliedM)
		}
		s.cond.Broadcast()
		s.mu.Unlock()
		s.write([]byte("+"))
		s.in <- sp
	}
}

func (s *fakeStub) process() {
	if s.initialStop != "" {
		s.write(EncodePacket([]byte(s.initialStop)))
	}
	mIndex := 0
	for sp := range s.in {
		p := sp.payload
		s.mu.Lock()
		drop := s.dropWhileBusy && sp.outstanding > 0
		silent := s.silent != nil && s.silent(p)
		delay := s.delay[p]
		stop := s.stopBefore[p]
		if stop != "" {
			delete(s.stopBefore, p)
		}
		s.mu.Unlock()
		if p[0] == 'm' {
			idx := mIndex
			mIndex++
			s.mu.Lock()
			if s.gate > 0 {
				need := min(idx+s.gate, s.gateAll)
				for s.recvM < need && !s.closed {
					s.cond.Wait()
				}
			}
			if s.holdFirstM && !s.held && !drop {
				s.held = true
				for s.recvM < 2 && !s.closed {
					s.cond.Wait()
				}
			}
			s.mu.Unlock()
		}
		if delay != nil {
			<-delay
		}
		if stop != "" {
			s.write(EncodePacket([]byte(stop)))
		}
		var reply string
		var answer bool
		if !drop && !silent {
			reply, answer = s.handle(p)
		}
		s.mu.Lock()
		s.replied++
		if p[0] == 'm' {
			s.repliedM++
		}
		s.mu.Unlock()
		if answer {
			s.reply(reply)
		}
	}
}

func (s *fakeStub) reply(payload string) {
	frame := EncodePacket([]byte(payload))
	s.mu.Lock()
	s.lastReply = frame
	s.mu.Unlock()
	s.writeReply(frame)
}

// writeReply writes a reply frame, corrupting its checksum if told to.
func (s *fakeStub) writeReply(frame []byte) {
	s.mu.Lock()
	corrupt := s.corruptReplies > 0
	if corrupt {
		s.corruptReplies--
	}
	s.mu.Unlock()
	if corrupt {
		bad := append([]byte(nil), frame...)
		bad[len(bad)-1] ^= 1
		if !isHex(bad[len(bad)-1]) {
			bad[len(bad)-1] = '0'
		}
		frame = bad
	}
	s.write(frame)
}

// sendStop sends an asynchronous stop reply, as QEMU does when the VM stops.
func (s *fakeStub) sendStop(payload string) {
	s.mu.Lock()
	s.running = false
	s.mu.Unlock()
	s.write(EncodePacket([]byte(payload)))
}

func (s *fakeStub) setRunning(v bool) {
	s.mu.Lock()
	s.running = v
	s.mu.Unlock()
}

// handle answers one packet; answer is false for packets with no reply.
func (s *fakeStub) handle(p string) (reply string, answer bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case strings.HasPrefix(p, "qSupported"):
		return s.features, true
	case p == "vCont?":
		return "vCont;c;C;s;S", true
	case strings.HasPrefix(p, "qXfer:features:read:"):
		rest := strings.TrimPrefix(p, "qXfer:features:read:")
		annex, rng, _ := strings.Cut(rest, ":")
		offS, lenS, _ := strings.Cut(rng, ",")
		doc, ok := s.files[annex]
		off, _ := strconv.ParseUint(offS, 16, 32)
		n, _ := strconv.ParseUint(lenS, 16, 32)
		if !ok || int(off) > len(doc) {
			return "E00", true
		}
		if annex == "target.xml" {
			s.xmlRead = true
		}
		if int(off+n) < len(doc) {
			return "m" + doc[off:off+n], true
		}
		return "l" + doc[off:], true
	case p == "g":
		var b strings.Builder
		for _, n := range []int{0, 1, 2} {
			b.WriteString(hex.EncodeToString(s.regs[n]))
		}
		return b.String(), true
	case p[0] == 'p':
		if !s.xmlRead {
			return "", true
		}
		n, _ := strconv.ParseUint(p[1:], 16, 32)
		v, ok := s.regs[int(n)]
		if !ok {
			return "E14", true
		}
		return hex.EncodeToString(v), true
	case p[0] == 'P':
		nS, vS, _ := strings.Cut(p[1:], "=")
		n, _ := strconv.ParseUint(nS, 16, 32)
		v, err := hex.DecodeString(vS)
		if err != nil {
			return "E22", true
		}
		s.regs[int(n)] = v
		return "OK", true
	case p[0] == 'm':
		aS, nS, _ := strings.Cut(p[1:], ",")
		a, _ := strconv.ParseUint(aS, 16, 64)
		n, _ := strconv.ParseUint(nS, 16, 64)
		if n > uint64(s.maxRead) {
			return "E22", true
		}
		mem := s.mem
		if s.phyMode {
			mem = s.phys
		}
		if a+n > uint64(len(mem)) {
			return "E14", true
		}
		return hex.EncodeToString(mem[a : a+n]), true
	case strings.HasPrefix(p, "Qqemu.PhyMemMode:") && s.phys != nil:
		s.phyMode = p == "Qqemu.PhyMemMode:1"
		return "OK", true
	case p[0] == 'M':
		hdr, data, _ := strings.Cut(p[1:], ":")
		aS, nS, _ := strings.Cut(hdr, ",")
		a, _ := strconv.ParseUint(aS, 16, 64)
		n, _ := strconv.ParseUint(nS, 16, 64)
		b, err := hex.DecodeString(data)
		if err != nil || uint64(len(b)) != n || a+n > uint64(len(s.mem)) {
			return "E22", true
		}
		copy(s.mem[a:], b)
		return "OK", true
	case p[0] == 'Z' || p[0] == 'z':
		if p[1] > '4' {
			return "", true
		}
		s.bps[p[1:]] = p[0] == 'Z'
		return "OK", true
	case p == "c" || p == "vCont;c":
		return "", false
	case strings.HasPrefix(p, "vCont;s"):
		t := "01"
		if _, th, ok := strings.Cut(p, ":"); ok {
			t = th
		}
		return "T05thread:" + t + ";", true
	case p == "qfThreadInfo":
		s.threadIdx = 0
		fallthrough
	case p == "qsThreadInfo":
		if s.threadIdx >= len(s.threads) {
			return "l", true
		}
		s.threadIdx++
		return fmt.Sprintf("m%02x", s.threads[s.threadIdx-1]), true
	case strings.HasPrefix(p, "Hg") || strings.HasPrefix(p, "Hc"):
		return "OK", true
	case p == "qC":
		return "QC01", true
	case strings.HasPrefix(p, "qRcmd,"):
		cmd, _ := hex.DecodeString(p[len("qRcmd,"):])
		out := "you said: " + string(cmd) + "\n"
		half := len(out) / 2
		s.mu.Unlock()
		s.write(EncodePacket([]byte("O" + hex.EncodeToString([]byte(out[:half])))))
		s.write(EncodePacket([]byte("O" + hex.EncodeToString([]byte(out[half:])))))
		s.mu.Lock()
		return "OK", true
	case p == "qqemu.sstep":
		return fmt.Sprintf("0x%x", s.sstep), true
	case strings.HasPrefix(p, "Qqemu.sstep="):
		v, err := strconv.ParseUint(p[len("Qqemu.sstep="):], 16, 32)
		if err != nil || v&^7 != 0 {
			return "E22", true
		}
		s.sstep = int(v)
		return "OK", true
	case p == "D":
		s.running = true
		return "OK", true
	}
	return "", true
}

// stats returns a copy of a statistic under the lock.
func (s *fakeStub) stat(f func(*fakeStub) int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return f(s)
}

func (s *fakeStub) receivedPackets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.received...)
}

// connectFake connects a Client to stub over net.Pipe.
func connectFake(t *testing.T, stub *fakeStub, opts Options) *Client {
	t.Helper()
	a, b := net.Pipe()
	stub.start(b)
	if opts.Logf == nil && testing.Verbose() {
		opts.Logf = t.Logf
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	c, err := Connect(ctx, a, opts)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() {
		c.Close()
		stub.close()
	})
	return c
}

// tctx is a context for one test step.
func tctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}
