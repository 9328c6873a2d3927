package guest

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kspec/kspec/kernel"
	"github.com/kspec/kspec/kernel/freebsd"
	"github.com/kspec/kspec/kernel/linux"
)

// oses is the registry of guest operating systems by Spec.OS name. Each OS
// is a package under kernel/ implementing kernel.OS; adding one is that
// package plus one line here.
var oses = map[string]kernel.OS{
	linux.Name:   linux.OS{},
	freebsd.Name: freebsd.OS{},
}

// OS names used in Spec.OS and by OSFor.
const (
	OSLinux   = linux.Name
	OSFreeBSD = freebsd.Name
)

// Profile describes how one guest operating system behaves on its serial
// console (see kernel.Profile; each OS package owns its profile).
type Profile = kernel.Profile

// OSFor returns what kspec knows about an operating system ("linux" or
// "freebsd", case-insensitive).
func OSFor(os string) (kernel.OS, error) {
	if o, ok := oses[strings.ToLower(os)]; ok {
		return o, nil
	}
	return nil, fmt.Errorf("guest: unknown OS %q (known: %s)", os, strings.Join(KnownOSes(), ", "))
}

// ProfileFor returns the console profile of an operating system ("linux" or
// "freebsd"). The returned Profile is shared: do not modify it.
func ProfileFor(os string) (*Profile, error) {
	o, err := OSFor(os)
	if err != nil {
		return nil, err
	}
	return o.Profile(), nil
}

// KnownOSes lists the OS names OSFor accepts, sorted.
func KnownOSes() []string {
	names := make([]string, 0, len(oses))
	for n := range oses {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
