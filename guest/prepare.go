package guest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kspec/kspec/guest/initramfs"
)

// PrepareOptions tunes Prepare. The zero value is ready to use.
type PrepareOptions struct {
	// CacheDir is the cache root; "" means DefaultCacheDir().
	CacheDir string
	// Progress receives human-readable progress lines; nil is quiet.
	Progress io.Writer
	// Force rebuilds the guest even if its version is already prepared.
	Force bool
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
	// Download, Extract and Total are how long the steps took (zero when
	// nothing was built).
	Download, Extract, Total time.Duration
}

// progressInterval is how often long steps report progress.
const progressInterval = time.Second

// Prepare makes sure the newest version of a Debian guest ("debian-cloud",
// "debian-generic") is in the cache and returns its Spec.
//
// The version is resolved from the guest's metapackage with apt-cache (the
// local package lists: run `apt-get update` first); if that version is
// already prepared nothing is done. Otherwise the packages are downloaded
// with `apt-get download`, only the needed files are extracted
// (`dpkg-deb --fsys-tarfile` read with archive/tar), the initramfs is built
// and everything is moved into place with one rename. If the newest version
// cannot be resolved or downloaded but an older one is prepared, that one
// is returned and PrepareResult.Fallback says why.
//
// Concurrent Prepares of one guest serialise on a lock file; a cancelled
// ctx (e.g. SIGINT) stops the work and removes the partial build.
func Prepare(ctx context.Context, name string, opts PrepareOptions) (*Spec, PrepareResult, error) {
	start := time.Now()
	var res PrepareResult
	say := func(format string, args ...any) {
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, format+"\n", args...)
		}
	}
	g, ok := lookupDebian(name)
	if !ok {
		return nil, res, fmt.Errorf("guest: kspec cannot prepare a guest called %q; it prepares %s (other guests are described by a config file, see guest.LoadConfig)", name, quoteList(KnownGuests()))
	}
	cacheDir := opts.CacheDir
	if cacheDir == "" {
		d, err := DefaultCacheDir()
		if err != nil {
			return nil, res, err
		}
		cacheDir = d
	}
	cacheDir, err := filepath.Abs(cacheDir)
	if err != nil {
		return nil, res, err
	}
	gdir := guestDir(cacheDir, name)
	if err := os.MkdirAll(gdir, 0o755); err != nil {
		return nil, res, fmt.Errorf("guest: %w", err)
	}
	lock, err := lockGuest(ctx, gdir, say)
	if err != nil {
		return nil, res, fmt.Errorf("guest: %w", err)
	}
	defer lock.unlock()
	removeStale(gdir, say)

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
			return nil, res, fmt.Errorf("guest: preparing %s: %w", name, cause)
		}
		res.Dir = filepath.Dir(spec.Symbols)
		res.Manifest, _ = readManifest(res.Dir)
		res.Fallback = cause.Error()
		say("cannot check for or build a newer %s (%v)", name, cause)
		say("using the newest prepared version %s at %s", spec.Version, res.Dir)
		return spec, res, nil
	}

	if err := needTools(); err != nil {
		return fallback(err)
	}
	say("resolving %s: apt-cache show %s", name, g.Meta)
	r, err := resolveDebian(ctx, g)
	if err != nil {
		return fallback(err)
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
	b := &builder{ctx: ctx, dir: tmp, r: r, guest: g, say: say}
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
	downloaded bool
	download   time.Duration
	extract    time.Duration
}

