package guest

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// OS names used in Spec.OS and by ProfileFor.
const (
	OSLinux   = "linux"
	OSFreeBSD = "freebsd"
)

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
	// turn off the tty's echo and onlcr (see Console) and PS2.
	Setup string
	// DefaultAppend is the kernel command line for kernels kspec boots
	// directly (-kernel); empty for OSes booted from a disk image.
	DefaultAppend string
	// DefaultSymbols is where the OS keeps its kernel's debug symbols, for
	// error messages ("copy it out of the image").
	DefaultSymbols string
}

// posixSetup makes a POSIX sh on a tty machine-friendly: no echo of the
// commands sent, bare '\n' line ends from programs (so that kernel messages,
// which end in "\r\n", can be told apart), no continuation prompt and a
// terminal type that keeps programs from drawing.
const posixSetup = "stty -echo -onlcr 2>/dev/null; PS2=''; TERM=dumb; export TERM"

// shellPrompt matches the end of a prompt such as "root@kspec:~# " or
// "# ", possibly followed by terminal queries (busybox ash asks for the
// cursor position with ESC [ 6 n after printing its prompt).
var shellPrompt = regexp.MustCompile(`[#$%>] (?:\x1b\[[0-9;?]*[A-Za-z])*\z`)

var profiles = map[string]*Profile{
	OSLinux: {
		OS:             OSLinux,
		LoginPrompt:    regexp.MustCompile(`login: *\z`),
		PasswordPrompt: regexp.MustCompile(`(?i)password: *\z`),
		ShellPrompt:    shellPrompt,
		LoginIncorrect: regexp.MustCompile(`Login incorrect`),
		KernelLine:     regexp.MustCompile(`\[ *\d+\.\d{6}\]`),
		DefaultUser:    "root",
		Enter:          "\n",
		Setup:          posixSetup,
		DefaultAppend:  "console=ttyS0 nokaslr panic=-1 quiet",
		DefaultSymbols: "/usr/lib/debug/boot/vmlinux-$(uname -r)",
	},
	OSFreeBSD: {
		OS:             OSFreeBSD,
		LoginPrompt:    regexp.MustCompile(`login: *\z`),
		PasswordPrompt: regexp.MustCompile(`(?i)password: *\z`),
		ShellPrompt:    shellPrompt,
		LoginIncorrect: regexp.MustCompile(`Login incorrect`),
		DefaultUser:    "root",
		Enter:          "\n",
		// root's shell is sh since FreeBSD 14 and csh before; csh cannot run
		// the marker protocol, so always continue in sh.
		PreSetup:       []string{"exec /bin/sh"},
		Setup:          posixSetup,
		DefaultSymbols: "/usr/lib/debug/boot/kernel/kernel.debug",
	},
}

// ProfileFor returns the console profile of an operating system ("linux" or
// "freebsd"). The returned Profile is shared: do not modify it.
func ProfileFor(os string) (*Profile, error) {
	if p, ok := profiles[strings.ToLower(os)]; ok {
		return p, nil
	}
	return nil, fmt.Errorf("guest: unknown OS %q (known: %s)", os, strings.Join(KnownOSes(), ", "))
}

// KnownOSes lists the OS names ProfileFor accepts, sorted.
func KnownOSes() []string {
	names := make([]string, 0, len(profiles))
	for n := range profiles {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
