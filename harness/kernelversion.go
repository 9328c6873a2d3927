package harness

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kspec/kspec/guest"
	"github.com/kspec/kspec/kernel/linux"
	"github.com/kspec/kspec/symbols"
)

// KernelVersion returns the version of the Linux kernel that runs, read
// from the linux_banner of its vmlinux (which Boot has checked against the
// running kernel's memory), or from the guest's release when the target
// has no symbols. It is the zero Version for other guests and when
// neither says.
func (t *Target) KernelVersion() linux.Version {
	t.versionOnce.Do(func() { t.version, _ = kernelVersion(t.spec, t.syms) })
	return t.version
}

// FunctionName returns the name the running kernel gives the function
// known, in some kernel line, as name (kernel/linux's table of renames):
// "filename_mkdirat" for "do_mkdirat" on Linux 7.x. The name must be a
// function of this kernel (a symbol or inlined copies), else the error
// wraps ErrBadInput and says which version the table was asked about.
func (t *Target) FunctionName(name string) (string, error) {
	if !isLinux(t.spec) || t.syms == nil {
		return name, nil
	}
	v := t.KernelVersion()
	fn := linux.FunctionName(v, name)
	if _, err := t.syms.FirstOf(fn); err != nil {
		if !errors.Is(err, symbols.ErrUnknownSymbol) {
			return "", t.harnessErr("find "+fn, err)
		}
		return "", fmt.Errorf("%w: Linux %s calls %s %s, which this kernel does not have (names it has had: %s): %w",
			ErrBadInput, v, name, fn, strings.Join(linux.FunctionNames(name), ", "), err)
	}
	return fn, nil
}

// GuestKernelVersion returns the Linux version of a guest before it boots:
// its release (Spec.Version) when that reads as one, else the linux_banner
// of its symbol file. Suites use it to name their specs after the
// functions of the kernel they will run on.
func GuestKernelVersion(spec *guest.Spec) (linux.Version, error) {
	if !isLinux(spec) {
		return linux.Version{}, fmt.Errorf("%w: guest %s is %s, not Linux", ErrBadInput, spec.Name, spec.OS)
	}
	if v, err := linux.ParseRelease(spec.Version); err == nil {
		return v, nil
	}
	if spec.Symbols == "" {
		return linux.Version{}, fmt.Errorf("%w: guest %s has neither a release nor a symbol file to read its version from", ErrBadInput, spec.Name)
	}
	syms, err := symbols.Open(spec.Symbols)
	if err != nil {
		return linux.Version{}, fmt.Errorf("%w: symbols of guest %s: %w", ErrBadInput, spec.Name, err)
	}
	defer syms.Close()
	return kernelVersion(spec, syms)
}

// kernelVersion reads the version from the vmlinux banner, falling back
// to the guest's release.
func kernelVersion(spec *guest.Spec, syms *symbols.Table) (linux.Version, error) {
	if !isLinux(spec) {
		return linux.Version{}, nil
	}
	if syms != nil {
		release, err := linux.BannerRelease(syms)
		if err == nil {
			return linux.ParseRelease(release)
		}
		if spec.Version == "" {
			return linux.Version{}, err
		}
	}
	return linux.ParseRelease(spec.Version)
}

// isLinux reports whether the guest's OS (as the registry, guest.OSFor,
// maps its name) is Linux, whose versions these functions read.
func isLinux(spec *guest.Spec) bool {
	o, err := guest.OSFor(spec.OS)
	if err != nil {
		return false
	}
	_, ok := o.(linux.OS)
	return ok
}
