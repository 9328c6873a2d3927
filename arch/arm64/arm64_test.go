package arm64

import (
	"encoding/binary"
	"testing"
)

func TestCodeAddress(t *testing.T) {
	for _, tc := range []struct {
		in, want uint64
	}{
		{0xffff800008123456, 0xffff800008123456}, // kernel, unsigned
		{0x3abf800008123456, 0xffff800008123456}, // kernel, PAC in 63:56 and 54:48 (bit 55 set)
		{0x00bf800008123456, 0xffff800008123456}, // kernel, PAC only in 54:48
		{0x0000aaaab0001234, 0x0000aaaab0001234}, // user, unsigned
		{0x2f12aaaab0001234, 0x0000aaaab0001234}, // user, signed (bit 55 clear)
	} {
		if got := (Arch{}).CodeAddress(tc.in); got != tc.want {
			t.Errorf("CodeAddress(%#x) = %#x, want %#x", tc.in, got, tc.want)
		}
	}
}

func TestFollowsCall(t *testing.T) {
	ins := func(v uint32) []byte { b := make([]byte, 4); binary.LittleEndian.PutUint32(b, v); return b }
	for _, tc := range []struct {
		name string
		code []byte
		want bool
	}{
		{"bl", ins(0x94001234), true},
		{"bl backwards", ins(0x97fffff0), true},
		{"blr x8", ins(0xd63f0100), true},
		{"blraaz x8", ins(0xd63f091f), true},
		{"blraa x8, x9", ins(0xd73f0909), true},
		{"b (no link)", ins(0x14001234), false},
		{"br x8", ins(0xd61f0100), false},
		{"ret", ins(0xd65f03c0), false},
		{"nop", ins(0xd503201f), false},
		{"short", []byte{0x34, 0x12, 0x00}, false},
	} {
		if got := (Arch{}).FollowsCall(tc.code); got != tc.want {
			t.Errorf("%s: FollowsCall(% x) = %v, want %v", tc.name, tc.code, got, tc.want)
		}
	}
}

func TestLeafReturn(t *testing.T) {
	regs := map[int]uint64{dwarfLR: 0x1cbf800008000010, dwarfSP: 0xffff800009f0, dwarfPC: 0xffff800008000100, 0: 7}
	ret, caller, ok := Arch{}.LeafReturn(regs, nil)
	if !ok || ret != 0xffff800008000010 || caller[dwarfPC] != ret || caller[dwarfSP] != regs[dwarfSP] || caller[0] != 7 {
		t.Errorf("LeafReturn = %#x, %v, %v", ret, caller, ok)
	}
	if regs[dwarfPC] != 0xffff800008000100 {
		t.Error("LeafReturn modified its input")
	}
	if _, _, ok := (Arch{}).LeafReturn(map[int]uint64{dwarfSP: 1}, nil); ok {
		t.Error("LeafReturn without x30 succeeded")
	}
}

func TestDWARFRegisters(t *testing.T) {
	r := Arch{}.DWARFRegisters()
	for name, want := range map[string]int{"x0": 0, "x7": 7, "x29": 29, "x30": 30, "sp": 31, "pc": 32} {
		if got, ok := r[name]; !ok || got != want {
			t.Errorf("DWARFRegisters[%q] = %d, %v; want %d", name, got, ok, want)
		}
	}
	if len(r) != 33 {
		t.Errorf("%d registers, want 33", len(r))
	}
	if a := (Arch{}).ArgRegisters(); len(a) != 8 || a[0] != "x0" || a[7] != "x7" {
		t.Errorf("ArgRegisters = %v", a)
	}
}
