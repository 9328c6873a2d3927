// Package amd64 is what kspec knows about the x86-64 CPU: gdbstub register
// names, System V psABI DWARF numbering and argument registers, how a
// return address is recognised (the call instruction before it), and QEMU's
// binary for it. It implements arch.Arch and imports nothing of kspec.
package amd64

import (
	"debug/elf"
	"encoding/binary"
)

// Name is the guest config's "arch" value for x86-64 guests.
const Name = "x86_64"

// Register names in QEMU's x86-64 target description (i386-64bit.xml).
const (
	RegPC    = "rip"
	RegSP    = "rsp"
	RegFrame = "rbp"
)

// Arch is x86-64. The zero value is ready to use.
type Arch struct{}

// Name returns "x86_64".
func (Arch) Name() string { return Name }

// ELFMachine returns EM_X86_64.
func (Arch) ELFMachine() elf.Machine { return elf.EM_X86_64 }

// GDBArchitecture returns target.xml's architecture name, "i386:x86-64".
func (Arch) GDBArchitecture() string { return "i386:x86-64" }

// PC returns "rip".
func (Arch) PC() string { return RegPC }

// SP returns "rsp".
func (Arch) SP() string { return RegSP }

// Frame returns "rbp".
func (Arch) Frame() string { return RegFrame }

// dwarfRegs are the System V psABI DWARF numbers of the general registers
// (16 is the return-address column, the rip of a frame).
var dwarfRegs = map[string]int{
	"rax": 0, "rdx": 1, "rcx": 2, "rbx": 3, "rsi": 4, "rdi": 5, "rbp": 6, "rsp": 7,
	"r8": 8, "r9": 9, "r10": 10, "r11": 11, "r12": 12, "r13": 13, "r14": 14, "r15": 15,
	"rip": 16,
}

// DWARF numbers of the stack pointer and the return-address column.
const (
	dwarfSP = 7
	dwarfPC = 16
)

// DWARFRegisters returns the psABI numbering of the general registers.
func (Arch) DWARFRegisters() map[string]int { return dwarfRegs }

// DWARFPC returns 16, the return-address column.
func (Arch) DWARFPC() int { return dwarfPC }

// DWARFSP returns 7, rsp.
func (Arch) DWARFSP() int { return dwarfSP }

// argRegisters are the System V integer argument registers, in order.
var argRegisters = []string{"rdi", "rsi", "rdx", "rcx", "r8", "r9"}

// ArgRegisters returns rdi, rsi, rdx, rcx, r8, r9 (System V).
func (Arch) ArgRegisters() []string { return append([]string(nil), argRegisters...) }

// KernelBase is the lowest x86-64 kernel address (the upper half of the
// 48-bit canonical address space).
const KernelBase = 0xffff800000000000

// KernelBase returns 0xffff800000000000.
func (Arch) KernelBase() uint64 { return KernelBase }

// CodeAddress returns v: x86-64 return addresses carry no tag bits.
func (Arch) CodeAddress(v uint64) uint64 { return v }

// LeafReturn treats the innermost frame as a leaf that has pushed nothing:
// the return address is at the stack pointer, and the caller's stack
// pointer is just above it.
func (Arch) LeafReturn(regs map[int]uint64, read func(addr uint64, n int) ([]byte, error)) (uint64, map[int]uint64, bool) {
	sp, ok := regs[dwarfSP]
	if !ok {
		return 0, nil, false
	}
	b, err := read(sp, 8)
	if err != nil || len(b) < 8 {
		return 0, nil, false
	}
	ret := binary.LittleEndian.Uint64(b)
	caller := make(map[int]uint64, len(regs))
	for r, v := range regs {
		caller[r] = v
	}
	caller[dwarfSP], caller[dwarfPC] = sp+8, ret
	return ret, caller, true
}

// callWindow is the longest call instruction FollowsCall looks for.
const callWindow = 7

// CallWindow returns 7, the longest call FollowsCall recognises.
func (Arch) CallWindow() int { return callWindow }

// FollowsCall reports whether the 7 bytes before a return address end with
// an x86 call: call rel32 (e8), or an indirect call (ff /2) whose ModRM
// and SIB bytes make it end exactly at the return address.
func (Arch) FollowsCall(code []byte) bool {
	if len(code) != callWindow {
		return false
	}
	if code[2] == 0xe8 {
		return true
	}
	for i := 0; i+1 < len(code); i++ {
		if code[i] == 0xff && (code[i+1]>>3)&7 == 2 && i+indirectCallLen(code[i+1:]) == len(code) {
			return true
		}
	}
	return false
}

// indirectCallLen returns the length of an `ff /2` instruction from its
// ModRM byte (and SIB byte, if any), opcode included.
func indirectCallLen(b []byte) int {
	modrm := b[0]
	mod, rm := modrm>>6, modrm&7
	n := 2 // opcode and ModRM
	if mod != 3 && rm == 4 {
		n++ // SIB
		if mod == 0 && len(b) > 1 && b[1]&7 == 5 {
			n += 4 // SIB with no base: disp32
		}
	}
	switch mod {
	case 0:
		if rm == 5 {
			n += 4 // RIP-relative disp32
		}
	case 1:
		n++
	case 2:
		n += 4
	}
	return n
}

// QEMUBinary is QEMU's x86-64 system emulator.
const QEMUBinary = "qemu-system-x86_64"

// QEMU returns "qemu-system-x86_64".
func (Arch) QEMU() string { return QEMUBinary }

// QEMUPackage returns "qemu-system-x86", the Debian package of QEMU.
func (Arch) QEMUPackage() string { return "qemu-system-x86" }

// Machine returns "": QEMU's default x86-64 machine ("pc") is kspec's.
func (Arch) Machine() string { return "" }

// CPU returns "": QEMU's default x86-64 CPU under TCG (KVM uses the host's).
func (Arch) CPU() string { return "" }

// PanicDevice returns "pvpanic", the ISA device at I/O port 0x505.
func (Arch) PanicDevice() string { return "pvpanic" }

// Console returns "ttyS0", the first 16550 UART.
func (Arch) Console() string { return "ttyS0" }

// DebianArch returns "amd64", Debian's name for the architecture.
func (Arch) DebianArch() string { return "amd64" }

// RegCS is the code segment register of QEMU's i386-64bit description;
// its low two bits are the current privilege level.
const RegCS = "cs"

// UserMode reports whether the CPU runs at privilege level 3 (user space).
func (Arch) UserMode(reg func(name string) (uint64, error)) (bool, error) {
	cs, err := reg(RegCS)
	if err != nil {
		return false, err
	}
	return cs&3 == 3, nil
}

// UserEnd returns 0x0000800000000000: user space is the lower half of
// 48-bit (4-level) addresses; QEMU's TCG CPUs have no 5-level paging.
func (Arch) UserEnd() uint64 { return 0x0000_8000_0000_0000 }

// GDB returns "gdb": Debian's gdb debugs amd64 (the host's own CPU).
func (Arch) GDB() string { return "gdb" }
