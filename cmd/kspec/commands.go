package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kspec/kspec/guest"
	"github.com/kspec/kspec/harness"
	"github.com/kspec/kspec/symbols"
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
	name := fs.String("guest", harness.DefaultGuest, "guest to prepare: "+strings.Join(guest.KnownGuests(), ", "))
	cache := fs.String("cache", "", "cache directory (default $KSPEC_CACHE or ~/.cache/kspec)")
	asJSON := fs.Bool("json", false, "print the prepared guest as JSON on stdout")
	force := fs.Bool("force", false, "rebuild even if the newest version is already prepared")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("kspec guest prepare: unexpected argument %q", fs.Arg(0))
	}
	if !slices.Contains(guest.KnownGuests(), *name) {
		return usagef("kspec guest prepare: unknown guest %q; kspec prepares %s (describe other guests with a config file: --guest FILE)", *name, strings.Join(guest.KnownGuests(), ", "))
	}
	spec, res, err := guest.Prepare(ctx, *name, guest.PrepareOptions{CacheDir: *cache, Progress: stderr, Force: *force})
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
	return nil
}

func cmdGuestList(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("guest list", stderr)
	cache := fs.String("cache", "", "cache directory")
	if err := parse(fs, args); err != nil {
		return err
	}
	for _, name := range guest.KnownGuests() {
		spec, err := guest.Find(name, *cache)
		if err != nil {
			fmt.Fprintf(stdout, "%-16s not prepared (kspec guest prepare --guest %s)\n", name, name)
			continue
		}
		fmt.Fprintf(stdout, "%-16s %s  %s\n", name, spec.Version, spec.Kernel)
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
	for _, kv := range [][2]string{{"KSPEC_KERNEL", spec.Kernel}, {"KSPEC_INITRD", spec.Initrd}, {"KSPEC_SYMBOLS", spec.Symbols}, {"KSPEC_GUEST_VERSION", spec.Version}} {
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
	timeout := fs.Duration("timeout", 5*time.Minute, "how long CMD may run")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("kspec exec: give the command to run after --, e.g. kspec exec -- uname -a")
	}
	cmd := strings.Join(fs.Args(), " ")
	opts, err := gf.options()
	if err != nil {
		return err
	}
	opts.NoDebugger = true
	opts.Logf = logTo(stderr)
	if *verbose {
		opts.Transcript = stderr
	}
	t, err := harness.Boot(ctx, opts)
	if err != nil {
		return err
	}
	defer t.Close()
	runCtx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	res, err := t.Shell(runCtx, cmd)
	if err != nil {
		return err
	}
	io.WriteString(stdout, res.Output)
	if res.Output != "" && !strings.HasSuffix(res.Output, "\n") {
		io.WriteString(stdout, "\n")
	}
	if res.Status != 0 {
		return exitError{code: clampStatus(res.Status)}
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

// probeResult is `kspec probe --json`'s output.
type probeResult struct {
	Function string `json:"function"`
	File     string `json:"file"`
	Line     int    `json:"line"`
	PC       string `json:"pc"`
	CPU      int    `json:"cpu"`
	Offset   uint64 `json:"offset"`
	Kernel   string `json:"kernel"`
	Command  string `json:"command"`
}

func cmdProbe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("probe", stderr)
	var gf guestFlags
	gf.register(fs)
	fn := fs.String("break", "", "kernel function to break on (required)")
	cmd := fs.String("run", "", "shell command to run in the guest while the breakpoint waits (required)")
	asJSON := fs.Bool("json", false, "print the hit as JSON")
	timeout := fs.Duration("timeout", 60*time.Second, "how long to wait for the hit")
	verbose := fs.Bool("v", false, "show the guest's console while it boots")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *fn == "" || *cmd == "" {
		return usagef("kspec probe: --break FUNC and --run CMD are both required, e.g. kspec probe --break do_mkdirat --run 'mkdir /tmp/x'")
	}
	if fs.NArg() > 0 {
		return usagef("kspec probe: unexpected argument %q (quote the command given to --run)", fs.Arg(0))
	}
	opts, err := gf.options()
	if err != nil {
		return err
	}
	// Check the symbol before paying for a boot.
	spec, err := harness.ResolveGuest(opts)
	if err != nil {
		return err
	}
	if err := checkSymbol(spec.Symbols, *fn); err != nil {
		return err
	}
	opts.Spec = spec
	opts.Logf = logTo(stderr)
	if *verbose {
		opts.Transcript = stderr
	}
	t, err := harness.Boot(ctx, opts)
	if err != nil {
		return err
	}
	defer t.Close()

	bp, err := t.Break(ctx, *fn)
	if err != nil {
		return err
	}
	pending, err := t.Start(ctx, *cmd)
	if err != nil {
		return err
	}
	waitCtx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	hit, err := bp.Wait(waitCtx)
	if err != nil {
		return err
	}
	out := probeResult{
		Function: hit.Function, File: hit.File, Line: hit.Line,
		PC: fmt.Sprintf("%#x", hit.PC), CPU: hit.CPU, Offset: hit.Offset,
		Kernel: spec.Version, Command: *cmd,
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "hit %s\n", hit)
	}
	// Let the command finish so the guest is left consistent; its result
	// does not change the probe's verdict.
	if err := bp.Clear(ctx); err != nil {
		return err
	}
	if err := t.Continue(ctx); err != nil {
		return err
	}
	finishCtx, cancelFinish := context.WithTimeout(ctx, 30*time.Second)
	defer cancelFinish()
	if _, err := pending.Wait(finishCtx); err != nil {
		fmt.Fprintf(stderr, "kspec: note: %q did not finish after the hit: %v\n", *cmd, err)
	}
	return nil
}

// checkSymbol fails fast, before a boot, on a symbol the kernel lacks.
func checkSymbol(file, name string) error {
	if file == "" {
		return fmt.Errorf("%w: the guest has no symbol file; give --symbols FILE", harness.ErrBadInput)
	}
	tab, err := symbols.Open(file)
	if err != nil {
		return fmt.Errorf("%w: %w", harness.ErrBadInput, err)
	}
	defer tab.Close()
	if _, err := tab.Lookup(name); err != nil {
		return fmt.Errorf("%w: --break: %w", harness.ErrBadInput, err)
	}
	return nil
}

func cmdSym(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sym", stderr)
	var gf guestFlags
	gf.register(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("kspec sym: give a symbol name or an address, e.g. kspec sym do_mkdirat or kspec sym 0xffffffff81000000")
	}
	file := gf.symbols
	if file == "" {
		opts, err := gf.options()
		if err != nil {
			return err
		}
		spec, err := harness.ResolveGuest(opts)
		if err != nil {
			return err
		}
		file = spec.Symbols
	}
	tab, err := symbols.Open(file)
	if err != nil {
		return fmt.Errorf("%w: --symbols: %w", harness.ErrBadInput, err)
	}
	defer tab.Close()
	var results []symResult
	for _, arg := range fs.Args() {
		r, err := resolveSym(tab, arg)
		if err != nil {
			return fmt.Errorf("%w: %w", harness.ErrBadInput, err)
		}
		results = append(results, r)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if len(results) == 1 {
			return enc.Encode(results[0])
		}
		return enc.Encode(results)
	}
	for _, r := range results {
		loc := ""
		if r.File != "" {
			loc = fmt.Sprintf(" at %s:%d", r.File, r.Line)
		}
		off := ""
		if r.Offset != 0 {
			off = fmt.Sprintf("+%#x", r.Offset)
		}
		fmt.Fprintf(stdout, "%s%s = %s (size %d)%s\n", r.Name, off, r.Addr, r.Size, loc)
	}
	return nil
}

// symResult is one resolved name or address.
type symResult struct {
	Query  string `json:"query"`
	Name   string `json:"name"`
	Addr   string `json:"addr"`
	Offset uint64 `json:"offset"`
	Size   uint64 `json:"size"`
	File   string `json:"file,omitempty"`
	Line   int    `json:"line,omitempty"`
}

func resolveSym(tab *symbols.Table, q string) (symResult, error) {
	r := symResult{Query: q}
	if strings.HasPrefix(q, "0x") || strings.HasPrefix(q, "0X") {
		addr, err := strconv.ParseUint(q[2:], 16, 64)
		if err != nil {
			return r, fmt.Errorf("malformed address %q: %w", q, err)
		}
		sym, off, err := tab.SymbolAt(addr)
		if err != nil {
			return r, err
		}
		r.Name, r.Addr, r.Offset, r.Size = sym.Name, fmt.Sprintf("%#x", addr), off, sym.Size
		if loc, err := tab.LineAt(addr); err == nil {
			r.File, r.Line = loc.File, loc.Line
		}
		return r, nil
	}
	sym, err := tab.Lookup(q)
	if err != nil {
		return r, err
	}
	r.Name, r.Addr, r.Size = sym.Name, fmt.Sprintf("%#x", sym.Addr), sym.Size
	if loc, err := tab.FunctionLine(q); err == nil {
		r.File, r.Line = loc.File, loc.Line
	}
	return r, nil
}

func logTo(w io.Writer) func(string, ...any) {
	return func(format string, args ...any) {
		fmt.Fprintf(w, "kspec: "+format+"\n", args...)
	}
}

var _ = os.Stdin
