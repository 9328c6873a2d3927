// Package guest describes the guests kspec boots and talks to them.
//
// It owns three things:
//   - guest specs: a Spec says which kernel, debug symbols, initramfs or
//     disk image, command line and login make up a guest. Specs come from
//     the cache of prepared Debian guests (Prepare, Find) or from a small
//     JSON config file a user writes (LoadConfig);
//   - the cache (`kspec guest prepare`): Prepare builds a Debian guest from
//     Debian packages into <cache>/guests/<name>/<version>/;
//   - OS profiles and the console: ProfileFor says what an OS's getty, login
//     and shell print; Console logs in over a serial console and runs
//     commands.
//
// The cache, rooted at $KSPEC_CACHE or ~/.cache/kspec (see DefaultCacheDir):
//
//	<cache>/guests/<name>/.lock           flock held by a running Prepare
//	<cache>/guests/<name>/.tmp-*/         a build in progress (renamed when done)
//	<cache>/guests/<name>/<version>/      one prepared kernel release
//	    vmlinuz      the kernel (bzImage) from linux-image-<abi>-unsigned
//	    vmlinux      its debug ELF from linux-image-<abi>-dbg
//	    initrd.img   the busybox initramfs (initramfs.BuildBusybox)
//	    busybox      the static busybox it was built from (to build others)
//	    password     root's console password, mode 0600 (DefaultPassword)
//	    guest.json   the Spec, with paths relative to the directory
//	    manifest.json  packages, sizes, sha256s, vmlinux build ID, recipe
//
// The package knows nothing of QEMU processes, the gdb protocol or symbol
// tables: the supervisor boots what a Spec names and hands the console's
// pty to NewConsole.
package guest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/kspec/kspec/arch"
)

// Spec describes one bootable guest. Paths are absolute.
//
// The first seven JSON keys (name, os, arch, version, kernel, symbols,
// initrd) are always present and are a public contract of
// `kspec guest prepare --json`.
type Spec struct {
	// Name is the guest's name, e.g. "debian-cloud".
	Name string `json:"name"`
	// OS is "linux" or "freebsd" (see ProfileFor).
	OS string `json:"os"`
	// Arch is the guest's CPU architecture, a name package arch knows
	// (arch.Names; "x86_64"). Empty means DefaultArch.
	Arch string `json:"arch"`
	// Version is the kernel release as `uname -r` prints it in the guest
	// (e.g. "6.1.0-56-cloud-amd64"); empty if unknown.
	Version string `json:"version"`
	// Kernel is the kernel image QEMU boots with -kernel (a bzImage);
	// empty for guests that boot from Disk.
	Kernel string `json:"kernel"`
	// Symbols is the kernel's ELF with debug info (vmlinux, kernel.debug).
	Symbols string `json:"symbols"`
	// Initrd is the initramfs for -initrd; may be empty.
	Initrd string `json:"initrd"`
	// Disk is a disk image to attach (and boot from if Kernel is empty).
	Disk string `json:"disk,omitempty"`
	// Append is the kernel command line (-append); only with Kernel.
	Append string `json:"append,omitempty"`
	// User is the user to log in as on the serial console.
	User string `json:"user,omitempty"`
	// Password is User's password. It is never printed, logged or written
	// into JSON; prepared guests keep it in the file PasswordFile names.
	Password string `json:"-"`
	// PasswordFile is the file Password was read from, if any.
	PasswordFile string `json:"password_file,omitempty"`
	// MemoryMiB is the guest's RAM in MiB; 0 means DefaultMemoryMiB.
	MemoryMiB int `json:"memory_mib,omitempty"`
	// CPUs is the number of vCPUs; 0 means DefaultCPUs.
	CPUs int `json:"cpus,omitempty"`
	// Hostname is the guest's host name, as its prompts show it.
	Hostname string `json:"hostname,omitempty"`
}

