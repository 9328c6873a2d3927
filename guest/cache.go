package guest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"

	"golang.org/x/sys/unix"
)

// ErrNotPrepared: the guest has not been prepared in the cache. Its message
// gives the command that prepares it.
var ErrNotPrepared = errors.New("guest not prepared")

// ErrCorrupt: a prepared guest in the cache is incomplete or damaged.
var ErrCorrupt = errors.New("guest cache damaged")

// Names of the files in a prepared guest's directory,
// <cache>/guests/<name>/<version>/.
const (
	FileKernel   = "vmlinuz"
	FileSymbols  = "vmlinux"
	FileInitrd   = "initrd.img"
	FileBusybox  = "busybox"
	FilePassword = "password"
	FileSpec     = "guest.json"
	FileManifest = "manifest.json"
)

// Manifest records what a prepared guest was built from; it is
// manifest.json in the guest's directory.
type Manifest struct {
	// Guest is the guest's name.
	Guest string `json:"guest"`
	// Version is the kernel release.
	Version string `json:"version"`
	// Prepared is when the guest was built.
	Prepared time.Time `json:"prepared"`
	// Metapackage is the package the version was resolved from.
	Metapackage Package `json:"metapackage"`
	// Packages are the packages the artifacts were extracted from.
	Packages []Package `json:"packages"`
	// Artifacts are the files of the guest directory, with checksums.
	Artifacts []Artifact `json:"artifacts"`
	// BuildID is the GNU build ID of the vmlinux (hex).
	BuildID string `json:"build_id"`
	// InitramfsRecipe is initramfs.RecipeVersion at build time.
	InitramfsRecipe int `json:"initramfs_recipe"`
	// Source is the kernel source tree prepared for the guest (`kspec
	// guest prepare --source`), nil if none.
	Source *SourceRecord `json:"source,omitempty"`
}

// Package is one Debian package.
type Package struct {
	// Name is the package name.
	Name string `json:"name"`
	// Version is the package version.
	Version string `json:"version"`
	// SHA256 is the .deb's checksum as the package lists give it.
	SHA256 string `json:"sha256,omitempty"`
	// Suite is the Debian suite the package was taken from.
	Suite string `json:"suite,omitempty"`
}

// Artifact is one file of a prepared guest.
type Artifact struct {
	// File is the file's name in the guest directory.
	File string `json:"file"`
	// Size is its size in bytes.
	Size int64 `json:"size"`
	// SHA256 is its checksum (hex).
	SHA256 string `json:"sha256"`
	// From is the package and path it was extracted from, if any.
	From string `json:"from,omitempty"`
}

// guestDir is <cache>/guests/<name>.
func guestDir(cacheDir, name string) string {
	return filepath.Join(cacheDir, "guests", name)
}

// prepareCommand is the command that prepares a guest, for messages.
func prepareCommand(name, cacheDir string, flags ...string) string {
	args := "guest prepare"
	if name != defaultGuest {
		args += " --guest " + name
	}
	for _, f := range flags {
		args += " " + f
	}
	env := ""
	if def, err := DefaultCacheDir(); err == nil && def != cacheDir {
		env = "KSPEC_CACHE=" + cacheDir + " "
	}
	return fmt.Sprintf("`%sgo run ./cmd/kspec %s` (or `%skspec %s`)", env, args, env, args)
}

// defaultGuest is the guest KSPEC_GUEST names when unset.
const defaultGuest = "debian-cloud"

// Find returns the newest prepared version of a named guest from the cache
// (cacheDir "" means DefaultCacheDir), without using the network. If the
// guest was never prepared the error wraps ErrNotPrepared and gives the
// command that prepares it; if the cache is damaged it wraps ErrCorrupt
// and says to prepare again with --force.
func Find(name, cacheDir string) (*Spec, error) {
	if cacheDir == "" {
		d, err := DefaultCacheDir()
		if err != nil {
			return nil, err
		}
		cacheDir = d
	}
	versions, err := preparedVersions(guestDir(cacheDir, name))
	if err != nil {
		return nil, err
	}
	if len(versions) == 0 {
		if _, ok := lookupDebian(name); !ok {
			return nil, fmt.Errorf("%w: no guest %q in %s, and kspec cannot prepare one of that name (it can prepare %s; other guests are described by a config file, see guest.LoadConfig)",
				ErrNotPrepared, name, cacheDir, quoteList(KnownGuests()))
		}
		return nil, fmt.Errorf("%w: guest %s is not in the cache %s; prepare it with %s",
			ErrNotPrepared, name, cacheDir, prepareCommand(name, cacheDir))
	}
	return loadPrepared(filepath.Join(guestDir(cacheDir, name), versions[0]), name, cacheDir)
}

