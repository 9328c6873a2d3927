package guest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/kspec/kspec/archive"
)

// ErrNoSource: the guest has no prepared kernel source tree. Its message
// gives the command that prepares one.
var ErrNoSource = errors.New("no kernel source tree prepared")

// ErrSourceGone: the archive no longer carries the kernel source package
// of the guest's exact kernel version.
var ErrSourceGone = errors.New("kernel source package not in the archive")

// SourceRecord is a guest's kernel source tree, as its manifest records it.
//
// Trees live in <cache>/sources/<package>_<version>/tree, shared by every
// guest of that kernel version: Debian's linux-source-<major.minor> is
// architecture-independent and the same for the cloud and generic
// flavours (and for amd64 and arm64), so debian-cloud,
// debian-bookworm-cloud and debian-cloud-arm64 of one kernel share one
// 1.3 GB tree, and a guest rebuilt with --force (or for a new initramfs
// recipe) keeps it.
type SourceRecord struct {
	// Package and Version are the source package's
	// (linux-source-6.1 6.1.192-3).
	Package string `json:"package"`
	Version string `json:"version"`
	// SHA256 is the .deb's checksum, as the archive's index gives it and
	// as it was checked.
	SHA256 string `json:"sha256"`
	// Suite is the suite the package was taken from.
	Suite string `json:"suite,omitempty"`
	// Dir is the source directory relative to the cache root
	// ("sources/linux-source-6.1_6.1.192-3"); the tree is its "tree".
	Dir string `json:"dir"`
	// Files and Bytes count the tree's regular files and their size.
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
	// Decoder is the xz decoder that unpacked it ("xz -dc" or "Go").
	Decoder string `json:"decoder,omitempty"`
	// Unpacked is how long downloading and unpacking took.
	Unpacked time.Duration `json:"unpack_ns,omitempty"`
}

// Names in a source directory.
const (
	sourcesDir    = "sources"
	sourceTreeDir = "tree"
	sourceMarker  = "source.json"
)

// SourceTree returns the root of the kernel source tree prepared for the
// guest (`kspec guest prepare --source`): the directory whose fs/namei.c
// is the kernel's. A guest without one (never prepared with --source, a
// config-file guest, a --symbols override) is an error wrapping
// ErrNoSource that names the command.
func SourceTree(spec *Spec) (string, error) {
	if spec == nil || spec.Symbols == "" {
		return "", fmt.Errorf("%w: the guest has no symbol file", ErrNoSource)
	}
	dir := filepath.Dir(spec.Symbols)
	m, err := readManifest(dir)
	if err != nil {
		return "", fmt.Errorf("%w: %s is not a prepared guest (%v); kspec prepares sources for the guests it builds", ErrNoSource, dir, err)
	}
	cacheDir := filepath.Dir(filepath.Dir(filepath.Dir(dir))) // <cache>/guests/<name>/<version>
	if m.Source == nil {
		return "", fmt.Errorf("%w for %s %s; prepare it with %s", ErrNoSource, m.Guest, m.Version, sourceCommand(m.Guest, cacheDir))
	}
	root := filepath.Join(cacheDir, filepath.FromSlash(m.Source.Dir))
	if _, err := readSourceMarker(root, m.Source.SHA256); err != nil {
		return "", fmt.Errorf("%w for %s %s: %v; prepare it again with %s", ErrNoSource, m.Guest, m.Version, err, sourceCommand(m.Guest, cacheDir))
	}
	return filepath.Join(root, sourceTreeDir), nil
}

// sourceCommand is the command that prepares a guest's source tree.
func sourceCommand(name, cacheDir string) string {
	return prepareCommand(name, cacheDir, "--source")
}

// readSourceMarker reads a source directory's marker and checks that it
// is of the .deb with checksum sha.
func readSourceMarker(root, sha string) (*SourceRecord, error) {
	data, err := os.ReadFile(filepath.Join(root, sourceMarker))
	if err != nil {
		return nil, fmt.Errorf("the source tree %s is missing or incomplete: %w", root, err)
	}
	var rec SourceRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(root, sourceMarker), err)
	}
	if sha != "" && rec.SHA256 != sha {
		return nil, fmt.Errorf("the source tree %s was unpacked from a .deb with SHA256 %s, not %s", root, rec.SHA256, sha)
	}
	if fi, err := os.Stat(filepath.Join(root, sourceTreeDir)); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("the source tree %s has no %s directory", root, sourceTreeDir)
	}
	return &rec, nil
}

