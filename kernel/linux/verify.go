package linux

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/kspec/kspec/kernel"
	"github.com/kspec/kspec/symbols"
)

// bannerSymbol is the Linux kernel's version banner, a constant string
// ("Linux version 6.1.0-56-cloud-amd64 (...) #1 SMP ... (2026-11-16)\n").
const bannerSymbol = BannerSymbol

// VerifyRunning checks that syms is the symbol file of the Linux kernel
// running in the guest, by reading the kernel's memory: the bytes at
// linux_banner must be the banner syms holds there, and when the vmlinux
// keeps its GNU build-id in a loaded section (.notes), the build-id in
// memory must be the file's. A mismatch, or a banner address that is not
// mapped (the kernel was relocated by KASLR, or the symbols are of another
// kernel), is an error that quotes both banners and says how to fix it.
func (OS) VerifyRunning(syms *symbols.Table, boot kernel.Boot, read func(addr uint64, n int) ([]byte, error)) error {
	file, err := imageIdentity(syms)
	if err != nil {
		return err
	}
	var mem memoryIdentity
	mem.banner, mem.bannerErr = read(file.bannerAddr, len(file.banner))
	if file.buildID != nil && mem.bannerErr == nil {
		mem.buildID, mem.buildIDErr = read(file.buildIDAddr, len(file.buildID))
	}
	return compareKernel(file, mem, kaslrPossible(boot))
}

// fileIdentity is what a vmlinux says the loaded kernel holds.
type fileIdentity struct {
	path        string
	bannerAddr  uint64
	banner      []byte // linux_banner's bytes, NUL included
	buildIDAddr uint64
	buildID     []byte // nil when the build-id is not in a loaded section
}

// memoryIdentity is what the guest's memory holds at those addresses.
type memoryIdentity struct {
	banner     []byte
	bannerErr  error // the stub could not read the address (unmapped)
	buildID    []byte
	buildIDErr error
}

// imageIdentity reads linux_banner and the loaded build-id out of syms.
func imageIdentity(syms *symbols.Table) (fileIdentity, error) {
	id := fileIdentity{path: syms.Path()}
	sym, err := syms.Lookup(bannerSymbol)
	if err != nil {
		return id, fmt.Errorf("symbols %s have no %s, so they are not a Linux vmlinux (%v); give the vmlinux built with the guest's kernel", id.path, bannerSymbol, err)
	}
	n := int(sym.Size)
	if n == 0 || n > 4096 {
		n = 512 // sizeless symbol: read enough for any banner
	}
	id.bannerAddr = sym.Addr
	id.banner, err = syms.ImageBytes(sym.Addr, n)
	if err != nil {
		return id, fmt.Errorf("symbols %s: %s: %w", id.path, bannerSymbol, err)
	}
	if addr, ok := syms.BuildIDAddr(); ok && syms.BuildID() != "" {
		if b, err := syms.ImageBytes(addr, len(syms.BuildID())/2); err == nil {
			id.buildIDAddr, id.buildID = addr, b
		}
	}
	return id, nil
}

// kaslrPossible reports whether the guest's kernel may have been relocated
// by KASLR: its command line is unknown (disk boot) or lacks nokaslr.
func kaslrPossible(boot kernel.Boot) bool {
	if !boot.Direct {
		return true
	}
	for _, w := range strings.Fields(boot.Append) {
		if w == "nokaslr" {
			return false
		}
	}
	return true
}

// compareKernel compares what the symbol file says the kernel holds with
// what the guest's memory holds; any difference is an error wrapping
// quotes both sides.
func compareKernel(file fileIdentity, mem memoryIdentity, kaslr bool) error {
	want := bannerText(file.banner)
	fix := "give the vmlinux built with the running kernel"
	if kaslr {
		fix += ", or, if these are its symbols, boot it with nokaslr on the kernel command line (KASLR moves the kernel away from the addresses in the vmlinux)"
	}
	if mem.bannerErr != nil {
		return fmt.Errorf("symbols %s: the running kernel has nothing mapped at %s (%#x), where the symbols put the banner %q (%v); %s",
			file.path, bannerSymbol, file.bannerAddr, want, mem.bannerErr, fix)
	}
	got := bannerText(mem.banner)
	if !bytes.Equal(mem.banner, file.banner) {
		if !strings.HasPrefix(got, "Linux version ") {
			return fmt.Errorf("symbols %s do not match the running kernel: at %s (%#x) the kernel holds %q, not a Linux banner; the symbols have %q there; %s",
				file.path, bannerSymbol, file.bannerAddr, got, want, fix)
		}
		return fmt.Errorf("symbols %s do not match the running kernel: the kernel's %s says %q, the symbols' %q; give the vmlinux built with the running kernel",
			file.path, bannerSymbol, got, want)
	}
	if file.buildID != nil && mem.buildIDErr == nil && !bytes.Equal(mem.buildID, file.buildID) {
		return fmt.Errorf("symbols %s do not match the running kernel: both say %q, but the kernel's build-id (at %#x) is %x and the symbols' is %x, so they are of another build of that version; give the vmlinux built with the running kernel",
			file.path, got, file.buildIDAddr, mem.buildID, file.buildID)
	}
	return nil
}

// bannerText is a banner as a person reads it: up to its NUL, without the
// trailing newline.
func bannerText(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimRight(string(b), "\n")
}

// BannerRelease returns the release in the vmlinux's linux_banner
// ("6.1.0-57-cloud-amd64").
func BannerRelease(syms *symbols.Table) (string, error) {
	id, err := imageIdentity(syms)
	if err != nil {
		return "", err
	}
	banner, _, _ := strings.Cut(string(id.banner), "\x00")
	return ReleaseFromBanner(banner)
}
