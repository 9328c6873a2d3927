package guest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kspec/kspec/arch"
	"github.com/kspec/kspec/archive"
	"github.com/kspec/kspec/guest/initramfs"
	"github.com/kspec/kspec/kernel/linux"
)

// PrepareOptions tunes Prepare. The zero value is ready to use.
type PrepareOptions struct {
	// CacheDir is the cache root; "" means DefaultCacheDir().
	CacheDir string
	// Progress receives human-readable progress lines; nil is quiet.
	Progress io.Writer
	// Force rebuilds the guest even if its version is already prepared.
	Force bool
	// Mirror is the Debian archive to read; "" means $KSPEC_DEBIAN_MIRROR
	// or archive.DefaultMirror.
	Mirror string
	// SecurityMirror carries the <release>-security suites; "" means
	// $KSPEC_DEBIAN_SECURITY_MIRROR or archive.DefaultSecurityMirror,
	// "none" reads no security suite.
	SecurityMirror string
	// Keyring is the OpenPGP keyring the suites' InRelease files must
	// verify against; "" means $KSPEC_DEBIAN_KEYRING or
	// archive.DefaultKeyring.
	Keyring string
	// Source also prepares the kernel's source tree (Debian's
	// linux-source-<major.minor> of the kernel's exact version), shared
	// by the guests of that version in <cache>/sources, and records it in
	// the manifest (see SourceTree).
	Source bool
	// SourceDecoder picks the xz decoder that unpacks the source tarball;
	// the default is the system's xz when there is one.
	SourceDecoder archive.Decoder
}

// PrepareResult says what Prepare did.
type PrepareResult struct {
	// Built is true if the guest was built now, false if the prepared one
	// was used.
	Built bool
	// Dir is the guest's directory, <cache>/guests/<name>/<version>.
	Dir string
	// Manifest is the guest's manifest.
	Manifest *Manifest
	// Fallback, if not empty, says why the newest version could not be
	// checked or built and an older prepared version was used instead.
	Fallback string
	// Source is the guest's kernel source tree (with PrepareOptions.Source).
	Source *SourceRecord
	// Download, Extract and Total are how long the steps took (zero when
	// nothing was built).
	Download, Extract, Total time.Duration
}

// progressInterval is how often long steps report progress.
const progressInterval = time.Second

// Prepare makes sure the newest version of a Debian guest
// ("debian-<suite>-<flavour>", e.g. "debian-sid-cloud"; "debian-cloud" and
// "debian-generic" are bookworm's) is in the cache and returns its Spec.
//
// Neither apt nor dpkg is used, and the host's package lists do not
// matter: the suite's InRelease is read from the mirror and verified
// against the Debian archive keyring, its Packages index is checked against
// the InRelease, and the version is resolved from the guest's metapackage
// (see suiteLayers for the suites read together, e.g. experimental over
// unstable); if that version is already prepared nothing is done.
// Otherwise the packages are downloaded into the cache and checked against
// the index, the kernel image, the vmlinux and busybox are found in them by
// their contents and streamed out, the initramfs is built and everything is
// moved into place with one rename. If the newest version cannot be
// resolved or downloaded but an older one is prepared, that one is returned
// and PrepareResult.Fallback says why. A suite, flavour or mirror that does
// not exist is an error wrapping ErrUnknownGuest.
//
// Concurrent Prepares of one guest serialise on a lock file; a cancelled
// ctx (e.g. SIGINT) stops the work and removes the partial build.
func Prepare(ctx context.Context, name string, opts PrepareOptions) (*Spec, PrepareResult, error) {
	start := time.Now()
	var res PrepareResult
	say := opts.say
	g, cacheDir, gdir, lock, err := beginPrepare(ctx, name, opts, say)
	if err != nil {
		return nil, res, err
	}
	locked := true
	defer func() {
		if locked {
			lock.unlock()
		}
	}()
	removeStale(gdir, say)

	job := sourceJob{cacheDir: cacheDir, decoder: opts.SourceDecoder, say: say, lockGuest: func() (func(), error) {
		l, err := lockGuest(ctx, gdir, say)
		if err != nil {
			return nil, err
		}
		return l.unlock, nil
	}}
	spec, res, err := prepareLocked(ctx, name, g, gdir, cacheDir, opts, start, say, &job)
	if err != nil || !opts.Source {
		return spec, res, err
	}
	// The source is unpacked under the sources' own lock: other prepares
	// of this guest need not wait a minute for it. The guest's lock is
	// taken again to record it in the manifest.
	lock.unlock()
	locked = false
	job.vdir = res.Dir
	rec, err := prepareSource(ctx, job)
	if err != nil {
		return spec, res, fmt.Errorf("guest: preparing the kernel source of %s: %w", name, err)
	}
	res.Source = rec
	if m, err := readManifest(res.Dir); err == nil {
		res.Manifest = m
	}
	return spec, res, nil
}