// sourceVersion is the version of the kernel build a guest was made of:
// that of the package its vmlinux came from (linux-image-<abi>-dbg, built
// from the same source package as linux-source-<major.minor>).
func sourceVersion(m *Manifest) (string, error) {
	for _, a := range m.Artifacts {
		if a.File != FileSymbols {
			continue
		}
		name, rest, _ := strings.Cut(a.From, " ")
		version, _, _ := strings.Cut(rest, ":/")
		for _, p := range m.Packages {
			if p.Name == name && p.Version == version {
				return version, nil
			}
		}
	}
	return "", fmt.Errorf("the manifest of %s %s does not say which package its vmlinux came from", m.Guest, m.Version)
}

// majorMinor is how Debian names a kernel line in linux-source-<x.y>:
// "6.1" of "6.1.192-3", "7.3" of "7.3~rc7-1~exp1".
var majorMinor = regexp.MustCompile(`^(?:\d+:)?(\d+\.\d+)`)

// SourcePackage returns the name of the Debian package that carries the
// source of a kernel package version: linux-source-<major.minor>.
func SourcePackage(version string) (string, error) {
	m := majorMinor.FindStringSubmatch(version)
	if m == nil {
		return "", fmt.Errorf("kernel package version %q does not start with <major>.<minor>", version)
	}
	return "linux-source-" + m[1], nil
}

// findSource returns the record of linux-source-<x.y> at exactly version
// in any suite the guest reads. Not found, the error wraps ErrSourceGone
// and names the versions the suites do carry.
func findSource(src sources, version string) (*archive.Package, error) {
	name, err := SourcePackage(version)
	if err != nil {
		return nil, err
	}
	p, others := findExact(src, name, version)
	if p != nil {
		return p, nil
	}
	if len(others) == 0 {
		return nil, fmt.Errorf("%w: the suites %s have no package %s", ErrSourceGone, strings.Join(suiteNames(src), ", "), name)
	}
	return nil, fmt.Errorf("%w: the suites %s have %s only in version %s, not %s", ErrSourceGone,
		strings.Join(suiteNames(src), ", "), name, strings.Join(others, ", "), version)
}

// sourceJob is what prepareSource needs of a Prepare.
type sourceJob struct {
	cacheDir string
	vdir     string // the guest version's directory
	client   *archive.Client
	src      sources // nil when the archive could not be read
	srcErr   error   // why src is nil
	decoder  archive.Decoder
	say      func(string, ...any)
	// lockGuest takes the guest's lock again, for writing its manifest.
	lockGuest func() (unlock func(), err error)
}

// prepareSource makes sure the kernel source tree of the guest in
// j.vdir is unpacked in the shared sources directory and recorded in the
// guest's manifest. The sources directory has its own lock; the guest's
// is taken for the manifest.
func prepareSource(ctx context.Context, j sourceJob) (*SourceRecord, error) {
	m, err := readManifest(j.vdir)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, j.vdir, err)
	}
	version, err := sourceVersion(m)
	if err != nil {
		return nil, err
	}
	name, err := SourcePackage(version)
	if err != nil {
		return nil, err
	}
	rel := path.Join(sourcesDir, name+"_"+version)
	root := filepath.Join(j.cacheDir, filepath.FromSlash(rel))
	if m.Source != nil && m.Source.Dir == rel {
		if _, err := readSourceMarker(root, m.Source.SHA256); err == nil {
			j.say("the source of %s %s (%s %s) is already prepared at %s", m.Guest, m.Version, name, version, filepath.Join(root, sourceTreeDir))
			return m.Source, nil
		}
	}
	if j.src == nil {
		return nil, fmt.Errorf("the source of %s %s (%s %s) is not prepared and the archive could not be read: %w", m.Guest, m.Version, name, version, j.srcErr)
	}
	p, err := findSource(j.src, version)
	if err != nil {
		return nil, fmt.Errorf("the source of %s %s: %w", m.Guest, m.Version, err)
	}
	rec, err := unpackSource(ctx, j, p, root, rel)
	if err != nil {
		return nil, err
	}
	unlock, err := j.lockGuest()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if m, err = readManifest(j.vdir); err != nil { // a prepare may have rebuilt it meanwhile
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, j.vdir, err)
	}
	if v, err := sourceVersion(m); err != nil || v != version {
		return nil, fmt.Errorf("%s was rebuilt for another kernel (%s) while its source was unpacked; prepare again", j.vdir, v)
	}
	m.Source = rec
	if err := writeJSONAtomic(filepath.Join(j.vdir, FileManifest), m); err != nil {
		return nil, fmt.Errorf("recording the source in %s: %w", j.vdir, err)
	}
	j.say("recorded the source %s %s in %s", name, version, filepath.Join(j.vdir, FileManifest))
	return rec, nil
}

