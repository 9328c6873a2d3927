// Package initramfs writes Linux initramfs images: gzip'd cpio archives in
// the "newc" format the kernel unpacks into its rootfs, and the busybox-based
// userland kspec boots its Debian guests with.
//
// The archives are reproducible: inode numbers are assigned in order, all
// timestamps are zero and all files belong to root, so the same inputs give
// byte-identical output (and the same checksum in a guest's manifest).
package initramfs

import (
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// File-type bits of a cpio mode (the same values as the kernel's S_IF*).
const (
	modeDir     = 0o040000
	modeFile    = 0o100000
	modeSymlink = 0o120000
	modeCharDev = 0o020000
)

// newcMagic starts every header of a newc ("SVR4 without CRC") archive.
const newcMagic = "070701"

// trailerName marks the end of a cpio archive.
const trailerName = "TRAILER!!!"

// Writer writes a newc cpio archive. Entries are written in the order they
// are added; parents must be added before their children (the kernel does
// not create missing directories). The zero value is not usable: call
// NewWriter.
type Writer struct {
	w      io.Writer
	ino    uint32
	off    int64
	seen   map[string]bool
	closed bool
	err    error
}

// NewWriter returns a Writer that writes an uncompressed newc archive to w.
// Wrap w in a gzip.Writer for an initramfs the kernel can unpack.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, ino: 1, seen: map[string]bool{}}
}

// Dir adds a directory with permission bits perm (e.g. 0o755, 0o1777).
func (w *Writer) Dir(name string, perm uint32) error {
	return w.entry(name, modeDir|perm&0o7777, 2, 0, 0, nil)
}

// File adds a regular file with permission bits perm and the given content.
func (w *Writer) File(name string, perm uint32, data []byte) error {
	return w.entry(name, modeFile|perm&0o7777, 1, 0, 0, data)
}

// Symlink adds a symbolic link name pointing at target.
func (w *Writer) Symlink(name, target string) error {
	if target == "" {
		return fmt.Errorf("cpio: symlink %s: empty target", name)
	}
	return w.entry(name, modeSymlink|0o777, 1, 0, 0, []byte(target))
}

// CharDev adds a character device node, e.g. /dev/console (5, 1), which the
// kernel needs before devtmpfs is mounted to give init a console.
func (w *Writer) CharDev(name string, perm uint32, major, minor uint32) error {
	return w.entry(name, modeCharDev|perm&0o7777, 1, major, minor, nil)
}

// Close writes the trailer. It does not close the underlying writer.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	if w.err == nil {
		w.err = w.header(trailerName, 0, 0, 1, 0, 0, 0)
	}
	w.closed = true
	return w.err
}

// entry validates name and writes one header plus its data.
func (w *Writer) entry(name string, mode, nlink, rmajor, rminor uint32, data []byte) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errors.New("cpio: write after Close")
	}
	clean, err := cleanName(name)
	if err != nil {
		return err
	}
	if w.seen[clean] {
		return fmt.Errorf("cpio: duplicate entry %s", clean)
	}
	w.seen[clean] = true
	if err := w.header(clean, mode, uint32(len(data)), nlink, rmajor, rminor, w.ino); err != nil {
		w.err = err
		return err
	}
	w.ino++
	if err := w.write(data); err != nil {
		return err
	}
	return w.pad()
}

// cleanName turns "/bin/sh" or "./bin/sh" into the archive's "bin/sh".
func cleanName(name string) (string, error) {
	c := strings.TrimPrefix(path.Clean("/"+name), "/")
	if c == "" || c == "." {
		return "", fmt.Errorf("cpio: invalid entry name %q", name)
	}
	if c == trailerName {
		return "", fmt.Errorf("cpio: entry name %q is reserved", name)
	}
	return c, nil
}

// header writes a newc header followed by the NUL-terminated, padded name.
func (w *Writer) header(name string, mode, size, nlink, rmajor, rminor, ino uint32) error {
	fields := []uint32{
		ino, mode, 0 /* uid */, 0 /* gid */, nlink, 0, /* mtime */
		size, 0, 0 /* dev major, minor */, rmajor, rminor,
		uint32(len(name) + 1), 0, /* check */
	}
	var b strings.Builder
	b.WriteString(newcMagic)
	for _, f := range fields {
		fmt.Fprintf(&b, "%08X", f)
	}
	b.WriteString(name)
	b.WriteByte(0)
	if err := w.write([]byte(b.String())); err != nil {
		return err
	}
	return w.pad()
}

// write writes p and tracks the offset for padding.
func (w *Writer) write(p []byte) error {
	if w.err != nil {
		return w.err
	}
	n, err := w.w.Write(p)
	w.off += int64(n)
	if err != nil {
		w.err = fmt.Errorf("cpio: %w", err)
	}
	return w.err
}

// pad aligns the output to a multiple of four bytes.
func (w *Writer) pad() error {
	if r := w.off % 4; r != 0 {
		return w.write(make([]byte, 4-r))
	}
	return nil
}
