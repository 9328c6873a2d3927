package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/kspec/kspec/archive"
	"github.com/kspec/kspec/guest"
	"github.com/kspec/kspec/harness"
)

func cmdGuest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("kspec guest: want a subcommand: prepare or list")
	}
	switch args[0] {
	case "prepare":
		return cmdGuestPrepare(ctx, args[1:], stdout, stderr)
	case "list":
		return cmdGuestList(args[1:], stdout, stderr)
	case "env":
		return cmdGuestEnv(args[1:], stdout, stderr)
	default:
		return usagef("kspec guest: unknown subcommand %q: want prepare, list or env", args[0])
	}
}

func cmdGuestPrepare(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("guest prepare", stderr)
	name := fs.String("guest", harness.DefaultGuest, "guest to prepare: debian-<suite>-<flavour> (flavour cloud or generic; any suite the mirror carries), e.g. "+strings.Join(guest.KnownGuests(), ", "))
	mirror := fs.String("mirror", "", "Debian archive to read (default $KSPEC_DEBIAN_MIRROR or "+archive.DefaultMirror+")")
	security := fs.String("security-mirror", "", "archive of the <release>-security suites, or none (default $KSPEC_DEBIAN_SECURITY_MIRROR or "+archive.DefaultSecurityMirror+")")
	keyring := fs.String("keyring", "", "OpenPGP keyring the suites' InRelease must verify against (default $KSPEC_DEBIAN_KEYRING or "+archive.DefaultKeyring+")")
	cache := fs.String("cache", "", "cache directory (default $KSPEC_CACHE or ~/.cache/kspec)")
	asJSON := fs.Bool("json", false, "print the prepared guest as JSON on stdout")
	force := fs.Bool("force", false, "rebuild even if the newest version is already prepared")
	source := fs.Bool("source", false, "also fetch the kernel's source (Debian's linux-source-<major.minor> of its exact version, ≈150 MB, 1.3 GB unpacked) into the cache, so that hits, backtraces, failure reports and gdb show source lines")
	decoder := fs.String("source-decoder", "auto", "xz decoder for the source tarball: auto (the system's xz when there is one), xz or go")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("kspec guest prepare: unexpected argument %q", fs.Arg(0))
	}
	var dec archive.Decoder
	switch *decoder {
	case "auto":
	case "xz":
		dec = archive.DecoderXZ
	case "go":
		dec = archive.DecoderGo
	default:
		return usagef("kspec guest prepare: --source-decoder %q: want auto, xz or go", *decoder)
	}
	if !guest.CanPrepare(*name) {
		return usagef("kspec guest prepare: unknown guest %q; kspec prepares debian-<suite>-<flavour> with flavour cloud or generic, e.g. %s (describe other guests with a config file: --guest FILE)", *name, strings.Join(guest.KnownGuests(), ", "))
	}
	if *keyring != "" {
		if _, err := os.Stat(*keyring); err != nil {
			return usagef("kspec guest prepare: --keyring: %v", err)
		}
	}
	for flag, u := range map[string]string{"--mirror": *mirror, "--security-mirror": *security} {
		if u != "" && u != "none" && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return usagef("kspec guest prepare: %s %q: want an http:// or https:// URL such as %s", flag, u, archive.DefaultMirror)
		}
	}
	spec, res, err := guest.Prepare(ctx, *name, guest.PrepareOptions{CacheDir: *cache, Progress: stderr, Force: *force,
		Mirror: *mirror, SecurityMirror: *security, Keyring: *keyring, Source: *source, SourceDecoder: dec})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(spec)
	}
	state := "built"
	if !res.Built {
		state = "already prepared"
	}
	fmt.Fprintf(stdout, "%s %s (%s): %s at %s\n", spec.Name, spec.Version, spec.OS, state, res.Dir)
	if res.Source != nil {
		tree, err := guest.SourceTree(spec)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "source %s %s: %s\n", res.Source.Package, res.Source.Version, tree)
	}
	return nil
}