// prepareLocked is Prepare once the guest's lock is held; it records the
// archive client and the suites it read (or why it could not) in job, for
// the source step.
func prepareLocked(ctx context.Context, name string, g debianGuest, gdir, cacheDir string, opts PrepareOptions, start time.Time,
	say func(string, ...any), job *sourceJob) (*Spec, PrepareResult, error) {
	var res PrepareResult
	// fallback returns the newest prepared version after a failure to
	// resolve or build the newest one, or the failure if there is none.
	fallback := func(cause error) (*Spec, PrepareResult, error) {
		if ctx.Err() != nil {
			return nil, res, fmt.Errorf("guest: preparing %s: %w", name, ctx.Err())
		}
		spec, ferr := Find(name, cacheDir)
		if ferr == nil {
			ferr = Verify(filepath.Dir(spec.Symbols))
		}
		if errors.Is(ferr, ErrCorrupt) {
			return nil, res, fmt.Errorf("guest: preparing %s: the prepared version is damaged (%w), and kspec cannot build it again: %w", name, ferr, cause)
		}
		if ferr != nil {
			if errors.Is(cause, ErrUnknownGuest) && errors.Is(ferr, ErrNotPrepared) {
				// Leave no directory behind for a guest that does not exist.
				os.Remove(filepath.Join(gdir, ".lock"))
				os.Remove(gdir)
			}
			return nil, res, fmt.Errorf("guest: preparing %s: %w", name, cause)
		}
		res.Dir = filepath.Dir(spec.Symbols)
		res.Manifest, _ = readManifest(res.Dir)
		res.Fallback = cause.Error()
		say("cannot check for or build a newer %s (%v)", name, cause)
		say("using the newest prepared version %s at %s", spec.Version, res.Dir)
		return spec, res, nil
	}

	mirror, security, keyring := mirrorFromEnv(opts)
	client := &archive.Client{CacheDir: filepath.Join(cacheDir, "archive"), Keyring: keyring, Say: say}
	job.client = client
	say("resolving %s: %s of Debian %s (%s) at %s", name, g.Meta(), g.Suite, g.Arch, mirror)
	src, err := readSources(ctx, client, g, mirror, security, say)
	if err != nil {
		job.srcErr = err
		return fallback(err)
	}
	job.src = src
	r, err := resolveDebian(src, g)
	if err != nil {
		return fallback(err)
	}
	say("%s %s (%s) names kernel %s", r.Meta.Name, r.Meta.Version, r.Meta.Suite, r.ABI)
	for _, n := range r.Notes {
		say("%s", n)
	}
	vdir := filepath.Join(gdir, r.ABI)
	res.Dir = vdir
	if _, err := os.Stat(vdir); err == nil && !opts.Force {
		spec, err := loadPrepared(vdir, name, cacheDir)
		if err == nil { // a prepare repairs what it finds, it does not trust sizes: compare checksums
			say("verifying the checksums of %s %s at %s", name, r.ABI, vdir)
			err = Verify(vdir)
		}
		m, merr := readManifest(vdir)
		switch {
		case err != nil:
			say("%s %s at %s is damaged (%v); building it again", name, r.ABI, vdir, err)
		case merr == nil && m.InitramfsRecipe != initramfs.RecipeVersion:
			say("%s %s at %s has an initramfs of recipe %d, kspec now builds %d; building it again",
				name, r.ABI, vdir, m.InitramfsRecipe, initramfs.RecipeVersion)
		default:
			res.Manifest = m
			say("%s %s already prepared at %s", name, r.ABI, vdir)
			return spec, res, nil
		}
	}

	tmp, err := os.MkdirTemp(gdir, ".tmp-")
	if err != nil {
		return nil, res, fmt.Errorf("guest: %w", err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, res, fmt.Errorf("guest: %w", err)
	}
	installed := false
	defer func() {
		if !installed {
			os.RemoveAll(tmp)
		}
	}()
	b := &builder{ctx: ctx, dir: tmp, r: r, guest: g, say: say, client: client}
	m, err := b.build()
	res.Download, res.Extract = b.download, b.extract
	if err != nil {
		if ctx.Err() == nil && !b.downloaded {
			return fallback(err)
		}
		return nil, res, fmt.Errorf("guest: preparing %s %s: %w", name, r.ABI, err)
	}
	if err := install(tmp, vdir); err != nil {
		return nil, res, fmt.Errorf("guest: %w", err)
	}
	installed = true
	pruneDebs(client, cacheDir, say)
	spec, err := loadPrepared(vdir, name, cacheDir)
	if err != nil {
		return nil, res, err
	}
	res.Built, res.Manifest, res.Total = true, m, time.Since(start)
	say("prepared %s %s at %s in %s (download %s, extraction %s)", name, r.ABI, vdir,
		res.Total.Round(100*time.Millisecond), res.Download.Round(100*time.Millisecond), res.Extract.Round(100*time.Millisecond))
	return spec, res, nil
}

// removeStale removes the temporary directories of builds that died; the
// caller holds the guest's lock, so no live build owns one.
func removeStale(gdir string, say func(string, ...any)) {
	entries, _ := os.ReadDir(gdir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") || strings.HasPrefix(e.Name(), ".old-") {
			say("removing %s, left by an interrupted prepare", filepath.Join(gdir, e.Name()))
			os.RemoveAll(filepath.Join(gdir, e.Name()))
		}
	}
}

