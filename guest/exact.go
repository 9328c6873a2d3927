package guest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kspec/kspec/archive"
)

// ErrVersionGone: the archive no longer carries a package version a guest
// is pinned to (e.g. by a repro bundle).
var ErrVersionGone = errors.New("package version no longer in the archive")

// FindVersion returns the prepared guest name at exactly version (a
// kernel release such as 6.1.0-57-cloud-amd64), without using the
// network. Not prepared, the error wraps ErrNotPrepared.
func FindVersion(name, version, cacheDir string) (*Spec, error) {
	if cacheDir == "" {
		d, err := DefaultCacheDir()
		if err != nil {
			return nil, err
		}
		cacheDir = d
	}
	dir := filepath.Join(guestDir(cacheDir, name), version)
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("%w: guest %s %s is not in the cache %s", ErrNotPrepared, name, version, cacheDir)
	}
	return loadPrepared(dir, name, cacheDir)
}

// PrepareExact prepares the guest name at exactly version from exactly
// the packages pkgs (name, version and the .deb's SHA256, as a manifest
// or a repro bundle records them: the kernel image package, its -dbg
// package and busybox-static), read from the guest's suites. A package
// version the suites no longer carry is an error wrapping ErrVersionGone
// that names what is missing and what the suites have instead; a package
// whose checksum in the archive is not the recorded one is refused
// (archive.ErrNotVerified). An existing directory of that version is
// replaced only once the new build is complete.
func PrepareExact(ctx context.Context, name, version string, pkgs []Package, opts PrepareOptions) (*Spec, PrepareResult, error) {
	start := time.Now()
	var res PrepareResult
	say := opts.say
	g, cacheDir, gdir, lock, err := beginPrepare(ctx, name, opts, say)
	if err != nil {
		return nil, res, err
	}
	defer lock.unlock()
	removeStale(gdir, say)

	mirror, security, keyring := mirrorFromEnv(opts)
	client := &archive.Client{CacheDir: filepath.Join(cacheDir, "archive"), Keyring: keyring, Say: say}
	say("looking for %s %s's exact packages in Debian %s at %s", name, version, g.Suite, mirror)
	src, err := readSources(ctx, client, g, mirror, security, say)
	if err != nil {
		return nil, res, fmt.Errorf("guest: preparing %s %s: %w", name, version, err)
	}
	r, err := resolvePinned(src, g, version, pkgs)
	if err != nil {
		return nil, res, fmt.Errorf("guest: preparing %s %s: %w", name, version, err)
	}
	vdir := filepath.Join(gdir, version)
	res.Dir = vdir
	tmp, err := os.MkdirTemp(gdir, ".tmp-")
	if err != nil {
		return nil, res, fmt.Errorf("guest: %w", err)
	}
	installed := false
	defer func() {
		if !installed {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, res, fmt.Errorf("guest: %w", err)
	}
	b := &builder{ctx: ctx, dir: tmp, r: r, guest: g, say: say, client: client}
	m, err := b.build()
	res.Download, res.Extract = b.download, b.extract
	if err != nil {
		return nil, res, fmt.Errorf("guest: preparing %s %s: %w", name, version, err)
	}
	if err := install(tmp, vdir); err != nil {
		return nil, res, fmt.Errorf("guest: %w", err)
	}
	installed = true
	spec, err := loadPrepared(vdir, name, cacheDir)
	if err != nil {
		return nil, res, err
	}
	res.Built, res.Manifest, res.Total = true, m, time.Since(start)
	say("prepared %s %s at %s from its exact packages in %s", name, version, vdir, res.Total.Round(100*time.Millisecond))
	return spec, res, nil
}

// resolvePinned finds each pinned package at its exact version in the
// suites and checks its recorded checksum against the archive's.
func resolvePinned(src sources, g debianGuest, version string, pkgs []Package) (*resolution, error) {
	r := &resolution{ABI: version}
	var missing []string
	for _, want := range pkgs {
		p, others := findExact(src, want.Name, want.Version)
		if p == nil {
			have := "none"
			if len(others) > 0 {
				have = strings.Join(others, ", ")
			}
			missing = append(missing, fmt.Sprintf("%s %s (the suites have: %s)", want.Name, want.Version, have))
			continue
		}
		if want.SHA256 != "" && p.SHA256 != want.SHA256 {
			return nil, fmt.Errorf("%w: %s %s in %s has SHA256 %s, the record says %s; kspec does not use a package that differs from the recorded one",
				archive.ErrNotVerified, p.Name, p.Version, p.Suite, p.SHA256, want.SHA256)
		}
		switch {
		case p.Name == busyboxPackage:
			r.Busybox = p
		case strings.HasSuffix(p.Name, "-dbg") || strings.HasSuffix(p.Name, "-dbgsym"):
			r.Debugs = append(r.Debugs, p)
		default:
			r.Kernels = append(r.Kernels, p)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: the suites %s no longer carry %s", ErrVersionGone, strings.Join(suiteNames(src), ", "), strings.Join(missing, "; "))
	}
	switch {
	case len(r.Kernels) == 0:
		return nil, fmt.Errorf("the record names no kernel image package of %s", version)
	case len(r.Debugs) == 0:
		return nil, fmt.Errorf("the record names no -dbg package of %s", version)
	case r.Busybox == nil:
		return nil, fmt.Errorf("the record names no %s package", busyboxPackage)
	}
	r.Image = r.Kernels[0]
	r.Meta = &archive.Package{Name: g.Meta(), Version: r.Image.Version, Suite: r.Image.Suite}
	return r, nil
}

// findExact returns the record of name at exactly version in any suite,
// or the versions the suites do have.
func findExact(src sources, name, version string) (*archive.Package, []string) {
	var others []string
	for _, layer := range src {
		for _, ix := range layer {
			p := ix.Get(name)
			if p == nil {
				continue
			}
			if p.Version == version {
				return p, nil
			}
			others = append(others, p.Version+" in "+ix.Suite)
		}
	}
	return nil, others
}
