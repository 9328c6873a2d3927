package archive

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ulikunitz/xz"
)

// DefaultMaxAge is how long a cached InRelease is used without asking the
// mirror again (Debian publishes every six hours).
const DefaultMaxAge = time.Hour

// Client fetches from Debian mirrors into a cache. The zero value is not
// usable: set CacheDir.
type Client struct {
	// CacheDir holds everything fetched: <CacheDir>/<mirror>/dists/...
	// for indexes and <CacheDir>/debs/ for packages.
	CacheDir string
	// Keyring is the OpenPGP keyring file releases must verify against;
	// "" means DefaultKeyring.
	Keyring string
	// MaxAge is how long a cached InRelease is trusted without asking the
	// mirror again; 0 means DefaultMaxAge. A release past its Valid-Until
	// is always asked for again.
	MaxAge time.Duration
	// HTTP is the client used; nil means http.DefaultClient.
	HTTP *http.Client
	// Say receives progress lines; nil is quiet.
	Say func(format string, args ...any)
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	keysOnce sync.Once
	keys     openpgp.EntityList
	keysErr  error
}

func (c *Client) say(format string, args ...any) {
	if c.Say != nil {
		c.Say(format, args...)
	}
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Client) keyring() (openpgp.EntityList, error) {
	c.keysOnce.Do(func() {
		path := c.Keyring
		if path == "" {
			path = DefaultKeyring
		}
		c.keys, c.keysErr = ReadKeyring(path)
		if c.keysErr != nil && c.Keyring == "" {
			c.keysErr = fmt.Errorf("%w (install Debian's archive keyring, package debian-archive-keyring, or name a keyring file holding Debian's archive keys: --keyring FILE or KSPEC_DEBIAN_KEYRING)", c.keysErr)
		}
	})
	return c.keys, c.keysErr
}

// mirrorDir is the cache directory of a mirror, e.g.
// <cache>/deb.debian.org/debian.
func (c *Client) mirrorDir(mirror string) string {
	u, err := url.Parse(mirror)
	if err != nil || u.Host == "" {
		return filepath.Join(c.CacheDir, "other", url.PathEscape(mirror))
	}
	return filepath.Join(c.CacheDir, u.Host, filepath.FromSlash(path.Clean("/"+u.Path)))
}

// Release returns the verified InRelease of a suite at a mirror, from the
// cache if it was fetched less than MaxAge ago and has not expired. The
// error wraps ErrNotFound if the mirror has no such suite, ErrNotVerified
// if the signature does not verify against the keyring.
func (c *Client) Release(ctx context.Context, mirror, suite string) (*Release, error) {
	keys, err := c.keyring()
	if err != nil {
		return nil, err
	}
	mirror = strings.TrimSuffix(mirror, "/")
	rel := "dists/" + suite + "/InRelease"
	cached := filepath.Join(c.mirrorDir(mirror), filepath.FromSlash(rel))
	maxAge := c.MaxAge
	if maxAge == 0 {
		maxAge = DefaultMaxAge
	}
	if fi, err := os.Stat(cached); err == nil && c.now().Sub(fi.ModTime()) < maxAge {
		if data, err := os.ReadFile(cached); err == nil {
			if r, err := ParseRelease(data, keys, c.now()); err == nil && !r.Expired(c.now()) {
				r.Mirror, r.Name = mirror, suite
				return r, nil
			}
		}
	}
	c.say("fetching %s/%s", mirror, rel)
	data, err := c.get(ctx, mirror+"/"+rel, 64<<20)
	if err != nil {
		return nil, fmt.Errorf("suite %s at %s: %w", suite, mirror, err)
	}
	r, err := ParseRelease(data, keys, c.now())
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %w; kspec uses no release that does not verify (keyring %s)", mirror, rel, err, c.keyringName())
	}
	r.Mirror, r.Name = mirror, suite
	if err := writeAtomic(cached, data); err != nil {
		return nil, err
	}
	return r, nil
}

func (c *Client) keyringName() string {
	if c.Keyring == "" {
		return DefaultKeyring
	}
	return c.Keyring
}

// Packages returns the Packages index of a component and architecture of
// a release ("main", "amd64"): the xz (or else gz) file the release lists,
// fetched by hash where the release allows it, checked against the
// release's SHA256 and cached. keep, if not nil, says which packages'
// records to parse (see ParseIndex).
func (c *Client) Packages(ctx context.Context, r *Release, component, arch string, keep func(name string) bool) (*Index, error) {
	base := component + "/binary-" + arch + "/Packages"
	var name string
	var sum FileSum
	for _, ext := range []string{".xz", ".gz"} {
		if s, ok := r.Files[base+ext]; ok {
			name, sum = base+ext, s
			break
		}
	}
	if name == "" {
		return nil, fmt.Errorf("%w: suite %s at %s has no %s index (xz or gz); it carries architectures %s and components %s",
			ErrNotFound, r.Name, r.Mirror, base, strings.Join(r.Architectures, " "), strings.Join(r.Components, " "))
	}
	cached := filepath.Join(c.mirrorDir(r.Mirror), "dists", r.Name, filepath.FromSlash(name))
	if err := checkFile(cached, sum.Size, sum.SHA256); err != nil {
		urls := []string{}
		if r.AcquireByHash {
			urls = append(urls, r.Mirror+"/dists/"+r.Name+"/"+path.Dir(name)+"/by-hash/SHA256/"+sum.SHA256)
		}
		urls = append(urls, r.Mirror+"/dists/"+r.Name+"/"+name)
		var ferr error
		for _, u := range urls {
			if ferr = c.Download(ctx, u, sum.Size, sum.SHA256, cached); ferr == nil {
				break
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		}
		if ferr != nil {
			return nil, fmt.Errorf("the %s index of %s: %w", base, r.Name, ferr)
		}
	}
	f, err := os.Open(cached)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var in io.Reader
	if strings.HasSuffix(name, ".xz") {
		xr, err := xz.NewReader(bufio.NewReaderSize(f, 1<<20))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cached, err)
		}
		in = xr
	} else {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cached, err)
		}
		in = zr
	}
	ix, err := ParseIndex(bufio.NewReaderSize(in, 1<<20), r.Mirror, r.Name, keep)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cached, err)
	}
	return ix, nil
}