// install moves the finished build tmp to vdir atomically, replacing an
// existing vdir (a --force rebuild) with an atomic exchange.
func install(tmp, vdir string) error {
	err := os.Rename(tmp, vdir)
	if err == nil {
		return nil
	}
	if _, serr := os.Stat(vdir); serr != nil {
		return err
	}
	if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, vdir, unix.RENAME_EXCHANGE); err == nil {
		return os.RemoveAll(tmp) // tmp now holds the old version
	}
	old := filepath.Join(filepath.Dir(vdir), ".old-"+filepath.Base(tmp))
	if err := os.Rename(vdir, old); err != nil {
		return err
	}
	if err := os.Rename(tmp, vdir); err != nil {
		return err
	}
	return os.RemoveAll(old)
}

// builder builds one guest version in dir.
type builder struct {
	ctx        context.Context
	dir        string
	r          *resolution
	guest      debianGuest
	say        func(string, ...any)
	client     *archive.Client
	downloaded bool
	download   time.Duration
	extract    time.Duration
}

// wanted is a file of the guest to find in some package.
type wanted struct {
	what       string             // for messages
	candidates []*archive.Package // the packages that may ship it, most likely first
	match      archive.Matcher
	file       string // in the guest directory
	mode       os.FileMode
}

// fetch finds w in the first candidate that ships it: each candidate is
// downloaded (or taken from the cache) and looked into.
func (b *builder) fetch(w wanted) (*archive.Package, *archive.Member, error) {
	var looked []string
	for _, p := range w.candidates {
		t0 := time.Now()
		deb, err := b.client.Deb(b.ctx, p)
		b.download += time.Since(t0)
		if err != nil {
			return nil, nil, err
		}
		b.downloaded = true
		t0 = time.Now()
		m, err := archive.Extract(b.ctx, deb, w.match, filepath.Join(b.dir, w.file), w.mode, b.say)
		b.extract += time.Since(t0)
		if errors.Is(err, archive.ErrNoMember) {
			b.say("%s %s holds no %s", p.Name, p.Version, w.what)
			looked = append(looked, p.Name)
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		if len(m.Links) > 0 {
			b.say("%s: %s (linked from %s)", w.what, m.Path, strings.Join(m.Links, ", "))
		}
		return p, m, nil
	}
	return nil, nil, fmt.Errorf("none of the packages %s holds a %s", strings.Join(looked, ", "), w.what)
}

func (b *builder) build() (*Manifest, error) {
	r := b.r
	m := &Manifest{
		Guest: b.guest.Name, Version: r.ABI, Prepared: time.Now().UTC().Truncate(time.Second),
		Metapackage:     Package{Name: r.Meta.Name, Version: r.Meta.Version, Suite: r.Meta.Suite},
		InitramfsRecipe: initramfs.RecipeVersion,
	}
	var used []*archive.Package
	for _, w := range []wanted{
		{"kernel image (" + b.guest.Arch + ")", r.Kernels, kernelImageMatcher(b.guest.Arch), FileKernel, 0o644},
		{"busybox", []*archive.Package{r.Busybox}, busyboxMatcher, FileBusybox, 0o755},
		{"vmlinux (" + b.guest.Arch + ")", r.Debugs, vmlinuxMatcher(b.guest.Arch), FileSymbols, 0o644},
	} {
		p, mb, err := b.fetch(w)
		if err != nil {
			return nil, err
		}
		used = append(used, p)
		m.Packages = append(m.Packages, Package{Name: p.Name, Version: p.Version, SHA256: p.SHA256, Suite: p.Suite})
		m.Artifacts = append(m.Artifacts, Artifact{File: w.file, Size: mb.Size, SHA256: mb.SHA256,
			From: p.Name + " " + p.Version + ":/" + mb.Path})
	}

	kernel, symbols := filepath.Join(b.dir, FileKernel), filepath.Join(b.dir, FileSymbols)
	if rel, err := KernelRelease(kernel); err != nil || rel != r.ABI {
		return nil, fmt.Errorf("the kernel image of %s says it is release %q (%v), not %s", used[0].Name, rel, err, r.ABI)
	}
	if err := CheckSymbols(kernel, symbols); err != nil {
		return nil, err
	}
	id, err := BuildID(symbols)
	if err != nil {
		return nil, err
	}
	m.BuildID = id

	if err := os.WriteFile(filepath.Join(b.dir, FilePassword), []byte(DefaultPassword+"\n"), 0o600); err != nil {
		return nil, err
	}
	cpu, err := arch.ForDebian(b.guest.Arch)
	if err != nil {
		return nil, err
	}
	a, err := writeInitramfs(filepath.Join(b.dir, FileInitrd), filepath.Join(b.dir, FileBusybox), DefaultPassword, "kspec", cpu.Console())
	if err != nil {
		return nil, err
	}
	m.Artifacts = append(m.Artifacts, a)
	for _, f := range []string{FilePassword} {
		a, err := hashFile(filepath.Join(b.dir, f))
		if err != nil {
			return nil, err
		}
		m.Artifacts = append(m.Artifacts, a)
	}

	spec := Spec{
		Name: b.guest.Name, OS: OSLinux, Arch: cpu.Name(), Version: r.ABI,
		Kernel: FileKernel, Symbols: FileSymbols, Initrd: FileInitrd,
		Append: linux.AppendFor(cpu), User: "root", PasswordFile: FilePassword,
		MemoryMiB: DefaultMemoryMiB, CPUs: DefaultCPUs, Hostname: "kspec",
	}
	if err := writeJSON(filepath.Join(b.dir, FileSpec), spec); err != nil {
		return nil, err
	}
	if err := writeJSON(filepath.Join(b.dir, FileManifest), m); err != nil {
		return nil, err
	}
	return m, nil
}

// pruneDebs removes the cached .debs that no prepared guest version was
// built from (the manifests say which): the cache keeps what a --force
// rebuild or a repair needs, not every kernel ever downloaded.
func pruneDebs(c *archive.Client, cacheDir string, say func(string, ...any)) {
	keep := map[string]bool{}
	manifests, _ := filepath.Glob(filepath.Join(cacheDir, "guests", "*", "*", FileManifest))
	for _, mf := range manifests {
		m, err := readManifest(filepath.Dir(mf))
		if err != nil {
			continue
		}
		for _, p := range m.Packages {
			keep[debPrefix(p.Name, p.Version)] = true
		}
	}
	for _, f := range c.CachedDebs() {
		name, rest, _ := strings.Cut(filepath.Base(f), "_")
		version, _, _ := strings.Cut(rest, "_")
		if !keep[name+"_"+version] {
			say("removing the cached %s (no prepared guest uses it)", filepath.Base(f))
			os.Remove(f)
		}
	}
}

// debPrefix is how a package's pool file name begins: name_version, the
// version without its epoch.
func debPrefix(name, version string) string {
	if _, v, ok := strings.Cut(version, ":"); ok {
		version = v
	}
	return name + "_" + version
}

// kernelImageMatcher accepts a bootable kernel image of arch: an x86 bzImage
// (the "HdrS" setup header magic at 0x202) or an arm64 Image ("ARM\x64" at
// 0x38).
func kernelImageMatcher(arch string) archive.Matcher {
	return func(_ string, h []byte) bool {
		switch arch {
		case "arm64":
			return len(h) >= 0x3c && string(h[0x38:0x3c]) == "ARM\x64"
		default:
			return len(h) >= 0x206 && string(h[0x202:0x206]) == "HdrS"
		}
	}
}

// elfMachine is the ELF e_machine of each Debian architecture.
var elfMachine = map[string]uint16{"amd64": 62, "arm64": 183}

// isELF reports whether h starts a 64-bit little-endian ELF file of type
// typ for arch.
func isELF(h []byte, typ uint16, arch string) bool {
	if len(h) < 20 || string(h[:4]) != "\x7fELF" || h[4] != 2 || h[5] != 1 {
		return false
	}
	return uint16(h[16])|uint16(h[17])<<8 == typ && uint16(h[18])|uint16(h[19])<<8 == elfMachine[arch]
}

// vmlinuxMatcher accepts the kernel's ELF executable (the debug packages'
// other files are modules, ELF relocatables): ET_EXEC, or ET_DYN for a
// kernel linked as a position-independent executable (arm64's).
func vmlinuxMatcher(arch string) archive.Matcher {
	return func(p string, h []byte) bool {
		return strings.HasPrefix(path.Base(p), "vmlinux") && (isELF(h, 2, arch) || isELF(h, 3, arch))
	}
}

// busyboxMatcher accepts an ELF file called busybox.
func busyboxMatcher(p string, h []byte) bool {
	return path.Base(p) == "busybox" && len(h) >= 4 && string(h[:4]) == "\x7fELF"
}

// BuildInitramfs writes a busybox initramfs (see initramfs.BuildBusybox)
// for root with the given password to dst, from a static busybox binary,
// e.g. a prepared guest's <dir>/busybox. The password is hashed with
// SHA-512 crypt and a random salt; it never appears in the image.
func BuildInitramfs(dst, busybox, password, hostname string) error {
	_, err := writeInitramfs(dst, busybox, password, hostname, "")
	return err
}

func writeInitramfs(dst, busybox, password, hostname, console string) (Artifact, error) {
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return Artifact{}, err
	}
	hash, err := initramfs.SHA512Crypt(password, initramfs.RandomSalt(), 0)
	if err != nil {
		return Artifact{}, err
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return Artifact{}, err
	}
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	err = initramfs.BuildBusybox(cw, initramfs.BusyboxOptions{Busybox: bb, PasswordHash: hash, Hostname: hostname, Console: console})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Artifact{}, err
	}
	return Artifact{File: filepath.Base(dst), Size: cw.n.Load(), SHA256: hex.EncodeToString(h.Sum(nil)),
		From: fmt.Sprintf("kspec initramfs recipe %d", initramfs.RecipeVersion)}, nil
}

