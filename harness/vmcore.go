package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/kspec/kspec/qmp"
)

// Vmcore is a core of the guest's memory written by Target.Vmcore.
type Vmcore struct {
	// Path is the core file.
	Path string
	// Format is QEMU's dump format, e.g. "kdump-zlib".
	Format string
	// Bytes is the core file's size; GuestBytes the guest memory it holds.
	Bytes      int64
	GuestBytes uint64
	// Duration is the time QEMU took to write it (the VM is paused meanwhile).
	Duration time.Duration
	// Symbols is the vmlinux to open it with.
	Symbols string
	// GDB is the gdb that reads the guest's CPU ("gdb", "gdb-multiarch");
	// "" means "gdb". Another CPU's core needs a crash built for that CPU.
	GDB string
}

// String describes the core and how to open it.
func (v Vmcore) String() string {
	gdb := v.GDB
	if gdb == "" {
		gdb = "gdb"
	}
	s := fmt.Sprintf("%s (%s, %d bytes for %d MiB of guest memory, written in %s)\n  open with: crash %s %s",
		v.Path, v.Format, v.Bytes, v.GuestBytes>>20, v.Duration.Round(time.Millisecond), shellQuote(v.Symbols), shellQuote(v.Path))
	if gdb != "gdb" {
		s += "\n             (a crash built for the guest's CPU: Debian's reads only its own architecture's cores)"
	}
	if v.Format == qmp.DumpELF {
		return s + fmt.Sprintf("\n  or:        %s %s %s", gdb, shellQuote(v.Symbols), shellQuote(v.Path))
	}
	return s + "\n  (" + gdb + " cannot read kdump cores; KSPEC_VMCORE_FORMAT=elf writes an ELF core " + gdb + " reads)"
}

// Vmcore writes a core of the guest's memory to path with QMP
// dump-guest-memory, in compressed kdump format when QEMU offers it (else
// ELF), for crash(8) with the kernel's vmlinux; $KSPEC_VMCORE_FORMAT
// (e.g. elf) chooses another of QEMU's formats. An ELF core (written with
// paging, so it has the kernel's virtual addresses) also opens in gdb;
// on the default guest it is about 9 times the size of a kdump-zlib one. The guest is
// stopped for the dump: a guest stopped in the debugger (at a hit, at a
// failure) stays stopped there; a running one is interrupted first and
// resumed afterwards, so the core shows one instant. The core is written
// under a temporary name beside path and renamed when complete, so a
// failed or interrupted dump leaves no partial core; an existing file at
// path is replaced. ctx bounds the dump.
func (t *Target) Vmcore(ctx context.Context, path string) (Vmcore, error) {
	op := "vmcore " + path
	if t.machine == nil {
		return Vmcore{}, &HarnessError{Op: op, Err: errors.New("no QEMU is running")}
	}
	if gone := t.machineGone(); gone != nil {
		return Vmcore{}, &HarnessError{Op: op, Err: gone}
	}
	if err := t.ensureDebugger(ctx, op); err != nil {
		return Vmcore{}, err
	}
	if t.gdb != nil && t.gdb.Running() {
		if _, err := t.Interrupt(ctx); err != nil {
			return Vmcore{}, err
		}
		defer func() {
			if err := t.Continue(ctx); err != nil {
				t.opts.Logf("vmcore: resuming the guest after the dump: %v", err)
			}
		}()
	}
	mon, err := t.monitor(ctx, op)
	if err != nil {
		return Vmcore{}, err
	}
	formats, err := mon.DumpFormats(ctx)
	if err != nil {
		return Vmcore{}, t.harnessErr(op+": query the dump formats", err)
	}
	format := qmp.PreferredDumpFormat(formats)
	if f := os.Getenv("KSPEC_VMCORE_FORMAT"); f != "" {
		if !slices.Contains(formats, f) {
			return Vmcore{}, fmt.Errorf("%w: KSPEC_VMCORE_FORMAT=%q: this QEMU writes %s", ErrBadInput, f, strings.Join(formats, ", "))
		}
		format = f
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return Vmcore{}, &HarnessError{Op: op, Err: err}
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return Vmcore{}, &HarnessError{Op: op, Err: err}
	}
	partial := abs + ".partial"
	_ = os.Remove(partial)
	begin := time.Now()
	st, err := mon.DumpGuestMemory(ctx, partial, format)
	took := time.Since(begin)
	if err != nil {
		if ctx.Err() != nil {
			// QEMU may still be writing; it cannot be cancelled. Wait a
			// little for it so the partial file can go.
			wctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			mon.WaitEvent(wctx, "DUMP_COMPLETED")
			cancel()
		}
		_ = os.Remove(partial)
		return Vmcore{}, t.harnessErr(op, err)
	}
	if err := os.Rename(partial, abs); err != nil {
		_ = os.Remove(partial)
		return Vmcore{}, &HarnessError{Op: op, Err: err}
	}
	// QEMU creates the file 0400; let its owner replace it later.
	_ = os.Chmod(abs, 0o600)
	fi, err := os.Stat(abs)
	if err != nil {
		return Vmcore{}, &HarnessError{Op: op, Err: err}
	}
	return Vmcore{Path: abs, Format: format, Bytes: fi.Size(), GuestBytes: st.Total, Duration: took, Symbols: t.spec.Symbols, GDB: t.arch().GDB()}, nil
}

