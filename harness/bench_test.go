package harness

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/kspec/kspec/arch"
	"github.com/kspec/kspec/guest"
)

// The boot benchmarks compare kspec's boot-to-shell (QEMU started halted,
// RSP client attached, symbols opened, serial login, shell set up) with a
// raw QEMU boot of the same guest logged into by the simplest possible
// expect loop. Run both in one invocation and compare the ratio:
//
//	go test -run '^$' -bench 'Boot' -benchtime 5x ./harness

func BenchmarkBootToShell(b *testing.B) {
	spec := benchGuest(b)
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		t, err := Boot(ctx, Options{Spec: spec, Accel: "tcg"})
		if err != nil {
			cancel()
			b.Fatal(err)
		}
		b.StopTimer()
		t.Close()
		cancel()
		b.StartTimer()
	}
}

func BenchmarkRawQEMUBootToShell(b *testing.B) {
	spec := benchGuest(b)
	cpu, err := spec.CPU()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := rawBootToShell(cpu, spec.Kernel, spec.Initrd, spec.Append, spec.User, spec.Password, spec.MemoryMiB); err != nil {
			b.Fatal(err)
		}
	}
}

func benchGuest(b *testing.B) *guest.Spec {
	b.Helper()
	spec, err := ResolveGuest(Options{})
	if err != nil {
		b.Fatalf("%v (prepare it with: go run ./cmd/kspec guest prepare)", err)
	}
	cpu, err := spec.CPU()
	if err != nil {
		b.Fatal(err)
	}
	if err := CheckQEMU("", cpu); err != nil {
		b.Fatal(err)
	}
	return spec
}

// rawBootToShell is the reference: the CPU's QEMU (with its machine and
// TCG CPU model) with the console on stdio pipes, no gdbstub, no QMP, no
// pty; wait for "login:", send the user, wait for "Password:", send the
// password, wait for "# ".
func rawBootToShell(cpu arch.Arch, kernel, initrd, appendLine, user, password string, mem int) error {
	if mem == 0 {
		mem = 256
	}
	args := []string{"-accel", "tcg", "-m", fmt.Sprint(mem), "-smp", "1"}
	if m := cpu.Machine(); m != "" {
		args = append(args, "-machine", m)
	}
	if c := cpu.CPU(); c != "" {
		args = append(args, "-cpu", c)
	}
	args = append(args, "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-serial", "stdio",
		"-kernel", kernel, "-initrd", initrd, "-append", appendLine)
	cmd := exec.Command(cpu.QEMU(), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	}()
	r := bufio.NewReader(out)
	var seen bytes.Buffer
	expect := func(s string) error {
		for !bytes.HasSuffix(bytes.TrimRight(seen.Bytes(), " \x1b[6n"), []byte(s)) {
			c, err := r.ReadByte()
			if err != nil {
				return fmt.Errorf("waiting for %q: %w (saw %q)", s, err, tail(seen.String()))
			}
			seen.WriteByte(c)
		}
		return nil
	}
	if err := expect("login:"); err != nil {
		return err
	}
	io.WriteString(in, user+"\n")
	if err := expect("Password:"); err != nil {
		return err
	}
	io.WriteString(in, password+"\n")
	return expect("#")
}

func tail(s string) string {
	if len(s) > 300 {
		return s[len(s)-300:]
	}
	return s
}