func (b *builder) build() (*Manifest, error) {
	r := b.r
	debs := filepath.Join(b.dir, "debs")
	if err := os.Mkdir(debs, 0o755); err != nil {
		return nil, err
	}
	pkgs := []aptPackage{r.Kernel, r.Debug, r.Busybox}
	t0 := time.Now()
	files, err := aptDownload(b.ctx, debs, pkgs, b.say)
	b.download = time.Since(t0)
	if err != nil {
		return nil, err
	}
	b.downloaded = true

	t0 = time.Now()
	m := &Manifest{
		Guest: b.guest.Name, Version: r.ABI, Prepared: time.Now().UTC().Truncate(time.Second),
		Metapackage:     Package{Name: r.Meta.Name, Version: r.Meta.Version},
		InitramfsRecipe: initramfs.RecipeVersion,
	}
	for _, p := range pkgs {
		m.Packages = append(m.Packages, Package{Name: p.Name, Version: p.Version, SHA256: p.SHA256})
	}
	type member struct {
		pkg  aptPackage
		path string // in the package
		file string // in the guest directory
		mode os.FileMode
	}
	for _, mb := range []member{
		{r.Kernel, "./boot/vmlinuz-" + r.ABI, FileKernel, 0o644},
		{r.Busybox, "./bin/busybox", FileBusybox, 0o755},
		{r.Debug, "./usr/lib/debug/boot/vmlinux-" + r.ABI, FileSymbols, 0o644},
	} {
		a, err := extractMember(b.ctx, files[mb.pkg.Name], mb.path, filepath.Join(b.dir, mb.file), mb.mode, b.say)
		if err != nil {
			return nil, err
		}
		a.From = mb.pkg.Name + " " + mb.pkg.Version + ":" + strings.TrimPrefix(mb.path, ".")
		m.Artifacts = append(m.Artifacts, a)
	}
	b.extract = time.Since(t0)
	if err := os.RemoveAll(debs); err != nil {
		return nil, err
	}

	kernel, symbols := filepath.Join(b.dir, FileKernel), filepath.Join(b.dir, FileSymbols)
	if rel, err := KernelRelease(kernel); err != nil || rel != r.ABI {
		return nil, fmt.Errorf("the vmlinuz of %s says it is release %q (%v), not %s", r.Kernel.Name, rel, err, r.ABI)
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
	a, err := writeInitramfs(filepath.Join(b.dir, FileInitrd), filepath.Join(b.dir, FileBusybox), DefaultPassword, "kspec")
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
		Name: b.guest.Name, OS: OSLinux, Arch: DefaultArch, Version: r.ABI,
		Kernel: FileKernel, Symbols: FileSymbols, Initrd: FileInitrd,
		Append: profiles[OSLinux].DefaultAppend, User: "root", PasswordFile: FilePassword,
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

// BuildInitramfs writes a busybox initramfs (see initramfs.BuildBusybox)
// for root with the given password to dst, from a static busybox binary,
// e.g. a prepared guest's <dir>/busybox. The password is hashed with
// SHA-512 crypt and a random salt; it never appears in the image.
func BuildInitramfs(dst, busybox, password, hostname string) error {
	_, err := writeInitramfs(dst, busybox, password, hostname)
	return err
}

func writeInitramfs(dst, busybox, password, hostname string) (Artifact, error) {
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
	err = initramfs.BuildBusybox(cw, initramfs.BusyboxOptions{Busybox: bb, PasswordHash: hash, Hostname: hostname})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Artifact{}, err
	}
	return Artifact{File: filepath.Base(dst), Size: cw.n.Load(), SHA256: hex.EncodeToString(h.Sum(nil)),
		From: fmt.Sprintf("kspec initramfs recipe %d", initramfs.RecipeVersion)}, nil
}

// aptDownload downloads the given package versions into dir with
// `apt-get download`, reporting progress, and returns the .deb of each
// package by name.
func aptDownload(ctx context.Context, dir string, pkgs []aptPackage, say func(string, ...any)) (map[string]string, error) {
	args := []string{"download", "-q"}
	if os.Geteuid() == 0 {
		// As root apt would drop to _apt for the download and warn that
		// it cannot write into a root-owned directory.
		args = append(args, "-o", "APT::Sandbox::User=root")
	}
	var total int64
	var names []string
	for _, p := range pkgs {
		args = append(args, p.Name+"="+p.Version)
		total += p.Size
		names = append(names, p.Name+" "+p.Version)
	}
	say("downloading %s (%s)", strings.Join(names, ", "), mb(total))
	cmd := exec.CommandContext(ctx, "apt-get", args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	stop := ticker(func() {
		var n int64
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if fi, err := e.Info(); err == nil {
				n += fi.Size()
			}
		}
		say("downloading: %s/%s", mbNum(n), mb(total))
	})
	err := cmd.Run()
	stop()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("apt-get download failed (%v): %s; if the network is fine, %s",
			err, strings.TrimSpace(lastLines(out.String(), 6)), staleListsFix)
	}
	files := map[string]string{}
	for _, p := range pkgs {
		matches, _ := filepath.Glob(filepath.Join(dir, p.Name+"_*.deb"))
		if len(matches) != 1 {
			return nil, fmt.Errorf("apt-get download left %d files for %s in %s", len(matches), p.Name, dir)
		}
		files[p.Name] = matches[0]
	}
	return files, nil
}

