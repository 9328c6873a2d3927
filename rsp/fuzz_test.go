package rsp

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzDecodePacket feeds arbitrary frames to DecodePacket. The seed corpus in
// testdata/fuzz/FuzzDecodePacket is real QEMU 7.2 traffic, captured by
// TestQEMU with KSPEC_RSP_CAPTURE=1.
func FuzzDecodePacket(f *testing.F) {
	for _, s := range []string{"$OK#9a", "$#00", "$0* #7a", "$a}\x04b#f2", "$T05thread:01;#07"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		payload, err := DecodePacket(frame)
		if err != nil {
			return
		}
		// Whatever decodes must survive our own encoding.
		again, err := DecodePacket(EncodePacket(payload))
		if err != nil || !bytes.Equal(again, payload) {
			t.Fatalf("re-encoding %q: %q, %v", payload, again, err)
		}
	})
}

// FuzzParseStopReply feeds arbitrary payloads to ParseStopReply. The seed
// corpus in testdata/fuzz/FuzzParseStopReply is real QEMU 7.2 stop replies.
func FuzzParseStopReply(f *testing.F) {
	for _, s := range []string{"T05thread:01;", "T05thread:02;watch:ffffffff81000000;", "S05", "W00", "X09", "T05swbreak:;10:f0ff;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		s, err := ParseStopReply(payload)
		if err != nil {
			return
		}
		if !strings.ContainsRune("TSWX", rune(s.Kind)) || s.Raw != payload || s.Signal < 0 || s.Signal > 255 {
			t.Fatalf("ParseStopReply(%q) = %+v", payload, s)
		}
		_ = s.String()
	})
}
