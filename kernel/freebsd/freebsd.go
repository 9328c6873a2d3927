// Package freebsd is what kspec knows about FreeBSD guests: the serial
// console profile (getty, csh or sh), booting from a disk image, finding
// curthread and the system call entry names. It implements kernel.OS and
// never imports the harness.
package freebsd

import (
	"fmt"
	"regexp"

	"github.com/kspec/kspec/arch"
	"github.com/kspec/kspec/kernel"
	"github.com/kspec/kspec/symbols"
)

// Name is the guest config's "os" value for FreeBSD guests.
const Name = "freebsd"

// OS is FreeBSD. The zero value is ready to use.
type OS struct{}

var _ kernel.OS = OS{}

// Name returns "freebsd".
func (OS) Name() string { return Name }

var profile = &kernel.Profile{
	OS:             Name,
	LoginPrompt:    regexp.MustCompile(`login: *\z`),
	PasswordPrompt: regexp.MustCompile(`(?i)password: *\z`),
	ShellPrompt:    kernel.ShellPrompt,
	LoginIncorrect: regexp.MustCompile(`Login incorrect`),
	DefaultUser:    "root",
	Enter:          "\n",
	// root's shell is sh since FreeBSD 14 and csh before; csh cannot run
	// the marker protocol, so always continue in sh.
	PreSetup:       []string{"exec /bin/sh"},
	Setup:          kernel.PosixSetup,
	DefaultSymbols: "/usr/lib/debug/boot/kernel/kernel.debug",
}

// Profile returns FreeBSD's console profile. Its kernel messages carry no
// timestamp, so they cannot be told apart from program output (no
// KernelLine).
func (OS) Profile() *kernel.Profile { return profile }

// Messages returns no patterns: without a KernelLine no console line
// reaches the kernel watch as a kernel message.
func (OS) Messages() *kernel.Messages { return &kernel.Messages{} }

// CheckBoot requires a disk image and no kernel: FreeBSD boots through its
// image's loader.
func (OS) CheckBoot(kernelImage, initrd, disk string) []string {
	var bad []string
	if disk == "" {
		bad = append(bad, `disk: missing; a FreeBSD guest boots from its disk image (with console="comconsole" in /boot/loader.conf): set "disk"`)
	}
	if kernelImage != "" {
		bad = append(bad, `kernel: FreeBSD guests boot through their disk image's loader; remove "kernel"`)
	}
	return bad
}

// KernelRelease is not read from FreeBSD kernels.
func (OS) KernelRelease(kernelImage string) (string, error) {
	return "", fmt.Errorf("freebsd: the release of kernel %s is not read from the file", kernelImage)
}

// CheckSymbolFile cannot tell before boot (nil).
func (OS) CheckSymbolFile(kernelImage, symbols string) error { return nil }

// VerifyRunning does not check FreeBSD kernels (nil).
func (OS) VerifyRunning(*symbols.Table, kernel.Boot, func(uint64, int) ([]byte, error)) error {
	return nil
}

// SyscallEntry returns "sys_" + call, the handler syscallenter calls with
// the thread and its argument struct on every architecture.
func (OS) SyscallEntry(call string, a arch.Arch) (string, error) { return "sys_" + call, nil }

// EntryFunction knows no FreeBSD entry points yet: backtraces end where the
// call-frame information does.
func (OS) EntryFunction(fn string, a arch.Arch) bool { return false }
