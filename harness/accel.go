package harness

import (
	"os"
	"path/filepath"
)

// The accelerator is chosen by the supervisor (supervisor.ResolveAccel and
// Start): "auto" uses KVM only with evidence that a guest ran under it on
// this machine, and falls back to TCG when QEMU dies at start-up under an
// automatically chosen KVM. The harness only says where the verdicts are
// kept and logs the choice.

// accelCache is the file the supervisor keeps its KVM verdicts in.
func accelCache(o Options) string {
	return filepath.Join(cacheRoot(o.CacheDir), "accel.json")
}

// logAccel reports the accelerator m runs under and why.
func logAccel(o Options, accel, reason string) {
	o.Logf("accelerator %s: %s", accel, reason)
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
