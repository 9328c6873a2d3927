// Package faults_test injects faults into real guests and checks what kspec
// reports: a kernel panic is a *harness.KernelError carrying the panic text,
// returned at once; a QEMU killed under kspec is a *harness.HarnessError
// naming the signal, with nothing leaked; a breakpoint never hit is a
// NotHitError and `kspec probe` exits 1. Every spec that breaks its guest
// boots its own.
package faults_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kspec/kspec/harness"
)

func TestFaults(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "kspec fault injection")
}

// boot boots a fresh guest for one spec and closes it when the spec ends.
func boot(ctx context.Context) *harness.Target {
	GinkgoHelper()
	t, err := harness.Boot(ctx, harness.Options{
		Logf: func(format string, args ...any) { GinkgoWriter.Printf(format+"\n", args...) },
	})
	harness.SkipOrFail(err, Skip)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { _ = t.Close() })
	return t
}

// moduleRoot is the kspec source tree (for building the CLI).
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// kspecBin is the CLI built by buildKspec, once per process.
var kspecBin string

// buildKspec builds the kspec CLI into a temporary directory (once).
func buildKspec(ctx context.Context) string {
	GinkgoHelper()
	if kspecBin != "" {
		return kspecBin
	}
	dir, err := os.MkdirTemp("", "kspec-faults-bin-")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { os.RemoveAll(dir) }) // ends with the spec; rebuilt if needed again
	bin := filepath.Join(dir, "kspec")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/kspec")
	cmd.Dir = moduleRoot()
	out, err := cmd.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "go build: %s", out)
	kspecBin = bin
	DeferCleanup(func() { kspecBin = "" })
	return bin
}

// openFDs counts this process's open file descriptors.
func openFDs() int {
	GinkgoHelper()
	ents, err := os.ReadDir("/proc/self/fd")
	Expect(err).NotTo(HaveOccurred())
	return len(ents)
}

// settled polls cond until it holds: resources released by goroutines that
// end asynchronously (a reaped process's pipes, a reader that saw EOF).
// It polls a condition, it does not sleep for a fixed time.
func settled(cond func() bool) bool {
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		runtime.Gosched()
		time.Sleep(10 * time.Millisecond)
	}
	return true
}