// Defaults for specs that leave them out.
const (
	DefaultMemoryMiB = 256
	DefaultCPUs      = 1
	// DefaultPassword is root's password in prepared Debian guests. These
	// are throwaway test guests reachable only through their serial
	// console; the password exists so that login is a real exchange.
	DefaultPassword = "kspec-root"
)

// DefaultArch is the architecture of a guest whose config names none.
var DefaultArch = arch.Default().Name()

// CPU returns the guest's CPU architecture (DefaultArch when Arch is
// empty), or an error naming the architectures kspec supports.
func (s *Spec) CPU() (arch.Arch, error) {
	if s.Arch == "" {
		return arch.Default(), nil
	}
	return arch.Lookup(s.Arch)
}

// configFile is the JSON of a guest config file: Spec's keys plus the
// password itself.
type configFile struct {
	Name         string  `json:"name"`
	OS           string  `json:"os"`
	Arch         string  `json:"arch"`
	Version      string  `json:"version"`
	Kernel       string  `json:"kernel"`
	Symbols      string  `json:"symbols"`
	Initrd       string  `json:"initrd"`
	Disk         string  `json:"disk"`
	Append       *string `json:"append"`
	User         string  `json:"user"`
	Password     *string `json:"password"`
	PasswordFile string  `json:"password_file"`
	MemoryMiB    int     `json:"memory_mib"`
	CPUs         int     `json:"cpus"`
	Hostname     string  `json:"hostname"`
}

// configKeys lists the keys a config file may use, for error messages.
const configKeys = "name, os, arch, version, kernel, symbols, initrd, disk, append, user, password, password_file, memory_mib, cpus, hostname"

// LoadConfig reads a guest config file: a JSON object with the keys of
// Spec's JSON plus "password". Relative paths resolve against the file's
// directory, and "~/" against the home directory. For example, a FreeBSD
// guest booted from its disk image:
//
//	{
//	  "name": "freebsd-14",
//	  "os": "freebsd",
//	  "disk": "freebsd-14.1.img",
//	  "symbols": "kernel.debug",
//	  "user": "root",
//	  "password_file": "root-password",
//	  "memory_mib": 1024
//	}
//
// and a Linux guest booted from its kernel:
//
//	{
//	  "os": "linux",
//	  "kernel": "bzImage",
//	  "symbols": "vmlinux",
//	  "initrd": "initrd.img",
//	  "append": "console=ttyS0 nokaslr panic=-1",
//	  "password": "root"
//	}
//
// Keys: os (required: "linux" or "freebsd"); symbols (required); kernel,
// initrd, disk (Linux needs a kernel or a disk, FreeBSD a disk); append
// (default for Linux: "console=ttyS0 nokaslr panic=-1 quiet"); user
// (default root); password or password_file (one is required; "" for no
// password); name (default: the file's name without extension); arch
// (default x86_64); version (the kernel release; read from a Linux kernel
// image when left out); memory_mib (default 512); cpus (default 1);
// hostname. Unknown keys are errors, so that typos do not go unnoticed.
func LoadConfig(path string) (*Spec, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		return nil, fmt.Errorf("guest config: %w", err)
	}
	spec, err := parseConfig(data, filepath.Dir(abs), strings.TrimSuffix(filepath.Base(abs), filepath.Ext(abs)))
	if err != nil {
		return nil, fmt.Errorf("guest config %s: %w", abs, err)
	}
	// Symbols from another build put breakpoints in the wrong places: check
	// a kernel image against its symbols as the OS can (Linux: a bzImage
	// against its vmlinux; cheap, only the banner is read).
	if o, err := OSFor(spec.OS); err == nil && spec.Kernel != "" {
		if _, err := o.KernelRelease(spec.Kernel); err == nil {
			if err := o.CheckSymbolFile(spec.Kernel, spec.Symbols); err != nil {
				return nil, fmt.Errorf("guest config %s: symbols: %w", abs, err)
			}
		}
	}
	return spec, nil
}

