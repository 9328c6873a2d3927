package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/kspec/kspec/guest"
	"github.com/kspec/kspec/supervisor"
)

// A repro bundle is what a failed spec's log directory holds so that the
// failure can be looked at again, here or elsewhere: repro.json (the guest
// by name with its exact versions and checksums, QEMU's version and command
// line, the kspec commit, the suite and the spec's full name) and
// state.qcow2, the failing state as a snapshot (BundleStateTag) on a copy of
// the scratch drive. `kspec repro DIR` re-runs the spec; `kspec repro
// --state DIR` boots straight into the saved state (BootState).

// Files and the snapshot tag of a repro bundle.
const (
	BundleFile     = "repro.json"
	BundleState    = "state.qcow2"
	BundleStateTag = "kspec-failure"
)

// Bundle is repro.json.
type Bundle struct {
	// Spec is the failed spec's full name (Ginkgo's FullText).
	Spec string `json:"spec"`
	// Created is when the bundle was written.
	Created time.Time `json:"created"`
	// Suite is how the spec was run.
	Suite BundleSuite `json:"suite"`
	// Guest is the guest with exact versions and checksums.
	Guest BundleGuest `json:"guest"`
	// QEMU is the emulator's version and command line.
	QEMU BundleQEMU `json:"qemu"`
	// KspecCommit is the kspec commit the suite was built from ("" when
	// unknown).
	KspecCommit string `json:"kspec_commit,omitempty"`
	// State is the failing state's snapshot, when saved.
	State *BundleStateInfo `json:"state,omitempty"`
}

// BundleSuite says how the failed spec ran.
type BundleSuite struct {
	// Binary is the suite's test binary (go test's is temporary and may be
	// gone; Dir then re-runs it with go test).
	Binary string `json:"binary"`
	// Dir is the directory the suite ran in (go test: the package's).
	Dir string `json:"dir"`
}

// BundleGuest is the guest of a bundle.
type BundleGuest struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Packages and Artifacts come from the prepared guest's manifest
	// (empty for a guest described by a config file).
	Packages  []guest.Package  `json:"packages,omitempty"`
	Artifacts []guest.Artifact `json:"artifacts,omitempty"`
	Append    string           `json:"append"`
	MemoryMiB int              `json:"memory_mib"`
	CPUs      int              `json:"cpus"`
}

// BundleQEMU is the emulator of a bundle.
type BundleQEMU struct {
	Version string   `json:"version"`
	Args    []string `json:"args"`
}

// BundleStateInfo describes state.qcow2.
type BundleStateInfo struct {
	File string `json:"file"`
	Tag  string `json:"tag"`
	// Thread is the gdbstub thread (vCPU index + 1) that failed.
	Thread int `json:"thread"`
	// Stop is where kspec saw the guest stopped.
	Stop string `json:"stop"`
	// Backtrace is kspec's backtrace there.
	Backtrace []Frame `json:"backtrace,omitempty"`
	Bytes     int64   `json:"bytes"`
}

// ReproRequested reports whether failed specs get a repro bundle: yes
// unless $KSPEC_REPRO is 0, false, no or off.
func ReproRequested() bool {
	switch strings.ToLower(strings.TrimSpace(os.Getenv("KSPEC_REPRO"))) {
	case "0", "false", "no", "off":
		return false
	}
	return true
}

// WriteBundle writes the repro bundle of the current failure into dir:
// with state, the failing state is saved as snapshot BundleStateTag (the
// guest is stopped for it; a running guest is interrupted and stays
// stopped) and the scratch drive holding it is copied to state.qcow2; the
// snapshot is then deleted from the running guest's drive again.
func (t *Target) WriteBundle(ctx context.Context, dir, specName string, state bool) (*Bundle, error) {
	op := "repro bundle " + dir
	if t.machine == nil {
		return nil, &HarnessError{Op: op, Err: errors.New("no QEMU is running")}
	}
	if gone := t.machineGone(); gone != nil {
		return nil, &HarnessError{Op: op, Err: gone}
	}
	wd, _ := os.Getwd()
	exe, _ := os.Executable()
	spec := t.spec
	b := &Bundle{
		Spec: specName, Created: time.Now().UTC(),
		Suite: BundleSuite{Binary: exe, Dir: wd},
		Guest: BundleGuest{Name: spec.Name, Version: spec.Version, Append: spec.Append,
			MemoryMiB: firstNonZero(t.opts.MemoryMiB, spec.MemoryMiB), CPUs: firstNonZero(t.opts.CPUs, spec.CPUs)},
		QEMU:        BundleQEMU{Version: t.QMP().Version(), Args: t.machine.Args()},
		KspecCommit: kspecCommit(wd),
	}
	if m, err := guest.ReadManifest(spec.Name, t.opts.CacheDir); err == nil && m.Version == spec.Version {
		b.Guest.Packages, b.Guest.Artifacts = m.Packages, m.Artifacts
	}
	if state {
		st, err := t.saveState(ctx, filepath.Join(dir, BundleState))
		if err != nil {
			return nil, err
		}
		b.State = st
	}
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, BundleFile), append(data, '\n'), 0o644); err != nil {
		return nil, &HarnessError{Op: op, Err: err}
	}
	return b, nil
}

