package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"time"

	"github.com/kspec/kspec/arch"
	"github.com/kspec/kspec/guest"
	"github.com/kspec/kspec/harness"
)

// cmdRepro reproduces a failed spec from its repro bundle (a failed spec's
// log directory, see harness.WriteBundle): it re-runs just that spec
// against the same guest, holding on failure, or with --state boots
// straight into the saved failing state for gdb.
func cmdRepro(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("repro", stderr)
	state := fs.Bool("state", false, "boot straight into the saved failing state, stopped, and print a gdb command that attaches to it")
	noHold := fs.Bool("no-hold", false, "re-run without holding the guest when the spec fails again")
	cache := fs.String("cache", "", "guest cache directory (default $KSPEC_CACHE or ~/.cache/kspec)")
	qemu := fs.String("qemu", "", "QEMU binary (default $KSPEC_QEMU or "+arch.Default().QEMU()+")")
	accel := fs.String("accel", "", "accelerator: auto, kvm or tcg (default $KSPEC_ACCEL or auto)")
	limit := fs.Duration("hold-limit", harness.DefaultHoldLimit, "how long a held guest (the saved state, or the re-run's failure) waits for gdb to attach and quit")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *limit <= 0 {
		return usagef("kspec repro: --hold-limit %s: want a positive duration such as 30m", *limit)
	}
	if fs.NArg() != 1 {
		return usagef("kspec repro: give one repro bundle directory (a failed spec's log directory), e.g. kspec repro ~/.local/share/kspec/failures/<time>-<spec>")
	}
	dir := fs.Arg(0)
	b, err := harness.ReadBundle(dir)
	if err != nil {
		return err
	}
	opts := harness.Options{CacheDir: *cache, QEMU: *qemu, Accel: *accel}
	// The bundle's exact guest: prepared from the archive when missing.
	spec, err := b.EnsureGuest(ctx, opts, stderr)
	if err != nil {
		return err
	}
	if *state {
		return harness.BootState(ctx, opts, dir, harness.HoldOptions{
			Limit:    *limit,
			Announce: func(h harness.Held) { fmt.Fprint(stderr, h.String()) },
		})
	}
	logDir := filepath.Join(dir, "repro-"+time.Now().UTC().Format("20060102T150405Z"))
	focus := "-ginkgo.focus=" + regexp.QuoteMeta(b.Spec) // Ginkgo does not match anchored focus against the full text
	var cmd *exec.Cmd
	if fi, err := os.Stat(b.Suite.Binary); err == nil && fi.Mode().IsRegular() {
		cmd = exec.CommandContext(ctx, b.Suite.Binary, focus)
	} else if fi, err := os.Stat(b.Suite.Dir); err == nil && fi.IsDir() {
		// go test's binary is temporary: build and run the package again.
		cmd = exec.CommandContext(ctx, "go", "test", "-count=1", ".", focus)
	} else {
		return fmt.Errorf("%w: neither the suite binary %s nor its directory %s exists here; run the spec %q by hand", harness.ErrBadInput, b.Suite.Binary, b.Suite.Dir, b.Spec)
	}
	cmd.Dir = b.Suite.Dir
	cmd.Stdout, cmd.Stderr, cmd.Stdin = stdout, stderr, os.Stdin
	// The exact version's config, not the guest's name: a newer version
	// of it may be prepared here too.
	guestRef := b.Guest.Name
	if len(b.Guest.Packages) > 0 {
		guestRef = filepath.Join(filepath.Dir(spec.Symbols), guest.FileSpec)
	}
	cmd.Env = append(os.Environ(), "KSPEC_GUEST="+guestRef, "KSPEC_LOGDIR="+logDir)
	if *cache != "" {
		cmd.Env = append(cmd.Env, "KSPEC_CACHE="+*cache)
	}
	if *qemu != "" {
		cmd.Env = append(cmd.Env, "KSPEC_QEMU="+*qemu)
	}
	if *accel != "" {
		cmd.Env = append(cmd.Env, "KSPEC_ACCEL="+*accel)
	}
	if !*noHold {
		cmd.Env = append(cmd.Env, "KSPEC_HOLD=1", fmt.Sprintf("KSPEC_HOLD_LIMIT=%s", *limit))
	}
	fmt.Fprintf(stderr, "kspec: re-running %q on %s %s in %s; evidence into %s\n", b.Spec, b.Guest.Name, b.Guest.Version, cmd.Dir, logDir)
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return exitError{code: exitFailed, err: fmt.Errorf("the spec failed again (evidence in %s)", logDir)}
		}
		return fmt.Errorf("re-run the spec: %w", err)
	}
	fmt.Fprintf(stderr, "kspec: the spec passed this time\n")
	return nil
}
