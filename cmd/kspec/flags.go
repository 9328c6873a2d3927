package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/kspec/kspec/guest"
	"github.com/kspec/kspec/harness"
)

// guestFlags are the flags every booting command shares: which guest, and
// how to run it. Giving --kernel or --disk describes a guest on the command
// line instead of naming a prepared one.
type guestFlags struct {
	guest, cache, qemu, qemuData, accel string
	kernel, symbols, initrd, disk       string
	appendLine, osName, user, password  string
	memory, cpus                        int
}

func (g *guestFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&g.guest, "guest", "", "prepared guest name or guest config file (default $KSPEC_GUEST or "+harness.DefaultGuest+")")
	fs.StringVar(&g.cache, "cache", "", "guest cache directory (default $KSPEC_CACHE or ~/.cache/kspec)")
	fs.StringVar(&g.qemu, "qemu", "", "QEMU binary (default $KSPEC_QEMU or qemu-system-x86_64)")
	fs.StringVar(&g.qemuData, "qemu-data", "", "QEMU firmware/data directories (-L), ':'-separated (default $KSPEC_QEMU_DATA, else share/seabios and share/qemu beside --qemu)")
	fs.StringVar(&g.accel, "accel", "", "accelerator: auto, kvm or tcg (default $KSPEC_ACCEL or auto)")
	fs.StringVar(&g.kernel, "kernel", "", "boot this kernel image instead of a prepared guest's")
	fs.StringVar(&g.symbols, "symbols", "", "kernel symbol file (vmlinux, kernel.debug)")
	fs.StringVar(&g.initrd, "initrd", "", "initrd/initramfs for --kernel")
	fs.StringVar(&g.disk, "disk", "", "boot disk image (e.g. a FreeBSD image); never modified")
	fs.StringVar(&g.appendLine, "append", "", "kernel command line for --kernel")
	fs.StringVar(&g.osName, "os", "", "guest OS profile for a described guest: linux or freebsd")
	fs.StringVar(&g.user, "user", "", "login user for a described guest (default root)")
	fs.StringVar(&g.password, "password-file", "", "file holding the login password for a described guest")
	fs.IntVar(&g.memory, "memory", 0, "guest RAM in MiB (default: the guest's)")
	fs.IntVar(&g.cpus, "cpus", 0, "vCPUs (default: the guest's)")
}

// described reports whether the command line describes a guest itself.
func (g *guestFlags) described() bool { return g.kernel != "" || g.disk != "" }

// options turns the flags into harness options, reading a described guest's
// password from its file (never from the command line, where ps shows it).
func (g *guestFlags) options() (harness.Options, error) {
	o := harness.Options{
		Guest: g.guest, CacheDir: g.cache, QEMU: g.qemu, Accel: g.accel,
		MemoryMiB: g.memory, CPUs: g.cpus, QEMUData: harness.SplitDirList(g.qemuData),
	}
	for _, d := range o.QEMUData {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			return o, usagef("--qemu-data %s: not a directory (give QEMU's firmware directories, e.g. <prefix>/share/qemu)", d)
		}
	}
	switch g.accel {
	case "", "auto", "kvm", "tcg":
	default:
		return o, usagef("--accel %q: want auto, kvm or tcg", g.accel)
	}
	if !g.described() {
		if g.symbols != "" || g.initrd != "" || g.appendLine != "" || g.osName != "" {
			if g.symbols != "" && g.initrd == "" && g.appendLine == "" && g.osName == "" {
				return o, nil // --symbols alone is used by sym with the default guest
			}
			return o, usagef("--initrd, --append and --os describe a guest: give --kernel or --disk too, or put them in a guest config file (--guest FILE)")
		}
		return o, nil
	}
	spec := &guest.Spec{
		Name:    "custom",
		OS:      valueOr(g.osName, "linux"),
		Arch:    "x86_64",
		Kernel:  absOrEmpty(g.kernel),
		Symbols: absOrEmpty(g.symbols),
		Initrd:  absOrEmpty(g.initrd),
		Disk:    absOrEmpty(g.disk),
		Append:  g.appendLine,
		User:    valueOr(g.user, "root"),
	}
	if g.password != "" {
		data, err := os.ReadFile(g.password)
		if err != nil {
			return o, fmt.Errorf("%w: --password-file: %w", harness.ErrBadInput, err)
		}
		spec.Password = strings.TrimRight(string(data), "\r\n")
	}
	if spec.Kernel != "" && spec.Append == "" {
		spec.Append = "console=ttyS0 nokaslr panic=-1 quiet"
	}
	if spec.OS == guest.OSLinux && spec.Kernel != "" {
		// Name the kernel in progress and reports by the release its image
		// says (a non-bzImage, e.g. arm64, stays unnamed).
		if rel, err := guest.KernelRelease(spec.Kernel); err == nil {
			spec.Version = rel
		}
	}
	for flagName, p := range map[string]string{"--kernel": spec.Kernel, "--symbols": spec.Symbols, "--initrd": spec.Initrd, "--disk": spec.Disk} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err != nil {
			return o, fmt.Errorf("%w: %s %s: %w", harness.ErrBadInput, flagName, p, err)
		}
	}
	if _, err := guest.ProfileFor(spec.OS); err != nil {
		return o, fmt.Errorf("%w: --os: %w", harness.ErrBadInput, err)
	}
	if err := spec.Validate(); err != nil {
		return o, fmt.Errorf("%w: the guest described by flags: %w", harness.ErrBadInput, err)
	}
	o.Spec = spec
	return o, nil
}

func valueOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func absOrEmpty(p string) string {
	if p == "" {
		return ""
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// newFlagSet makes a flag set that reports errors instead of exiting.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("kspec "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parse parses args, turning flag errors into usage errors (exit 2).
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return exitError{code: exitOK}
		}
		return exitError{code: exitUsage, err: err}
	}
	return nil
}