func cmdGuestList(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("guest list", stderr)
	cache := fs.String("cache", "", "cache directory")
	if err := parse(fs, args); err != nil {
		return err
	}
	for _, name := range guest.ListGuests(*cache) {
		spec, err := guest.Find(name, *cache)
		if errors.Is(err, guest.ErrCorrupt) {
			fmt.Fprintf(stdout, "%-28s damaged: %v\n", name, err)
			continue
		}
		if err != nil {
			fmt.Fprintf(stdout, "%-28s not prepared (kspec guest prepare --guest %s)\n", name, name)
			continue
		}
		fmt.Fprintf(stdout, "%-28s %s  %s\n", name, spec.Version, spec.Kernel)
	}
	return nil
}

// cmdGuestEnv prints shell assignments naming a prepared guest's files, for
// tests of the lower packages, which know nothing of guests:
// eval "$(kspec guest env)".
func cmdGuestEnv(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("guest env", stderr)
	name := fs.String("guest", harness.DefaultGuest, "prepared guest")
	cache := fs.String("cache", "", "cache directory")
	if err := parse(fs, args); err != nil {
		return err
	}
	spec, err := guest.Find(*name, *cache)
	if err != nil {
		return fmt.Errorf("%w: %w", harness.ErrMissing, err)
	}
	vars := [][2]string{{"KSPEC_KERNEL", spec.Kernel}, {"KSPEC_INITRD", spec.Initrd}, {"KSPEC_SYMBOLS", spec.Symbols}, {"KSPEC_GUEST_VERSION", spec.Version}}
	if tree, err := guest.SourceTree(spec); err == nil {
		vars = append(vars, [2]string{"KSPEC_SOURCE", tree})
	}
	for _, kv := range vars {
		fmt.Fprintf(stdout, "export %s=%s\n", kv[0], shellQuote(kv[1]))
	}
	return nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func cmdExec(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("exec", stderr)
	var gf guestFlags
	gf.register(fs)
	verbose := fs.Bool("v", false, "show the guest's console while it boots")
	timeout := fs.Duration("timeout", 5*time.Minute, "how long CMD may run (the boot has its own limit)")
	var hf holdFlags
	hf.register(fs, "where it is when CMD fails (non-zero status, timeout, kernel failure)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := hf.check(); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("kspec exec: give the command to run after --, e.g. kspec exec -- uname -a")
	}
	if *timeout <= 0 {
		return usagef("kspec exec: --timeout must be positive, e.g. --timeout 30s")
	}
	cmd := strings.Join(fs.Args(), " ")
	opts, err := gf.options()
	if err != nil {
		return err
	}
	opts.NoDebugger = !hf.hold // holding needs kspec's debugger to hand over
	t, err := bootWithProgress(ctx, opts, *verbose, stderr)
	if err != nil {
		return err
	}
	defer t.Close()
	runCtx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	res, err := t.Shell(runCtx, cmd)
	var se *guest.ShellEndedError
	if errors.As(err, &se) {
		// exit N in the guest exits N here; a shell that ended without
		// saying its status exits 1, with the message naming what happened.
		if se.StatusKnown && se.Status == 0 {
			fmt.Fprintln(stderr, "kspec: note:", se)
			return nil
		}
		code := exitFailed
		if se.StatusKnown {
			code = clampStatus(se.Status)
		}
		return hf.holdFailure(ctx, t, stderr, exitError{code: code, err: se})
	}
	if err != nil {
		return hf.holdFailure(ctx, t, stderr, err)
	}
	io.WriteString(stdout, res.Output)
	if res.Output != "" && !strings.HasSuffix(res.Output, "\n") {
		io.WriteString(stdout, "\n")
	}
	if res.Status != 0 {
		return hf.holdFailure(ctx, t, stderr, exitError{code: clampStatus(res.Status)})
	}
	return nil
}

// clampStatus keeps a guest command's status a valid, non-zero exit code.
func clampStatus(s int) int {
	if s <= 0 || s > 255 {
		return exitFailed
	}
	return s
}

// bootWithProgress boots the guest with progress lines on stderr and, when
// verbose, the guest's console too.
func bootWithProgress(ctx context.Context, opts harness.Options, verbose bool, stderr io.Writer) (*harness.Target, error) {
	opts.Logf = logTo(stderr)
	if verbose {
		opts.Transcript = stderr
	}
	return harness.Boot(ctx, opts)
}

func logTo(w io.Writer) func(string, ...any) {
	return func(format string, args ...any) {
		fmt.Fprintf(w, "kspec: "+format+"\n", args...)
	}
}

var _ = os.Stdin