// saveState saves the failing state and copies the scratch drive to file.
func (t *Target) saveState(ctx context.Context, file string) (*BundleStateInfo, error) {
	op := "save the failing state"
	st := &BundleStateInfo{File: filepath.Base(file), Tag: BundleStateTag, Thread: 1}
	if t.gdb != nil {
		if err := t.ensureDebugger(ctx, op); err != nil {
			return nil, err
		}
		held, err := t.holdStop(ctx) // stops a running guest
		if err != nil {
			return nil, t.harnessErr(op, err)
		}
		st.Thread, st.Stop = held.Stop.CPU+1, held.Stop.String()
		st.Backtrace = held.Backtrace
	}
	mon, err := t.monitor(ctx, op)
	if err != nil {
		return nil, err
	}
	if err := mon.HMPSaveVM(ctx, BundleStateTag); err != nil {
		return nil, t.harnessErr(op, err)
	}
	defer func() {
		if err := mon.HMPDeleteVM(ctx, BundleStateTag); err != nil {
			t.opts.Logf("repro: deleting snapshot %s from the running guest: %v", BundleStateTag, err)
		}
	}()
	// savevm flushed the image; QEMU writes nothing to it while the
	// guest is stopped and no snapshot command runs.
	if err := copyRegular(t.machine.Paths().Scratch, file); err != nil {
		return nil, &HarnessError{Op: op, Err: err}
	}
	if fi, err := os.Stat(file); err == nil {
		st.Bytes = fi.Size()
	}
	return st, nil
}

// copyRegular copies src to dst (replacing it), via a temporary name.
func copyRegular(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".partial"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(tmp)
		return err
	}
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, dst)
}

// kspecCommit is the VCS revision the running binary was built from, or
// else the HEAD of the git checkout around dir, or "".
func kspecCommit(dir string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				return s.Value
			}
		}
	}
	out, err := exec.Command("git", "-C", dir, "rev-parse", "HEAD").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// ReadBundle reads DIR/repro.json.
func ReadBundle(dir string) (*Bundle, error) {
	data, err := os.ReadFile(filepath.Join(dir, BundleFile))
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not a repro bundle (a failed spec's log directory): %w", ErrBadInput, dir, err)
	}
	var b Bundle
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadInput, filepath.Join(dir, BundleFile), err)
	}
	if b.Guest.Name == "" || b.Guest.Version == "" {
		return nil, fmt.Errorf("%w: %s names no guest", ErrBadInput, filepath.Join(dir, BundleFile))
	}
	return &b, nil
}

// CheckGuest resolves the bundle's exact guest version here and refuses
// one that is not the exact guest the bundle was made with (artifacts
// extracted from packages whose checksums differ; the initramfs, built
// with a random password salt, may differ). A guest version that is not
// prepared is an error wrapping ErrMissing (EnsureGuest prepares it).
func (b *Bundle) CheckGuest(opts Options) (*guest.Spec, error) {
	opts.Guest = b.Guest.Name
	if len(b.Guest.Packages) == 0 { // a guest described by a config file
		spec, err := ResolveGuest(opts)
		if err != nil {
			return nil, err
		}
		if spec.Version != b.Guest.Version {
			return nil, fmt.Errorf("%w: guest %s here is %s, the bundle's is %s; run the bundle where that version is",
				ErrBadInput, spec.Name, spec.Version, b.Guest.Version)
		}
		return spec, nil
	}
	spec, err := guest.FindVersion(b.Guest.Name, b.Guest.Version, opts.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMissing, err)
	}
	m, err := guest.ReadManifestAt(filepath.Dir(spec.Symbols))
	if err != nil {
		return nil, fmt.Errorf("%w: guest %s: %w", ErrMissing, spec.Name, err)
	}
	have := map[string]string{}
	for _, a := range m.Artifacts {
		have[a.File] = a.SHA256
	}
	for _, a := range b.Guest.Artifacts {
		if !strings.Contains(a.From, ":/") {
			continue // built by kspec, not extracted from a package
		}
		if have[a.File] != a.SHA256 {
			return nil, fmt.Errorf("%w: guest %s %s here has %s with sha256 %s, the bundle's has %s; it is another build: remove %s and run kspec repro again to prepare the bundle's",
				ErrBadInput, spec.Name, spec.Version, a.File, have[a.File], a.SHA256, filepath.Dir(spec.Symbols))
		}
	}
	return spec, nil
}