// writerFunc adapts a function to io.Writer.
type writerFunc func(p []byte) (int, error)

// Write implements io.Writer.
func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// hashFile returns the artifact record of a file.
func hashFile(path string) (Artifact, error) {
	f, err := os.Open(path)
	if err != nil {
		return Artifact{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return Artifact{}, err
	}
	return Artifact{File: filepath.Base(path), Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// Verify recomputes the checksums of every artifact of the prepared guest
// in dir against its manifest (Find only checks presence and sizes).
func Verify(dir string) error {
	m, err := readManifest(dir)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, dir, err)
	}
	var errs []error
	for _, want := range m.Artifacts {
		got, err := hashFile(filepath.Join(dir, want.File))
		switch {
		case err != nil:
			errs = append(errs, err)
		case got.SHA256 != want.SHA256:
			errs = append(errs, fmt.Errorf("%s: sha256 %s, the manifest says %s", want.File, got.SHA256, want.SHA256))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %s: %w; prepare it again with --force", ErrCorrupt, dir, err)
	}
	return nil
}

// writeJSON writes v as indented JSON.
func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// ticker calls f every progressInterval until the returned stop is called.
func ticker(f func()) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				f()
			}
		}
	}()
	var once atomic.Bool
	return func() {
		if once.CompareAndSwap(false, true) {
			close(done)
			<-finished
		}
	}
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n atomic.Int64
}

