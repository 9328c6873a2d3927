package rsp

import (
	"fmt"
	"strconv"
	"strings"
)

// BreakKind is the type of a breakpoint or watchpoint, the digit after `Z`.
type BreakKind int

// The breakpoint and watchpoint kinds of the Z/z packets.
const (
	Software    BreakKind = 0 // Z0: software breakpoint
	Hardware    BreakKind = 1 // Z1: hardware breakpoint
	WriteWatch  BreakKind = 2 // Z2: write watchpoint
	ReadWatch   BreakKind = 3 // Z3: read watchpoint
	AccessWatch BreakKind = 4 // Z4: access (read or write) watchpoint
)

// String returns the kind's name.
func (k BreakKind) String() string {
	switch k {
	case Software:
		return "software"
	case Hardware:
		return "hardware"
	case WriteWatch:
		return "write-watch"
	case ReadWatch:
		return "read-watch"
	case AccessWatch:
		return "access-watch"
	}
	return "BreakKind(" + strconv.Itoa(int(k)) + ")"
}

// WatchHit is the watchpoint that caused a stop.
type WatchHit struct {
	Kind BreakKind // WriteWatch, ReadWatch or AccessWatch
	Addr uint64    // the data address that was accessed
}

// StopReply is a parsed stop reply (`T`, `S`, `W` or `X` packet).
type StopReply struct {
	Kind       byte           // 'T', 'S', 'W' (exited) or 'X' (terminated by a signal)
	Signal     int            // the signal for T, S and X (2 = SIGINT, 5 = SIGTRAP)
	Thread     int            // the thread:  field of a T reply (QEMU: vCPU index + 1), 0 if absent
	Core       int            // the core: field of a T reply, -1 if absent
	ExitStatus int            // the exit status of a W reply
	Watch      *WatchHit      // set for watch:, rwatch: and awatch: fields
	SWBreak    bool           // the swbreak: field was present
	HWBreak    bool           // the hwbreak: field was present
	Registers  map[int][]byte // register number -> raw (target byte order) value, for `nn:value` fields
	Raw        string         // the payload as received
}

// String returns a short human-readable description.
func (s StopReply) String() string {
	switch s.Kind {
	case 'W':
		return fmt.Sprintf("exited with status %d", s.ExitStatus)
	case 'X':
		return fmt.Sprintf("terminated by signal %d", s.Signal)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "stopped with signal %d", s.Signal)
	if s.Thread != 0 {
		fmt.Fprintf(&b, " in thread %d", s.Thread)
	}
	switch {
	case s.Watch != nil:
		fmt.Fprintf(&b, " (%s at %#x)", s.Watch.Kind, s.Watch.Addr)
	case s.SWBreak:
		b.WriteString(" (software breakpoint)")
	case s.HWBreak:
		b.WriteString(" (hardware breakpoint)")
	}
	return b.String()
}

// looksLikeStopReply is the reader's cheap test: a letter of TSWX followed by
// two hex digits. No reply QEMU gives to another packet has that shape
// (memory and registers are hex, qXfer answers start with l or m).
func looksLikeStopReply(p string) bool {
	return len(p) >= 3 && strings.IndexByte("TSWX", p[0]) >= 0 && isHex(p[1]) && isHex(p[2])
}

// ParseStopReply parses a stop reply payload such as `T05thread:01;`,
// `T05thread:02;watch:ffffffff81000000;`, `S05`, `W00` or `X09`. Unknown
// `key:value` fields of a T reply are ignored, as the protocol requires.
// It never panics.
func ParseStopReply(payload string) (StopReply, error) {
	s := StopReply{Raw: payload, Core: -1}
	if !looksLikeStopReply(payload) {
		return s, fmt.Errorf("%w: %q", ErrNotStopReply, shorten(payload))
	}
	s.Kind = payload[0]
	code := int(unhex(payload[1])<<4 | unhex(payload[2]))
	rest := payload[3:]
	switch s.Kind {
	case 'S':
		s.Signal = code
		if rest != "" {
			return s, fmt.Errorf("%w: trailing data in %q", ErrNotStopReply, shorten(payload))
		}
		return s, nil
	case 'W', 'X':
		if s.Kind == 'W' {
			s.ExitStatus = code
		} else {
			s.Signal = code
		}
		// Optional ";process:pid".
		if rest != "" && !strings.HasPrefix(rest, ";") {
			return s, fmt.Errorf("%w: trailing data in %q", ErrNotStopReply, shorten(payload))
		}
		return s, nil
	}
	s.Signal = code
	for field := range strings.SplitSeq(rest, ";") {
		if field == "" {
			continue
		}
		key, val, ok := strings.Cut(field, ":")
		if !ok {
			return s, fmt.Errorf("%w: field %q of %q has no colon", ErrNotStopReply, field, shorten(payload))
		}
		if err := s.setField(key, val); err != nil {
			return s, fmt.Errorf("%w: %q: %v", ErrNotStopReply, shorten(payload), err)
		}
	}
	return s, nil
}

func (s *StopReply) setField(key, val string) error {
	switch key {
	case "thread":
		t, err := parseThreadID(val)
		if err != nil {
			return err
		}
		s.Thread = t
	case "core":
		c, ok := parseHexUint(val)
		if !ok || c > 1<<31 {
			return fmt.Errorf("bad core %q", val)
		}
		s.Core = int(c)
	case "watch", "rwatch", "awatch":
		a, ok := parseHexUint(val)
		if !ok {
			return fmt.Errorf("bad %s address %q", key, val)
		}
		kind := WriteWatch
		switch key {
		case "rwatch":
			kind = ReadWatch
		case "awatch":
			kind = AccessWatch
		}
		s.Watch = &WatchHit{Kind: kind, Addr: a}
	case "swbreak":
		s.SWBreak = true
	case "hwbreak":
		s.HWBreak = true
	default:
		if !isHexString(key) {
			return nil // an extension we do not know: ignore it
		}
		n, ok := parseHexUint(key)
		if !ok || n > 1<<20 {
			return fmt.Errorf("bad register number %q", key)
		}
		if len(val)%2 != 0 || !isHexString(val) {
			return fmt.Errorf("register %s value %q is not hex bytes", key, val)
		}
		b, err := decodeHex(val)
		if err != nil {
			return err
		}
		if s.Registers == nil {
			s.Registers = make(map[int][]byte)
		}
		s.Registers[int(n)] = b
	}
	return nil
}

// parseThreadID parses a thread-id: `hex`, `-1`, or the multiprocess form
// `ppid.tid` (whose tid part is returned).
func parseThreadID(s string) (int, error) {
	if s == "-1" {
		return -1, nil
	}
	if strings.HasPrefix(s, "p") {
		_, tid, ok := strings.Cut(s[1:], ".")
		if !ok {
			return 0, nil // "ppid": all threads of the process
		}
		s = tid
		if s == "-1" {
			return -1, nil
		}
	}
	v, ok := parseHexUint(s)
	if !ok || v > 1<<31 {
		return 0, fmt.Errorf("bad thread id %q", s)
	}
	return int(v), nil
}

// formatThreadID is the inverse of parseThreadID for plain ids.
func formatThreadID(id int) string {
	if id < 0 {
		return "-1"
	}
	return strconv.FormatInt(int64(id), 16)
}