// EnsureGuest is CheckGuest that first prepares the bundle's exact guest
// version from the Debian archive when it is not prepared here: the
// packages the bundle records, at their versions, with their checksums
// (guest.PrepareExact). A version the archive no longer carries is an
// error wrapping ErrMissing and guest.ErrVersionGone that names what is
// missing; a package whose checksum differs from the bundle's is refused.
func (b *Bundle) EnsureGuest(ctx context.Context, opts Options, progress io.Writer) (*guest.Spec, error) {
	spec, err := b.CheckGuest(opts)
	if err == nil || !errors.Is(err, guest.ErrNotPrepared) || len(b.Guest.Packages) == 0 || !guest.CanPrepare(b.Guest.Name) {
		return spec, err
	}
	if progress != nil {
		fmt.Fprintf(progress, "kspec: %s %s is not prepared here; preparing it from the packages the bundle names\n", b.Guest.Name, b.Guest.Version)
	}
	if _, _, err := guest.PrepareExact(ctx, b.Guest.Name, b.Guest.Version, b.Guest.Packages,
		guest.PrepareOptions{CacheDir: opts.CacheDir, Progress: progress}); err != nil {
		if errors.Is(err, guest.ErrVersionGone) {
			return nil, fmt.Errorf("%w: the bundle's guest %s %s cannot be prepared: %w", ErrMissing, b.Guest.Name, b.Guest.Version, err)
		}
		return nil, err
	}
	return b.CheckGuest(opts)
}

// BootState boots the bundle in dir straight into its saved failing state,
// stopped, and hands it to a person's gdb exactly like Target.Hold: the
// command is announced, one gdb session is relayed, and when it ends (or
// the limit or ctx does) QEMU is stopped and its run dir removed.
func BootState(ctx context.Context, opts Options, dir string, o HoldOptions) error {
	b, err := ReadBundle(dir)
	if err != nil {
		return err
	}
	if b.State == nil {
		return fmt.Errorf("%w: %s has no saved state (it was made with KSPEC_REPRO_STATE=0 or without a guest)", ErrBadInput, dir)
	}
	state := filepath.Join(dir, b.State.File)
	if _, err := os.Stat(state); err != nil {
		return fmt.Errorf("%w: the bundle's state: %w", ErrBadInput, err)
	}
	spec, err := b.CheckGuest(opts)
	if err != nil {
		return err
	}
	if o.Limit <= 0 {
		o.Limit = DefaultHoldLimit
	}
	if o.Announce == nil {
		o.Announce = announceToPerson
	}
	o2 := opts.withDefaults()
	cpu, err := spec.CPU()
	if err != nil {
		return fmt.Errorf("%w: guest %s: %w", ErrBadInput, spec.Name, err)
	}
	o2.QEMU = qemuFor(o2.QEMU, cpu)
	if err := CheckQEMU(o2.QEMU, cpu); err != nil {
		return err
	}
	if err := CheckRunDirBase(); err != nil {
		return err
	}
	cleanStale(o2)
	m, err := supervisor.Start(ctx, supervisor.Config{
		Arch: cpu, QEMU: o2.QEMU, DataDirs: o2.QEMUData, Kernel: spec.Kernel, Initrd: spec.Initrd, Append: spec.Append, Disk: spec.Disk,
		MemoryMiB: b.Guest.MemoryMiB, CPUs: b.Guest.CPUs,
		Accel: o2.Accel, AccelCache: accelCache(o2), PanicDevice: true, VMCoreInfo: true,
		ScratchFrom: state,
	})
	if err != nil {
		return &HarnessError{Op: "start QEMU for the saved state", Err: err}
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		m.Stop(stopCtx)
	}()
	// QEMU is halted at reset (-S); loadvm keeps it stopped.
	if err := m.QMP().HMPLoadVM(ctx, b.State.Tag); err != nil {
		return &HarnessError{Op: "load the saved state " + b.State.Tag, Err: err}
	}
	ln, sock, err := listenHold(m.Paths().RunDir)
	if err != nil {
		return err
	}
	defer ln.Close()
	hctx, cancel := context.WithTimeout(ctx, o.Limit)
	defer cancel()
	held := Held{Where: b.State.Stop + " (the saved state of " + b.Spec + ")", Socket: sock, GDBCommand: gdbCommand(cpu.GDB(), spec.Symbols, sock, sourceForCommand(spec)), Limit: o.Limit}
	held.Backtrace = b.State.Backtrace
	if len(held.Backtrace) == 0 {
		held.BacktraceErr = errors.New("none saved; gdb's bt shows it")
	}
	o.Announce(held)
	if err := handOver(hctx, m, ln, b.State.Thread); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return &HarnessError{Op: "saved state: gdb session", Err: fmt.Errorf("interrupted: %w", ctx.Err())}
	}
	return nil
}
