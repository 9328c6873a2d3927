package supervisor

import (
	"context"
	"errors"
	"github.com/kspec/kspec/arch"
	"github.com/kspec/kspec/arch/amd64"
	"github.com/kspec/kspec/arch/arm64"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Hosts that "auto" may meet, played without touching /dev/kvm.
var (
	kvmMissing = func() (bool, string) { return false, "open /dev/kvm read-write: no such file or directory" }
	kvmOpens   = func() (bool, string) { return true, "/dev/kvm opens read-write (played by the test)" }
)

// probeMustNotRun fails t if "auto" probes when it should not.
func probeMustNotRun(t *testing.T) func(context.Context, string, string) (bool, string) {
	return func(context.Context, string, string) (bool, string) {
		t.Error("probed KVM, want no probe")
		return false, "unexpected probe"
	}
}

func TestResolveAccelNeedsEvidence(t *testing.T) {
	const qemu = "/nonexistent/qemu-for-accel-test"
	const kernel = "/guests/vmlinuz"
	other := "/guests/other-vmlinuz"
	cases := []struct {
		name      string
		accel     string
		kernel    string
		usable    func() (bool, string)
		probe     func(context.Context, string, string) (bool, string) // nil: must not run
		cached    map[string]string                                    // kernel -> verdict
		want      string
		reason    string
		wantCache string // verdict cached for kernel afterwards ("" = none)
	}{
		{name: "no /dev/kvm", kernel: kernel, usable: kvmMissing, want: "tcg", reason: "KVM not usable"},
		{name: "/dev/kvm opens, no kernel, nothing cached", usable: kvmOpens, want: "tcg", reason: "no evidence"},
		{name: "probe boots the kernel", kernel: kernel, usable: kvmOpens,
			probe: func(context.Context, string, string) (bool, string) { return true, "kernel printed \"Linux version\"" },
			want:  "kvm", reason: "Linux version", wantCache: "kvm"},
		{name: "probe hangs after the decompressor", kernel: kernel, usable: kvmOpens,
			probe: func(context.Context, string, string) (bool, string) {
				return false, "no kernel output (nested KVM hang?)"
			},
			want: "tcg", reason: "nested KVM hang", wantCache: "tcg"},
		{name: "probe: QEMU aborts", kernel: kernel, usable: kvmOpens,
			probe: func(context.Context, string, string) (bool, string) {
				return false, "qemu exited; stderr: failed to set MSR 0x10a"
			},
			want: "tcg", reason: "MSR", wantCache: "tcg"},
		{name: "cached kvm verdict, no probe", kernel: kernel, usable: kvmOpens, cached: map[string]string{kernel: "kvm"},
			want: "kvm", reason: "cached verdict", wantCache: "kvm"},
		{name: "cached tcg verdict, no probe", kernel: kernel, usable: kvmOpens, cached: map[string]string{kernel: "tcg"},
			want: "tcg", reason: "cached verdict", wantCache: "tcg"},
		{name: "no kernel, another kernel booted under KVM", usable: kvmOpens, cached: map[string]string{other: "kvm"},
			want: "kvm", reason: "a kernel booted under KVM"},
		{name: "no kernel, another kernel failed under KVM", usable: kvmOpens, cached: map[string]string{other: "tcg", "/guests/third": "kvm"},
			want: "tcg", reason: "failed under KVM"},
		{name: "cached kvm but /dev/kvm gone", kernel: kernel, usable: kvmMissing, cached: map[string]string{kernel: "kvm"},
			want: "tcg", reason: "KVM not usable", wantCache: "kvm"},
		{name: "explicit tcg", accel: "tcg", kernel: kernel, usable: kvmOpens, want: "tcg", reason: "requested"},
		{name: "explicit kvm", accel: "kvm", kernel: kernel, usable: kvmMissing, want: "kvm", reason: "requested"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cache := filepath.Join(t.TempDir(), "accel.json")
			for k, v := range tc.cached {
				storeVerdict(cache, accelKey(qemu, k), accelVerdict{Accel: v, Reason: "seeded by the test"})
			}
			probe := tc.probe
			if probe == nil {
				probe = probeMustNotRun(t)
			}
			cfg := Config{QEMU: qemu, Kernel: tc.kernel, Accel: tc.accel, AccelCache: cache, KVM: &KVMHost{Usable: tc.usable, Probe: probe}}
			got, reason := ResolveAccel(t.Context(), cfg)
			if got != tc.want || !strings.Contains(reason, tc.reason) {
				t.Fatalf("ResolveAccel = %s (%s), want %s (%q)", got, reason, tc.want, tc.reason)
			}
			if tc.kernel == "" {
				return
			}
			v, ok := loadVerdicts(cache)[accelKey(qemu, tc.kernel)]
			if v.Accel != tc.wantCache || ok != (tc.wantCache != "") {
				t.Fatalf("cached verdict %+v (present %v), want %q", v, ok, tc.wantCache)
			}
		})
	}
}

