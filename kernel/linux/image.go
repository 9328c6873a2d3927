package linux

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/kspec/kspec/arch"
)

// KernelRelease reads the release (what `uname -r` prints) from an x86
// bzImage's setup header: the kernel_version string, e.g.
// "6.1.0-56-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP ...".
func KernelRelease(bzImage string) (string, error) {
	full, err := kernelVersionString(bzImage)
	if err != nil {
		return "", err
	}
	rel, _, _ := strings.Cut(full, " ")
	return rel, nil
}

// kernelVersionString returns a bzImage's whole kernel_version string.
func kernelVersionString(bzImage string) (string, error) {
	f, err := os.Open(bzImage)
	if err != nil {
		return "", err
	}
	defer f.Close()
	hdr := make([]byte, 64<<10)
	n, err := io.ReadFull(f, hdr)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return "", fmt.Errorf("%s: %w", bzImage, err)
	}
	hdr = hdr[:n]
	if IsArm64Image(hdr) {
		return imageBanner(f, bzImage)
	}
	if len(hdr) < 0x210 || string(hdr[0x202:0x206]) != "HdrS" {
		return "", fmt.Errorf("%s is not an x86 bzImage (no HdrS setup header)", bzImage)
	}
	off := int(binary.LittleEndian.Uint16(hdr[0x20e:])) + 0x200
	if binary.LittleEndian.Uint16(hdr[0x206:]) < 0x200 || off >= len(hdr) {
		return "", fmt.Errorf("%s: bzImage has no kernel version string", bzImage)
	}
	s := hdr[off:]
	if i := bytes.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	if len(s) == 0 {
		return "", fmt.Errorf("%s: bzImage has an empty kernel version string", bzImage)
	}
	return string(s), nil
}

// CheckSymbols verifies that a Linux vmlinux (symbols) was built together
// with a bzImage (kernel): the vmlinux's "Linux version" banner must carry
// the same release and build string (e.g. "#1 SMP PREEMPT_DYNAMIC Debian
// 6.1.192-2 (2026-11-16)") as the bzImage's header. Breakpoints set from
// the wrong symbols land in the wrong places, so a mismatch is an error.
func CheckSymbols(kernel, symbols string) error {
	kv, err := kernelVersionString(kernel)
	if err != nil {
		return err
	}
	release, rest, _ := strings.Cut(kv, " ")
	// rest is "(user@host) #1 SMP ...": the build string follows ") ".
	_, build, ok := strings.Cut(rest, ") ")
	if !ok {
		build = ""
	}
	f, err := elf.Open(symbols)
	if err != nil {
		return fmt.Errorf("symbols %s: %w", symbols, err)
	}
	defer f.Close()
	if _, err := arch.ForELF(f.Machine); err != nil {
		return fmt.Errorf("symbols %s is for %v, a CPU kspec does not support: %w", symbols, f.Machine, err)
	}
	sec := f.Section(".rodata")
	if sec == nil || sec.Type == elf.SHT_NOBITS {
		return fmt.Errorf("symbols %s has no .rodata to read the kernel banner from", symbols)
	}
	data, err := sec.Data()
	if err != nil {
		return fmt.Errorf("symbols %s: %w", symbols, err)
	}
	prefix := []byte("Linux version " + release + " ")
	for rest := data; ; {
		i := bytes.Index(rest, prefix)
		if i < 0 {
			return fmt.Errorf("symbols %s are not for kernel %s: no \"Linux version %s\" banner in them", symbols, release, release)
		}
		rest = rest[i:]
		end := bytes.IndexByte(rest, 0)
		if end < 0 {
			end = len(rest)
		}
		banner := strings.TrimRight(string(rest[:end]), "\n")
		if build == "" || strings.HasSuffix(banner, build) {
			return nil
		}
		if !bytes.Contains(rest[end:], prefix) {
			return fmt.Errorf("symbols %s do not match kernel %s: the kernel says %q, the symbols %q", symbols, kernel, kv, banner)
		}
		rest = rest[end:]
	}
}

// KernelRelease reads the release from a bzImage (see the function
// KernelRelease).
func (OS) KernelRelease(kernelImage string) (string, error) { return KernelRelease(kernelImage) }

// CheckSymbolFile checks a vmlinux against its bzImage (see CheckSymbols).
func (OS) CheckSymbolFile(kernelImage, symbols string) error {
	return CheckSymbols(kernelImage, symbols)
}

// IsArm64Image reports whether head (a file's first 64 bytes or more) is
// an arm64 Linux Image: the "ARM\x64" magic of its header at 0x38.
func IsArm64Image(head []byte) bool {
	return len(head) >= 0x40 && string(head[0x38:0x3c]) == "ARM\x64"
}

// imageBanner returns the kernel_version part of the "Linux version ..."
// banner of an uncompressed kernel image (an arm64 Image has no setup
// header naming it): release, builder, compiler and build string.
func imageBanner(f *os.File, path string) (string, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	prefix := []byte("Linux version ")
	for rest := data; ; {
		i := bytes.Index(rest, prefix)
		if i < 0 {
			return "", fmt.Errorf("%s: arm64 Image has no \"Linux version\" banner", path)
		}
		rest = rest[i+len(prefix):]
		if len(rest) == 0 || rest[0] < '0' || rest[0] > '9' {
			continue // not the banner (e.g. a format string)
		}
		end := bytes.IndexAny(rest, "\x00\n")
		if end < 0 {
			end = len(rest)
		}
		return string(rest[:end]), nil
	}
}
