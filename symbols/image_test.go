package symbols

import (
	"bytes"
	"debug/elf"
	"encoding/hex"
	"strings"
	"testing"
)

// TestImageBytes reads a constant's bytes and the build-id note out of a
// synthetic image by virtual address, and refuses addresses without file
// contents.
func TestImageBytes(t *testing.T) {
	data := make([]byte, 0x40)
	copy(data[0x10:], "Linux version 6.1.0-test\n\x00")
	id := []byte{0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4}
	other := buildIDNote([]byte{9, 9})
	other[8] = 1 // an NT_GNU_ABI_TAG-typed note first: skipped
	image := buildELF([]testSym{{name: "linux_banner", value: 0x5010, size: 26, typ: elf.STT_OBJECT, bind: elf.STB_GLOBAL, sec: 3}},
		testSection{name: ".rodata", typ: elf.SHT_PROGBITS, flags: elf.SHF_ALLOC, addr: 0x5000, data: data},
		testSection{name: ".notes", typ: elf.SHT_NOTE, flags: elf.SHF_ALLOC, addr: 0x6000, data: append(other, buildIDNote(id)...)},
		testSection{name: ".bss", typ: elf.SHT_NOBITS, flags: elf.SHF_ALLOC | elf.SHF_WRITE, addr: 0x7000, data: make([]byte, 0x100)}, // size only
	)
	tb := openELF(t, image)

	sym, err := tb.Lookup("linux_banner")
	if err != nil {
		t.Fatal(err)
	}
	got, err := tb.ImageBytes(sym.Addr, int(sym.Size))
	if err != nil {
		t.Fatal(err)
	}
	if want := "Linux version 6.1.0-test\n\x00"; string(got) != want {
		t.Errorf("ImageBytes(linux_banner) = %q, want %q", got, want)
	}
	off, err := tb.FileOffset(sym.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(image[off:], []byte("Linux version")) {
		t.Errorf("FileOffset(linux_banner) = %#x, which holds %q", off, image[off:off+16])
	}

	addr, ok := tb.BuildIDAddr()
	if !ok {
		t.Fatal("BuildIDAddr found no build-id")
	}
	if want := uint64(0x6000 + len(other) + 16); addr != want {
		t.Errorf("BuildIDAddr = %#x, want %#x", addr, want)
	}
	b, err := tb.ImageBytes(addr, len(id))
	if err != nil || hex.EncodeToString(b) != tb.BuildID() {
		t.Errorf("ImageBytes(BuildIDAddr) = %x, %v; BuildID %s", b, err, tb.BuildID())
	}

	for _, tt := range []struct {
		name string
		addr uint64
		n    int
		want string
	}{
		{"unloaded address", 0x9000, 4, "no section"},
		{"past the section end", 0x5030, 0x20, "past the end of section .rodata"},
		{"nobits section", 0x7000, 4, "no contents in the file"},
		{"negative length", 0x5000, -1, "negative length"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tb.ImageBytes(tt.addr, tt.n)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ImageBytes(%#x, %d) = %v, want an error containing %q", tt.addr, tt.n, err, tt.want)
			}
		})
	}
}

// TestBuildIDAddrUnallocated: a build-id in a note section the kernel does
// not load has no address.
func TestBuildIDAddrUnallocated(t *testing.T) {
	tb := openELF(t, buildELF(nil, testSection{name: ".note.gnu.build-id", typ: elf.SHT_NOTE, data: buildIDNote([]byte{1, 2, 3, 4})}))
	if tb.BuildID() != "01020304" {
		t.Fatalf("BuildID = %q", tb.BuildID())
	}
	if addr, ok := tb.BuildIDAddr(); ok {
		t.Errorf("BuildIDAddr = %#x, true; want false for an unallocated note", addr)
	}
}

// TestVmlinuxImageBytes reads the real kernel's linux_banner from its file.
func TestVmlinuxImageBytes(t *testing.T) {
	tb := openVmlinux(t)
	sym, err := tb.Lookup("linux_banner")
	if err != nil {
		t.Fatal(err)
	}
	b, err := tb.ImageBytes(sym.Addr, int(sym.Size))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("Linux version ")) {
		t.Errorf("linux_banner = %q", b)
	}
	addr, ok := tb.BuildIDAddr()
	if !ok {
		t.Fatal("no loaded build-id note")
	}
	id, err := tb.ImageBytes(addr, len(tb.BuildID())/2)
	if err != nil || hex.EncodeToString(id) != tb.BuildID() {
		t.Errorf("build-id at %#x = %x, %v; want %s", addr, id, err, tb.BuildID())
	}
}
