package rsp

import (
	"bytes"
	"encoding/hex"
	"fmt"
)

// EncodePacket frames payload as `$payload#cs`: '$', '#', '}' and '*' are
// escaped as '}' followed by the byte XOR 0x20, and cs is the modulo-256 sum
// of the escaped payload in two lower-case hex digits.
func EncodePacket(payload []byte) []byte {
	out := make([]byte, 0, len(payload)+4)
	out = append(out, '$')
	var sum byte
	for _, b := range payload {
		if needsEscape(b) {
			out = append(out, '}')
			sum += '}'
			b ^= 0x20
		}
		out = append(out, b)
		sum += b
	}
	return append(out, '#', hexDigits[sum>>4], hexDigits[sum&0xf])
}

// DecodePacket checks and decodes one frame `$payload#cs` (a `%` notification
// frame is accepted too): it verifies the checksum (ErrChecksum), expands
// run-length encoding (`X*n` repeats X n-29 more times) and then undoes
// `}` escapes, the order gdb itself uses. Any other malformation is
// ErrMalformedPacket. The result never aliases frame. DecodePacket never
// panics.
func DecodePacket(frame []byte) ([]byte, error) {
	p, err := decodeFrame(frame)
	if err != nil {
		return nil, err
	}
	if len(p) > 0 && len(frame) > 0 && &p[0] == &frame[1] {
		p = bytes.Clone(p)
	}
	if p == nil {
		p = []byte{}
	}
	return p, nil
}

// decodeFrame is DecodePacket, except that a payload without escapes or
// run-length encoding is returned as a slice of frame.
func decodeFrame(frame []byte) ([]byte, error) {
	n := len(frame)
	if n < 4 || (frame[0] != '$' && frame[0] != '%') || frame[n-3] != '#' {
		return nil, fmt.Errorf("%w: frame %q is not $payload#xx", ErrMalformedPacket, shorten(string(frame)))
	}
	if !isHex(frame[n-2]) || !isHex(frame[n-1]) {
		return nil, fmt.Errorf("%w: checksum %q is not hex", ErrMalformedPacket, frame[n-2:])
	}
	raw := frame[1 : n-3]
	var sum byte
	for _, b := range raw {
		sum += b
	}
	if want := unhex(frame[n-2])<<4 | unhex(frame[n-1]); sum != want {
		return nil, fmt.Errorf("%w: computed %02x, frame says %02x", ErrChecksum, sum, want)
	}
	if bytes.IndexByte(raw, '$') >= 0 || bytes.IndexByte(raw, '#') >= 0 {
		return nil, fmt.Errorf("%w: unescaped '$' or '#' inside payload", ErrMalformedPacket)
	}
	if bytes.IndexByte(raw, '*') < 0 && bytes.IndexByte(raw, '}') < 0 {
		return raw, nil // the common case: nothing to expand
	}
	// Expand run-length encoding on the raw bytes.
	expanded := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		b := raw[i]
		if b != '*' {
			expanded = append(expanded, b)
			continue
		}
		if len(expanded) == 0 || i+1 >= len(raw) {
			return nil, fmt.Errorf("%w: run-length marker without a character or count", ErrMalformedPacket)
		}
		i++
		cnt := int(raw[i]) - 29
		if cnt < 3 || raw[i] > 126 {
			return nil, fmt.Errorf("%w: run-length count %q out of range", ErrMalformedPacket, raw[i])
		}
		last := expanded[len(expanded)-1]
		for range cnt {
			expanded = append(expanded, last)
		}
	}
	// Undo escapes.
	out := expanded[:0]
	for i := 0; i < len(expanded); i++ {
		b := expanded[i]
		if b == '}' {
			if i+1 >= len(expanded) {
				return nil, fmt.Errorf("%w: escape character at end of payload", ErrMalformedPacket)
			}
			i++
			b = expanded[i] ^ 0x20
		}
		out = append(out, b)
	}
	return out, nil
}

const hexDigits = "0123456789abcdef"

func needsEscape(b byte) bool { return b == '$' || b == '#' || b == '}' || b == '*' }

func isHex(b byte) bool {
	return '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F'
}

func unhex(b byte) byte {
	switch {
	case '0' <= b && b <= '9':
		return b - '0'
	case 'a' <= b && b <= 'f':
		return b - 'a' + 10
	case 'A' <= b && b <= 'F':
		return b - 'A' + 10
	}
	return 0
}

// isHexString reports whether s is non-empty and all hex digits.
func isHexString(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

// decodeHex decodes an even-length hex string.
func decodeHex(s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %q is not hex: %v", ErrBadReply, shorten(s), err)
	}
	return b, nil
}

// parseHexUint parses a hex number of at most 16 digits.
func parseHexUint(s string) (uint64, bool) {
	if s == "" || len(s) > 16 {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return 0, false
		}
		v = v<<4 | uint64(unhex(s[i]))
	}
	return v, true
}
