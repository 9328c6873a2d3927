package guest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/kspec/kspec/archive"
)

// nowFunc is the clock release dates are compared with.
var nowFunc = time.Now

// debianGuest is a guest Prepare builds from Debian packages: a suite and a
// kernel flavour of one architecture. Its kernel is what the flavour's
// metapackage (e.g. linux-image-cloud-amd64) depends on in the suite now.
type debianGuest struct {
	Name    string // the guest's name
	Suite   string // the Debian suite, e.g. "bookworm", "sid", "experimental"
	Flavour string // "cloud" or "generic"
	Arch    string // Debian architecture, e.g. "amd64"
}

// Meta is the flavour's metapackage, which names the newest kernel.
func (g debianGuest) Meta() string {
	if g.Flavour == "generic" {
		return "linux-image-" + g.Arch
	}
	return "linux-image-" + g.Flavour + "-" + g.Arch
}

// defaultSuite is the suite of the guests named without one
// ("debian-cloud", "debian-generic").
const defaultSuite = "bookworm"

// debianFlavours are the kernel flavours a guest name may end with.
var debianFlavours = []string{"cloud", "generic"}

// standardSuites are the suites KnownGuests lists (any suite the mirror
// carries can be named).
var standardSuites = []string{"bookworm", "trixie", "sid", "experimental"}

// suitePattern is what a suite name in a guest name may look like.
var suitePattern = regexp.MustCompile(`^[a-z][a-z0-9.]*(-[a-z0-9.]+)*$`)

// debianArches are the Debian architectures a guest name may end with
// ("-arm64"); a name without one is DefaultDebianArch's.
var debianArches = []string{"amd64", "arm64"}

// lookupDebian parses a guest name: "debian-<suite>-<flavour>[-<arch>]"
// (e.g. "debian-sid-cloud", "debian-bookworm-backports-generic",
// "debian-bookworm-cloud-arm64") or, for the default suite,
// "debian-<flavour>[-<arch>]" ("debian-cloud-arm64").
func lookupDebian(name string) (debianGuest, bool) {
	rest, ok := strings.CutPrefix(name, "debian-")
	if !ok {
		return debianGuest{}, false
	}
	g := debianGuest{Name: name, Suite: defaultSuite, Arch: DefaultDebianArch}
	for _, a := range debianArches {
		if r, ok := strings.CutSuffix(rest, "-"+a); ok {
			rest, g.Arch = r, a
			break
		}
	}
	i := strings.LastIndexByte(rest, '-')
	if i < 0 {
		g.Flavour = rest
	} else {
		g.Suite, g.Flavour = rest[:i], rest[i+1:]
	}
	if !slices.Contains(debianFlavours, g.Flavour) || !suitePattern.MatchString(g.Suite) {
		return debianGuest{}, false
	}
	return g, true
}

// DefaultDebianArch is the Debian architecture guests are built for.
const DefaultDebianArch = "amd64"

// CanPrepare reports whether Prepare understands a guest name (whether
// the suite exists is the mirror's to say).
func CanPrepare(name string) bool {
	_, ok := lookupDebian(name)
	return ok
}

// busyboxPackage provides /bin/busybox, statically linked.
const busyboxPackage = "busybox-static"

// ErrUnknownGuest: the guest's suite, flavour or mirror does not exist.
var ErrUnknownGuest = errors.New("no such guest")

// resolution is what a Debian guest is built from right now.
type resolution struct {
	ABI     string // kernel release, e.g. 6.1.0-56-cloud-amd64
	Meta    *archive.Package
	Image   *archive.Package // linux-image-<abi>, the package the metapackage names
	Kernels []*archive.Package
	Debugs  []*archive.Package
	Busybox *archive.Package
	Notes   []string // what the resolution had to decide, for progress
}

// sourceLayer is a set of suites looked at together: a package is taken
// in its newest version among them.
type sourceLayer []*archive.Index

// sources are the layers of a guest's suites, first layer first: a
// package is taken from the first layer that has it.
type sources []sourceLayer

// find returns the newest record of a package in the first layer that
// has it.
func (s sources) find(name string) *archive.Package {
	for _, layer := range s {
		var best *archive.Package
		for _, ix := range layer {
			if p := ix.Get(name); p != nil && (best == nil || archive.CompareVersions(p.Version, best.Version) > 0) {
				best = p
			}
		}
		if best != nil {
			return best
		}
	}
	return nil
}

// index returns the index a package record was read from.
func (s sources) index(p *archive.Package) *archive.Index {
	for _, layer := range s {
		for _, ix := range layer {
			if ix.Suite == p.Suite && ix.Mirror == p.Mirror {
				return ix
			}
		}
	}
	return nil
}