// Read implements io.Reader.
func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n atomic.Int64
}

// Write implements io.Writer.
func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// mb formats a byte count as MB.
func mb(n int64) string { return mbNum(n) + " MB" }

func mbNum(n int64) string { return fmt.Sprintf("%d", (n+500_000)/1_000_000) }

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// beginPrepare is how Prepare and PrepareExact start: the Debian guest
// called name, the absolute cache root, the guest's directory in it, and
// the guest's lock, held (the caller unlocks it).
func beginPrepare(ctx context.Context, name string, opts PrepareOptions, say func(string, ...any)) (debianGuest, string, string, *lockFile, error) {
	g, ok := lookupDebian(name)
	if !ok {
		return g, "", "", nil, fmt.Errorf("guest: kspec cannot prepare a guest called %q; it prepares %s (other guests are described by a config file, see guest.LoadConfig)", name, quoteList(KnownGuests()))
	}
	cacheDir := opts.CacheDir
	if cacheDir == "" {
		d, err := DefaultCacheDir()
		if err != nil {
			return g, "", "", nil, err
		}
		cacheDir = d
	}
	cacheDir, err := filepath.Abs(cacheDir)
	if err != nil {
		return g, "", "", nil, err
	}
	gdir := guestDir(cacheDir, name)
	if err := os.MkdirAll(gdir, 0o755); err != nil {
		return g, "", "", nil, fmt.Errorf("guest: %w", err)
	}
	lock, err := lockGuest(ctx, gdir, say)
	if err != nil {
		return g, "", "", nil, fmt.Errorf("guest: %w", err)
	}
	return g, cacheDir, gdir, lock, nil
}

// say writes one progress line to Progress, if set.
func (o PrepareOptions) say(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, format+"\n", args...)
	}
}
