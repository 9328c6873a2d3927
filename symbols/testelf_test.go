package symbols

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// testSym is a symbol for a synthetic ELF image.
type testSym struct {
	name  string
	value uint64
	size  uint64
	typ   elf.SymType
	bind  elf.SymBind
	sec   int // section index (1 = .text, 2 = .data), 0 = undefined
	abs   bool
}

// testSection is an extra section of a synthetic image.
type testSection struct {
	name  string
	typ   elf.SectionType
	flags elf.SectionFlag
	addr  uint64
	data  []byte
}

// buildELF assembles a little-endian ELF64 executable with .text at
// 0x1000 (0x1000 bytes), .data at 0x3000 (0x100 bytes), the given symbols
// and extra sections (DWARF, notes). Section 1 is .text, 2 is .data.
func buildELF(syms []testSym, extra ...testSection) []byte {
	le := binary.LittleEndian
	secs := []testSection{
		{name: ".text", typ: elf.SHT_PROGBITS, flags: elf.SHF_ALLOC | elf.SHF_EXECINSTR, addr: 0x1000, data: make([]byte, 0x1000)},
		{name: ".data", typ: elf.SHT_PROGBITS, flags: elf.SHF_ALLOC | elf.SHF_WRITE, addr: 0x3000, data: make([]byte, 0x100)},
	}
	secs = append(secs, extra...)
	// String and symbol tables.
	strtab := []byte{0}
	symtab := make([]byte, 24) // null symbol
	for _, s := range syms {
		name := uint32(len(strtab))
		strtab = append(append(strtab, s.name...), 0)
		shndx := uint16(s.sec)
		if s.abs {
			shndx = uint16(elf.SHN_ABS)
		}
		e := make([]byte, 24)
		le.PutUint32(e, name)
		e[4] = elf.ST_INFO(s.bind, s.typ)
		le.PutUint16(e[6:], shndx)
		le.PutUint64(e[8:], s.value)
		le.PutUint64(e[16:], s.size)
		symtab = append(symtab, e...)
	}
	symIdx := len(secs) + 1
	secs = append(secs,
		testSection{name: ".symtab", typ: elf.SHT_SYMTAB, data: symtab},
		testSection{name: ".strtab", typ: elf.SHT_STRTAB, data: strtab},
	)
	shstr := []byte{0}
	nameOff := make([]uint32, len(secs)+1)
	for i, s := range secs {
		nameOff[i] = uint32(len(shstr))
		shstr = append(append(shstr, s.name...), 0)
	}
	nameOff[len(secs)] = uint32(len(shstr))
	shstr = append(shstr, ".shstrtab\x00"...)
	secs = append(secs, testSection{name: ".shstrtab", typ: elf.SHT_STRTAB, data: shstr})

	// Layout: header, section data, section headers.
	var body bytes.Buffer
	body.Write(make([]byte, 64))
	offs := make([]int, len(secs))
	for i, s := range secs {
		for body.Len()%8 != 0 {
			body.WriteByte(0)
		}
		offs[i] = body.Len()
		body.Write(s.data)
	}
	for body.Len()%8 != 0 {
		body.WriteByte(0)
	}
	shoff := body.Len()
	body.Write(make([]byte, 64)) // null section header
	for i, s := range secs {
		h := make([]byte, 64)
		le.PutUint32(h, nameOff[i])
		le.PutUint32(h[4:], uint32(s.typ))
		le.PutUint64(h[8:], uint64(s.flags))
		le.PutUint64(h[16:], s.addr)
		le.PutUint64(h[24:], uint64(offs[i]))
		le.PutUint64(h[32:], uint64(len(s.data)))
		switch s.typ {
		case elf.SHT_SYMTAB:
			le.PutUint32(h[40:], uint32(symIdx+1)) // link: .strtab
			le.PutUint32(h[44:], 1)
			le.PutUint64(h[56:], 24)
		}
		le.PutUint64(h[48:], 1)
		body.Write(h)
	}
	out := body.Bytes()
	copy(out, []byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)})
	le.PutUint16(out[16:], uint16(elf.ET_EXEC))
	le.PutUint16(out[18:], uint16(elf.EM_X86_64))
	le.PutUint32(out[20:], uint32(elf.EV_CURRENT))
	le.PutUint64(out[40:], uint64(shoff))
	le.PutUint16(out[52:], 64)
	le.PutUint16(out[58:], 64)
	le.PutUint16(out[60:], uint16(len(secs)+1))
	le.PutUint16(out[62:], uint16(len(secs))) // .shstrtab is last
	return out
}

// openELF writes image to a temporary file and opens it.
func openELF(t testing.TB, image []byte) *Table {
	t.Helper()
	p := filepath.Join(t.TempDir(), "vmlinux")
	if err := os.WriteFile(p, image, 0o644); err != nil {
		t.Fatal(err)
	}
	tb, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tb.Close() })
	return tb
}

// buildIDNote encodes a GNU build-id note.
func buildIDNote(id []byte) []byte {
	le := binary.LittleEndian
	b := make([]byte, 12)
	le.PutUint32(b, 4)
	le.PutUint32(b[4:], uint32(len(id)))
	le.PutUint32(b[8:], 3)
	b = append(b, "GNU\x00"...)
	b = append(b, id...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}
