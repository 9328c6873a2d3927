package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// This file is the one place kspec decides between KVM and TCG.
//
// "kvm" and "tcg" stand as asked ("kvm" fails when /dev/kvm is unusable;
// it is never downgraded). "auto" picks KVM only with evidence that a
// guest ran under it on this machine: a verdict cached in
// Config.AccelCache, or a boot probe of Config.Kernel (ProbeKVM) whose
// verdict is then cached. Opening /dev/kvm proves nothing: nested or
// half-working KVM passes KVMUsable and then hangs the guest or aborts
// QEMU ("failed to set MSR ..."). Without a kernel to probe and without a
// cached verdict "auto" is TCG. When QEMU dies during Start under a KVM
// that "auto" chose, Start retries under TCG, says so in
// Machine.AccelReason and caches the TCG verdict.

// KVMHost answers the questions Accel "auto" asks about this machine's
// KVM. A nil *KVMHost, and nil fields, mean the real checks; tests set
// them to play a machine whose /dev/kvm is missing, works, hangs or
// aborts QEMU.
type KVMHost struct {
	// Usable replaces KVMUsable.
	Usable func() (bool, string)
	// Probe replaces ProbeKVM (which checks Usable first).
	Probe func(ctx context.Context, qemu, kernel string) (bool, string)
}

func (h *KVMHost) usable() (bool, string) {
	if h != nil && h.Usable != nil {
		return h.Usable()
	}
	return KVMUsable()
}

func (h *KVMHost) probe(ctx context.Context, qemu, kernel string) (bool, string) {
	if h != nil && h.Probe != nil {
		return h.Probe(ctx, qemu, kernel)
	}
	return probeKVM(ctx, h.usable, qemu, kernel)
}

// ResolveAccel settles Config.Accel for cfg and explains the choice:
// "kvm" and "tcg" stand ("requested"); "auto" (or "") follows the rules
// at the top of this file, probing cfg.Kernel when no verdict is cached
// and caching what the probe found in cfg.AccelCache (when set). Start
// calls it; callers need it only to know the choice before starting.
func ResolveAccel(ctx context.Context, cfg Config) (accel, reason string) {
	cfg = cfg.withDefaults()
	switch cfg.Accel {
	case "kvm", "tcg":
		return cfg.Accel, "requested"
	}
	if host := runtime.GOARCH; cfg.Arch.DebianArch() != host {
		// Go's and Debian's names agree for every architecture in arch.
		return "tcg", fmt.Sprintf("the guest is %s and this host %s: KVM runs only guests of the host's CPU", cfg.Arch.Name(), host)
	}
	if ok, why := cfg.KVM.usable(); !ok {
		return "tcg", "KVM not usable: " + why
	}
	verdicts := loadVerdicts(cfg.AccelCache)
	key := accelKey(cfg.QEMU, cfg.Kernel)
	if v, ok := verdicts[key]; ok {
		return v.Accel, fmt.Sprintf("cached verdict (%s): %s", cfg.AccelCache, v.Reason)
	}
	if cfg.Kernel == "" {
		// Nothing cheap to probe with (a disk guest, firmware only): the
		// verdicts for other kernels under this QEMU on this host are the
		// only evidence, and any failure among them outweighs successes.
		prefix := hostQEMUKey(cfg.QEMU) + "|"
		kvm, tcg := 0, 0
		for k, v := range verdicts {
			if strings.HasPrefix(k, prefix) {
				if v.Accel == "kvm" {
					kvm++
				} else {
					tcg++
				}
			}
		}
		switch {
		case tcg > 0:
			return "tcg", fmt.Sprintf("no kernel to probe, and a guest failed under KVM with this QEMU on this host (cached in %s)", cfg.AccelCache)
		case kvm > 0:
			return "kvm", fmt.Sprintf("no kernel to probe, but a kernel booted under KVM with this QEMU on this host (cached in %s)", cfg.AccelCache)
		}
		return "tcg", "no evidence that a guest runs under KVM on this machine (no kernel to probe and no cached verdict); using TCG (ask for kvm explicitly to insist)"
	}
	ok, why := cfg.KVM.probe(ctx, cfg.QEMU, cfg.Kernel)
	accel = "tcg"
	if ok {
		accel = "kvm"
	}
	reason = "KVM probe: " + why
	if ctx.Err() == nil { // a cancelled probe is no verdict
		storeVerdict(cfg.AccelCache, key, accelVerdict{Accel: accel, Reason: reason})
	}
	return accel, reason
}