// parseConfig decodes and validates a config; dir resolves relative paths.
func parseConfig(data []byte, dir, defaultName string) (*Spec, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var cf configFile
	if err := dec.Decode(&cf); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return nil, fmt.Errorf("not valid JSON at byte %d: %v", syn.Offset, err)
		case errors.As(err, &typ):
			want := map[bool]string{true: "a number", false: "a string"}[typ.Type.Kind() == reflect.Int]
			return nil, fmt.Errorf("%s: must be %s, not a JSON %s", typ.Field, want, typ.Value)
		case strings.Contains(err.Error(), "unknown field"):
			return nil, fmt.Errorf("%v; the known keys are %s", strings.TrimPrefix(err.Error(), "json: "), configKeys)
		}
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data after the JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON object")
	}
	s := &Spec{
		Name: cf.Name, OS: strings.ToLower(cf.OS), Arch: cf.Arch, Version: cf.Version,
		User: cf.User, MemoryMiB: cf.MemoryMiB, CPUs: cf.CPUs, Hostname: cf.Hostname,
	}
	if s.Name == "" {
		s.Name = defaultName
	}
	for _, f := range []struct {
		dst *string
		src string
	}{{&s.Kernel, cf.Kernel}, {&s.Symbols, cf.Symbols}, {&s.Initrd, cf.Initrd}, {&s.Disk, cf.Disk}, {&s.PasswordFile, cf.PasswordFile}} {
		p, err := resolvePath(dir, f.src)
		if err != nil {
			return nil, err
		}
		*f.dst = p
	}
	switch {
	case cf.Password != nil && cf.PasswordFile != "":
		return nil, errors.New(`password, password_file: give one of them, not both`)
	case cf.Password != nil:
		s.Password = *cf.Password
	case cf.PasswordFile != "":
		if err := CheckFile(s.PasswordFile, KindFile); err != nil {
			return nil, fmt.Errorf("password_file: %w", err)
		}
		pw, err := os.ReadFile(s.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("password_file: %w", err)
		}
		s.Password = strings.TrimRight(string(pw), "\r\n")
	default:
		return nil, errors.New(`password: missing; set "password" (the console login password, "" for none) or "password_file" (a file holding it)`)
	}
	if cf.Append != nil {
		s.Append = *cf.Append
	}
	if err := s.fillDefaults(cf.Append == nil); err != nil {
		return nil, err
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}

// resolvePath makes p absolute relative to dir; "" stays "".
func resolvePath(dir, p string) (string, error) {
	switch {
	case p == "":
		return "", nil
	case p == "~" || strings.HasPrefix(p, "~/"):
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		return filepath.Join(home, p[1:]), nil
	case filepath.IsAbs(p):
		return filepath.Clean(p), nil
	}
	return filepath.Join(dir, p), nil
}

// fillDefaults sets what a config may leave out.
func (s *Spec) fillDefaults(defaultAppend bool) error {
	if s.OS == "" {
		return fmt.Errorf(`os: missing; set "os" to one of %s`, quoteList(KnownOSes()))
	}
	o, err := OSFor(s.OS)
	if err != nil {
		return fmt.Errorf(`os: %q is not supported; set "os" to one of %s`, s.OS, quoteList(KnownOSes()))
	}
	p := o.Profile()
	if s.Arch == "" {
		s.Arch = DefaultArch
	}
	if s.User == "" {
		s.User = p.DefaultUser
	}
	if s.MemoryMiB == 0 {
		s.MemoryMiB = DefaultMemoryMiB
	}
	if s.CPUs == 0 {
		s.CPUs = DefaultCPUs
	}
	if defaultAppend && s.Kernel != "" {
		s.Append = p.DefaultAppend
	}
	if s.Kernel != "" && s.Version == "" {
		if rel, err := o.KernelRelease(s.Kernel); err == nil {
			s.Version = rel
		}
	}
	return nil
}

