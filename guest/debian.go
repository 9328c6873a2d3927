package guest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// debianGuest is a guest Prepare builds from Debian packages: the kernel
// image that the metapackage Meta currently depends on ("linux-image-<abi>"),
// its "-unsigned" package (the vmlinuz), its "-dbg" package (the vmlinux)
// and busybox-static (the userland).
type debianGuest struct {
	Name string // the guest's name
	Meta string // the metapackage that names the newest kernel image
}

// debianGuests are the guests Prepare can build. A new one is one line.
var debianGuests = []debianGuest{
	{Name: "debian-cloud", Meta: "linux-image-cloud-amd64"},
	{Name: "debian-generic", Meta: "linux-image-amd64"},
}

// lookupDebian returns the recipe of a named Debian guest.
func lookupDebian(name string) (debianGuest, bool) {
	for _, g := range debianGuests {
		if g.Name == name {
			return g, true
		}
	}
	return debianGuest{}, false
}

// busyboxPackage provides /bin/busybox, statically linked.
const busyboxPackage = "busybox-static"

// aptPackage is a package's record in the apt package lists.
type aptPackage struct {
	Name     string
	Version  string
	Size     int64
	SHA256   string
	Depends  string
	Filename string
}

// resolution is what a Debian guest is built from right now.
type resolution struct {
	ABI     string // kernel release, e.g. 6.1.0-56-cloud-amd64
	Meta    aptPackage
	Kernel  aptPackage // linux-image-<abi>-unsigned
	Debug   aptPackage // linux-image-<abi>-dbg
	Busybox aptPackage
}

// staleListsFix is the advice when apt does not know a package.
const staleListsFix = "the apt package lists are missing or out of date: run `apt-get update` (as root) and prepare again"

// resolveDebian asks apt-cache (local package lists, no network) which
// kernel the metapackage depends on now, and for the records of the
// packages to download.
func resolveDebian(ctx context.Context, g debianGuest) (*resolution, error) {
	meta, err := aptShow(ctx, g.Meta)
	if err != nil {
		return nil, err
	}
	m, ok := meta[g.Meta]
	if !ok {
		return nil, fmt.Errorf("apt-cache knows no package %s: %s", g.Meta, staleListsFix)
	}
	image, err := kernelImageFromDepends(m.Depends)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", g.Meta, m.Version, err)
	}
	r := &resolution{ABI: strings.TrimPrefix(image, "linux-image-"), Meta: m}
	names := []string{image + "-unsigned", image + "-dbg", busyboxPackage}
	pkgs, err := aptShow(ctx, names...)
	if err != nil {
		return nil, err
	}
	for i, dst := range []*aptPackage{&r.Kernel, &r.Debug, &r.Busybox} {
		p, ok := pkgs[names[i]]
		if !ok {
			return nil, fmt.Errorf("%s %s depends on %s, but apt-cache knows no package %s: %s",
				g.Meta, m.Version, image, names[i], staleListsFix)
		}
		*dst = p
	}
	return r, nil
}

// aptShow runs `apt-cache show --no-all-versions` (the candidate versions)
// and returns the records found by package name.
func aptShow(ctx context.Context, names ...string) (map[string]aptPackage, error) {
	cmd := exec.CommandContext(ctx, "apt-cache", append([]string{"show", "--no-all-versions"}, names...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return nil, fmt.Errorf("running apt-cache: %w", err)
	}
	// apt-cache exits non-zero if any name is unknown; the caller reports
	// which one is missing.
	return parseAptRecords(out)
}

// parseAptRecords parses apt's RFC 822 style records (stanzas separated by
// empty lines, continuation lines start with a space).
func parseAptRecords(data []byte) (map[string]aptPackage, error) {
	out := map[string]aptPackage{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	fields := map[string]string{}
	last := ""
	flush := func() error {
		defer clear(fields)
		name := fields["Package"]
		if name == "" {
			return nil
		}
		p := aptPackage{Name: name, Version: fields["Version"], SHA256: fields["SHA256"],
			Depends: fields["Depends"], Filename: fields["Filename"]}
		if s := fields["Size"]; s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return fmt.Errorf("apt record of %s: bad Size %q", name, s)
			}
			p.Size = n
		}
		if _, dup := out[name]; !dup {
			out[name] = p
		}
		return nil
	}
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			if err := flush(); err != nil {
				return nil, err
			}
		case line[0] == ' ' || line[0] == '\t':
			if last != "" {
				fields[last] += "\n" + strings.TrimSpace(line)
			}
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = k
			fields[k] = strings.TrimSpace(v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, flush()
}

// kernelImageFromDepends returns the kernel image package a metapackage's
// Depends field names, e.g. "linux-image-6.1.0-56-cloud-amd64" from
// "linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)".
func kernelImageFromDepends(depends string) (string, error) {
	for _, dep := range strings.Split(depends, ",") {
		for _, alt := range strings.Split(dep, "|") {
			name, _, _ := strings.Cut(strings.TrimSpace(alt), " ")
			name, _, _ = strings.Cut(name, ":") // an architecture qualifier
			if strings.HasPrefix(name, "linux-image-") && len(name) > len("linux-image-") {
				return name, nil
			}
		}
	}
	return "", fmt.Errorf("its Depends (%q) names no linux-image-* package", depends)
}

// needTools checks that the Debian tools Prepare runs are installed.
func needTools() error {
	var missing []string
	for _, t := range []string{"apt-cache", "apt-get", "dpkg-deb"} {
		if _, err := exec.LookPath(t); err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("preparing a Debian guest needs %s, which %s not on PATH=%s: prepare on a Debian or Ubuntu machine, or describe the guest in a config file (KSPEC_GUEST=path/to/guest.json, see guest.LoadConfig)",
			strings.Join(missing, ", "), map[bool]string{true: "is", false: "are"}[len(missing) == 1], os.Getenv("PATH"))
	}
	return nil
}