// preparedVersions lists the version directories of a guest, newest first.
func preparedVersions(gdir string) ([]string, error) {
	entries, err := os.ReadDir(gdir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var vs []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			vs = append(vs, e.Name())
		}
	}
	slices.SortFunc(vs, func(a, b string) int { return -compareVersions(a, b) })
	return vs, nil
}

// compareVersions orders kernel releases naturally: runs of digits compare
// as numbers ("6.1.0-56" > "6.1.0-9"), everything else bytewise.
func compareVersions(a, b string) int {
	for a != "" && b != "" {
		ad, bd := unicode.IsDigit(rune(a[0])), unicode.IsDigit(rune(b[0]))
		if ad && bd {
			na, ra := splitRun(a, true)
			nb, rb := splitRun(b, true)
			na, nb = strings.TrimLeft(na, "0"), strings.TrimLeft(nb, "0")
			if c := len(na) - len(nb); c != 0 {
				return c
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			a, b = ra, rb
			continue
		}
		sa, ra := splitRun(a, false)
		sb, rb := splitRun(b, false)
		if c := strings.Compare(sa, sb); c != 0 {
			return c
		}
		a, b = ra, rb
	}
	return len(a) - len(b)
}

// splitRun splits s after its leading run of digits (or of non-digits).
func splitRun(s string, digits bool) (string, string) {
	i := strings.IndexFunc(s, func(r rune) bool { return unicode.IsDigit(r) != digits })
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i:]
}

// loadPrepared loads and checks the guest in dir: guest.json (whose paths
// are relative to dir), the password file and every artifact the manifest
// lists (present, with the recorded size).
func loadPrepared(dir, name, cacheDir string) (*Spec, error) {
	damaged := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s; prepare it again with %s", ErrCorrupt, dir, fmt.Sprintf(format, args...),
			prepareCommand(name, cacheDir, "--force"))
	}
	m, err := readManifest(dir)
	if err != nil {
		return nil, damaged("%v", err)
	}
	for _, a := range m.Artifacts {
		fi, err := os.Stat(filepath.Join(dir, a.File))
		if err != nil {
			return nil, damaged("%s is missing", a.File)
		}
		if fi.Size() != a.Size {
			return nil, damaged("%s has %d bytes, the manifest says %d", a.File, fi.Size(), a.Size)
		}
	}
	if err := checkContents(dir, m); err != nil { // integrity.go
		return nil, damaged("%v", err)
	}
	data, err := os.ReadFile(filepath.Join(dir, FileSpec))
	if err != nil {
		return nil, damaged("%v", err)
	}
	spec, err := parseConfig(data, dir, name)
	if err != nil {
		return nil, damaged("%s: %v", FileSpec, err)
	}
	return spec, nil
}

// readManifest reads manifest.json from dir.
func readManifest(dir string) (*Manifest, error) {
	data, err := os.ReadFile(filepath.Join(dir, FileManifest))
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", FileManifest, err)
	}
	if len(m.Artifacts) == 0 {
		return nil, fmt.Errorf("%s lists no artifacts", FileManifest)
	}
	return &m, nil
}

// ReadManifest returns the manifest of the newest prepared version of a
// guest (see Find).
func ReadManifest(name, cacheDir string) (*Manifest, error) {
	spec, err := Find(name, cacheDir)
	if err != nil {
		return nil, err
	}
	return readManifest(filepath.Dir(spec.Symbols))
}

// lockFile holds an exclusive flock on <cache>/guests/<name>/.lock.
type lockFile struct{ f *os.File }

// lockGuest takes the guest's lock, waiting (and saying so on progress)
// while another prepare holds it.
func lockGuest(ctx context.Context, gdir string, progress func(string, ...any)) (*lockFile, error) {
	path := filepath.Join(gdir, ".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	said := false
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return &lockFile{f}, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		if !said {
			progress("another kspec is preparing this guest; waiting for its lock %s", path)
			said = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for the lock %s: %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// unlock releases the lock.
func (l *lockFile) unlock() { l.f.Close() }

// ListGuests returns KnownGuests together with every other guest Prepare
// builds that the cache holds (e.g. debian-bookworm-backports-cloud),
// sorted; cacheDir "" means DefaultCacheDir.
func ListGuests(cacheDir string) []string {
	names := KnownGuests()
	if cacheDir == "" {
		cacheDir, _ = DefaultCacheDir()
	}
	entries, _ := os.ReadDir(filepath.Join(cacheDir, "guests"))
	for _, e := range entries {
		if e.IsDir() && CanPrepare(e.Name()) && !slices.Contains(names, e.Name()) {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names
}

// ReadManifestAt reads the manifest of the prepared guest version in dir.
func ReadManifestAt(dir string) (*Manifest, error) { return readManifest(dir) }
