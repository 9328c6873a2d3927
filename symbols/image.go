package symbols

import (
	"debug/elf"
	"fmt"
)

// FileOffset returns the offset in the image file of the byte the kernel
// loads at the virtual address addr: addr must lie in an allocated section
// with file contents (not .bss-like SHT_NOBITS, not a compressed section).
func (t *Table) FileOffset(addr uint64) (int64, error) {
	if err := t.enter(); err != nil {
		return 0, err
	}
	defer t.mu.RUnlock()
	s, err := t.loadedSection(addr)
	if err != nil {
		return 0, err
	}
	return int64(s.Offset + (addr - s.Addr)), nil
}

// ImageBytes returns a copy of the n bytes the image holds at the virtual
// address addr, as the kernel has them when it is loaded (before it
// changes them at run time): the file contents of the allocated section
// containing [addr, addr+n). Reading a constant such as linux_banner this
// way gives what the guest's memory must hold if the guest runs this image.
func (t *Table) ImageBytes(addr uint64, n int) ([]byte, error) {
	if n < 0 {
		return nil, fmt.Errorf("symbols: image bytes at %#x: negative length %d", addr, n)
	}
	if err := t.enter(); err != nil {
		return nil, err
	}
	defer t.mu.RUnlock()
	s, err := t.loadedSection(addr)
	if err != nil {
		return nil, err
	}
	if uint64(n) > s.Size-(addr-s.Addr) {
		return nil, fmt.Errorf("symbols: %s: [%#x, %#x) runs past the end of section %s", t.path, addr, addr+uint64(n), s.Name)
	}
	data, err := t.sectionBytes(s)
	if err != nil {
		return nil, fmt.Errorf("symbols: %s: %w", t.path, err)
	}
	off := addr - s.Addr
	if off+uint64(n) > uint64(len(data)) {
		return nil, fmt.Errorf("symbols: %s: section %s holds %d bytes of file data, not the %d needed at %#x", t.path, s.Name, len(data), n, addr)
	}
	return append([]byte(nil), data[off:off+uint64(n)]...), nil
}

// BuildIDAddr returns the virtual address at which the loaded kernel holds
// its GNU build-id (the descriptor of the NT_GNU_BUILD_ID note, as many
// bytes as BuildID has hex digit pairs), and false when the note is not in
// an allocated section (then the running kernel does not keep it).
func (t *Table) BuildIDAddr() (uint64, bool) {
	if err := t.enter(); err != nil {
		return 0, false
	}
	defer t.mu.RUnlock()
	for _, s := range t.elf.Sections {
		if s.Type != elf.SHT_NOTE || s.Flags&elf.SHF_ALLOC == 0 || s.Flags&elf.SHF_COMPRESSED != 0 {
			continue
		}
		b, err := t.sectionBytes(s)
		if err != nil {
			continue
		}
		if off, _ := gnuBuildIDNote(b, t.order); off >= 0 {
			return s.Addr + uint64(off), true
		}
	}
	return 0, false
}

// loadedSection returns the allocated section with file contents that
// contains addr; t.mu is held.
func (t *Table) loadedSection(addr uint64) (*elf.Section, error) {
	i := t.sectionForAddr(addr)
	if i < 0 {
		return nil, fmt.Errorf("symbols: %s: no section of the image is loaded at %#x", t.path, addr)
	}
	s := t.elf.Sections[i]
	if s.Type == elf.SHT_NOBITS {
		return nil, fmt.Errorf("symbols: %s: %#x is in %s, which has no contents in the file (it is zeroed at load)", t.path, addr, s.Name)
	}
	if s.Flags&elf.SHF_COMPRESSED != 0 {
		return nil, fmt.Errorf("symbols: %s: %#x is in the compressed section %s", t.path, addr, s.Name)
	}
	return s, nil
}