// unpackSource downloads p and unpacks its tarball into root (through a
// temporary directory renamed into place), unless another guest's prepare
// already did.
func unpackSource(ctx context.Context, j sourceJob, p *archive.Package, root, rel string) (*SourceRecord, error) {
	sdir := filepath.Dir(root)
	if err := os.MkdirAll(sdir, 0o755); err != nil {
		return nil, err
	}
	lock, err := lockGuest(ctx, sdir, j.say)
	if err != nil {
		return nil, err
	}
	defer lock.unlock()
	if rec, err := readSourceMarker(root, p.SHA256); err == nil {
		j.say("%s %s is already unpacked at %s (for another guest)", p.Name, p.Version, root)
		return rec, nil
	}
	removeStale(sdir, j.say)
	if _, err := os.Stat(root); err == nil {
		j.say("removing %s: incomplete or of another .deb", root)
		if err := os.RemoveAll(root); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	tmp, err := os.MkdirTemp(sdir, ".tmp-")
	if err != nil {
		return nil, err
	}
	installed := false
	defer func() {
		if !installed {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, err
	}
	// The .deb goes into the temporary directory, not the archive's .deb
	// cache: once unpacked it is not needed, and no other prepare's
	// pruning can remove it while it is read.
	debPath := filepath.Join(tmp, path.Base(p.Filename))
	j.say("fetching %s %s (%s, %s)", p.Name, p.Version, p.Suite, archive.MB(p.Size))
	if err := j.client.Download(ctx, p.URL(), p.Size, p.SHA256, debPath); err != nil {
		return nil, fmt.Errorf("%s %s: %w", p.Name, p.Version, err)
	}
	fetched := time.Since(start)
	tree := filepath.Join(tmp, sourceTreeDir)
	if err := os.Mkdir(tree, 0o755); err != nil {
		return nil, err
	}
	t0 := time.Now()
	tarball := func(name string, _ []byte) bool {
		return strings.HasPrefix(name, "usr/src/linux-source-") && strings.Contains(path.Base(name), ".tar")
	}
	res, err := archive.ExtractTree(ctx, debPath, tarball, tree, j.decoder, j.say)
	if err != nil {
		return nil, fmt.Errorf("unpacking %s %s: %w", p.Name, p.Version, err)
	}
	unpack := time.Since(t0)
	if err := os.Remove(debPath); err != nil {
		return nil, err
	}
	rec := &SourceRecord{Package: p.Name, Version: p.Version, SHA256: p.SHA256, Suite: p.Suite, Dir: rel,
		Files: res.Files, Bytes: res.Bytes, Decoder: res.Decoder, Unpacked: time.Since(start)}
	if err := writeJSON(filepath.Join(tmp, sourceMarker), rec); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, root); err != nil {
		return nil, err
	}
	installed = true
	j.say("unpacked %s from %s %s into %s: %d files, %s (download %s, unpacking %s with %s, %.0f MB/s)",
		res.Member, p.Name, p.Version, root, res.Files, archive.MB(res.Bytes),
		fetched.Round(100*time.Millisecond), unpack.Round(100*time.Millisecond), res.Decoder, float64(res.Bytes)/1e6/unpack.Seconds())
	return rec, nil
}

// writeJSONAtomic writes v as indented JSON through a temporary file and
// a rename, so that a reader never sees half of it.
func writeJSONAtomic(p string, v any) error {
	tmp := p + ".tmp"
	if err := writeJSON(tmp, v); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, p)
}
