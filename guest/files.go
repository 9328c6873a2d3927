package guest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/kspec/kspec/kernel/linux"
)

// FileKind is what a file a guest names must hold (see CheckFile).
type FileKind int

const (
	// KindFile is any non-empty regular file: an initrd, a disk image, a
	// password file, a guest config.
	KindFile FileKind = iota
	// KindBzImage is an x86 Linux kernel image as QEMU's -kernel boots it
	// (a bzImage such as Debian's vmlinuz).
	KindBzImage
	// KindELF is an ELF file: a kernel's debug symbols (vmlinux,
	// kernel.debug).
	KindELF
)

// FileError is what CheckFile found wrong with a file.
type FileError struct {
	// Path is the file.
	Path string
	// Problem says what is wrong: "does not exist", "is a directory", ...
	Problem string
	// Err is the underlying error, if any.
	Err error
}

// Error implements error: "PATH PROBLEM".
func (e *FileError) Error() string { return e.Path + " " + e.Problem }

// Unwrap returns the underlying error.
func (e *FileError) Unwrap() error { return e.Err }

// CheckFile says what is wrong with path as a file of kind, or returns
// nil: it must exist, be a regular file (symlinks are followed), be
// readable and not be empty, and a KindBzImage or KindELF file must start
// like one. Only the first bytes are read, so it is cheap enough to run
// on every file of a guest before it boots. The error is a *FileError.
func CheckFile(path string, kind FileKind) error {
	bad := func(problem string, err error) error { return &FileError{Path: path, Problem: problem, Err: err} }
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return bad("does not exist", err)
	case err != nil:
		return bad("cannot be examined: "+pathErrText(err), err)
	case fi.IsDir():
		return bad("is a directory, not a file", nil)
	case !fi.Mode().IsRegular():
		return bad(fmt.Sprintf("is not a regular file (it is a %s)", modeName(fi.Mode())), nil)
	case fi.Size() == 0:
		return bad("is empty", nil)
	}
	f, err := os.Open(path)
	if err != nil {
		return bad("cannot be read: "+pathErrText(err), err)
	}
	defer f.Close()
	head := make([]byte, 0x210)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return bad("cannot be read: "+pathErrText(err), err)
	}
	head = head[:n]
	switch kind {
	case KindELF:
		if !bytes.HasPrefix(head, []byte("\x7fELF")) {
			return bad("is not an ELF file (want the kernel's debug ELF, e.g. a vmlinux or kernel.debug)", nil)
		}
	case KindBzImage:
		if linux.IsArm64Image(head) {
			break // an arm64 Image: QEMU's -kernel boots it as is
		}
		if len(head) < 0x206 || string(head[0x202:0x206]) != "HdrS" {
			what := "no HdrS setup header"
			if bytes.HasPrefix(head, []byte("\x7fELF")) {
				what = "it is an ELF file, e.g. a vmlinux: that is the symbol file"
			}
			return bad("is not an x86 bzImage ("+what+"; want the compressed kernel image, e.g. Debian's vmlinuz)", nil)
		}
	}
	return nil
}

// CheckFiles checks every file s names with CheckFile, as the kind its key
// needs (symbols an ELF, a Linux kernel a bzImage), and joins what is
// wrong, each error naming its key. Run it before booting s.
func (s *Spec) CheckFiles() error {
	kernelKind := KindFile
	if s.OS == OSLinux {
		kernelKind = KindBzImage
	}
	var errs []error
	for _, f := range []struct {
		key, path string
		kind      FileKind
	}{
		{"symbols", s.Symbols, KindELF},
		{"kernel", s.Kernel, kernelKind},
		{"initrd", s.Initrd, KindFile},
		{"disk", s.Disk, KindFile},
		{"password_file", s.PasswordFile, KindFile},
	} {
		if f.path == "" {
			continue
		}
		if err := CheckFile(f.path, f.kind); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.key, err))
		}
	}
	return errors.Join(errs...)
}

// pathErrText is err without the path a *fs.PathError repeats.
func pathErrText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func modeName(m fs.FileMode) string {
	switch t := m.Type(); {
	case t&fs.ModeNamedPipe != 0:
		return "named pipe"
	case t&fs.ModeSocket != 0:
		return "socket"
	case t&fs.ModeDevice != 0 && t&fs.ModeCharDevice != 0:
		return "character device"
	case t&fs.ModeDevice != 0:
		return "block device"
	}
	return "special file"
}