// Deb returns the path of a package's .deb in the cache, downloading it
// (with progress) if it is not there, and checking its SHA256 against the
// index either way.
func (c *Client) Deb(ctx context.Context, p *Package) (string, error) {
	dst := filepath.Join(c.CacheDir, "debs", path.Base(p.Filename))
	if err := checkFile(dst, p.Size, p.SHA256); err == nil {
		c.say("using the cached %s", path.Base(p.Filename))
		return dst, nil
	}
	if err := c.Download(ctx, p.URL(), p.Size, p.SHA256, dst); err != nil {
		return "", fmt.Errorf("%s %s: %w", p.Name, p.Version, err)
	}
	return dst, nil
}

// CachedDebs lists the .deb files in the cache.
func (c *Client) CachedDebs() []string {
	m, _ := filepath.Glob(filepath.Join(c.CacheDir, "debs", "*.deb"))
	return m
}

// Download fetches url to dst, which appears (atomically) only once its
// size and SHA256 are right; progress is said every second for big files.
func (c *Client) Download(ctx context.Context, u string, size int64, sha string, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	resp, err := c.open(ctx, u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".part-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	var n atomic.Int64
	name := path.Base(u)
	if size > 8<<20 {
		c.say("downloading %s (%s)", name, MB(size))
		stop := every(time.Second, func() { c.say("downloading %s: %s/%s", name, mbNum(n.Load()), MB(size)) })
		defer stop()
	}
	t0 := time.Now()
	_, err = io.Copy(io.MultiWriter(tmp, h, countingWriter{&n}), io.LimitReader(resp.Body, size+1))
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("downloading %s: %w", u, err)
	}
	if got := n.Load(); got != size {
		return fmt.Errorf("%w: %s has %d bytes, the archive's index says %d", ErrNotVerified, u, got, size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sha {
		return fmt.Errorf("%w: %s has SHA256 %s, the archive's index says %s", ErrNotVerified, u, got, sha)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if size > 8<<20 {
		d := time.Since(t0)
		c.say("downloaded %s (%s in %s, %.1f MB/s)", name, MB(size), d.Round(100*time.Millisecond), float64(size)/1e6/d.Seconds())
	}
	return os.Rename(tmp.Name(), dst)
}

// get fetches a small file into memory (at most limit bytes).
func (c *Client) get(ctx context.Context, u string, limit int64) ([]byte, error) {
	resp, err := c.open(ctx, u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", u, err)
	}
	return data, nil
}

// open sends a GET and returns a 200 response; a 4xx answer (but 408 and
// 429) and an unknown host wrap ErrNotFound.
func (c *Client) open(ctx context.Context, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: bad URL %q: %v", ErrNotFound, u, err)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var dns *net.DNSError
		if errors.As(err, &dns) && dns.IsNotFound {
			return nil, fmt.Errorf("%w: no such host (GET %s: %v)", ErrNotFound, u, err)
		}
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	// A client error other than a timeout or a rate limit means the mirror
	// has no such path (deb.debian.org answers 400 for a path outside its
	// archives, 404 for a suite it does not carry).
	if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
		resp.Body.Close()
		return nil, fmt.Errorf("%w: GET %s: %s", ErrNotFound, u, resp.Status)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return resp, nil
}

// checkFile checks a file's size and SHA256.
func checkFile(p string, size int64, sha string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() != size {
		return fmt.Errorf("%w: %s has %d bytes, want %d", ErrNotVerified, p, fi.Size(), size)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sha {
		return fmt.Errorf("%w: %s has SHA256 %s, want %s", ErrNotVerified, p, got, sha)
	}
	return nil
}

// writeAtomic writes data to p through a temporary file and a rename.
func writeAtomic(p string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".part-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}

// countingWriter is a writer that only counts.
type countingWriter struct{ n *atomic.Int64 }

// Write implements io.Writer.
func (w countingWriter) Write(p []byte) (int, error) { w.n.Add(int64(len(p))); return len(p), nil }

// every calls f every d until the returned stop is called.
func every(d time.Duration, f func()) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(d)
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
	var once sync.Once
	return func() { once.Do(func() { close(done); <-finished }) }
}

// MB formats a byte count in (decimal) megabytes.
func MB(n int64) string { return mbNum(n) + " MB" }

func mbNum(n int64) string { return fmt.Sprintf("%d", (n+500_000)/1_000_000) }