// extractMember copies one file out of a .deb to dst: the package's data
// archive is streamed by `dpkg-deb --fsys-tarfile` into archive/tar, only
// the wanted member is written, and the reading stops right after it.
func extractMember(ctx context.Context, deb, member, dst string, mode os.FileMode, say func(string, ...any)) (Artifact, error) {
	f, err := os.Open(deb)
	if err != nil {
		return Artifact{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Artifact{}, err
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(cctx, "dpkg-deb", "--fsys-tarfile", "-")
	// dpkg-deb runs its decompressor as a child: kill the whole process
	// group when done, so that no grandchild keeps a pipe open.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return unix.Kill(-cmd.Process.Pid, unix.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	// Feed the .deb through a pipe of our own (counting the bytes for
	// progress) that we can close the moment the member is out.
	pr, pw, err := os.Pipe()
	if err != nil {
		return Artifact{}, err
	}
	defer pw.Close()
	in := &countReader{r: f}
	cmd.Stdin = pr
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		pr.Close()
		return Artifact{}, err
	}
	err = cmd.Start()
	pr.Close()
	if err != nil {
		return Artifact{}, fmt.Errorf("running dpkg-deb: %w", err)
	}
	go func() {
		io.Copy(pw, in)
		pw.Close()
	}()
	defer cmd.Wait()
	defer cancel() // runs before Wait: stop dpkg-deb once the member is out
	defer pw.Close()

	base := filepath.Base(member)
	var written atomic.Int64
	var size atomic.Int64
	stop := ticker(func() {
		if s := size.Load(); s > 0 {
			say("extracting %s: %s/%s", base, mbNum(written.Load()), mb(s))
		} else {
			say("looking for %s in %s: read %s/%s", base, filepath.Base(deb), mbNum(in.n.Load()), mb(fi.Size()))
		}
	})
	defer stop()

	tr := tar.NewReader(stdout)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			cmd.Wait()
			return Artifact{}, fmt.Errorf("%s has no %s (%s)", filepath.Base(deb), member, strings.TrimSpace(stderr.String()))
		}
		if err != nil {
			if ctx.Err() != nil {
				return Artifact{}, ctx.Err()
			}
			cmd.Wait()
			return Artifact{}, fmt.Errorf("reading %s: %w (%s)", filepath.Base(deb), err, strings.TrimSpace(stderr.String()))
		}
		if hdr.Name != member && "./"+strings.TrimPrefix(hdr.Name, "/") != member {
			continue
		}
		if hdr.Typeflag != tar.TypeReg {
			return Artifact{}, fmt.Errorf("%s in %s is not a regular file", member, filepath.Base(deb))
		}
		size.Store(hdr.Size)
		out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
		if err != nil {
			return Artifact{}, err
		}
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(out, h, writerFunc(func(p []byte) (int, error) {
			written.Add(int64(len(p)))
			return len(p), nil
		})), tr)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			if ctx.Err() != nil {
				return Artifact{}, ctx.Err()
			}
			return Artifact{}, fmt.Errorf("extracting %s from %s: %w", member, filepath.Base(deb), err)
		}
		if n != hdr.Size {
			return Artifact{}, fmt.Errorf("extracting %s from %s: got %d of %d bytes", member, filepath.Base(deb), n, hdr.Size)
		}
		say("extracted %s (%s)", base, mb(n))
		return Artifact{File: filepath.Base(dst), Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
	}
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
