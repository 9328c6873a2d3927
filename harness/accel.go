package harness

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/kspec/kspec/guest"
	"github.com/kspec/kspec/supervisor"
	"golang.org/x/sys/unix"
)

// ChooseAccel picks the accelerator for a boot. "kvm" and "tcg" are taken as
// asked. "auto" uses KVM only when /dev/kvm works *and* a Linux kernel has
// been seen to boot under it on this host: nested KVM can open /dev/kvm and
// create VMs yet hang the guest right after the decompressor. The probe's
// verdict is cached per host kernel, QEMU binary and guest kernel, so only
// the first boot on a machine pays for it.
func ChooseAccel(ctx context.Context, o Options, spec *guest.Spec) string {
	switch o.Accel {
	case "kvm", "tcg":
		return o.Accel
	}
	if ok, _ := supervisor.KVMUsable(); !ok {
		return "tcg"
	}
	if spec.Kernel == "" { // disk-image guests: nothing cheap to probe with
		return "kvm"
	}
	key := accelKey(o.QEMU, spec.Kernel)
	path := filepath.Join(cacheRoot(o.CacheDir), "accel.json")
	verdicts := map[string]string{}
	if data, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(data, &verdicts)
	}
	if v, ok := verdicts[key]; ok {
		return v
	}
	accel := "tcg"
	ok, reason := supervisor.ProbeKVM(ctx, o.QEMU, spec.Kernel)
	if ok {
		accel = "kvm"
	}
	o.Logf("KVM probe: %s → %s", reason, accel)
	verdicts[key] = accel
	if data, err := json.MarshalIndent(verdicts, "", "  "); err == nil {
		writeFileAtomic(path, data)
	}
	return accel
}

func accelKey(qemu, kernel string) string {
	var u unix.Utsname
	_ = unix.Uname(&u)
	host := unix.ByteSliceToString(u.Release[:])
	if p, err := exec.LookPath(qemu); err == nil {
		qemu = p
	}
	if fi, err := os.Stat(qemu); err == nil {
		qemu += "@" + fi.ModTime().UTC().Format("20060102T150405")
	}
	return strings.Join([]string{host, qemu, kernel}, "|")
}

// cacheRoot is the kspec cache root: dir, $KSPEC_CACHE or <user cache>/kspec.
func cacheRoot(dir string) string {
	if dir != "" {
		return dir
	}
	if d := os.Getenv("KSPEC_CACHE"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "kspec")
	}
	return filepath.Join(os.TempDir(), "kspec-cache")
}

func writeFileAtomic(path string, data []byte) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if werr != nil || cerr != nil {
		os.Remove(f.Name())
		return
	}
	if os.Rename(f.Name(), path) != nil {
		os.Remove(f.Name())
	}
}
