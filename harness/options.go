package harness

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/kspec/kspec/arch"
	"github.com/kspec/kspec/guest"
)

// DefaultGuest is the guest booted when nothing else is asked for.
const DefaultGuest = "debian-cloud"

// Options say which guest to boot and how. The zero value boots the default
// prepared guest with settings from the environment (see docs/architecture.md).
type Options struct {
	// Guest is a prepared guest's name or the path of a guest config file
	// (a user-described kernel, symbols, initrd or disk). Default: $KSPEC_GUEST
	// or DefaultGuest.
	Guest string
	// Spec, when set, is used as is instead of resolving Guest.
	Spec *guest.Spec
	// CacheDir is the guest cache root. Default: $KSPEC_CACHE or the user cache dir.
	CacheDir string
	// QEMU is the emulator binary. Default: $KSPEC_QEMU or the guest
	// architecture's (arch.Arch.QEMU).
	QEMU string
	// QEMUData are QEMU's firmware and data directories (-L), for a QEMU
	// not installed system-wide. Default: $KSPEC_QEMU_DATA (directories
	// separated by ':'), else the share/seabios and share/qemu next to the
	// QEMU binary when they exist (supervisor.DataDirs).
	QEMUData []string
	// Accel is "auto", "kvm" or "tcg". Default: $KSPEC_ACCEL or "auto".
	Accel string
	// MemoryMiB and CPUs override the guest's defaults when non-zero.
	MemoryMiB, CPUs int
	// BootTimeout bounds boot and login. Default 90 s (TCG on a busy machine).
	BootTimeout time.Duration
	// NoDebugger skips attaching the RSP client and loading symbols (for `exec`).
	NoDebugger bool
	// Transcript, when set, receives everything the guest prints.
	Transcript io.Writer
	// Logf, when set, receives progress lines ("booting", "logged in").
	Logf func(format string, args ...any)
}

func (o *Options) withDefaults() Options {
	out := *o
	if out.Guest == "" {
		out.Guest = os.Getenv("KSPEC_GUEST")
	}
	if out.Guest == "" {
		out.Guest = DefaultGuest
	}
	if out.QEMU == "" {
		out.QEMU = os.Getenv("KSPEC_QEMU")
	}
	if out.QEMUData == nil {
		out.QEMUData = SplitDirList(os.Getenv("KSPEC_QEMU_DATA"))
	}
	if out.Accel == "" {
		out.Accel = os.Getenv("KSPEC_ACCEL")
	}
	if out.Accel == "" {
		out.Accel = "auto"
	}
	if out.BootTimeout == 0 {
		out.BootTimeout = 90 * time.Second
	}
	if out.Logf == nil {
		out.Logf = func(string, ...any) {}
	}
	return out
}

// ResolveGuest turns Options into a guest description: the Spec given, a
// config file, or a prepared guest from the cache. A guest that has not been
// prepared yields an error wrapping ErrMissing with the command that fixes it.
func ResolveGuest(opts Options) (*guest.Spec, error) {
	o := opts.withDefaults()
	if o.Spec != nil {
		return o.Spec, nil
	}
	if looksLikePath(o.Guest) {
		spec, err := guest.LoadConfig(o.Guest)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadInput, err) // LoadConfig names the file
		}
		return spec, nil
	}
	spec, err := guest.Find(o.Guest, o.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMissing, err)
	}
	return spec, nil
}

func looksLikePath(s string) bool {
	return strings.ContainsRune(s, filepath.Separator) || strings.HasSuffix(s, ".json")
}

// qemuFor returns the emulator binary to run a guest of architecture cpu:
// qemu when set (Options.QEMU, $KSPEC_QEMU), else the architecture's.
func qemuFor(qemu string, cpu arch.Arch) string {
	if qemu != "" {
		return qemu
	}
	return cpu.QEMU()
}

// CheckQEMU verifies that the emulator binary (and qemu-img, which makes the
// snapshot scratch drive) can be found, and says how to install them if not.
// An empty qemu means the guest CPU's (cpu.QEMU; a nil cpu is
// arch.Default), whose Debian package the message names.
func CheckQEMU(qemu string, cpu arch.Arch) error {
	a := cpu
	if a == nil {
		a = arch.Default()
	}
	if qemu == "" {
		qemu = a.QEMU()
	}
	if _, err := exec.LookPath(qemu); err != nil {
		return fmt.Errorf("%w: %s not found (%v); install it with: apt-get update && apt-get install -y %s qemu-utils", ErrMissing, qemu, err, a.QEMUPackage())
	}
	if _, err := exec.LookPath("qemu-img"); err != nil {
		return fmt.Errorf("%w: qemu-img not found (%v); install it with: apt-get update && apt-get install -y qemu-utils", ErrMissing, err)
	}
	return nil
}

// SplitDirList splits a ':'-separated directory list (KSPEC_QEMU_DATA,
// --qemu-data), dropping empty entries; nil for an empty list.
func SplitDirList(list string) []string {
	var dirs []string
	for _, d := range filepath.SplitList(list) {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	return dirs
}
