package rsp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
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
	if c.opts.MaxInFlight == 0 {
		c.window.Store(int32(defaultWindowFor(c.readChunk())))
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
