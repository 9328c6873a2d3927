// Package arm64 is what kspec knows about the 64-bit Arm CPU (AArch64):
// the gdbstub register names of QEMU's aarch64 target description, the
// AAPCS64 argument registers and DWARF numbering (AADWARF64), how a return
// address is recognised (a BL/BLR before it) and stripped of its
// pointer-authentication code, and QEMU's binary and machine for it. It
// implements arch.Arch and imports nothing of kspec.
package arm64

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
)

// Name is the guest config's "arch" value for arm64 guests (uname -m).
const Name = "aarch64"

// Register names in QEMU's aarch64 target description (aarch64-core.xml).
const (
	RegPC    = "pc"
	RegSP    = "sp"
	RegFrame = "x29"
	RegLR    = "x30"
)

// Arch is AArch64. The zero value is ready to use.
type Arch struct{}

// Name returns "aarch64".
func (Arch) Name() string { return Name }

// ELFMachine returns EM_AARCH64.
func (Arch) ELFMachine() elf.Machine { return elf.EM_AARCH64 }

// GDBArchitecture returns target.xml's architecture name, "aarch64".
func (Arch) GDBArchitecture() string { return "aarch64" }

// PC returns "pc".
func (Arch) PC() string { return RegPC }

// SP returns "sp".
func (Arch) SP() string { return RegSP }

// Frame returns "x29", the AAPCS64 frame pointer.
func (Arch) Frame() string { return RegFrame }

// DWARF numbers (AADWARF64): x0-x30 are 0-30, sp is 31. The pc has no
// DWARF number of its own in call-frame information (a CIE's
// return-address column is x30); kspec's unwinder keeps it in 32, the
// number AADWARF64 reserves for it.
const (
	dwarfLR = 30
	dwarfSP = 31
	dwarfPC = 32
)

// dwarfRegs maps gdbstub names to DWARF numbers.
var dwarfRegs = func() map[string]int {
	m := map[string]int{RegSP: dwarfSP, RegPC: dwarfPC}
	for i := 0; i <= 30; i++ {
		m[fmt.Sprintf("x%d", i)] = i
	}
	return m
}()

// DWARFRegisters returns the AADWARF64 numbering of x0-x30, sp and pc.
func (Arch) DWARFRegisters() map[string]int { return dwarfRegs }

// DWARFPC returns 32, where the unwinder keeps the pc.
func (Arch) DWARFPC() int { return dwarfPC }

// DWARFSP returns 31, sp.
func (Arch) DWARFSP() int { return dwarfSP }

// argRegisters are the AAPCS64 integer argument registers, in order.
var argRegisters = []string{"x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7"}

// ArgRegisters returns x0-x7 (AAPCS64).
func (Arch) ArgRegisters() []string { return append([]string(nil), argRegisters...) }

// VABits is the kernel's virtual address size (CONFIG_ARM64_VA_BITS, 48
// in Debian's kernels): the bits above it of a code address are its
// sign extension, or, in a signed return address, its PAC.
const VABits = 48

// KernelBase is the lowest kernel address with 48-bit virtual addresses
// (TTBR1's half of the address space).
const KernelBase = 0xffff000000000000

// KernelBase returns 0xffff000000000000.
func (Arch) KernelBase() uint64 { return KernelBase }

// CodeAddress strips a pointer-authentication code from a return address
// (what XPACI does): bit 55 selects the kernel or user half, and every bit
// above VABits is set (kernel) or cleared (user) accordingly. An address
// without a PAC comes back unchanged.
func (Arch) CodeAddress(v uint64) uint64 {
	const high = ^uint64(1<<VABits - 1)
	if v&(1<<55) != 0 {
		return v | high
	}
	return v &^ high
}

