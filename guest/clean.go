package guest

import (
	"bytes"
	"regexp"
)

// cleaner separates kernel console messages (printk lines) from the rest of
// a console byte stream, incrementally.
//
// The kernel writes its messages straight to the serial port, whatever the
// tty is doing, so a message can start in the middle of a line of command
// output, a prompt or a marker. It always ends the message with "\r\n" (the
// serial console driver adds the '\r'), and on Linux it starts with a
// timestamp "[   12.345678]". After login, Console turns off the tty's
// "onlcr" so that program output ends its lines with a bare "\n": a line that
// starts with a timestamp and ends with "\r\n" is the kernel's, one that ends
// in "\n" (e.g. dmesg output) is a program's.
//
// A kernel line that interrupted a line of user text is cut out, and the
// user text before it is carried over and joined with what follows, so that
// "kspec:ab[  1.000000] msg\r\ncd\n" reads as the user line "kspec:abcd\n"
// plus the kernel line "[  1.000000] msg".
type cleaner struct {
	kernel *regexp.Regexp // start of a kernel message; nil: no filtering
	raw    []byte         // the current line, not yet terminated by '\n'
	carry  []byte         // user text left of a kernel message on an unfinished line
}

// feed consumes p and calls user for each complete user line (with its line
// ending) and kern for each kernel message (without its line ending).
func (c *cleaner) feed(p []byte, user func([]byte), kern func(string)) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			c.raw = append(c.raw, p...)
			return
		}
		c.raw = append(c.raw, p[:i+1]...)
		p = p[i+1:]
		c.line(c.raw, user, kern)
		c.raw = c.raw[:0]
	}
}

// line handles one complete raw line.
func (c *cleaner) line(l []byte, user func([]byte), kern func(string)) {
	if c.kernel != nil && bytes.HasSuffix(l, []byte("\r\n")) {
		if locs := c.kernel.FindAllIndex(l, -1); len(locs) > 0 {
			at := locs[len(locs)-1][0]
			kern(string(bytes.TrimRight(l[at:], "\r\n")))
			c.carry = append(c.carry, l[:at]...)
			return
		}
	}
	if len(c.carry) > 0 {
		c.carry = append(c.carry, l...)
		user(c.carry)
		c.carry = c.carry[:0]
		return
	}
	user(l)
}

// partial returns the user text of the unfinished line: what a prompt
// looks like while the guest waits for input.
func (c *cleaner) partial() []byte {
	out := make([]byte, 0, len(c.carry)+len(c.raw))
	return append(append(out, c.carry...), c.raw...)
}
