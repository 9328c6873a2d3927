package guest

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/kspec/kspec/kernel/linux"
)

// KernelRelease reads the release (what `uname -r` prints) from a Linux
// bzImage's setup header; see linux.KernelRelease.
func KernelRelease(bzImage string) (string, error) { return linux.KernelRelease(bzImage) }

// BuildID returns the GNU build ID of an ELF file (its .note.gnu.build-id
// note) in hex. Only the note is read, not the debug info.
func BuildID(path string) (string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	for _, sec := range f.Sections {
		if sec.Type != elf.SHT_NOTE {
			continue
		}
		data, err := sec.Data()
		if err != nil {
			return "", fmt.Errorf("%s: section %s: %w", path, sec.Name, err)
		}
		if id, ok := findBuildID(data, f.ByteOrder); ok {
			return id, nil
		}
	}
	return "", fmt.Errorf("%s has no GNU build ID note", path)
}

// findBuildID scans ELF notes for NT_GNU_BUILD_ID with owner "GNU".
func findBuildID(notes []byte, bo binary.ByteOrder) (string, bool) {
	const ntGNUBuildID = 3
	align4 := func(n uint32) int { return int((n + 3) &^ 3) }
	for len(notes) >= 12 {
		namesz, descsz, typ := bo.Uint32(notes), bo.Uint32(notes[4:]), bo.Uint32(notes[8:])
		notes = notes[12:]
		if align4(namesz) > len(notes) {
			return "", false
		}
		name := notes[:namesz]
		notes = notes[align4(namesz):]
		if align4(descsz) > len(notes) {
			if int(descsz) > len(notes) {
				return "", false
			}
		}
		desc := notes[:descsz]
		notes = notes[min(len(notes), align4(descsz)):]
		if typ == ntGNUBuildID && string(bytes.TrimRight(name, "\x00")) == "GNU" {
			return hex.EncodeToString(desc), true
		}
	}
	return "", false
}

// CheckSymbols verifies that a Linux vmlinux (symbols) was built together
// with a bzImage (kernel); see linux.CheckSymbols.
func CheckSymbols(kernel, symbols string) error { return linux.CheckSymbols(kernel, symbols) }
