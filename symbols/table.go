package symbols

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
)

// Errors reported by a Table. They are wrapped with context; test with
// errors.Is.
var (
	// ErrUnknownSymbol reports a name that is not in the symbol table.
	ErrUnknownSymbol = errors.New("unknown symbol")
	// ErrNoSymbol reports an address that no symbol covers.
	ErrNoSymbol = errors.New("no symbol at address")
	// ErrNoLine reports an address without line-table information.
	ErrNoLine = errors.New("no line information")
	// ErrNoDWARF reports an image without the DWARF section a request needs.
	ErrNoDWARF = errors.New("no DWARF debug information")
	// ErrClosed reports a call on a closed Table.
	ErrClosed = errors.New("symbols: table is closed")
)

// Table gives access to the symbols and debug information of one ELF
// image. Create it with Open or OpenIndexed and release it with Close.
type Table struct {
	path    string
	file    *os.File // for small scattered reads that should not map pages
	data    []byte   // the whole file, memory-mapped
	release func() error
	elf     *elf.File
	order   binary.ByteOrder
	buildID string

	// mu guards against use after Close: every method holds it for
	// reading while it touches data.
	mu     sync.RWMutex
	closed bool

	symOnce sync.Once
	syms    *symtab
	symErr  error
	// symIdxOnce builds the name and address indexes of syms lazily.
	symIdxOnce  struct{ name, addr sync.Once }
	nameLookups atomic.Int64

	dwOnce sync.Once
	dw     *dwarfData
	dwErr  error

	idx *index // on-disk index, nil if none

	fileOnce sync.Once
	symFiles []uint32 // STT_FILE of each local symbol

	cfiOnce sync.Once
	cfi     []*frameSection

	cache lineCache

	entries sync.Map // function symbol address -> FunctionEntry
}

// Open maps the ELF image at path and reads its ELF and section headers.
// Nothing else is read until a lookup needs it.
func Open(path string) (*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("symbols: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("symbols: %w", err)
	}
	data, release, err := mapFile(f, st.Size())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("symbols: %s: %w", path, err)
	}
	t, err := newTable(path, data, release)
	if err != nil {
		_ = release()
		f.Close()
		return nil, err
	}
	t.file = f
	return t, nil
}

// newTable parses the ELF headers of data, which is the content of path.
func newTable(path string, data []byte, release func() error) (*Table, error) {
	ef, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("symbols: %s: not an ELF image: %w", path, err)
	}
	t := &Table{path: path, data: data, release: release, elf: ef, order: ef.ByteOrder}
	t.buildID = t.readBuildID()
	t.cache.init(32)
	return t, nil
}

// Close unmaps the image. Calls after Close fail with ErrClosed; strings
// and values returned earlier stay valid.
func (t *Table) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	var err error
	if t.idx != nil {
		err = t.idx.close()
	}
	if t.release != nil {
		if e := t.release(); e != nil && err == nil {
			err = e
		}
	}
	if t.file != nil {
		t.file.Close()
	}
	t.data = nil
	return err
}

// Path returns the path the table was opened from.
func (t *Table) Path() string { return t.path }

// BuildID returns the hex GNU build-id of the image, or "" if it has none.
func (t *Table) BuildID() string { return t.buildID }

// enter takes the read lock and fails if the table is closed. The caller
// must call t.mu.RUnlock when it returns nil.
func (t *Table) enter() error {
	t.mu.RLock()
	if t.closed {
		t.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

// sectionData returns the bytes of the named section as a slice of the
// mapping, nil if the section is absent or has no file data. Compressed
// (SHF_COMPRESSED) sections are decompressed into memory: that works but
// costs what the mapping saves (about 3 s and 475 MB for a vmlinux with
// objcopy --compress-debug-sections).
func (t *Table) sectionData(name string) ([]byte, error) {
	s := t.elf.Section(name)
	if s == nil || s.Type == elf.SHT_NOBITS {
		return nil, nil
	}
	return t.sectionBytes(s)
}

func (t *Table) sectionBytes(s *elf.Section) ([]byte, error) {
	if s.Type == elf.SHT_NOBITS {
		return nil, nil
	}
	if s.Flags&elf.SHF_COMPRESSED != 0 {
		b, err := s.Data() // decompresses
		if err != nil {
			return nil, fmt.Errorf("section %s: %w", s.Name, err)
		}
		return b, nil
	}
	end := s.Offset + s.FileSize
	if end < s.Offset || end > uint64(len(t.data)) {
		return nil, fmt.Errorf("section %s: [%#x, %#x) lies outside the file (%d bytes)", s.Name, s.Offset, end, len(t.data))
	}
	return t.data[s.Offset:end:end], nil
}

// readBuildID finds the NT_GNU_BUILD_ID note in any note section.
func (t *Table) readBuildID() string {
	for _, s := range t.elf.Sections {
		if s.Type != elf.SHT_NOTE {
			continue
		}
		b, err := t.sectionBytes(s)
		if err != nil {
			continue
		}
		if id := findBuildIDNote(b, t.order); id != nil {
			return hex.EncodeToString(id)
		}
	}
	for _, p := range t.elf.Progs {
		if p.Type != elf.PT_NOTE || p.Off+p.Filesz > uint64(len(t.data)) {
			continue
		}
		if id := findBuildIDNote(t.data[p.Off:p.Off+p.Filesz], t.order); id != nil {
			return hex.EncodeToString(id)
		}
	}
	return ""
}

// findBuildIDNote scans the ELF notes in b for a GNU build-id note.
func findBuildIDNote(b []byte, order binary.ByteOrder) []byte {
	off, desc := gnuBuildIDNote(b, order)
	if off < 0 {
		return nil
	}
	return desc
}

// gnuBuildIDNote walks the notes in b and returns the GNU build-id note's
// descriptor and its offset in b, or -1 and nil.
func gnuBuildIDNote(b []byte, order binary.ByteOrder) (int, []byte) {
	const ntGNUBuildID = 3
	align4 := func(n uint32) uint32 { return (n + 3) &^ 3 }
	for off := 0; len(b)-off >= 12; {
		namesz, descsz, typ := order.Uint32(b[off:]), order.Uint32(b[off+4:]), order.Uint32(b[off+8:])
		off += 12
		nlen, dlen := align4(namesz), align4(descsz)
		if uint64(nlen)+uint64(dlen) > uint64(len(b)-off) || namesz > nlen || descsz > dlen {
			return -1, nil
		}
		name, descOff := b[off:off+int(namesz)], off+int(nlen)
		desc := b[descOff : descOff+int(descsz)]
		off += int(nlen + dlen)
		if typ == ntGNUBuildID && bytes.Equal(name, []byte("GNU\x00")) && len(desc) > 0 {
			return descOff, desc
		}
	}
	return -1, nil
}

// sectionForAddr returns the index of the allocated section that contains
// addr, or -1.
func (t *Table) sectionForAddr(addr uint64) int {
	for i, s := range t.elf.Sections {
		if s.Flags&elf.SHF_ALLOC == 0 || s.Size == 0 {
			continue
		}
		if addr >= s.Addr && addr-s.Addr < s.Size {
			return i
		}
	}
	return -1
}