// Validate checks that s is complete and that the files it names exist
// (CheckFile: regular, readable, not empty; CheckFiles also checks their
// kinds).
// Its errors name the offending key and say how to fix it. Zero MemoryMiB
// and CPUs mean the defaults.
func (s *Spec) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	o, err := OSFor(s.OS)
	if err != nil {
		bad(`os: %q is not supported; use one of %s`, s.OS, quoteList(KnownOSes()))
	}
	if s.Name == "" || strings.ContainsAny(s.Name, `/\`) || strings.HasPrefix(s.Name, ".") {
		bad(`name: %q is not a usable guest name (no slashes, no leading dot)`, s.Name)
	}
	if _, err := arch.Lookup(s.Arch); err != nil {
		bad(`arch: %q is not supported; use one of %s`, s.Arch, quoteList(arch.Names()))
	}
	file := func(key, path, hint string) {
		if path == "" {
			return
		}
		if err := CheckFile(path, KindFile); err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				hint = ""
			}
			bad("%s: %v%s", key, err, hint)
		}
	}
	symHint := ""
	if o != nil {
		symHint = fmt.Sprintf(" (copy the guest's %s out of its image)", o.Profile().DefaultSymbols)
	}
	if s.Symbols == "" {
		bad(`symbols: missing; set "symbols" to the kernel's debug ELF%s`, symHint)
	}
	file("symbols", s.Symbols, symHint)
	file("kernel", s.Kernel, "")
	file("initrd", s.Initrd, "")
	file("disk", s.Disk, "")
	file("password_file", s.PasswordFile, "")
	if o != nil {
		for _, msg := range o.CheckBoot(s.Kernel, s.Initrd, s.Disk) {
			bad("%s", msg)
		}
	}
	if s.Kernel == "" && s.Initrd != "" {
		bad(`initrd: only used with "kernel"; remove it or set "kernel"`)
	}
	if s.Kernel == "" && s.Append != "" {
		bad(`append: only used with "kernel"; remove it or set "kernel"`)
	}
	if s.MemoryMiB != 0 && s.MemoryMiB < 64 {
		bad(`memory_mib: %d is too small; use at least 64 (0 means the default, %d)`, s.MemoryMiB, DefaultMemoryMiB)
	}
	if s.CPUs < 0 || s.CPUs > 64 {
		bad(`cpus: %d is out of range 1..64 (0 means the default, %d)`, s.CPUs, DefaultCPUs)
	}
	if s.User == "" {
		bad(`user: missing`)
	}
	return errors.Join(errs...)
}

func quoteList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// DefaultCacheDir returns the guest cache root: $KSPEC_CACHE, or kspec in
// the user's cache directory ($XDG_CACHE_HOME or ~/.cache).
func DefaultCacheDir() (string, error) {
	if d := os.Getenv("KSPEC_CACHE"); d != "" {
		return filepath.Abs(d)
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("guest: no cache directory (%v); set KSPEC_CACHE", err)
	}
	return filepath.Join(d, "kspec"), nil
}

// Lookup returns the guest a KSPEC_GUEST-style reference names: a path to
// a config file (anything with a path separator or a .json suffix) is
// loaded with LoadConfig, anything else is a prepared guest's name (Find).
func Lookup(ref, cacheDir string) (*Spec, error) {
	if strings.ContainsRune(ref, os.PathSeparator) || strings.HasSuffix(ref, ".json") {
		return LoadConfig(ref)
	}
	return Find(ref, cacheDir)
}

// KnownGuests lists the guests kspec prepares as a matter of course,
// sorted: debian-cloud and debian-generic (bookworm) and
// debian-<suite>-<flavour> for bookworm, trixie, sid and experimental, and
// the arm64 default guest debian-cloud-arm64. Prepare builds any suite the
// mirror carries, for amd64 or arm64 (see CanPrepare).
func KnownGuests() []string {
	names := []string{"debian-cloud-arm64"}
	for _, f := range debianFlavours {
		names = append(names, "debian-"+f)
		for _, s := range standardSuites {
			names = append(names, "debian-"+s+"-"+f)
		}
	}
	slices.Sort(names)
	return names
}
