package supervisor

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kspec/kspec/arch"
)

// KVM ioctls (linux/kvm.h).
const (
	kvmGetAPIVersion = 0xAE00
	kvmCreateVM      = 0xAE01
	kvmAPIVersion    = 12
)

// KVMUsable reports whether /dev/kvm can run a VM: it opens it read-write,
// checks KVM_GET_API_VERSION is 12 and creates (and drops) a VM. The string
// says why not, or what passed. Passing does not prove a guest will boot:
// see ProbeKVM.
func KVMUsable() (bool, string) {
	fd, err := unix.Open("/dev/kvm", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Sprintf("open /dev/kvm read-write: %v", err)
	}
	defer unix.Close(fd)
	v, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), kvmGetAPIVersion, 0)
	if errno != 0 {
		return false, fmt.Sprintf("KVM_GET_API_VERSION: %v", errno)
	}
	if v != kvmAPIVersion {
		return false, fmt.Sprintf("KVM API version %d, want %d", v, kvmAPIVersion)
	}
	vm, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), kvmCreateVM, 0)
	if errno != 0 {
		return false, fmt.Sprintf("KVM_CREATE_VM: %v", errno)
	}
	unix.Close(int(vm))
	return true, "/dev/kvm opens read-write, API version 12, KVM_CREATE_VM works"
}

// ProbeKVMTimeout bounds ProbeKVM's boot.
const ProbeKVMTimeout = 8 * time.Second

// probeMarkers are kernel printks that only appear once the kernel proper
// runs (after the decompressor) with earlyprintk=serial.
var probeMarkers = []string{"Linux version", "Command line:"}

// ProbeKVM boots kernel under KVM (-cpu host, as Start uses) with
// "console=ttyS0 earlyprintk=serial" for at most ProbeKVMTimeout (or until
// ctx ends) and reports whether the kernel proper printed anything ("Linux
// version" or "Command line:"). Under nested virtualisation KVM can pass
// KVMUsable and still hang the guest right after the decompressor; this
// catches that. qemu "" means the default architecture's QEMU
// (arch.Default). A working KVM answers
// in well under a second; a hang costs the full timeout, so callers should
// cache the verdict (per host, QEMU and kernel).
func ProbeKVM(ctx context.Context, qemu, kernel string) (bool, string) {
	return probeKVM(ctx, KVMUsable, qemu, kernel)
}

// probeKVM is ProbeKVM with usable in place of KVMUsable.
func probeKVM(ctx context.Context, usable func() (bool, string), qemu, kernel string) (bool, string) {
	if ok, why := usable(); !ok {
		return false, "KVM not usable: " + why
	}
	if qemu == "" {
		qemu = arch.Default().QEMU()
	}
	qemuPath, err := exec.LookPath(qemu)
	if err != nil {
		return false, notFound(qemu, arch.Default().QEMUPackage(), err).Error()
	}
	if _, err := os.Stat(kernel); err != nil {
		return false, fmt.Sprintf("kernel: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, ProbeKVMTimeout)
	defer cancel()

	args := []string{"-no-user-config", "-nodefaults", "-display", "none", "-no-reboot"}
	for _, d := range DataDirs(qemuPath) { // firmware of a QEMU not installed system-wide
		args = append(args, "-L", d)
	}
	args = append(args, "-accel", "kvm", "-cpu", "host", "-m", "128",
		"-kernel", kernel, "-append", "console=ttyS0 earlyprintk=serial",
		"-serial", "stdio")
	cmd := exec.Command(qemuPath, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return false, err.Error()
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return false, fmt.Sprintf("start %s: %v", qemuPath, err)
	}
	var (
		mu      sync.Mutex
		console []byte
		found   = make(chan string, 1)
		eof     = make(chan struct{})
	)
	go func() {
		defer close(eof)
		buf := make([]byte, 4096)
		for {
			n, err := out.Read(buf)
			mu.Lock()
			console = append(console, buf[:n]...)
			for _, mk := range probeMarkers {
				if bytes.Contains(console, []byte(mk)) {
					select {
					case found <- mk:
					default:
					}
				}
			}
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	var ok bool
	var verdict string
	select {
	case mk := <-found:
		ok = true
		verdict = fmt.Sprintf("kernel printed %q %.2fs after start under KVM", mk, time.Since(start).Seconds())
	case <-eof:
		verdict = "qemu exited"
	case <-ctx.Done():
		verdict = fmt.Sprintf("no kernel output after the decompressor within %.1fs under KVM (nested KVM hang?)", time.Since(start).Seconds())
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_, _ = io.Copy(io.Discard, out)
	<-eof
	_ = cmd.Wait()
	if !ok {
		mu.Lock()
		last := strings.TrimSpace(string(console))
		mu.Unlock()
		if len(last) > 200 {
			last = "…" + last[len(last)-200:]
		}
		verdict += fmt.Sprintf("; console: %q", last)
		if s := strings.TrimSpace(stderr.String()); s != "" {
			verdict += fmt.Sprintf("; stderr: %q", s)
		}
	}
	return ok, verdict
}
