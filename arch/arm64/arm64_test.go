package arm64

import (
	"encoding/binary"
	"fmt"
	"strings"
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

// fakeTables is physical memory holding page-table descriptors.
type fakeTables map[uint64]uint64

func (m fakeTables) read(pa uint64, n int) ([]byte, error) {
	d, ok := m[pa]
	if !ok || n != 8 {
		return nil, fmt.Errorf("no descriptor at %#x", pa)
	}
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, d)
	return b, nil
}

func TestWalk(t *testing.T) {
	// The registers of Debian's 6.1 arm64 cloud kernel under QEMU's virt
	// machine (-cpu max): 48-bit kernel addresses, 4 KiB granule, an ASID
	// and CnP in TTBR1.
	const tcr = 0x15001f5b5503510
	const ttbr = 0x26_0000_4158_f001
	const l0 = 0x4158f000
	va := uint64(0xffff800008d33148)
	i0, i1, i2, i3 := va>>39&511, va>>30&511, va>>21&511, va>>12&511
	tables := fakeTables{
		l0 + 8*i0:         0x41590003,                  // table
		0x41590000 + 8*i1: 0x41591003,                  // table
		0x41591000 + 8*i2: 0x00600000_40e00000 | 0x701, // 2 MiB block, attributes set
	}
	pages := fakeTables{
		l0 + 8*i0:         0x41590003,
		0x41590000 + 8*i1: 0x41591003,
		0x41591000 + 8*i2: 0x41592003,
		0x41592000 + 8*i3: 0x00600000_40f33000 | 0x703, // 4 KiB page
	}
	for _, tc := range []struct {
		name    string
		va      uint64
		tcr     uint64
		mem     fakeTables
		want    uint64
		wantErr string
	}{
		{name: "2 MiB block", va: va, tcr: tcr, mem: tables, want: 0x40e00000 + va&(1<<21-1)},
		{name: "4 KiB page", va: va, tcr: tcr, mem: pages, want: 0x40f33000 + va&0xfff},
		{name: "unmapped", va: va + 1<<30, tcr: tcr, mem: tables, wantErr: "no descriptor"},
		{name: "invalid descriptor", va: va, tcr: tcr, mem: fakeTables{l0 + 8*i0: 0}, wantErr: "not mapped"},
		{name: "64 KiB granule", va: va, tcr: tcr&^(3<<30) | 3<<30, mem: tables, wantErr: "4 KiB granule"},
		{name: "outside 39-bit space", va: va, tcr: tcr&^(0x3f<<16) | 25<<16, mem: tables, wantErr: "outside TTBR1's 39-bit"},
		{name: "TTBR1 walks disabled", va: va, tcr: tcr | 1<<23, mem: tables, wantErr: "disabled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := walk(tc.va, ttbr, tc.tcr, tc.mem.read)
			checkWalk(t, tc.va, got, err, tc.want, tc.wantErr)
		})
	}
}

func checkWalk(t *testing.T, va, got uint64, err error, want uint64, wantErr string) {
	t.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("walk(%#x) = %#x, %v; want an error containing %q", va, got, err, wantErr)
		}
		return
	}
	if err != nil || got != want {
		t.Fatalf("walk(%#x) = %#x, %v; want %#x", va, got, err, want)
	}
}

// User addresses walk TTBR0_EL1's tables, 48 bits (T0SZ 16) with Debian's
// kernels.
func TestWalkUser(t *testing.T) {
	const tcr = 0x15001f5b5503510
	const ttbr0 = 0x25_0000_4211_2000
	va := uint64(0x0000aaaab0001234)
	i0, i1, i2, i3 := va>>39&511, va>>30&511, va>>21&511, va>>12&511
	mem := fakeTables{
		0x42112000 + 8*i0: 0x42113003,
		0x42113000 + 8*i1: 0x42114003,
		0x42114000 + 8*i2: 0x42115003,
		0x42115000 + 8*i3: 0x0060_0000_4a7b_1000 | 0xf43, // user page
	}
	for _, tc := range []struct {
		name    string
		va, tcr uint64
		want    uint64
		wantErr string
	}{
		{name: "user page", va: va, tcr: tcr, want: 0x4a7b1234},
		{name: "TTBR0 walks disabled", va: va, tcr: tcr | 1<<7, wantErr: "disabled"},
		{name: "16 KiB granule", va: va, tcr: tcr | 2<<14, wantErr: "4 KiB granule"},
		{name: "non-canonical", va: 0x007f_aaaa_b000_1234, tcr: tcr, wantErr: "outside TTBR0's 48-bit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := walk(tc.va, ttbr0, tc.tcr, mem.read)
			checkWalk(t, tc.va, got, err, tc.want, tc.wantErr)
		})
	}
}

func TestUserMode(t *testing.T) {
	for _, tc := range []struct {
		cpsr uint64
		want bool
	}{
		{0x404000c5, false}, // EL1h, as at cpu_do_idle
		{0x80000000, true},  // EL0t
		{0x60000010, true},  // AArch32 user
		{0x3c5, false},      // EL1h, interrupts masked
	} {
		got, err := Arch{}.UserMode(func(string) (uint64, error) { return tc.cpsr, nil })
		if err != nil || got != tc.want {
			t.Errorf("UserMode(cpsr %#x) = %v, %v; want %v", tc.cpsr, got, err, tc.want)
		}
	}
}
