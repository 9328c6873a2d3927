// Package arch is what kspec knows about guest CPU architectures, behind one
// small interface: register names for the program counter, stack and frame
// pointer, DWARF register numbering, integer argument registers, how the
// unwinder recognises a return address, the QEMU binary and machine
// defaults, and the gdbstub's target.xml architecture name.
//
// Each architecture is a package of its own (arch/amd64, ...) that imports
// nothing of kspec; this package lists them. Adding an architecture is a new
// folder plus one line in known below. Nothing here imports the harness.
package arch

import (
	"debug/elf"
	"fmt"
	"slices"
	"strings"

	"github.com/kspec/kspec/arch/amd64"
	"github.com/kspec/kspec/arch/arm64"
)

// Arch is one CPU architecture as kspec's harness, unwinder and supervisor
// need it. Implementations are stateless values.
type Arch interface {
	// Name is the guest config's "arch" value ("x86_64").
	Name() string
	// ELFMachine is the e_machine of the architecture's kernel ELF files.
	ELFMachine() elf.Machine
	// GDBArchitecture is the <architecture> of QEMU's target.xml
	// ("i386:x86-64").
	GDBArchitecture() string

	// PC, SP and Frame are the gdbstub register names of the program
	// counter, stack pointer and frame pointer ("rip", "rsp", "rbp").
	PC() string
	SP() string
	Frame() string
	// DWARFRegisters maps the gdbstub names of the general registers to
	// their DWARF numbers (the psABI's numbering). The map is shared: do
	// not modify it.
	DWARFRegisters() map[string]int
	// DWARFPC and DWARFSP are the DWARF numbers the unwinder uses for the
	// program counter (return-address column) and the stack pointer.
	DWARFPC() int
	DWARFSP() int
	// ArgRegisters are the gdbstub names of the registers that carry a
	// function's integer and pointer arguments at its entry, in order.
	ArgRegisters() []string
	// KernelBase is the lowest kernel virtual address: a return address
	// below it has left the kernel.
	KernelBase() uint64
	// UserEnd is the end of user space: every user address lies below it
	// (x86-64's 47-bit half, arm64's 48 bits of TTBR0).
	UserEnd() uint64
	// CodeAddress turns a saved return address into a code address
	// (arm64 strips pointer-authentication bits; amd64 returns it as is).
	CodeAddress(v uint64) uint64

	// LeafReturn unwinds a function that has not set up a frame (an
	// assembler leaf without call-frame information): from its registers
	// by DWARF number it returns the return address and its caller's
	// registers. ok is false when the registers or memory cannot say.
	LeafReturn(regs map[int]uint64, read func(addr uint64, n int) ([]byte, error)) (ret uint64, caller map[int]uint64, ok bool)
	// CallWindow is how many bytes before a return address FollowsCall
	// needs.
	CallWindow() int
	// FollowsCall reports whether code, the CallWindow bytes that end at a
	// return address, ends with a call instruction.
	FollowsCall(code []byte) bool

	// QEMU is the system emulator binary (a name on $PATH) and
	// QEMUPackage the Debian package that installs it.
	QEMU() string
	QEMUPackage() string
	// Machine is the default -machine value ("" leaves QEMU's default).
	Machine() string
	// CPU is the default -cpu value under TCG ("" leaves QEMU's default;
	// KVM always uses "host").
	CPU() string
	// PanicDevice is the QEMU device that reports a guest panic on
	// Machine ("pvpanic" on x86's ISA bus, "pvpanic-pci" elsewhere).
	PanicDevice() string
	// Console is the guest's name of the serial port QEMU's -serial is
	// ("ttyS0", "ttyAMA0").
	Console() string
	// DebianArch is Debian's name of the architecture ("amd64", "arm64").
	DebianArch() string
	// GDB is the gdb that debugs this CPU's kernels on a Debian host, for
	// the commands kspec prints ("gdb" on amd64, "gdb-multiarch" for a
	// foreign CPU).
	GDB() string

	// UserMode reports whether a stopped CPU, whose registers reg reads
	// by gdbstub name, runs user code (x86's CPL 3, arm64's EL0).
	UserMode(reg func(name string) (uint64, error)) (bool, error)
}

// PageWalker is an Arch whose kernel addresses kspec translates itself
// when the gdbstub cannot read them in the stopped CPU's current state
// (QEMU translates with the CPU's current regime: arm64 at EL0 with E0PD
// faults on every kernel address). Translate returns the physical address
// of the kernel virtual address va, reading registers with reg and page
// table descriptors with readPhys.
type PageWalker interface {
	Translate(va uint64, reg func(name string) (uint64, error), readPhys func(pa uint64, n int) ([]byte, error)) (uint64, error)
}

// known lists every architecture kspec supports, the default first.
var known = []Arch{
	amd64.Arch{},
	arm64.Arch{},
}

// Default is the architecture guests have when their config names none.
func Default() Arch { return known[0] }

// Lookup returns the architecture whose Name is name (case-insensitive).
func Lookup(name string) (Arch, error) {
	for _, a := range known {
		if strings.EqualFold(a.Name(), name) {
			return a, nil
		}
	}
	return nil, fmt.Errorf("arch: %q is not supported (known: %s)", name, strings.Join(Names(), ", "))
}

// ForDebian returns the architecture Debian calls name ("amd64", "arm64").
func ForDebian(name string) (Arch, error) {
	for _, a := range known {
		if a.DebianArch() == name {
			return a, nil
		}
	}
	debs := make([]string, 0, len(known))
	for _, a := range known {
		debs = append(debs, a.DebianArch())
	}
	return nil, fmt.Errorf("arch: Debian architecture %q is not supported (known: %s)", name, strings.Join(debs, ", "))
}

// ForELF returns the architecture of kernels built for machine.
func ForELF(machine elf.Machine) (Arch, error) {
	for _, a := range known {
		if a.ELFMachine() == machine {
			return a, nil
		}
	}
	return nil, fmt.Errorf("arch: no architecture package for %v (known: %s)", machine, strings.Join(Names(), ", "))
}

// Names lists the supported architectures' names, sorted.
func Names() []string {
	names := make([]string, 0, len(known))
	for _, a := range known {
		names = append(names, a.Name())
	}
	slices.Sort(names)
	return names
}
