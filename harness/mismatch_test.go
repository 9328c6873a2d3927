package harness

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kspec/kspec/guest"
)

// TestBootRefusesSymbolsOfAnotherKernel gives Boot the prepared guest's
// kernel with an unrelated ELF file as its symbols: Boot must refuse with
// ErrBadInput naming the mismatch, before any QEMU starts.
func TestBootRefusesSymbolsOfAnotherKernel(t *testing.T) {
	kernel := os.Getenv("KSPEC_KERNEL")
	if kernel == "" {
		if os.Getenv(SkipMissingEnv) == "1" {
			t.Skip("KSPEC_KERNEL unset")
		}
		t.Fatal("KSPEC_KERNEL is unset: run eval \"$(bin/kspec guest env)\" after kspec guest prepare, or set KSPEC_SKIP_MISSING=1")
	}
	// An x86-64 ELF file with a .rodata, but not this kernel's vmlinux. (Not
	// the test binary itself: other tests embed real kernel banners.)
	self, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	spec := &guest.Spec{Name: "mismatch", OS: "linux", Arch: "x86_64", Kernel: kernel, Symbols: self, User: "root"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	target, err := Boot(ctx, Options{Spec: spec, Accel: "tcg"})
	if err == nil {
		target.Close()
		t.Fatal("Boot accepted symbols of another kernel")
	}
	if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "not for kernel") {
		t.Fatalf("want ErrBadInput naming the mismatch, got %v", err)
	}
}