// A cancelled probe is no verdict: nothing is cached.
func TestResolveAccelCancelledProbeNotCached(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "accel.json")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	cfg := Config{Kernel: "/k", AccelCache: cache, KVM: &KVMHost{Usable: kvmOpens,
		Probe: func(ctx context.Context, _, _ string) (bool, string) { return false, ctx.Err().Error() }}}
	if a, _ := ResolveAccel(ctx, cfg); a != "tcg" {
		t.Fatalf("accel %s", a)
	}
	if _, err := os.Stat(cache); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("cache written for a cancelled probe: %v", err)
	}
}

// The cache written by older kspec versions (values "kvm"/"tcg") is read.
func TestAccelVerdictsOldFormat(t *testing.T) {
	p := filepath.Join(t.TempDir(), "accel.json")
	if err := os.WriteFile(p, []byte(`{"a":"kvm","b":{"accel":"tcg","reason":"r"},"c":"bogus","d":7}`), 0o644); err != nil {
		t.Fatal(err)
	}
	v := loadVerdicts(p)
	if len(v) != 2 || v["a"].Accel != "kvm" || v["b"].Accel != "tcg" || v["b"].Reason != "r" {
		t.Fatalf("loadVerdicts = %+v", v)
	}
}

// abortingQEMU writes a qemu-system-x86_64 that behaves like this
// project's CI machine under KVM: it prints QEMU's MSR error and dies by
// SIGABRT when given "-accel kvm", and is the real QEMU otherwise.
func abortingQEMU(t *testing.T) string {
	t.Helper()
	needQEMU(t)
	real, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "qemu-system-x86_64")
	script := `#!/bin/sh
prev=
for a in "$@"; do
	if [ "$prev" = "-accel" ] && [ "$a" = "kvm" ]; then
		echo "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69" >&2
		echo "qemu-system-x86_64: ../../target/i386/kvm/kvm.c:3183: kvm_buf_set_msrs: Assertion failed." >&2
		kill -ABRT $$
	fi
	prev=$a
done
exec '` + real + `' "$@"
`
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// runDirs lists the run dirs under base.
func runDirs(t *testing.T, base string) []string {
	t.Helper()
	d, err := filepath.Glob(filepath.Join(base, "kspec-run-*"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// On a machine whose /dev/kvm opens but whose KVM aborts QEMU, "auto"
// without a kernel to probe and without a verdict must not pick KVM: the
// first QEMU must run under TCG (before the fix it ran under KVM and died
// with SIGABRT, failing TestMissingBinaries on such machines).
func TestAutoAccelWithoutEvidenceIsTCG(t *testing.T) {
	qemu := abortingQEMU(t)
	base := shortBase(t)
	m, err := Start(t.Context(), Config{FirmwareOnly: true, QEMU: qemu, RunDirBase: base,
		AccelCache: filepath.Join(t.TempDir(), "accel.json"), KVM: &KVMHost{Usable: kvmOpens, Probe: probeMustNotRun(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop(context.Background())
	if m.Accel() != "tcg" || !strings.Contains(m.AccelReason(), "no evidence") || strings.Contains(m.AccelReason(), "retried") {
		t.Fatalf("accel %s (%s), want tcg for want of evidence, first time", m.Accel(), m.AccelReason())
	}
}

// A stale "kvm" verdict (the host's KVM broke since) makes "auto" start
// under KVM; QEMU dies at start-up and Start runs it again under TCG,
// says why and caches the new verdict. Nothing of the failed attempt is
// left behind.
func TestAutoAccelKVMDeathAtStartRetriesTCG(t *testing.T) {
	qemu := abortingQEMU(t)
	base := shortBase(t)
	cache := filepath.Join(t.TempDir(), "accel.json")
	key := accelKey(qemu, "")
	storeVerdict(cache, key, accelVerdict{Accel: "kvm", Reason: "seeded: a kernel booted under KVM"})
	host := &KVMHost{Usable: kvmOpens, Probe: probeMustNotRun(t)}
	m, err := Start(t.Context(), Config{FirmwareOnly: true, QEMU: qemu, RunDirBase: base, AccelCache: cache, KVM: host})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop(context.Background())
	r := m.AccelReason()
	if m.Accel() != "tcg" {
		t.Fatalf("accel %s (%s), want tcg after the KVM start died", m.Accel(), r)
	}
	for _, want := range []string{"SIGABRT", "failed to set MSR 0x10a", "retried under TCG", "seeded"} {
		if !strings.Contains(r, want) {
			t.Errorf("AccelReason %q lacks %q", r, want)
		}
	}
	if v := loadVerdicts(cache)[key]; v.Accel != "tcg" || !strings.Contains(v.Reason, "SIGABRT") {
		t.Errorf("cached verdict %+v, want tcg naming SIGABRT", v)
	}
	if d := runDirs(t, base); len(d) != 1 || d[0] != m.Paths().RunDir {
		t.Errorf("run dirs %v, want only %s", d, m.Paths().RunDir)
	}
	// The next start believes the new verdict at once.
	m2, err := Start(t.Context(), Config{FirmwareOnly: true, QEMU: qemu, RunDirBase: base, AccelCache: cache, KVM: host})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Stop(context.Background())
	if m2.Accel() != "tcg" || !strings.Contains(m2.AccelReason(), "cached verdict") {
		t.Fatalf("second start: %s (%s)", m2.Accel(), m2.AccelReason())
	}
}

// Explicit "kvm" is never downgraded: the abort is the error.
func TestExplicitKVMAccelNotDowngraded(t *testing.T) {
	qemu := abortingQEMU(t)
	base := shortBase(t)
	_, err := Start(t.Context(), Config{Accel: "kvm", FirmwareOnly: true, QEMU: qemu, RunDirBase: base, KVM: &KVMHost{Usable: kvmOpens}})
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Signal != "SIGABRT" || !ee.DuringStart || !strings.Contains(err.Error(), "failed to set MSR") {
		t.Fatalf("err = %v, want QEMU's SIGABRT during start", err)
	}
	if d := runDirs(t, base); len(d) != 0 {
		t.Fatalf("left behind: %v", d)
	}
	_, err = Start(t.Context(), Config{Accel: "kvm", FirmwareOnly: true, QEMU: qemu, RunDirBase: base, KVM: &KVMHost{Usable: kvmMissing}})
	if err == nil || !strings.Contains(err.Error(), "KVM is not usable") {
		t.Fatalf("kvm without /dev/kvm: %v", err)
	}
}

// The real probe, run with the aborting QEMU on a host whose /dev/kvm
// "works", finds that no guest runs and caches TCG.
func TestKVMProbeOfAbortingQEMU(t *testing.T) {
	qemu := abortingQEMU(t)
	kernel := filepath.Join(t.TempDir(), "vmlinuz") // never read: QEMU dies first
	if err := os.WriteFile(kernel, []byte("not a kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(t.TempDir(), "accel.json")
	a, reason := ResolveAccel(t.Context(), Config{QEMU: qemu, Kernel: kernel, AccelCache: cache, KVM: &KVMHost{Usable: kvmOpens}})
	if a != "tcg" || !strings.Contains(reason, "qemu exited") || !strings.Contains(reason, "failed to set MSR") {
		t.Fatalf("ResolveAccel = %s (%s)", a, reason)
	}
	if v := loadVerdicts(cache)[accelKey(qemu, kernel)]; v.Accel != "tcg" {
		t.Fatalf("cached %+v", v)
	}
}

// TestResolveAccelForeignGuest: a guest of another CPU than the host's
// runs under TCG without a KVM probe (KVM cannot run it at all).
func TestResolveAccelForeignGuest(t *testing.T) {
	var foreign arch.Arch = arm64.Arch{}
	if runtime.GOARCH == "arm64" {
		foreign = amd64.Arch{}
	}
	cfg := Config{Arch: foreign, Kernel: "/k", KVM: &KVMHost{Usable: kvmOpens,
		Probe: func(context.Context, string, string) (bool, string) {
			t.Error("KVM probed for a foreign guest")
			return true, ""
		}}}
	a, why := ResolveAccel(t.Context(), cfg)
	if a != "tcg" || !strings.Contains(why, "KVM runs only guests of the host's CPU") {
		t.Errorf("ResolveAccel = %s, %q", a, why)
	}
}