// LeafReturn treats the innermost frame as a leaf that has saved nothing:
// the return address is in x30 and the caller's registers are the same
// (sp unchanged).
func (a Arch) LeafReturn(regs map[int]uint64, _ func(addr uint64, n int) ([]byte, error)) (uint64, map[int]uint64, bool) {
	lr, ok := regs[dwarfLR]
	if !ok {
		return 0, nil, false
	}
	ret := a.CodeAddress(lr)
	caller := make(map[int]uint64, len(regs))
	for r, v := range regs {
		caller[r] = v
	}
	caller[dwarfPC] = ret
	return ret, caller, true
}

// CallWindow returns 4: every A64 instruction is 4 bytes.
func (Arch) CallWindow() int { return 4 }

// FollowsCall reports whether the instruction before a return address is
// a call: BL imm26, BLR Xn, or a pointer-authenticating BLRAA/BLRAB/
// BLRAAZ/BLRABZ.
func (Arch) FollowsCall(code []byte) bool {
	if len(code) != 4 {
		return false
	}
	ins := binary.LittleEndian.Uint32(code)
	switch {
	case ins&0xfc000000 == 0x94000000: // BL
		return true
	case ins&0xfffffc1f == 0xd63f0000: // BLR
		return true
	case ins&0xfffff800 == 0xd63f0800 && ins&0x1f == 0x1f: // BLRAAZ, BLRABZ
		return true
	case ins&0xfffff800 == 0xd73f0800: // BLRAA, BLRAB
		return true
	}
	return false
}

// QEMUBinary is QEMU's AArch64 system emulator.
const QEMUBinary = "qemu-system-aarch64"

// QEMU returns "qemu-system-aarch64".
func (Arch) QEMU() string { return QEMUBinary }

// QEMUPackage returns "qemu-system-arm", the Debian package that installs
// qemu-system-aarch64.
func (Arch) QEMUPackage() string { return "qemu-system-arm" }

// Machine returns "virt": arm64 has no default machine.
func (Arch) Machine() string { return "virt" }

// CPU returns "max" (every feature TCG implements, pointer
// authentication included); KVM uses the host's CPU instead.
func (Arch) CPU() string { return "max" }

// PanicDevice returns "pvpanic-pci": virt has no ISA bus for pvpanic.
func (Arch) PanicDevice() string { return "pvpanic-pci" }

// Console returns "ttyAMA0", the PL011 UART of QEMU's virt machine.
func (Arch) Console() string { return "ttyAMA0" }

// DebianArch returns "arm64", Debian's name for the architecture.
func (Arch) DebianArch() string { return "arm64" }

// Registers of QEMU's aarch64 system-register description that translating
// an address needs, and the current program status.
const (
	RegTTBR0 = "TTBR0_EL1"
	RegTTBR1 = "TTBR1_EL1"
	RegTCR   = "TCR_EL1"
	RegCPSR  = "cpsr"
)

// UserMode reports whether a CPU with this cpsr runs at EL0 (user space):
// PSTATE.M[3:2] is the exception level, and an AArch32 state (M[4]) only
// exists at EL0 for a Linux guest.
func (Arch) UserMode(reg func(name string) (uint64, error)) (bool, error) {
	cpsr, err := reg(RegCPSR)
	if err != nil {
		return false, err
	}
	return cpsr&0x10 != 0 || (cpsr>>2)&3 == 0, nil
}

// Translate walks the stage-1 page tables (4 KiB granule) to the physical
// address of va, reading descriptors with readPhys: TTBR1_EL1's tables for
// a kernel address, TTBR0_EL1's (the current task's) for a user one.
// QEMU's gdbstub translates a virtual address with the stopped CPU's
// current regime and permissions, so a CPU stopped in EL0 with E0PD (which
// Debian's kernels enable where the CPU has it, and -cpu max does) cannot
// read kernel memory, and one stopped in the kernel with PAN set (always,
// outside uaccess) cannot read user memory; the physical address can be
// read either way.
func (Arch) Translate(va uint64, reg func(name string) (uint64, error), readPhys func(pa uint64, n int) ([]byte, error)) (uint64, error) {
	ttbrReg := RegTTBR0
	if va&(1<<55) != 0 {
		ttbrReg = RegTTBR1
	}
	ttbr, err := reg(ttbrReg)
	if err != nil {
		return 0, err
	}
	tcr, err := reg(RegTCR)
	if err != nil {
		return 0, err
	}
	return walk(va, ttbr, tcr, readPhys)
}

