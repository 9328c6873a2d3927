// Package faults_test injects faults into real guests and checks what kspec
// reports: a kernel panic is a *harness.KernelError carrying the panic text,
// returned at once; a QEMU killed under kspec is a *harness.HarnessError
// naming the signal, with nothing leaked; a breakpoint never hit is a
// NotHitError and `kspec probe` exits 1. Every spec that breaks its guest
// boots its own.
package faults_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kspec/kspec/harness"
	"github.com/kspec/kspec/kspectest"
)

func TestFaults(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "kspec fault injection")
}

// boot boots a fresh guest for one spec and closes it when the spec ends
// (kspectest.Boot).
func boot(ctx context.Context) *harness.Target {
	GinkgoHelper()
	return kspectest.Boot(ctx, harness.Options{})
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

// qemuChildren returns the pids of the QEMU processes whose parent is
// process parent, from /proc.
func qemuChildren(parent int) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(stat)
		end := strings.LastIndexByte(s, ')')
		if end < 0 || !strings.Contains(s[:end], "(qemu-system") {
			continue
		}
		if fields := strings.Fields(s[end+1:]); len(fields) > 1 && fields[1] == strconv.Itoa(parent) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// syncBuffer collects output (a child's, or the guest's through
// harness.Options.Transcript) while the spec reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (t *syncBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.b.Write(p)
}

// Len is how much was written so far: an offset for From.
func (t *syncBuffer) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.b.Len()
}

// From returns what was written from offset off on.
func (t *syncBuffer) From(off int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b.Bytes()[off:])
}

// String returns everything written so far.
func (t *syncBuffer) String() string { return t.From(0) }
