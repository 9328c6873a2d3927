package symbols

import (
	"encoding/binary"
	"reflect"
	"testing"
)

func TestLEB128(t *testing.T) {
	tests := []struct {
		in    []byte
		u     uint64
		s     int64
		bad   bool
		nread int
	}{
		{in: []byte{0x00}, u: 0, s: 0, nread: 1},
		{in: []byte{0x7f}, u: 127, s: -1, nread: 1},
		{in: []byte{0x80, 0x01}, u: 128, s: 128, nread: 2},
		{in: []byte{0xe5, 0x8e, 0x26}, u: 624485, s: 624485, nread: 3},
		{in: []byte{0xc0, 0xbb, 0x78}, u: 1973696, s: -123456, nread: 3},
		{in: []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, u: ^uint64(0), s: -1 &^ 0, nread: 10},
		{in: []byte{0x80}, bad: true},
		{in: nil, bad: true},
	}
	for _, tc := range tests {
		b := makeBuf("t", tc.in, 0, binary.LittleEndian)
		u := b.uleb()
		if tc.bad {
			if b.err == nil {
				t.Errorf("uleb(% x) = %d, want an error", tc.in, u)
			}
			continue
		}
		if b.err != nil || u != tc.u || b.off != tc.nread {
			t.Errorf("uleb(% x) = %d (read %d, err %v), want %d", tc.in, u, b.off, b.err, tc.u)
		}
		b = makeBuf("t", tc.in, 0, binary.LittleEndian)
		if s := b.sleb(); tc.nread < 10 && (b.err != nil || s != tc.s) {
			t.Errorf("sleb(% x) = %d (err %v), want %d", tc.in, s, b.err, tc.s)
		}
	}
}

func TestBufErrorsStick(t *testing.T) {
	b := makeBuf("t", []byte{1, 2, 3}, 0, binary.LittleEndian)
	if v := b.u32(); v != 0 || b.err == nil {
		t.Fatalf("u32 on 3 bytes = %d, %v", v, b.err)
	}
	if v := b.u8(); v != 0 {
		t.Errorf("read after an error = %d, want 0", v)
	}
	b = makeBuf("t", []byte("abc\x00def"), 0, binary.LittleEndian)
	if s := string(b.cstr()); s != "abc" || b.off != 4 {
		t.Errorf("cstr = %q at %d", s, b.off)
	}
	if s := b.cstr(); s != nil || b.err == nil {
		t.Errorf("unterminated cstr = %q, %v", s, b.err)
	}
	b = makeBuf("t", []byte{0x01, 0x02, 0x03}, 0, binary.LittleEndian)
	if v := b.u24(); v != 0x030201 {
		t.Errorf("u24 = %#x", v)
	}
}

func TestParseAranges(t *testing.T) {
	le := binary.LittleEndian
	set := func(cu uint32, ranges ...uint64) []byte {
		var a []byte
		a = append(a, 2, 0)
		a = le.AppendUint32(a, cu)
		a = append(a, 8, 0, 0, 0, 0, 0)
		for _, r := range ranges {
			a = le.AppendUint64(a, r)
		}
		a = append(a, make([]byte, 16)...)
		return append(le.AppendUint32(nil, uint32(len(a))), a...)
	}
	data := append(set(0x10, 0x2000, 0x100, 0x1000, 0x80, 0x5000, 0), set(0x90, 0x1080, 0x80)...)
	got, err := parseAranges(data, le)
	if err != nil {
		t.Fatal(err)
	}
	want := []arange{{0x1000, 0x1080, 0x10}, {0x1080, 0x1100, 0x90}, {0x2000, 0x2100, 0x10}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseAranges = %x, want %x", got, want)
	}
	lookups := []struct {
		addr uint64
		cu   uint64
		ok   bool
	}{{0x1000, 0x10, true}, {0x107f, 0x10, true}, {0x1080, 0x90, true}, {0x1100, 0, false}, {0x20ff, 0x10, true}, {0xfff, 0, false}, {0x5000, 0, false}}
	for _, l := range lookups {
		r, ok := lookupRange(got, l.addr)
		if ok != l.ok || ok && r.unit != l.cu {
			t.Errorf("lookupRange(%#x) = %x, %v; want unit %#x, %v", l.addr, r, ok, l.cu, l.ok)
		}
	}
	if _, err := parseAranges(data[:10], le); err == nil {
		t.Error("parseAranges on a truncated section: no error")
	}
}

func TestIndexEncoding(t *testing.T) {
	x := &index{
		byName:     []uint32{0, 3, 0, 1},
		byAddr:     []uint32{1, 2, 3},
		aranges:    []arange{{1, 2, 3}},
		unitRanges: []arange{{4, 5, 6}, {7, 8, 9}},
		fdes:       []arange{{10, 11, 12}},
		unitNames:  []unitName{{0, "fs/namei.c"}, {0x76, "/abs/head_64.S"}, {0x100, ""}},
	}
	copy(x.hdr.Magic[:], indexMagic)
	x.hdr.Version, x.hdr.NSyms, x.hdr.FileSize = indexVersion, 4, 1234
	x.hdr.BuildIDLen = uint32(copy(x.hdr.BuildID[:], "abcd"))
	enc := x.encode()
	got, err := decodeIndex(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, x) {
		t.Errorf("decode(encode(x)) = %+v, want %+v", got, x)
	}
	for _, bad := range [][]byte{nil, []byte("KSPECSYM"), enc[:len(enc)-3], append(append([]byte{}, enc...), 9, 0, 0, 0, 0, 0, 0, 0)} {
		if _, err := decodeIndex(bad); err == nil {
			t.Errorf("decodeIndex(%d bytes) accepted damaged input", len(bad))
		}
	}
}
