package amd64

import (
	"encoding/binary"
	"errors"
	"testing"
)

func TestFollowsCall(t *testing.T) {
	for _, tc := range []struct {
		code []byte
		want bool
	}{
		{[]byte{0x90, 0x90, 0xe8, 1, 2, 3, 4}, true},              // call rel32
		{[]byte{0x90, 0x90, 0x90, 0x90, 0x90, 0xff, 0xd0}, true},  // call *%rax
		{[]byte{0x90, 0x90, 0x90, 0x90, 0x41, 0xff, 0xd3}, true},  // call *%r11 (REX: ff at -2)
		{[]byte{0xff, 0x15, 1, 2, 3, 4, 0x90}, false},             // call *disp32(%rip) ends one byte early
		{[]byte{0x90, 0xff, 0x15, 1, 2, 3, 4}, true},              // call *disp32(%rip)
		{[]byte{0x90, 0x90, 0x90, 0x90, 0x90, 0xff, 0xe0}, false}, // jmp *%rax
		{[]byte{0x90, 0x90, 0x90, 0xff, 0x50, 0x08, 0x90}, false}, // call *8(%rax); nop
		{[]byte{0x90, 0x90, 0x90, 0x90, 0xff, 0x50, 0x08}, true},  // call *8(%rax)
		{[]byte{0xff, 0x14, 0x25, 1, 2, 3, 4}, true},              // call *disp32 (SIB, no base)
		{[]byte{0x90, 0x90, 0x90, 0xff, 0x14, 0xc5, 0x00}, false}, // truncated SIB+disp32
		{[]byte{0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0xc3}, false}, // ret
	} {
		if got := (Arch{}).FollowsCall(tc.code); got != tc.want {
			t.Errorf("% x: got %v, want %v", tc.code, got, tc.want)
		}
	}
}

func TestLeafReturn(t *testing.T) {
	stack := make([]byte, 8)
	binary.LittleEndian.PutUint64(stack, 0xffffffff81234567)
	read := func(addr uint64, n int) ([]byte, error) {
		if addr != 0xffffc90000001000 || n != 8 {
			return nil, errors.New("unmapped")
		}
		return stack, nil
	}
	regs := map[int]uint64{dwarfSP: 0xffffc90000001000, 3: 42}
	ret, caller, ok := Arch{}.LeafReturn(regs, read)
	if !ok || ret != 0xffffffff81234567 {
		t.Fatalf("LeafReturn = %#x, %v", ret, ok)
	}
	if caller[dwarfSP] != 0xffffc90000001008 || caller[dwarfPC] != ret || caller[3] != 42 {
		t.Errorf("caller registers %v", caller)
	}
	if regs[dwarfSP] != 0xffffc90000001000 {
		t.Error("LeafReturn changed the callee's registers")
	}
	if _, _, ok := (Arch{}).LeafReturn(map[int]uint64{dwarfSP: 0x1000}, read); ok {
		t.Error("LeafReturn with an unreadable stack succeeded")
	}
	if _, _, ok := (Arch{}).LeafReturn(map[int]uint64{}, read); ok {
		t.Error("LeafReturn without a stack pointer succeeded")
	}
}

func TestRegisters(t *testing.T) {
	a := Arch{}
	regs := a.DWARFRegisters()
	if regs[a.PC()] != a.DWARFPC() || regs[a.SP()] != a.DWARFSP() {
		t.Errorf("PC %s=%d (DWARFPC %d), SP %s=%d (DWARFSP %d)", a.PC(), regs[a.PC()], a.DWARFPC(), a.SP(), regs[a.SP()], a.DWARFSP())
	}
	if _, ok := regs[a.Frame()]; !ok {
		t.Errorf("frame register %s has no DWARF number", a.Frame())
	}
	for _, r := range a.ArgRegisters() {
		if _, ok := regs[r]; !ok {
			t.Errorf("argument register %s has no DWARF number", r)
		}
	}
	if got := a.ArgRegisters(); len(got) != 6 || got[0] != "rdi" || got[5] != "r9" {
		t.Errorf("ArgRegisters = %v", got)
	}
	a.ArgRegisters()[0] = "x" // a copy: callers cannot change it
	if a.ArgRegisters()[0] != "rdi" {
		t.Error("ArgRegisters returned shared storage")
	}
}

func TestUserMode(t *testing.T) {
	for _, tc := range []struct {
		cs   uint64
		want bool
	}{
		{0x10, false}, // __KERNEL_CS
		{0x33, true},  // __USER_CS
		{0x23, true},  // __USER32_CS
	} {
		got, err := Arch{}.UserMode(func(name string) (uint64, error) {
			if name != RegCS {
				t.Fatalf("UserMode read %q", name)
			}
			return tc.cs, nil
		})
		if err != nil || got != tc.want {
			t.Errorf("UserMode(cs %#x) = %v, %v; want %v", tc.cs, got, err, tc.want)
		}
	}
	if a := (Arch{}); a.UserEnd() > a.KernelBase() {
		t.Error("user space ends above the kernel's base")
	}
}
