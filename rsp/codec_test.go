package rsp

import (
	"bytes"
	"errors"
	"testing"
)

func TestEncodePacket(t *testing.T) {
	for _, tc := range []struct {
		payload, want string
	}{
		{"", "$#00"},
		{"OK", "$OK#9a"},
		{"qSupported:swbreak+;hwbreak+", "$qSupported:swbreak+;hwbreak+#d5"},
		{"m0,800", "$m0,800#61"},
		{"a$b", "$a}\x04b#44"},
		{"#", "$}\x03#80"},
		{"}", "$}]#da"},
		{"x*y", "$x}\ny#78"},
	} {
		if got := string(EncodePacket([]byte(tc.payload))); got != tc.want {
			t.Errorf("EncodePacket(%q) = %q, want %q", tc.payload, got, tc.want)
		}
	}
}

func TestDecodePacket(t *testing.T) {
	for _, tc := range []struct {
		name, frame, want string
		err               error
	}{
		{"empty", "$#00", "", nil},
		{"OK", "$OK#9a", "OK", nil},
		{"upper-case checksum", "$OK#9A", "OK", nil},
		{"QEMU stop reply", "$T05thread:01;#07", "T05thread:01;", nil},
		{"notification", "%Stop:T05#99", "Stop:T05", nil},
		{"escapes", "$a}\x04b#44", "a$b", nil},
		{"escaped star", "$x}\ny#78", "x*y", nil},
		{"run length 4", "$0* #7a", "0000", nil},
		{"run length 5 after text", "$ab*\"#0f", "abbbbbb", nil},
		{"run length max", "$x*~#20", "x" + string(bytes.Repeat([]byte("x"), 97)), nil},
		{"bad checksum", "$OK#00", "", ErrChecksum},
		{"no dollar", "OK#9a", "", ErrMalformedPacket},
		{"no hash", "$OK9a", "", ErrMalformedPacket},
		{"short", "$#0", "", ErrMalformedPacket},
		{"checksum not hex", "$OK#zz", "", ErrMalformedPacket},
		{"run length first", "$* #4a", "", ErrMalformedPacket},
		{"run length without count", "$a*#8b", "", ErrMalformedPacket},
		{"run length count too small", "$a*\x1f#aa", "", ErrMalformedPacket},
		{"trailing escape", "$a}#de", "", ErrMalformedPacket},
		{"dollar inside", "$a$b#e7", "", ErrMalformedPacket},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodePacket([]byte(tc.frame))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("DecodePacket(%q) error = %v, want %v", tc.frame, err, tc.err)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("DecodePacket(%q) = %q, %v; want %q", tc.frame, got, err, tc.want)
			}
		})
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	for _, p := range [][]byte{nil, []byte("hello"), all, bytes.Repeat([]byte("}*#$"), 100)} {
		got, err := DecodePacket(EncodePacket(p))
		if err != nil || !bytes.Equal(got, p) {
			t.Errorf("round trip of %q: %q, %v", p, got, err)
		}
	}
}

func TestReplyError(t *testing.T) {
	for _, tc := range []struct {
		reply string
		code  int // -2: no error, -3: unsupported
		msg   string
	}{
		{"OK", -2, ""},
		{"", -3, ""},
		{"E14", 0x14, ""},
		{"E22", 0x22, ""},
		{"E.no such memory", -1, "no such memory"},
		{"ENABLE=1,NOIRQ=2,NOTIMER=4", -2, ""}, // qqemu.sstepbits: not an error
		{"E1", -2, ""},
	} {
		err := replyError("pkt", tc.reply)
		var re *RemoteError
		switch {
		case tc.code == -2 && err != nil:
			t.Errorf("replyError(%q) = %v, want nil", tc.reply, err)
		case tc.code == -3 && !errors.Is(err, ErrUnsupported):
			t.Errorf("replyError(%q) = %v, want ErrUnsupported", tc.reply, err)
		case tc.code >= -1 && (!errors.As(err, &re) || re.Code != tc.code || re.Message != tc.msg || re.Packet != "pkt"):
			t.Errorf("replyError(%q) = %#v", tc.reply, err)
		}
	}
}

func TestReadPlan(t *testing.T) {
	for _, tc := range []struct {
		n, chunk, window int
	}{
		{1, 0x800, 16}, {0x800, 0x800, 16}, {0x801, 0x800, 16}, {64 << 10, 0x800, 16},
		{1 << 20, 0x800, 16}, {1 << 20, 0x800, 64}, {100000, 0x800, 1}, {12345, 0x800, 4},
		{0x800*16 + 0x7f5, 0x800, 16}, {0x7fa + 0x7ff, 0x800, 16}, {40, 16, 8},
	} {
		spans := readPlan(0x1000, tc.n, tc.chunk, tc.window)
		off := 0
		for i, s := range spans {
			if s.off != off || s.addr != 0x1000+uint64(off) || s.n <= 0 || s.n > tc.chunk {
				t.Fatalf("%+v: span %d = %+v at offset %d", tc, i, s, off)
			}
			off += s.n
			if tc.window > 1 {
				for j := max(0, i-tc.window+1); j < i; j++ {
					if spans[j].n == s.n {
						t.Fatalf("%+v: spans %d and %d (within a window) both %d bytes", tc, j, i, s.n)
					}
				}
			}
		}
		if off != tc.n {
			t.Fatalf("%+v: spans cover %d bytes", tc, off)
		}
	}
}
