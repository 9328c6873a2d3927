package symbols

import (
	"encoding/binary"
	"fmt"
)

// buf is a cursor over a DWARF section. The first decoding error sticks in
// err and makes every later read return zero values.
type buf struct {
	data  []byte
	off   int
	order binary.ByteOrder
	err   error
	sec   string // section name, for errors
}

func makeBuf(sec string, data []byte, off int, order binary.ByteOrder) buf {
	b := buf{data: data, off: off, order: order, sec: sec}
	if off < 0 || off > len(data) {
		b.fail("offset %#x out of range", off)
	}
	return b
}

func (b *buf) fail(format string, args ...any) {
	if b.err == nil {
		b.err = fmt.Errorf("%s at %#x: %s", b.sec, b.off, fmt.Sprintf(format, args...))
	}
	b.off = len(b.data)
}

func (b *buf) need(n int) bool {
	if b.err != nil {
		return false
	}
	if n < 0 || len(b.data)-b.off < n {
		b.fail("truncated (need %d bytes)", n)
		return false
	}
	return true
}

func (b *buf) u8() uint8 {
	if !b.need(1) {
		return 0
	}
	v := b.data[b.off]
	b.off++
	return v
}

func (b *buf) u16() uint16 {
	if !b.need(2) {
		return 0
	}
	v := b.order.Uint16(b.data[b.off:])
	b.off += 2
	return v
}

func (b *buf) u24() uint32 {
	if !b.need(3) {
		return 0
	}
	d := b.data[b.off:]
	b.off += 3
	if b.order == binary.BigEndian {
		return uint32(d[0])<<16 | uint32(d[1])<<8 | uint32(d[2])
	}
	return uint32(d[0]) | uint32(d[1])<<8 | uint32(d[2])<<16
}

func (b *buf) u32() uint32 {
	if !b.need(4) {
		return 0
	}
	v := b.order.Uint32(b.data[b.off:])
	b.off += 4
	return v
}

func (b *buf) u64() uint64 {
	if !b.need(8) {
		return 0
	}
	v := b.order.Uint64(b.data[b.off:])
	b.off += 8
	return v
}

// uint reads an n-byte unsigned integer (n = 1, 2, 4 or 8).
func (b *buf) uint(n int) uint64 {
	switch n {
	case 1:
		return uint64(b.u8())
	case 2:
		return uint64(b.u16())
	case 4:
		return uint64(b.u32())
	case 8:
		return b.u64()
	}
	b.fail("unsupported size %d", n)
	return 0
}

func (b *buf) uleb() uint64 {
	var v uint64
	var shift uint
	for b.err == nil {
		if b.off >= len(b.data) {
			b.fail("truncated LEB128")
			return 0
		}
		c := b.data[b.off]
		b.off++
		if shift < 64 {
			v |= uint64(c&0x7f) << shift
		}
		shift += 7
		if c&0x80 == 0 {
			return v
		}
	}
	return 0
}

func (b *buf) sleb() int64 {
	var v int64
	var shift uint
	for b.err == nil {
		if b.off >= len(b.data) {
			b.fail("truncated LEB128")
			return 0
		}
		c := b.data[b.off]
		b.off++
		if shift < 64 {
			v |= int64(c&0x7f) << shift
		}
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			return v
		}
	}
	return 0
}

// cstr reads a NUL-terminated string without copying.
func (b *buf) cstr() []byte {
	if b.err != nil {
		return nil
	}
	for i := b.off; i < len(b.data); i++ {
		if b.data[i] == 0 {
			s := b.data[b.off:i]
			b.off = i + 1
			return s
		}
	}
	b.fail("unterminated string")
	return nil
}

func (b *buf) bytes(n int) []byte {
	if !b.need(n) {
		return nil
	}
	s := b.data[b.off : b.off+n : b.off+n]
	b.off += n
	return s
}

func (b *buf) skip(n int) {
	if b.need(n) {
		b.off += n
	}
}

// unitLength reads an initial length field: it returns the length and
// whether the 64-bit DWARF format is in use.
func (b *buf) unitLength() (uint64, bool) {
	n := b.u32()
	switch {
	case n == 0xffffffff:
		return b.u64(), true
	case n >= 0xfffffff0:
		b.fail("reserved unit length %#x", n)
		return 0, false
	}
	return uint64(n), false
}

// offset reads a section offset of the unit's format size.
func (b *buf) offset(dwarf64 bool) uint64 {
	if dwarf64 {
		return b.u64()
	}
	return uint64(b.u32())
}

// cstrAt returns the NUL-terminated string at off in data, without copying.
func cstrAt(data []byte, off uint64) ([]byte, bool) {
	if off >= uint64(len(data)) {
		return nil, false
	}
	for i := off; i < uint64(len(data)); i++ {
		if data[i] == 0 {
			return data[off:i], true
		}
	}
	return nil, false
}