// startAccel maps cfg.Accel to the accelerator of the first start attempt.
func startAccel(ctx context.Context, cfg Config) (accel, reason string, err error) {
	switch cfg.Accel {
	case "", "auto":
		accel, reason = ResolveAccel(ctx, cfg)
		return accel, reason, nil
	case "kvm":
		if ok, why := cfg.KVM.usable(); !ok {
			return "", "", fmt.Errorf("supervisor: Accel \"kvm\" but KVM is not usable: %s", why)
		}
		return "kvm", "requested", nil
	case "tcg":
		return "tcg", "requested", nil
	}
	return "", "", fmt.Errorf("supervisor: Config.Accel %q: want \"auto\", \"kvm\" or \"tcg\"", cfg.Accel)
}

// kvmStartFailed reports whether err is QEMU dying during Start, and if
// so returns the note that explains the fallback to TCG.
func kvmStartFailed(err error) (string, bool) {
	var ee *ExitError
	if !errors.As(err, &ee) || !ee.DuringStart {
		return "", false
	}
	how := fmt.Sprintf("exited with status %d", ee.Code)
	if ee.Signal != "" {
		how = "was killed by " + ee.Signal
	}
	if line, _, _ := strings.Cut(strings.TrimSpace(ee.StderrTail), "\n"); line != "" {
		how += ": " + line
	}
	return "QEMU " + how + " at start-up under KVM (chosen automatically); retried under TCG", true
}

// accelVerdict is one cached answer of "auto".
type accelVerdict struct {
	Accel  string    `json:"accel"`
	Reason string    `json:"reason,omitempty"`
	Time   time.Time `json:"time,omitzero"`
}

// loadVerdicts reads the verdict cache; a missing or damaged file is empty.
// It also reads the older format whose values are just "kvm" or "tcg".
func loadVerdicts(path string) map[string]accelVerdict {
	out := map[string]accelVerdict{}
	if path == "" {
		return out
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return out
	}
	var raw map[string]json.RawMessage
	if json.Unmarshal(data, &raw) != nil {
		return out
	}
	for k, m := range raw {
		var v accelVerdict
		if json.Unmarshal(m, &v) != nil {
			var s string
			if json.Unmarshal(m, &s) != nil {
				continue
			}
			v = accelVerdict{Accel: s, Reason: "KVM probe verdict"}
		}
		if v.Accel == "kvm" || v.Accel == "tcg" {
			out[k] = v
		}
	}
	return out
}

// storeVerdict records v under key in the cache at path ("" = no cache).
// The cache is a hint: failures to write it are ignored.
func storeVerdict(path, key string, v accelVerdict) {
	if path == "" {
		return
	}
	verdicts := loadVerdicts(path)
	v.Time = time.Now().UTC().Truncate(time.Second)
	verdicts[key] = v
	data, err := json.MarshalIndent(verdicts, "", "  ")
	if err != nil {
		return
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return
	}
	_, werr := f.Write(append(data, '\n'))
	cerr := f.Close()
	if werr != nil || cerr != nil || os.Rename(f.Name(), path) != nil {
		os.Remove(f.Name())
	}
}

// accelKey names a verdict: host kernel release, QEMU binary (and its
// mtime, so an upgrade probes again) and guest kernel.
func accelKey(qemu, kernel string) string {
	return hostQEMUKey(qemu) + "|" + kernel
}

func hostQEMUKey(qemu string) string {
	var u unix.Utsname
	_ = unix.Uname(&u)
	host := unix.ByteSliceToString(u.Release[:])
	if p, err := exec.LookPath(qemu); err == nil {
		qemu = p
	}
	if fi, err := os.Stat(qemu); err == nil {
		qemu += "@" + fi.ModTime().UTC().Format("20060102T150405")
	}
	return host + "|" + qemu
}
