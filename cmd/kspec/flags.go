package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/kspec/kspec/arch"
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
	fs.StringVar(&g.qemu, "qemu", "", "QEMU binary (default $KSPEC_QEMU or "+arch.Default().QEMU()+")")
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

// onlySymbols reports whether --symbols is the only flag naming a guest.
func (g *guestFlags) onlySymbols() bool {
	return g.guest == "" && g.kernel == "" && g.initrd == "" && g.disk == "" && g.appendLine == "" &&
		g.osName == "" && g.user == "" && g.password == ""
}

// fileFlag is a flag that names a file, and what the file must be.
type fileFlag struct {
	name, path string
	kind       guest.FileKind
}

func (g *guestFlags) fileFlags() []fileFlag {
	kernelKind := guest.KindBzImage
	if g.osName != "" && g.osName != guest.OSLinux {
		kernelKind = guest.KindFile
	}
	ff := []fileFlag{
		{"--symbols", g.symbols, guest.KindELF},
		{"--kernel", g.kernel, kernelKind},
		{"--initrd", g.initrd, guest.KindFile},
		{"--disk", g.disk, guest.KindFile},
		{"--password-file", g.password, guest.KindFile},
	}
	if looksLikeConfig(g.guest) {
		ff = append(ff, fileFlag{"--guest", g.guest, guest.KindFile})
	}
	return ff
}

// looksLikeConfig reports whether a --guest value names a config file
// rather than a prepared guest (the rule of guest.Lookup).
func looksLikeConfig(ref string) bool {
	return strings.ContainsRune(ref, filepath.Separator) || strings.HasSuffix(ref, ".json")
}

// checkFiles checks every file a flag names (guest.CheckFile: it exists,
// is a readable non-empty regular file, and a --kernel is a bzImage, a
// --symbols an ELF). It is the first thing options does; sym, which may
// need nothing but --symbols, calls it alone.
func (g *guestFlags) checkFiles() error {
	for _, f := range g.fileFlags() {
		if f.path == "" {
			continue
		}
		if err := guest.CheckFile(f.path, f.kind); err != nil {
			return fmt.Errorf("%w: %s %w", harness.ErrBadInput, f.name, err)
		}
	}
	return nil
}

// options turns the flags into harness options with the guest resolved
// (Options.Spec set), and checks, before anything boots, every file a flag
// or the guest names. It is the one place every command that boots (exec,
// probe, boot; sym for its symbols) turns guest flags into a guest:
//
//   - --kernel or --disk describe a guest of their own (with --initrd,
//     --append, --os, --user, --password-file); they cannot be combined
//     with --guest.
//   - Otherwise the guest is --guest (a prepared guest or a config file),
//     $KSPEC_GUEST or the default guest. --symbols then replaces that
//     guest's symbol file, and --memory/--cpus its sizes; the flags that
//     only describe a guest are errors, never silently dropped.
//
// The password of a described guest is read from its file, never taken
// from the command line, where ps shows it.
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
	if err := g.checkFiles(); err != nil {
		return o, err
	}
	var spec *guest.Spec
	if g.described() {
		var err error
		if spec, err = g.describedSpec(); err != nil {
			return o, err
		}
	} else {
		var only []string
		for _, f := range []struct{ name, val string }{{"--initrd", g.initrd}, {"--append", g.appendLine}, {"--os", g.osName}, {"--user", g.user}, {"--password-file", g.password}} {
			if f.val != "" {
				only = append(only, f.name)
			}
		}
		if len(only) > 0 {
			return o, usagef("%s: only for a guest described on the command line (with --kernel or --disk) or in its own config file (--guest FILE); a prepared or configured guest's cannot be changed by flags", strings.Join(only, ", "))
		}
		resolved, err := harness.ResolveGuest(o)
		if err != nil {
			return o, err
		}
		s := *resolved // never change a cached Spec
		spec = &s
		if g.symbols != "" {
			spec.Symbols = absOrEmpty(g.symbols)
		}
	}
	if err := spec.CheckFiles(); err != nil {
		what := "guest " + spec.Name
		if ref := valueOr(g.guest, os.Getenv("KSPEC_GUEST")); !g.described() && looksLikeConfig(ref) {
			what = "guest config " + absOrEmpty(ref)
		}
		if g.symbols != "" && spec.Symbols == absOrEmpty(g.symbols) {
			what += " (symbols from --symbols)"
		}
		return o, fmt.Errorf("%w: %s: %w", harness.ErrBadInput, what, err)
	}
	o.Spec = spec
	return o, nil
}

// checkGuestConfig checks a guest config file a flag names, and every
// file the config names, as options does for --guest FILE.
func checkGuestConfig(flagName, path string) error {
	if err := guest.CheckFile(path, guest.KindFile); err != nil {
		return fmt.Errorf("%w: %s %w", harness.ErrBadInput, flagName, err)
	}
	spec, err := guest.LoadConfig(path)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", harness.ErrBadInput, flagName, err) // LoadConfig names the file
	}
	if err := spec.CheckFiles(); err != nil {
		return fmt.Errorf("%w: %s: guest config %s: %w", harness.ErrBadInput, flagName, path, err)
	}
	return nil
}

// describedSpec is the guest --kernel or --disk describe.
func (g *guestFlags) describedSpec() (*guest.Spec, error) {
	if g.guest != "" {
		return nil, usagef("--guest %s and --kernel/--disk both name a guest: give one (to change a prepared guest's kernel, write a guest config file)", g.guest)
	}
	osName := valueOr(g.osName, guest.OSLinux)
	if _, err := guest.ProfileFor(osName); err != nil {
		return nil, fmt.Errorf("%w: --os: %w", harness.ErrBadInput, err)
	}
	switch {
	case g.kernel == "" && g.initrd != "":
		return nil, usagef("--initrd is only loaded with --kernel; a --disk guest boots its own (drop --initrd or give --kernel)")
	case g.kernel == "" && g.appendLine != "":
		return nil, usagef("--append is the command line of --kernel; a --disk guest's loader sets its own (drop --append or give --kernel)")
	case g.kernel != "" && osName == guest.OSFreeBSD:
		return nil, usagef("--kernel cannot boot a FreeBSD guest: it boots through its disk image's loader (drop --kernel, give --disk)")
	}
	spec := &guest.Spec{
		Name:         "custom",
		OS:           osName,
		Arch:         guest.DefaultArch,
		Kernel:       absOrEmpty(g.kernel),
		Symbols:      absOrEmpty(g.symbols),
		Initrd:       absOrEmpty(g.initrd),
		Disk:         absOrEmpty(g.disk),
		Append:       g.appendLine,
		User:         valueOr(g.user, "root"),
		PasswordFile: absOrEmpty(g.password),
	}
	if g.password != "" {
		data, err := os.ReadFile(g.password)
		if err != nil {
			return nil, fmt.Errorf("%w: --password-file: %w", harness.ErrBadInput, err)
		}
		spec.Password = strings.TrimRight(string(data), "\r\n")
	}
	if spec.Kernel != "" && spec.Append == "" {
		spec.Append = "console=ttyS0 nokaslr panic=-1 quiet"
	}
	if spec.OS == guest.OSLinux && spec.Kernel != "" {
		// Name the kernel in progress and reports by the release its image
		// says.
		if rel, err := guest.KernelRelease(spec.Kernel); err == nil {
			spec.Version = rel
		}
	}
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("%w: the guest described by flags: %w", harness.ErrBadInput, err)
	}
	return spec, nil
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