// walk is Translate with the registers read: ttbr is TTBR1_EL1 for a
// kernel address (bit 55 set), TTBR0_EL1 for a user one.
func walk(va, ttbr, tcr uint64, readPhys func(pa uint64, n int) ([]byte, error)) (uint64, error) {
	kernel := va&(1<<55) != 0
	// TCR_EL1: T0SZ 5:0, EPD0 7, TG0 15:14 (0b00 4 KiB); T1SZ 21:16,
	// EPD1 23, TG1 31:30 (0b10 4 KiB).
	tsz, granule4K, disabled, half := tcr&0x3f, (tcr>>14)&3 == 0, tcr&(1<<7) != 0, "TTBR0"
	if kernel {
		tsz, granule4K, disabled, half = (tcr>>16)&0x3f, (tcr>>30)&3 == 2, tcr&(1<<23) != 0, "TTBR1"
	}
	if disabled {
		return 0, fmt.Errorf("arm64: %#x: walks of %s's tables are disabled (TCR_EL1 %#x)", va, half, tcr)
	}
	if !granule4K {
		return 0, fmt.Errorf("arm64: %#x: %s's granule is not 4 KiB (TCR_EL1 %#x): only the 4 KiB granule is supported", va, half, tcr)
	}
	if tsz < 16 || tsz > 39 {
		return 0, fmt.Errorf("arm64: %#x: %s's TxSZ=%d is outside 16..39", va, half, tsz)
	}
	vaBits := 64 - int(tsz)
	top := va >> uint(vaBits)
	if kernel && top != (1<<uint(64-vaBits))-1 || !kernel && top != 0 {
		return 0, fmt.Errorf("arm64: %#x is outside %s's %d-bit address space", va, half, vaBits)
	}
	const pageShift, levelBits = 12, 9
	const oaMask = 0x0000_ffff_ffff_f000 // output address bits 47:12
	levels := (vaBits - pageShift + levelBits - 1) / levelBits
	table := ttbr & 0x0000_ffff_ffff_fffe &^ 0x7 // BADDR, ASID and CnP cleared
	for level := 4 - levels; level <= 3; level++ {
		shift := uint(pageShift + levelBits*(3-level))
		idxBits := uint(levelBits)
		if level == 4-levels { // the first level may be narrower
			idxBits = uint(vaBits) - shift
		}
		idx := (va >> shift) & (1<<idxBits - 1)
		b, err := readPhys(table+8*idx, 8)
		if err != nil {
			return 0, fmt.Errorf("arm64: level %d descriptor of %#x at %#x: %w", level, va, table+8*idx, err)
		}
		desc := binary.LittleEndian.Uint64(b)
		switch {
		case desc&1 == 0:
			return 0, fmt.Errorf("arm64: %#x is not mapped (level %d descriptor %#x)", va, level, desc)
		case desc&2 == 0: // block
			if level == 0 || level == 3 {
				return 0, fmt.Errorf("arm64: level %d descriptor %#x of %#x is reserved", level, desc, va)
			}
			return desc&oaMask&^(1<<shift-1) | va&(1<<shift-1), nil
		case level == 3: // page
			return desc&oaMask | va&(1<<pageShift-1), nil
		}
		table = desc & oaMask
	}
	return 0, fmt.Errorf("arm64: walking %#x ended without a page", va)
}

// UserEnd returns 1<<48: TTBR0_EL1 maps VABits of user addresses.
func (Arch) UserEnd() uint64 { return 1 << VABits }

// GDB returns "gdb-multiarch" (Debian package gdb-multiarch): Debian's
// plain gdb on an amd64 host has no aarch64 support.
func (Arch) GDB() string { return "gdb-multiarch" }
