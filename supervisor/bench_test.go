package supervisor

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"
)

// BenchmarkStartStop measures a firmware-only QEMU from Start (run dir,
// scratch drive, process, QMP) to the end of Stop.
func BenchmarkStartStop(b *testing.B) {
	base := b.TempDir()
	ctx := context.Background()
	for b.Loop() {
		m, err := Start(ctx, Config{FirmwareOnly: true, Accel: "tcg", RunDirBase: base})
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Stop(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// bootedKernel boots $KSPEC_KERNEL (no initrd) until it panics, so guest
// RAM holds a booted kernel, and saves snapshot "booted".
func bootedKernel(b *testing.B, memMiB int) *Machine {
	k := getenvOrSkip(b, "KSPEC_KERNEL")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m, err := Start(ctx, Config{Kernel: k, Append: "console=ttyS0 nokaslr", Accel: "tcg", MemoryMiB: memMiB, RunDirBase: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Stop(context.Background()) })
	if err := m.QMP().Cont(ctx); err != nil {
		b.Fatal(err)
	}
	for !bytes.Contains([]byte(m.ConsoleTail(4096)), []byte("end Kernel panic")) {
		if ctx.Err() != nil {
			b.Fatal("kernel did not reach its panic")
		}
		time.Sleep(50 * time.Millisecond)
	}
	vm, devs := m.SnapshotNodes()
	begin := time.Now()
	if err := m.QMP().SnapshotSave(ctx, "booted", vm, devs); err != nil {
		b.Fatal(err)
	}
	b.Logf("snapshot-save of a booted %d MiB guest: %v", memMiB, time.Since(begin))
	return m
}

func getenvOrSkip(b *testing.B, name string) string {
	v := os.Getenv(name)
	if v == "" {
		b.Skipf("%s is unset", name)
	}
	return v
}

func BenchmarkSnapshotLoadBootedKernel(b *testing.B) {
	m := bootedKernel(b, 256)
	vm, devs := m.SnapshotNodes()
	ctx := context.Background()
	for b.Loop() {
		if err := m.QMP().SnapshotLoad(ctx, "booted", vm, devs); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHMPLoadVMBootedKernel(b *testing.B) {
	m := bootedKernel(b, 256)
	ctx := context.Background()
	for b.Loop() {
		if err := m.QMP().HMPLoadVM(ctx, "booted"); err != nil {
			b.Fatal(err)
		}
	}
}
