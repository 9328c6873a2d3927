// Package linux holds what kspec knows about Linux kernels that changes
// from one kernel line to the next: how a release string reads as a
// version, which functions were renamed and when, and where the current
// task lives. Specs and the harness ask here instead of writing version
// numbers of their own, so a new kernel line is taught to kspec in one
// place.
package linux

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is a Linux kernel version, major.minor.patch, ordered as the
// kernel's LINUX_VERSION_CODE orders them. A release candidate counts as
// its release (7.3-rc7 is 7.3.0): what a spec can rely on is decided when
// the merge window closes.
type Version struct {
	Major, Minor, Patch int
}

// V returns the version major.minor.0.
func V(major, minor int) Version { return Version{Major: major, Minor: minor} }

// String formats the version as "7.2.13".
func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// IsZero reports whether v is the zero Version (unknown).
func (v Version) IsZero() bool { return v == Version{} }

// Compare returns -1, 0 or +1 as v is older than, the same as or newer
// than o.
func (v Version) Compare(o Version) int {
	for _, d := range [...]int{v.Major - o.Major, v.Minor - o.Minor, v.Patch - o.Patch} {
		switch {
		case d < 0:
			return -1
		case d > 0:
			return 1
		}
	}
	return 0
}

// AtLeast reports whether v is o or newer.
func (v Version) AtLeast(o Version) bool { return v.Compare(o) >= 0 }

// ParseRelease reads the version at the start of a kernel release string as
// `uname -r` prints it: "6.1.0-57-cloud-amd64", "6.12.117+deb13-cloud-amd64",
// "7.2.13+deb14-cloud-amd64", "7.3-cloud-amd64", "7.3.0-rc7".
func ParseRelease(release string) (Version, error) {
	s := strings.TrimSpace(release)
	end := strings.IndexFunc(s, func(r rune) bool { return r != '.' && (r < '0' || r > '9') })
	if end < 0 {
		end = len(s)
	}
	parts := strings.Split(strings.TrimSuffix(s[:end], "."), ".")
	if len(parts) < 2 || len(parts) > 3 {
		return Version{}, fmt.Errorf("linux: release %q does not start with MAJOR.MINOR[.PATCH]", release)
	}
	var n [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || p == "" {
			return Version{}, fmt.Errorf("linux: release %q does not start with MAJOR.MINOR[.PATCH]", release)
		}
		n[i] = v
	}
	return Version{Major: n[0], Minor: n[1], Patch: n[2]}, nil
}

// BannerSymbol is the kernel's constant version banner,
// "Linux version RELEASE (BUILDER) #1 SMP ...".
const BannerSymbol = "linux_banner"

// ReleaseFromBanner returns the release in a linux_banner string.
func ReleaseFromBanner(banner string) (string, error) {
	const prefix = "Linux version "
	rest, ok := strings.CutPrefix(banner, prefix)
	if !ok {
		return "", fmt.Errorf("linux: banner %q does not start with %q", trim(banner), prefix)
	}
	release, _, _ := strings.Cut(rest, " ")
	if release == "" {
		return "", fmt.Errorf("linux: banner %q names no release", trim(banner))
	}
	return release, nil
}

func trim(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// Rename is a kernel function that took another name from Since on.
type Rename struct {
	Old, New string
	Since    Version
	// Why names the change, for reports and for whoever extends the table.
	Why string
}

// Renames are the renames of functions kspec's specs break on, oldest
// first. A chain (a -> b, later b -> c) is followed by FunctionName.
var Renames = []Rename{
	{"do_mkdirat", "filename_mkdirat", V(7, 0), "7.0 struct filename series"},
	{"do_rmdir", "filename_rmdir", V(7, 0), "7.0 struct filename series"},
	{"do_unlinkat", "filename_unlinkat", V(7, 0), "7.0 struct filename series"},
	{"do_symlinkat", "filename_symlinkat", V(7, 0), "7.0 struct filename series"},
	{"do_renameat2", "filename_renameat2", V(7, 0), "7.0 struct filename series"},
	{"do_linkat", "filename_linkat", V(7, 0), "7.0 struct filename series"},
	// kill(2) of one process: kill_proc_info -> kill_pid_info up to 6.8,
	// kill_pid_info_type (with a pid type argument after the three of
	// kill_pid_info) from 6.9; kill_pid_info stays as a wrapper that
	// kill(2) no longer calls. (Checked on 6.1 and 6.12; 6.9 from the
	// pidfd thread-signal series.)
	{"kill_pid_info", "kill_pid_info_type", V(6, 9), "6.9 pidfd thread signals"},
}

// FunctionName returns the name that a kernel of version v gives the
// function known (in any version) as name: FunctionName(V(7, 2),
// "do_mkdirat") is "filename_mkdirat", FunctionName(V(6, 1),
// "filename_mkdirat") is "do_mkdirat". Names the table does not know are
// returned as they are. A zero v (unknown) means the newest kernel.
func FunctionName(v Version, name string) string {
	name = oldestName(name)
	for changed := true; changed; {
		changed = false
		for _, r := range Renames {
			if r.Old == name && (v.IsZero() || v.AtLeast(r.Since)) {
				name, changed = r.New, true
			}
		}
	}
	return name
}

// FunctionNames returns every name the function known as name has had,
// oldest first (just name when it was never renamed).
func FunctionNames(name string) []string {
	first := oldestName(name)
	names := []string{first}
	for cur := first; ; {
		next := ""
		for _, r := range Renames {
			if r.Old == cur {
				next = r.New
			}
		}
		if next == "" {
			return names
		}
		names = append(names, next)
		cur = next
	}
}

// CurrentTaskVariables are the expressions for the per-CPU pointer to the
// running task, in the order a kernel of version v most likely has them:
// current_task up to 6.1, pcpu_hot.current_task (a member inside an
// anonymous union and struct) from 6.2 to 6.14, current_task again from
// 6.15. Callers try them in order; the kernel's DWARF decides.
//
// From 6.15 per-CPU symbols are no longer linked at 0 but at their address
// in .data..percpu, and __per_cpu_offset[cpu] is the distance from there to
// cpu's copy: in both layouts cpu's copy is at symbol + __per_cpu_offset[cpu]
// in wrapping 64-bit arithmetic.
func CurrentTaskVariables(v Version) []string {
	if v.AtLeast(V(6, 2)) && !v.AtLeast(V(6, 15)) {
		return []string{"pcpu_hot.current_task", "current_task"}
	}
	return []string{"current_task", "pcpu_hot.current_task"}
}

// PerCPUOffsets is the array of each CPU's per-CPU area offset.
const PerCPUOffsets = "__per_cpu_offset"

// oldestName follows renames back to the function's first name.
func oldestName(name string) string {
	for changed := true; changed; {
		changed = false
		for _, r := range Renames {
			if r.New == name {
				name, changed = r.Old, true
			}
		}
	}
	return name
}
