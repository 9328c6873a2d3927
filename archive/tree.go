package archive

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Decoder names how xz streams are decompressed: DecoderAuto pipes them
// through the system's `xz -dc` when it is on $PATH (xz-utils decodes
// several times faster than the Go decoder) and falls back to the Go
// decoder; DecoderGo and DecoderXZ force one.
type Decoder string

// The decoders ExtractTree may use.
const (
	DecoderAuto Decoder = ""
	DecoderGo   Decoder = "go"
	DecoderXZ   Decoder = "xz"
)

// TreeResult says what ExtractTree unpacked.
type TreeResult struct {
	// Member is the tarball's path in the package.
	Member string
	// Top is the top directory of the tarball that was stripped
	// (e.g. "linux-source-6.1"), "" if it had none.
	Top string
	// Files, Bytes count the regular files written and their bytes.
	Files int
	Bytes int64
	// Decoder is the xz decoder used for the inner tarball ("xz -dc" or
	// "Go").
	Decoder string
}

// ExtractTree streams the .deb at debPath, finds the first regular file of
// its data archive that match accepts — a compressed tarball such as
// usr/src/linux-source-6.1.tar.xz — and unpacks that tarball into dst (which
// must exist), dropping the tarball's single top directory. Regular files,
// directories, symbolic and hard links are written; an entry that would
// land outside dst is an error. dst is left as it is on error: the caller
// unpacks into a temporary directory and renames it.
func ExtractTree(ctx context.Context, debPath string, match Matcher, dst string, dec Decoder, say func(string, ...any)) (*TreeResult, error) {
	if say == nil {
		say = func(string, ...any) {}
	}
	f, err := os.Open(debPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := dataMember(f, debPath)
	if err != nil {
		return nil, err
	}
	base := path.Base(debPath)
	in := &ctxReader{ctx: ctx, r: data.Data}
	outer, closeOuter, _, err := decompress(ctx, in, path.Ext(data.Name), dec)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", base, data.Name, err)
	}
	defer closeOuter()
	tr := tar.NewReader(outer)
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
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		name := cleanMember(hdr.Name)
		n, err := io.ReadFull(tr, head[:min(int64(len(head)), hdr.Size)])
		if err != nil {
			return nil, fmt.Errorf("reading %s in %s: %w", name, base, err)
		}
		if !match(name, head[:n]) {
			continue
		}
		ext := path.Ext(name)
		if ext == ".tgz" {
			ext = ".gz"
		}
		inner, closeInner, how, err := decompress(ctx, io.MultiReader(bytes.NewReader(head[:n]), tr), ext, dec)
		if err != nil {
			return nil, fmt.Errorf("%s in %s: %w", name, base, err)
		}
		res := &TreeResult{Member: name, Decoder: how}
		var written atomic.Int64
		stop := every(time.Second, func() {
			say("unpacking %s from %s (%s): %s MB written", name, base, how, mbNum(written.Load()))
		})
		err = untar(ctx, tar.NewReader(inner), dst, res, &written)
		stop()
		if a, ok := inner.(interface{ abort() }); ok && err != nil {
			a.abort() // do not decode the rest only to throw it away
		}
		if cerr := closeInner(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("unpacking %s from %s: %w", name, base, err)
		}
		return res, nil
	}
}

// decompress returns a reader of r decompressed as ext says (".xz", ".gz",
// ".zst", ".tar" for none), a close function that must be called (it
// waits for an external decoder and reports its failure) and the name of
// the decoder used.
func decompress(ctx context.Context, r io.Reader, ext string, dec Decoder) (io.Reader, func() error, string, error) {
	none := func() error { return nil }
	switch ext {
	case ".xz", ".txz":
		if dec != DecoderGo {
			if xzPath, err := exec.LookPath("xz"); err == nil {
				rc, err := xzCommand(ctx, xzPath, r)
				if err == nil {
					return rc, rc.Close, "xz -dc", nil
				}
				if dec == DecoderXZ {
					return nil, none, "", err
				}
			} else if dec == DecoderXZ {
				return nil, none, "", fmt.Errorf("no xz on $PATH (install xz-utils): %w", err)
			}
		}
		xr, err := xz.NewReader(bufio.NewReaderSize(r, 1<<20))
		if err != nil {
			return nil, none, "", err
		}
		return xr, none, "Go", nil
	case ".gz":
		zr, err := gzip.NewReader(bufio.NewReaderSize(r, 1<<20))
		if err != nil {
			return nil, none, "", err
		}
		return zr, zr.Close, "Go gzip", nil
	case ".zst":
		zr, err := zstd.NewReader(bufio.NewReaderSize(r, 1<<20), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, none, "", err
		}
		return zr, func() error { zr.Close(); return nil }, "Go zstd", nil
	case ".tar":
		return r, none, "none", nil
	}
	return nil, none, "", fmt.Errorf("compressed with %q, which kspec does not read", ext)
}

