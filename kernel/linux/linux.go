// Package linux is what kspec knows about Linux guests: the serial console
// profile, kernel failure messages (panic, oops), finding the current task,
// system call entry names, checking that a vmlinux matches the bzImage and
// the running kernel, the default kernel command line and version facts
// (versions.go). It implements kernel.OS and never imports the harness.
package linux

import (
	"regexp"
	"strings"

	"github.com/kspec/kspec/arch"
	"github.com/kspec/kspec/kernel"
)

// Name is the guest config's "os" value for Linux guests.
const Name = "linux"

// OS is Linux. The zero value is ready to use.
type OS struct{}

var _ kernel.OS = OS{}

// Name returns "linux".
func (OS) Name() string { return Name }

var profile = &kernel.Profile{
	OS:             Name,
	LoginPrompt:    regexp.MustCompile(`login: *\z`),
	PasswordPrompt: regexp.MustCompile(`(?i)password: *\z`),
	ShellPrompt:    kernel.ShellPrompt,
	LoginIncorrect: regexp.MustCompile(`Login incorrect`),
	KernelLine:     regexp.MustCompile(`\[ *\d+\.\d{6}\]`),
	DefaultUser:    "root",
	Enter:          "\n",
	Setup:          kernel.PosixSetup,
	DefaultAppend:  DefaultAppend,
	DefaultSymbols: "/usr/lib/debug/boot/vmlinux-$(uname -r)",
}

// DefaultAppend is the kernel command line of directly booted kernels:
// the serial console, KASLR off (so that DWARF addresses are the runtime
// ones) and a reboot on panic (QEMU runs with -no-reboot, so it exits).
const DefaultAppend = "console=ttyS0 nokaslr panic=-1 quiet"

// AppendFor is DefaultAppend with the console of cpu (ttyAMA0 on arm64).
func AppendFor(cpu arch.Arch) string {
	return strings.Replace(DefaultAppend, "console=ttyS0", "console="+cpu.Console(), 1)
}

// Profile returns Linux's console profile: getty's login, a POSIX sh, and
// printk's "[   12.345678]" timestamps telling kernel messages apart.
func (OS) Profile() *kernel.Profile { return profile }

// messages are printk's failure reports. The patterns are anchored at the
// start of a message (after the timestamp and an optional log level or CPU
// prefix), so a command that merely prints "BUG:" on its own output does
// not count: only kernel messages reach the matcher anyway.
var messages = &kernel.Messages{
	Failures: []kernel.Failure{
		{Kind: "panic", Pattern: regexp.MustCompile(`Kernel panic - not syncing:? ?[^\n]*`)},
		{Kind: "oops", Pattern: regexp.MustCompile(`(?m)^BUG: [^\n]*`)},
		{Kind: "oops", Pattern: regexp.MustCompile(`(?m)^Oops: [^\n]*`)},
		{Kind: "oops", Pattern: regexp.MustCompile(`(?m)^general protection fault[^\n]*`)},
		{Kind: "oops", Pattern: regexp.MustCompile(`(?m)^kernel BUG at [^\n]*`)},
		{Kind: "oops", Pattern: regexp.MustCompile(`(?m)^Unable to handle kernel [^\n]*`)},
	},
	// A printk timestamp with an optional caller id ("[    4.05] ",
	// "[    4.05][    T1] ").
	Stamp:      regexp.MustCompile(`^\s*(?:<\d>)?\[ *\d+\.\d+\](?:\[ *[TC]\d+\])? ?`),
	ReportEnd:  "---[ end trace",
	EndOfPanic: regexp.MustCompile(`---\[ end Kernel panic`),
}

// Messages returns printk's panic and oops patterns.
func (OS) Messages() *kernel.Messages { return messages }

// CheckBoot requires a kernel image or a bootable disk.
func (OS) CheckBoot(kernelImage, initrd, disk string) []string {
	if kernelImage == "" && disk == "" {
		return []string{`kernel: missing; a Linux guest needs "kernel" (a bzImage, with "initrd" or "disk") or a bootable "disk"`}
	}
	return nil
}

// SyscallEntry returns the system call wrapper that a command calling
// call enters on a (see SyscallEntry).
func (OS) SyscallEntry(call string, a arch.Arch) (string, error) {
	return SyscallEntry(a, call)
}

// EntryFunction reports whether fn is one of the architecture's kernel
// entry points (system call entries, ret_from_fork).
func (OS) EntryFunction(fn string, a arch.Arch) bool {
	facts, ok := archFacts[a.Name()]
	if !ok {
		return false
	}
	for _, e := range facts.entries {
		if e == fn {
			return true
		}
	}
	return false
}