// suiteSpec is one suite to read: at a mirror, and whether it may be
// missing (a -security or -updates suite).
type suiteSpec struct {
	mirror, suite string
	optional      bool
}

// suiteLayers says which suites a guest reads, layer by layer:
//   - experimental (NotAutomatic, holds only some packages): experimental
//     first, falling back to unstable for everything else (the userland);
//   - <release>-backports: the backports first, falling back to the release;
//   - unstable/sid: itself;
//   - a release (bookworm, trixie, stable, ...): itself together with its
//     -security (on the security mirror) and -updates suites, newest
//     version wins, as apt does with equal priorities.
func suiteLayers(suite, mirror, security string) [][]suiteSpec {
	release := func(s string) []suiteSpec {
		if s == "sid" || s == "unstable" {
			return []suiteSpec{{mirror, s, false}}
		}
		l := []suiteSpec{{mirror, s, false}, {mirror, s + "-updates", true}}
		if security != "" && security != "none" {
			l = append(l, suiteSpec{security, s + "-security", true})
		}
		return l
	}
	switch {
	case suite == "experimental" || suite == "rc-buggy":
		return [][]suiteSpec{{{mirror, suite, false}}, release("sid")}
	case strings.HasSuffix(suite, "-backports"):
		return [][]suiteSpec{{{mirror, suite, false}}, release(strings.TrimSuffix(suite, "-backports"))}
	case strings.HasSuffix(suite, "-security") || strings.HasSuffix(suite, "-updates"):
		return [][]suiteSpec{{{mirror, suite, false}}}
	}
	return [][]suiteSpec{release(suite)}
}

// indexKeep says which index records a guest may need: the kernel's
// packages (metapackages, images, debug packages are all linux-*) and
// busybox-static; parsing only those keeps reading sid's index cheap.
func indexKeep(name string) bool {
	return strings.HasPrefix(name, "linux-") || name == busyboxPackage
}

// readSources fetches and verifies the release and the Packages index of
// every suite of the guest.
func readSources(ctx context.Context, c *archive.Client, g debianGuest, mirror, security string, say func(string, ...any)) (sources, error) {
	var out sources
	for _, layer := range suiteLayers(g.Suite, mirror, security) {
		var l sourceLayer
		for _, s := range layer {
			r, err := c.Release(ctx, s.mirror, s.suite)
			if errors.Is(err, archive.ErrNotFound) && s.optional {
				say("%s has no suite %s; going on without it", s.mirror, s.suite)
				continue
			}
			if errors.Is(err, archive.ErrNotFound) {
				return nil, fmt.Errorf("%w: %w; check the mirror's URL (a Debian archive's base, e.g. %s) and name a suite it carries (bookworm, trixie, sid, experimental, ...)", ErrUnknownGuest, err, archive.DefaultMirror)
			}
			if err != nil {
				return nil, err
			}
			say("verified %s/dists/%s/InRelease (%s %s, %s, signed by %s)", s.mirror, s.suite, r.Suite, r.Codename, r.Date.Format("2006-01-02"), r.Signer)
			if r.Expired(nowFunc()) {
				say("warning: %s/dists/%s/InRelease was valid until %s; the mirror has not been updated since (or the clock is wrong)",
					s.mirror, s.suite, r.ValidUntil.Format("2006-01-02 15:04 MST"))
			}
			ix, err := c.Packages(ctx, r, "main", g.Arch, indexKeep)
			if errors.Is(err, archive.ErrNotFound) && !s.optional {
				return nil, fmt.Errorf("%w: %w", ErrUnknownGuest, err)
			}
			if err != nil {
				if s.optional {
					say("skipping %s: %v", s.suite, err)
					continue
				}
				return nil, err
			}
			l = append(l, ix)
		}
		out = append(out, l)
	}
	return out, nil
}

