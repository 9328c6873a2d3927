package archive

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"pault.ag/go/debian/deb"
)

// Member is a file found in a .deb's data archive.
type Member struct {
	// Path is its path in the package, without a leading "./" ("usr/lib/...").
	Path string
	// Links are the symbolic links in the package that resolve to Path.
	Links []string
	// Size and SHA256 are the extracted file's.
	Size   int64
	SHA256 string
}

// Matcher decides from a regular file's path and first bytes (up to
// PeekSize, fewer if the file is shorter) whether it is the member wanted.
type Matcher func(path string, head []byte) bool

// PeekSize is how many leading bytes a Matcher sees.
const PeekSize = 4096

// ErrNoMember: the package holds no file the Matcher accepts.
var ErrNoMember = errors.New("no such file in the package")

// Extract streams the data archive of the .deb at debPath (xz, gzip, zstd
// or uncompressed tar) and writes the first regular file that match
// accepts to dst (mode 0644 unless mode says otherwise), reading no further
// than that file. Symbolic links met on the way are remembered, so that a
// link that names the file (e.g. boot/vmlinux-<abi> ->
// ../lib/modules/<abi>/vmlinux) is reported in Member.Links. Progress is
// said every second through say (which may be nil).
func Extract(ctx context.Context, debPath string, match Matcher, dst string, mode os.FileMode, say func(string, ...any)) (*Member, error) {
	f, err := os.Open(debPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	data, err := dataMember(f, debPath)
	if err != nil {
		return nil, err
	}
	in := &ctxReader{ctx: ctx, r: data.Data}
	// The Go decoder: Extract stops reading at the member it wants.
	dec, closeDec, _, err := decompress(ctx, in, path.Ext(data.Name), DecoderGo)
	if err != nil {
		return nil, fmt.Errorf("%s: data member %s: %w", debPath, data.Name, err)
	}
	defer closeDec()

	if say == nil {
		say = func(string, ...any) {}
	}
	base := path.Base(debPath)
	var written, size atomic.Int64
	stop := every(time.Second, func() {
		if s := size.Load(); s > 0 {
			say("extracting from %s: %s/%s", base, mbNum(written.Load()), MB(s))
		} else {
			say("looking into %s: read %s/%s", base, mbNum(in.n.Load()), MB(fi.Size()))
		}
	})
	defer stop()

	links := map[string]string{} // link path -> resolved target path
	tr := tar.NewReader(dec)
	head := make([]byte, PeekSize)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("%w: %s", ErrNoMember, base)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("reading %s: %w", base, err)
		}
		name := cleanMember(hdr.Name)
		switch hdr.Typeflag {
		case tar.TypeSymlink:
			target := hdr.Linkname
			if !strings.HasPrefix(target, "/") {
				target = path.Join(path.Dir(name), target)
			}
			links[name] = cleanMember(target)
			continue
		case tar.TypeReg:
		default:
			continue
		}
		n, err := io.ReadFull(tr, head[:min(int64(len(head)), hdr.Size)])
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("reading %s in %s: %w", name, base, err)
		}
		if !match(name, head[:n]) {
			continue
		}
		size.Store(hdr.Size)
		m, err := writeMember(dst, mode, head[:n], tr, hdr.Size, &written)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("extracting %s from %s: %w", name, base, err)
		}
		m.Path = name
		for l := range links {
			if resolve(links, l) == name {
				m.Links = append(m.Links, l)
			}
		}
		say("extracted %s from %s (%s)", name, base, MB(m.Size))
		return m, nil
	}
}

// resolve follows links from p (at most 40 hops, as the kernel does).
func resolve(links map[string]string, p string) string {
	for range 40 {
		t, ok := links[p]
		if !ok {
			return p
		}
		p = t
	}
	return p
}

// cleanMember turns "./usr/x", "/usr/x" and "usr/x" into "usr/x".
func cleanMember(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

// writeMember writes head and then the rest of r (size bytes in all) to
// dst.
func writeMember(dst string, mode os.FileMode, head []byte, r io.Reader, size int64, written *atomic.Int64) (*Member, error) {
	if mode == 0 {
		mode = 0o644
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	w := io.MultiWriter(out, h, countingWriter{written})
	_, err = w.Write(head)
	var n int64
	if err == nil {
		n, err = io.Copy(w, r)
	}
	n += int64(len(head))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != size {
		err = fmt.Errorf("got %d of %d bytes", n, size)
	}
	if err != nil {
		os.Remove(dst)
		return nil, err
	}
	return &Member{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// ctxReader stops reading once ctx is done, and counts what it read.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
	n   atomic.Int64
}

// Read implements io.Reader.
func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// dataMember returns the data.tar member of the .deb f (at debPath, for
// errors).
func dataMember(f io.ReaderAt, debPath string) (*deb.ArEntry, error) {
	ar, err := deb.LoadAr(f)
	if err != nil {
		return nil, fmt.Errorf("%s is not a .deb (ar archive): %w", debPath, err)
	}
	for {
		e, err := ar.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("%s has no data.tar member", debPath)
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", debPath, err)
		}
		if strings.HasPrefix(e.Name, "data.tar") {
			return e, nil
		}
	}
}