// xzReader is the output of an `xz -dc` process fed from a reader.
type xzReader struct {
	cmd    *exec.Cmd
	out    io.ReadCloser
	stderr bytes.Buffer
	fed    chan error
	closed bool
}

// xzCommand starts `xz -dc` on r.
func xzCommand(ctx context.Context, xzPath string, r io.Reader) (*xzReader, error) {
	x := &xzReader{fed: make(chan error, 1)}
	x.cmd = exec.CommandContext(ctx, xzPath, "-dc")
	x.cmd.Stderr = &x.stderr
	in, err := x.cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	x.out, err = x.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := x.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", xzPath, err)
	}
	go func() {
		_, err := io.Copy(in, r)
		in.Close()
		x.fed <- err
	}()
	return x, nil
}

// abort kills xz.
func (x *xzReader) abort() { _ = x.cmd.Process.Kill() }

// Read implements io.Reader.
func (x *xzReader) Read(p []byte) (int, error) { return x.out.Read(p) }

// Close stops xz (if it still runs) and reports a decoding failure.
func (x *xzReader) Close() error {
	if x.closed {
		return nil
	}
	x.closed = true
	// Drain what is left so that xz finishes (the tar reader may stop
	// before the end-of-archive padding), then wait.
	_, _ = io.Copy(io.Discard, x.out)
	werr := x.cmd.Wait()
	ferr := <-x.fed
	if werr != nil {
		return fmt.Errorf("xz -dc: %w: %s", werr, strings.TrimSpace(x.stderr.String()))
	}
	if ferr != nil && !errors.Is(ferr, os.ErrClosed) {
		return fmt.Errorf("feeding xz -dc: %w", ferr)
	}
	return nil
}

// untar writes the entries of tr under dst, dropping the archive's top
// directory when every entry is inside one.
func untar(ctx context.Context, tr *tar.Reader, dst string, res *TreeResult, written *atomic.Int64) error {
	type hardlink struct{ name, target string }
	var links []hardlink
	first := true
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		name := cleanMember(hdr.Name)
		if first {
			// The kernel's source tarballs hold one directory,
			// linux-source-<version>/; its name is dropped.
			top, _, _ := strings.Cut(name, "/")
			if hdr.Typeflag == tar.TypeDir || strings.Contains(name, "/") {
				res.Top = top
			}
			first = false
		}
		rel, ok := stripTop(name, res.Top)
		if !ok {
			return fmt.Errorf("entry %q is outside the tarball's top directory %s", hdr.Name, res.Top)
		}
		if rel == "" {
			continue
		}
		target := filepath.Join(dst, filepath.FromSlash(rel))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			mode := os.FileMode(0o644)
			if hdr.Mode&0o111 != 0 {
				mode = 0o755
			}
			out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
			if err != nil {
				return err
			}
			n, err := io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
			// The tarball's times, so that gdb does not warn that the
			// source is more recent than the executable.
			if !hdr.ModTime.IsZero() {
				_ = os.Chtimes(target, hdr.ModTime, hdr.ModTime)
			}
			written.Add(n)
			res.Files++
			res.Bytes += n
		case tar.TypeSymlink:
			if path.IsAbs(hdr.Linkname) {
				return fmt.Errorf("entry %q is a symbolic link to the absolute path %q", hdr.Name, hdr.Linkname)
			}
			// A relative link that climbs out would let a later entry
			// be written through it, outside dst.
			if to := path.Join(path.Dir(rel), hdr.Linkname); to == ".." || strings.HasPrefix(to, "../") {
				return fmt.Errorf("entry %q is a symbolic link outside the tree (%q)", hdr.Name, hdr.Linkname)
			}
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(hdr.Linkname, target); err != nil {
				return err
			}
		case tar.TypeLink:
			lt, ok := stripTop(cleanMember(hdr.Linkname), res.Top)
			if !ok || lt == "" {
				return fmt.Errorf("entry %q is a hard link outside the tree (%q)", hdr.Name, hdr.Linkname)
			}
			links = append(links, hardlink{target, filepath.Join(dst, filepath.FromSlash(lt))})
		default:
			// Devices, FIFOs and the like have no place in a source tree.
		}
	}
	for _, l := range links {
		if err := os.Link(l.target, l.name); err != nil {
			return err
		}
	}
	return nil
}

// stripTop returns name relative to the top directory top ("" for top
// itself); ok is false for a name outside it. cleanMember has already
// removed any "..": a cleaned rooted path cannot climb out.
func stripTop(name, top string) (string, bool) {
	if top == "" {
		return name, true
	}
	if name == top {
		return "", true
	}
	rest, ok := strings.CutPrefix(name, top+"/")
	return rest, ok
}
