package guest

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestCheckFile(t *testing.T) {
	d := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(d, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bz := make([]byte, 0x300)
	copy(bz[0x202:], "HdrS")
	bzImage := write("bzImage", bz)
	elf := write("vmlinux", []byte("\x7fELF\x02\x01\x01\x00"))
	text := write("text", []byte("hello"))
	short := write("short", []byte("MZ"))
	empty := write("empty", nil)
	fifo := filepath.Join(d, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(d, "link")
	if err := os.Symlink(elf, link); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(d, "dangling")
	if err := os.Symlink(filepath.Join(d, "gone"), dangling); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		path string
		kind FileKind
		want string // "" = no error
	}{
		{"bzImage", bzImage, KindBzImage, ""},
		{"ELF", elf, KindELF, ""},
		{"symlink to an ELF", link, KindELF, ""},
		{"any file", text, KindFile, ""},
		{"missing", filepath.Join(d, "nope"), KindFile, "does not exist"},
		{"dangling symlink", dangling, KindELF, "does not exist"},
		{"under a file", filepath.Join(text, "x"), KindFile, "cannot be examined: not a directory"},
		{"directory", d, KindFile, "is a directory"},
		{"named pipe", fifo, KindFile, "is not a regular file (it is a named pipe)"},
		{"character device", "/dev/null", KindFile, "is not a regular file (it is a character device)"},
		{"empty", empty, KindBzImage, "is empty"},
		{"text as ELF", text, KindELF, "is not an ELF file"},
		{"bzImage as ELF", bzImage, KindELF, "is not an ELF file"},
		{"text as bzImage", text, KindBzImage, "is not an x86 bzImage (no HdrS setup header"},
		{"too short for a bzImage", short, KindBzImage, "is not an x86 bzImage"},
		{"vmlinux as bzImage", elf, KindBzImage, "it is an ELF file, e.g. a vmlinux: that is the symbol file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckFile(tt.path, tt.kind)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var fe *FileError
			if !errors.As(err, &fe) || fe.Path != tt.path || !strings.HasPrefix(err.Error(), tt.path+" ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("CheckFile = %v, want a *FileError for %s saying %q", err, tt.path, tt.want)
			}
			if tt.want == "does not exist" && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%v does not wrap fs.ErrNotExist", err)
			}
		})
	}
	if os.Geteuid() != 0 { // root reads files whatever their mode
		unreadable := write("unreadable", []byte("x"))
		if err := os.Chmod(unreadable, 0); err != nil {
			t.Fatal(err)
		}
		if err := CheckFile(unreadable, KindFile); err == nil || !strings.Contains(err.Error(), "cannot be read: permission denied") {
			t.Errorf("unreadable: %v", err)
		}
	}
}

func TestSpecCheckFiles(t *testing.T) {
	d := t.TempDir()
	text := filepath.Join(d, "text")
	if err := os.WriteFile(text, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A Linux kernel must be a bzImage, symbols an ELF; both wrongs are told.
	s := &Spec{OS: OSLinux, Kernel: text, Symbols: text, Initrd: filepath.Join(d, "nope")}
	err := s.CheckFiles()
	for _, w := range []string{"symbols: " + text + " is not an ELF file", "kernel: " + text + " is not an x86 bzImage", "initrd: " + filepath.Join(d, "nope") + " does not exist"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("CheckFiles = %v, lacks %q", err, w)
		}
	}
	if err := (&Spec{OS: OSFreeBSD, Disk: text}).CheckFiles(); err != nil {
		t.Errorf("a FreeBSD disk: %v", err)
	}
}