// resolveDebian finds in the guest's suites the packages to build it from:
// the metapackage's kernel image package (its name gives the ABI); the
// packages of that kernel build that may ship the kernel image (Prepare
// looks into them for one), most likely first; the debug packages that
// may ship its vmlinux; and busybox-static.
func resolveDebian(src sources, g debianGuest) (*resolution, error) {
	suites := strings.Join(suiteNames(src), ", ")
	meta := src.find(g.Meta())
	if meta == nil {
		return nil, fmt.Errorf("%w: the suites %s have no package %s for %s (flavour %s): kspec prepares flavours %s",
			ErrUnknownGuest, suites, g.Meta(), g.Arch, g.Flavour, strings.Join(debianFlavours, ", "))
	}
	imageName, err := kernelImageFromDepends(meta.Depends)
	if err != nil {
		return nil, fmt.Errorf("%s %s (%s): %w", meta.Name, meta.Version, meta.Suite, err)
	}
	ix := src.index(meta)
	image := ix.Get(imageName)
	if image == nil {
		image = src.find(imageName)
	}
	if image == nil {
		return nil, fmt.Errorf("%s %s (%s) depends on %s, which the suites %s do not have", meta.Name, meta.Version, meta.Suite, imageName, suites)
	}
	abi := strings.TrimPrefix(imageName, "linux-image-")
	r := &resolution{ABI: abi, Meta: meta, Image: image}
	r.Kernels, r.Debugs = kernelCandidates(src.index(image), image, abi)
	if len(r.Debugs) == 0 {
		return nil, fmt.Errorf("suite %s has no debug package of %s %s (no package named for %s with a -dbg suffix): kspec needs the vmlinux with DWARF",
			image.Suite, image.Name, image.Version, abi)
	}
	r.Busybox = src.find(busyboxPackage)
	if r.Busybox == nil {
		return nil, fmt.Errorf("the suites %s have no package %s", suites, busyboxPackage)
	}
	if r.Busybox.Suite != meta.Suite {
		r.Notes = append(r.Notes, fmt.Sprintf("the kernel comes from %s, %s %s from %s", meta.Suite, busyboxPackage, r.Busybox.Version, r.Busybox.Suite))
	}
	return r, nil
}

// suiteNames lists the suites of the sources.
func suiteNames(src sources) []string {
	var names []string
	for _, l := range src {
		for _, ix := range l {
			names = append(names, ix.Suite)
		}
	}
	return names
}

// kernelCandidates returns the packages of one kernel build (named for
// abi, of the image's version, in its index) that may ship its kernel
// image, and those that may ship its vmlinux (the -dbg ones), most likely
// first. Which one really ships the file is decided by looking inside.
// Preferred: the unsigned image packages Debian publishes beside the
// signed ones (linux-image-<abi>-unsigned, linux-binary-unsigned-<abi>:
// the image built together with the vmlinux); then the image package's
// dependencies (new layout: linux-binary-<abi>) and the packages that
// replace it; then builds of the unsigned source; then the smaller. The
// order only saves downloads: a package is used only if it holds a kernel
// image.
func kernelCandidates(ix *archive.Index, image *archive.Package, abi string) (kernels, debugs []*archive.Package) {
	build := ix.Select(func(p *archive.Package) bool {
		return strings.Contains(p.Name, abi) && p.Version == image.Version && !strings.Contains(p.Name, "headers")
	})
	related := map[string]bool{image.Name: true}
	for _, n := range image.DependsOn() {
		related[n] = true
	}
	for _, p := range build {
		for _, n := range p.ReplacesOrConflicts() {
			if n == image.Name {
				related[p.Name] = true
			}
		}
	}
	rank := func(p *archive.Package) int {
		r := 0
		if !strings.Contains(p.Name, "unsigned") {
			r += 4
		}
		if !related[p.Name] {
			r += 2
		}
		if strings.Contains(p.Source, "signed") {
			r++
		}
		return r
	}
	for _, p := range build {
		if strings.HasSuffix(p.Name, "-dbg") || strings.HasSuffix(p.Name, "-dbgsym") {
			debugs = append(debugs, p)
		} else {
			kernels = append(kernels, p)
		}
	}
	slices.SortFunc(kernels, func(a, b *archive.Package) int {
		if c := rank(a) - rank(b); c != 0 {
			return c
		}
		if a.Size != b.Size {
			return int(a.Size - b.Size)
		}
		return strings.Compare(a.Name, b.Name)
	})
	slices.SortFunc(debugs, func(a, b *archive.Package) int { return strings.Compare(a.Name, b.Name) })
	return kernels, debugs
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

// mirrorFromEnv returns the mirror options, from PrepareOptions or, when
// unset, the environment (KSPEC_DEBIAN_MIRROR, KSPEC_DEBIAN_SECURITY_MIRROR,
// KSPEC_DEBIAN_KEYRING), or the defaults.
func mirrorFromEnv(opts PrepareOptions) (mirror, security, keyring string) {
	pick := func(v, env, def string) string {
		if v != "" {
			return v
		}
		if e := os.Getenv(env); e != "" {
			return e
		}
		return def
	}
	return strings.TrimSuffix(pick(opts.Mirror, "KSPEC_DEBIAN_MIRROR", archive.DefaultMirror), "/"),
		strings.TrimSuffix(pick(opts.SecurityMirror, "KSPEC_DEBIAN_SECURITY_MIRROR", archive.DefaultSecurityMirror), "/"),
		pick(opts.Keyring, "KSPEC_DEBIAN_KEYRING", "")
}