// FailureDir returns (and creates) the log directory of a failed spec:
// $KSPEC_LOGDIR (default $XDG_DATA_HOME/kspec/failures, i.e.
// ~/.local/share/kspec/failures) / <UTC time>-<the spec's name made into a
// file name>.
func FailureDir(specName string) (string, error) {
	base := os.Getenv("KSPEC_LOGDIR")
	if base == "" {
		data := os.Getenv("XDG_DATA_HOME")
		if data == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", fmt.Errorf("%w: no log directory for failures: set KSPEC_LOGDIR (%v)", ErrBadInput, err)
			}
			data = filepath.Join(home, ".local", "share")
		}
		base = filepath.Join(data, "kspec", "failures")
	}
	dir := filepath.Join(base, time.Now().UTC().Format("20060102T150405Z")+"-"+slug(specName))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("failure log directory (KSPEC_LOGDIR): %w", err)
	}
	return dir, nil
}

var notSlug = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// slug turns a spec's name into a short file name.
func slug(s string) string {
	s = strings.Trim(notSlug.ReplaceAllString(s, "-"), "-.")
	if len(s) > 80 {
		s = strings.TrimRight(s[:80], "-.")
	}
	if s == "" {
		s = "spec"
	}
	return s
}

// VmcoreRequested reports whether failed specs get a vmcore: yes unless
// $KSPEC_VMCORE is 0, false, no or off.
func VmcoreRequested() bool {
	switch strings.ToLower(strings.TrimSpace(os.Getenv("KSPEC_VMCORE"))) {
	case "0", "false", "no", "off":
		return false
	}
	return true
}

// FailureEvidence is a suite's failure hook: into the failed spec's log
// directory (FailureDir) it writes a vmcore of the guest as it is now
// (unless $KSPEC_VMCORE=0) and a repro bundle with the failing state
// (unless $KSPEC_REPRO=0; see WriteBundle), and returns the text of the
// report entry: where they are, the core's size and dump time, how to open
// and re-run them, or why there is none.
func (t *Target) FailureEvidence(ctx context.Context, specName string) string {
	vmcore, repro := VmcoreRequested(), ReproRequested()
	if !vmcore && !repro {
		return "none (KSPEC_VMCORE=0 and KSPEC_REPRO=0)"
	}
	dir, err := FailureDir(specName)
	if err != nil {
		return "no evidence: " + err.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "log directory %s\n", dir)
	if vmcore {
		core, err := t.Vmcore(ctx, filepath.Join(dir, "vmcore"))
		if err != nil {
			fmt.Fprintf(&b, "no vmcore: %v\n", err)
		} else {
			fmt.Fprintf(&b, "vmcore %s\n", core)
		}
	}
	if repro {
		begin := time.Now()
		bundle, err := t.WriteBundle(ctx, dir, specName, true)
		switch {
		case err != nil:
			fmt.Fprintf(&b, "no repro bundle: %v\n", err)
		default:
			fmt.Fprintf(&b, "repro bundle %s (state %d bytes, saved in %s)\n  re-run the spec: kspec repro %s\n  boot into the failing state: kspec repro --state %s\n",
				filepath.Join(dir, BundleFile), bundle.State.Bytes, time.Since(begin).Round(time.Millisecond), shellQuote(dir), shellQuote(dir))
		}
	}
	return strings.TrimRight(b.String(), "\n")
}
