// Package kernel is the interface between kspec and what it knows about one
// guest operating system. Each OS is a package of its own (kernel/linux,
// kernel/freebsd) implementing OS; package guest keeps the registry that
// maps a guest config's "os" to it, so adding an OS is a new folder plus one
// line there. This package and the OS packages never import the harness.
package kernel

import (
	"regexp"

	"github.com/kspec/kspec/arch"
	"github.com/kspec/kspec/symbols"
)

// OS is everything kspec's guest and harness packages need to know about one
// guest operating system. Implementations are stateless values.
type OS interface {
	// Name is the guest config's "os" value ("linux").
	Name() string
	// Profile is how the OS behaves on its serial console, its default
	// kernel command line and where it keeps its debug symbols. The
	// returned Profile is shared: do not modify it.
	Profile() *Profile
	// Messages are the patterns of the OS's kernel failure messages.
	Messages() *Messages
	// CheckBoot returns what is wrong with a guest config's boot source
	// for this OS (kernel image, initrd, disk image; empty when unset), as
	// messages naming the config key and how to fix it.
	CheckBoot(kernel, initrd, disk string) []string
	// KernelRelease reads the release (what `uname -r` prints) from a
	// kernel image; an error when the image's format does not say.
	KernelRelease(kernelImage string) (string, error)
	// CheckSymbolFile checks, before boot, that symbols (the kernel's
	// debug ELF) were built with kernelImage; nil when the OS cannot tell.
	CheckSymbolFile(kernelImage, symbols string) error
	// VerifyRunning checks that syms are the symbols of the kernel running
	// in the guest, reading its memory with read (an error from read means
	// nothing is mapped there). Any error it returns is a mismatch that
	// names both sides and says how to fix it; nil when the OS cannot tell.
	VerifyRunning(syms *symbols.Table, boot Boot, read func(addr uint64, n int) ([]byte, error)) error
	// NewTaskFinder resolves, once per guest, the symbols and struct
	// offsets that finding the current task needs.
	NewTaskFinder(env Env) (TaskFinder, error)
	// SyscallEntry names the kernel function a system call enters first on
	// architecture a ("mkdir" on Linux x86_64: "__x64_sys_mkdir").
	SyscallEntry(call string, a arch.Arch) (string, error)
	// EntryFunction reports whether fn is where a task enters the kernel
	// (a system call) or starts running (a new task) on architecture a: a
	// backtrace that ends there has reached the user/kernel boundary.
	EntryFunction(fn string, a arch.Arch) bool
}

// Boot is how the running kernel was started, as far as VerifyRunning needs
// it.
type Boot struct {
	// Direct is true when QEMU loaded the kernel itself (-kernel), so
	// Append is its whole command line; false for a disk boot.
	Direct bool
	// Append is the kernel command line of a direct boot.
	Append string
}

// Profile describes how one guest operating system behaves on its serial
// console: what its getty, login and shell print, and how to turn the
// logged-in shell into one a program can drive. The prompt patterns are
// matched against the console text that follows the previous match, with
// kernel messages already cut out; a pattern that ends in \z must be the
// last thing the guest printed.
type Profile struct {
	// OS is the Spec.OS value this profile is for.
	OS string
	// LoginPrompt matches getty's prompt for a user name.
	LoginPrompt *regexp.Regexp
	// PasswordPrompt matches login's prompt for the password.
	PasswordPrompt *regexp.Regexp
	// ShellPrompt matches an interactive shell waiting for a command.
	ShellPrompt *regexp.Regexp
	// LoginIncorrect matches login's message for a wrong user or password.
	LoginIncorrect *regexp.Regexp
	// KernelLine matches the start of a kernel console message (Linux's
	// "[   12.345678]" timestamp); nil if the OS's messages cannot be told
	// apart from program output.
	KernelLine *regexp.Regexp
	// DefaultUser is the user to log in as when a Spec names none.
	DefaultUser string
	// Enter ends every line sent to the guest.
	Enter string
	// PreSetup lines are sent one at a time right after login, each followed
	// by a wait for ShellPrompt; they must leave a POSIX sh running (e.g.
	// "exec /bin/sh" when root's login shell may be csh).
	PreSetup []string
	// Setup is a POSIX sh command run (with markers) after PreSetup. It must
	// turn off the tty's echo and onlcr (see guest.Console) and PS2.
	Setup string
	// DefaultAppend is the kernel command line for kernels kspec boots
	// directly (-kernel); empty for OSes booted from a disk image.
	DefaultAppend string
	// DefaultSymbols is where the OS keeps its kernel's debug symbols, for
	// error messages ("copy it out of the image").
	DefaultSymbols string
}

// PosixSetup makes a POSIX sh on a tty machine-friendly: no echo of the
// commands sent, bare '\n' line ends from programs (so that kernel messages,
// which end in "\r\n", can be told apart), no continuation prompt and a
// terminal type that keeps programs from drawing.
const PosixSetup = "stty -echo -onlcr 2>/dev/null; PS2=''; TERM=dumb; export TERM"

// ShellPrompt matches the end of a prompt such as "root@kspec:~# " or
// "# ", possibly followed by terminal queries (busybox ash asks for the
// cursor position with ESC [ 6 n after printing its prompt).
var ShellPrompt = regexp.MustCompile(`[#$%>] (?:\x1b\[[0-9;?]*[A-Za-z])*\z`)

// Failure is one kind of kernel failure and the text that starts it.
type Failure struct {
	// Kind is "panic" (the kernel is dead) or "oops" (it may go on).
	Kind string
	// Pattern matches the failure's first message line, timestamp removed.
	Pattern *regexp.Regexp
}

// Messages are the patterns the harness's kernel watch looks for in the
// kernel's console messages (the lines Profile.KernelLine tells apart).
type Messages struct {
	// Failures are tried in order on a window of recent lines; the first
	// match wins.
	Failures []Failure
	// Stamp matches the prefix (a timestamp, a log level) to remove from
	// the start of a message before matching.
	Stamp *regexp.Regexp
	// ReportEnd starts the last line of an oops report: oops lines before
	// it belong to the same failure.
	ReportEnd string
	// EndOfPanic matches the last line the kernel prints for a panic.
	EndOfPanic *regexp.Regexp
}
