package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kspec/kspec/guest"
	"github.com/kspec/kspec/harness"
	"github.com/kspec/kspec/symbols"
)

// probeResult is `kspec probe --json`'s output.
type probeResult struct {
	Function  string       `json:"function"`
	File      string       `json:"file"`
	Line      int          `json:"line"`
	Source    string       `json:"source,omitempty"` // the line's text, with a prepared source tree
	context   string       // the lines around it, for people
	PC        string       `json:"pc"`
	CPU       int          `json:"cpu"`
	Offset    uint64       `json:"offset"`
	Kernel    string       `json:"kernel"`
	Command   string       `json:"command"`
	Backtrace []probeFrame `json:"backtrace,omitempty"`
	Comm      string       `json:"comm,omitempty"`
	PID       int          `json:"pid,omitempty"`
	TID       int          `json:"tid,omitempty"`
	Watch     *probeWatch  `json:"watch,omitempty"`
	// Errors lists what could not be read at the stop (backtrace, task);
	// the hit itself is still reported.
	Errors []string `json:"errors,omitempty"`
}

// probeFrame is one backtrace frame of probe's output.
type probeFrame struct {
	Function   string `json:"function"`
	File       string `json:"file"`
	Line       int    `json:"line"`
	Source     string `json:"source,omitempty"`
	PC         string `json:"pc"`
	Inlined    bool   `json:"inlined,omitempty"`
	StopReason string `json:"stop_reason,omitempty"`
}

// probeWatch describes the watchpoint of `probe --watch` and what it saw.
type probeWatch struct {
	Expr string `json:"expr"`
	Kind string `json:"kind"`
	Addr string `json:"addr"`
	Size int    `json:"size"`
	Type string `json:"type"`
	// HitAddr is the data address the stub reported.
	HitAddr string `json:"hit_addr"`
	// Value is the object after the write: a string for char arrays,
	// a hex number for integers and pointers.
	Value string `json:"value,omitempty"`
}

func cmdProbe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("probe", stderr)
	var gf guestFlags
	gf.register(fs)
	fn := fs.String("break", "", "kernel function to break on")
	watch := fs.String("watch", "", "DWARF expression to watch for writes, e.g. init_uts_ns.name.nodename (instead of --break)")
	cmd := fs.String("run", "", "shell command to run in the guest while the breakpoint waits (required)")
	asJSON := fs.Bool("json", false, "print the hit as JSON")
	timeout := fs.Duration("timeout", 60*time.Second, "how long to wait for the hit")
	verbose := fs.Bool("v", false, "show the guest's console while it boots")
	vmcore := fs.String("vmcore", "", "write a core of the guest at the hit to `FILE` (compressed kdump when QEMU offers it; open with crash or gdb and the vmlinux)")
	var hf holdFlags
	hf.register(fs, "at the hit (or where the guest is when the probe fails)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := hf.check(); err != nil {
		return err
	}
	if err := checkVmcorePath(*vmcore); err != nil {
		return err
	}
	if (*fn == "" && *watch == "") || *cmd == "" {
		return usagef("kspec probe: --break FUNC and --run CMD are both required (or --watch EXPR and --run CMD), e.g. kspec probe --break do_mkdirat --run 'mkdir /tmp/x'")
	}
	if *fn != "" && *watch != "" {
		return usagef("kspec probe: give --break FUNC or --watch EXPR, not both")
	}
	if fs.NArg() > 0 {
		return usagef("kspec probe: unexpected argument %q (quote the command given to --run)", fs.Arg(0))
	}
	if *timeout <= 0 {
		return usagef("kspec probe: --timeout must be positive, e.g. --timeout 30s")
	}
	opts, err := gf.options()
	if err != nil {
		return err
	}
	// Check the symbol or expression before paying for a boot.
	spec, err := harness.ResolveGuest(opts)
	if err != nil {
		return err
	}
	if *fn != "" {
		err = checkSymbol(spec.Symbols, *fn)
	} else {
		err = checkExpr(spec.Symbols, *watch)
	}
	if err != nil {
		return err
	}
	opts.Spec = spec
	t, err := bootWithProgress(ctx, opts, *verbose, stderr)
	if err != nil {
		return err
	}
	defer t.Close()
	// Everything after the boot is bounded too: the wait for the hit by
	// --timeout, the rest (setting the breakpoint, reading the stop,
	// letting the command finish) by a margin on top.
	opCtx, cancelAll := context.WithTimeout(ctx, *timeout+2*time.Minute)
	defer cancelAll()

	var wait func(context.Context, *guest.Pending) (*harness.Hit, error)
	var clear func(context.Context) error
	var wp *harness.Watchpoint
	if *fn != "" {
		bp, err := t.Break(opCtx, *fn)
		if err != nil {
			return err
		}
		wait, clear = bp.WaitFor, bp.Clear
	} else {
		wp, err = t.Watch(opCtx, *watch, harness.WatchWrite)
		if err != nil {
			return err
		}
		wait, clear = wp.WaitFor, wp.Clear
	}
	pending, err := t.Start(opCtx, *cmd)
	if err != nil {
		return err
	}
	waitCtx, cancel := context.WithTimeout(opCtx, *timeout)
	defer cancel()
	// A command that finishes without a hit fails the probe at once, with
	// its status and output.
	hit, err := wait(waitCtx, pending)
	if err != nil {
		return hf.holdFailure(ctx, t, stderr, err)
	}
	out := describeHit(opCtx, t, hit, wp)
	out.Kernel, out.Command = spec.Version, *cmd
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		printHit(stdout, hit, out)
	}
	if *vmcore != "" {
		core, err := t.Vmcore(ctx, *vmcore)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "kspec: vmcore %s\n", core)
	}
	if hf.hold {
		return hf.holdNow(ctx, t, stderr)
	}
	// Let the command finish so the guest is left consistent; its result
	// does not change the probe's verdict.
	if err := clear(opCtx); err != nil {
		return err
	}
	if err := t.Continue(opCtx); err != nil {
		return err
	}
	finishCtx, cancelFinish := context.WithTimeout(opCtx, 30*time.Second)
	defer cancelFinish()
	if _, err := pending.Wait(finishCtx); err != nil {
		fmt.Fprintf(stderr, "kspec: note: %q did not finish after the hit: %v\n", *cmd, err)
	}
	return nil
}

// checkVmcorePath fails fast, before a boot, on a --vmcore FILE that cannot
// be written: its directory must exist, and FILE must not be a directory.
func checkVmcorePath(file string) error {
	if file == "" {
		return nil
	}
	if fi, err := os.Stat(file); err == nil && fi.IsDir() {
		return usagef("kspec probe: --vmcore %s is a directory; give a file name, e.g. %s", file, filepath.Join(file, "vmcore"))
	}
	dir := filepath.Dir(file)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return usagef("kspec probe: --vmcore %s: directory %s does not exist; create it or give another path", file, dir)
	}
	return nil
}

// describeHit reads what probe reports about a stop while the guest is
// still stopped there: backtrace, current task and the watched value.
// What cannot be read is listed in Errors rather than failing the probe.
func describeHit(ctx context.Context, t *harness.Target, hit *harness.Hit, wp *harness.Watchpoint) probeResult {
	out := probeResult{
		Function: hit.Function, File: hit.File, Line: hit.Line, Source: hit.Source,
		PC: fmt.Sprintf("%#x", hit.PC), CPU: hit.CPU, Offset: hit.Offset,
		context: t.SourceContext(hit.File, hit.Line, 2),
	}
	if frames, err := hit.Backtrace(ctx); err != nil {
		out.Errors = append(out.Errors, "backtrace: "+err.Error())
	} else {
		text := t.FramesSource(frames)
		for i, f := range frames {
			pf := probeFrame{
				Function: f.Function, File: f.File, Line: f.Line, PC: fmt.Sprintf("%#x", f.PC),
				Inlined: f.Inlined, StopReason: f.StopReason,
			}
			if i < len(text) {
				pf.Source = text[i]
			}
			out.Backtrace = append(out.Backtrace, pf)
		}
	}
	if task, err := hit.Task(ctx); err != nil {
		out.Errors = append(out.Errors, "task: "+err.Error())
	} else {
		out.Comm, out.PID, out.TID = task.Comm, task.PID, task.TID
	}
	if wp != nil {
		w := &probeWatch{Expr: wp.Expr, Kind: wp.Kind.String(), Addr: fmt.Sprintf("%#x", wp.Addr), Size: wp.Size, Type: wp.Value.TypeName}
		if hit.Stop.Watch != nil {
			w.HitAddr = fmt.Sprintf("%#x", hit.Stop.Watch.Addr)
		}
		if d, err := t.ReadExpr(ctx, wp.Expr); err != nil {
			out.Errors = append(out.Errors, "value: "+err.Error())
		} else if u, err := d.Uint(); err == nil && !strings.Contains(d.TypeName, "[") {
			w.Value = fmt.Sprintf("%#x", u)
		} else {
			w.Value = d.CString()
		}
		out.Watch = w
	}
	return out
}

// printHit prints a hit for people: where, who, the backtrace.
func printHit(w io.Writer, hit *harness.Hit, out probeResult) {
	fmt.Fprintf(w, "hit %s", hit)
	if out.Comm != "" {
		fmt.Fprintf(w, " in %s[%d]", out.Comm, out.PID)
	}
	fmt.Fprintln(w)
	if out.context != "" {
		fmt.Fprintf(w, "%s\n", strings.ReplaceAll("  "+out.context, "\n", "\n  "))
	}
	if out.Watch != nil {
		fmt.Fprintf(w, "  %s watchpoint on %s (%s, %d bytes, %s) hit at %s; now %q\n",
			out.Watch.Kind, out.Watch.Expr, out.Watch.Addr, out.Watch.Size, out.Watch.Type, out.Watch.HitAddr, out.Watch.Value)
	}
	for i, f := range out.Backtrace {
		inl := ""
		if f.Inlined {
			inl = " [inlined]"
		}
		fmt.Fprintf(w, "  #%-2d %s in %s at %s:%d%s\n", i, f.PC, f.Function, f.File, f.Line, inl)
		if f.Source != "" {
			fmt.Fprintf(w, "        %s\n", strings.TrimSpace(f.Source))
		}
		if f.StopReason != "" {
			fmt.Fprintf(w, "      (unwinding stopped: %s)\n", f.StopReason)
		}
	}
	for _, e := range out.Errors {
		fmt.Fprintf(w, "  (could not read the %s)\n", e)
	}
}

// checkSymbol fails fast, before a boot, on a symbol the kernel lacks.
func checkSymbol(file, name string) error {
	tab, err := openSymbols(file, false)
	if err != nil {
		return err
	}
	defer tab.Close()
	if _, err := tab.Lookup(name); err != nil {
		return fmt.Errorf("%w: --break: %w", harness.ErrBadInput, err)
	}
	return nil
}

// checkExpr fails fast, before a boot, on an expression the kernel's DWARF
// cannot evaluate. Only the static part (before any "->") can be checked
// without a running guest.
func checkExpr(file, expr string) error {
	tab, err := openSymbols(file, false)
	if err != nil {
		return err
	}
	defer tab.Close()
	static, _, _ := strings.Cut(expr, "->")
	v, err := tab.Expr(strings.TrimSpace(static))
	if err != nil {
		return fmt.Errorf("%w: --watch: %w", harness.ErrBadInput, err)
	}
	if v.Size == 0 {
		return fmt.Errorf("%w: --watch %s: the object has size 0 (%s)", harness.ErrBadInput, expr, v.TypeName)
	}
	return nil
}

// openSymbols opens a symbol file, with the on-disk index when indexed.
func openSymbols(file string, indexed bool) (*symbols.Table, error) {
	if file == "" {
		return nil, fmt.Errorf("%w: the guest has no symbol file; give --symbols FILE", harness.ErrBadInput)
	}
	var tab *symbols.Table
	var err error
	if indexed {
		tab, err = symbols.OpenIndexed(file, "")
	} else {
		tab, err = symbols.Open(file)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: --symbols: %w", harness.ErrBadInput, err)
	}
	return tab, nil
}

func cmdSym(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sym", stderr)
	var gf guestFlags
	gf.register(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	noIndex := fs.Bool("no-index", false, "do not use or write the on-disk symbol index")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("kspec sym: give a symbol, an address, FILE:LINE or an expression, e.g. kspec sym do_mkdirat, kspec sym 0xffffffff81000000 or kspec sym init_uts_ns.name.nodename")
	}
	file := gf.symbols
	if file != "" && gf.onlySymbols() {
		// --symbols alone needs no guest (nor a prepared one).
		if err := gf.checkFiles(); err != nil {
			return err
		}
	} else {
		opts, err := gf.options()
		if err != nil {
			return err
		}
		file = opts.Spec.Symbols
	}
	tab, err := openSymbols(file, !*noIndex)
	if err != nil {
		return err
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
		typ := ""
		if r.Type != "" {
			typ = " " + r.Type
		}
		fmt.Fprintf(stdout, "%s%s = %s (size %d)%s%s\n", r.Name, off, r.Addr, r.Size, typ, loc)
	}
	return nil
}

// symResult is one resolved name, address, FILE:LINE or expression.
type symResult struct {
	Query  string `json:"query"`
	Name   string `json:"name"`
	Addr   string `json:"addr"`
	Offset uint64 `json:"offset"`
	Size   uint64 `json:"size"`
	// Type is the C type of an expression (gdb's whatis).
	Type string `json:"type,omitempty"`
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
}

// resolveSym answers one sym query: an address (0x...), NAME+OFFSET or
// FILE:LINE through Resolve; a symbol name through Lookup; anything else
// with a member, index or "." through Expr ("init_uts_ns.name.nodename").
// Symbol names win over expressions, since kernel symbols may contain dots
// ("foo.cold", "bar.isra.0").
func resolveSym(tab *symbols.Table, q string) (symResult, error) {
	r := symResult{Query: q}
	if hex, ok := strings.CutPrefix(strings.ToLower(strings.TrimPrefix(q, "*")), "0x"); ok && !strings.Contains(hex, "+") {
		if _, err := strconv.ParseUint(hex, 16, 64); err != nil {
			return r, fmt.Errorf("malformed address %q: want 0x and up to 16 hex digits", q)
		}
	}
	if looksLikeLocation(q) {
		res, err := tab.Resolve(q)
		if err != nil {
			return r, err
		}
		r.Name, r.Addr, r.Offset, r.Size = res.Symbol.Name, fmt.Sprintf("%#x", res.Addr), res.Offset, res.Symbol.Size
		if res.HasLine {
			r.File, r.Line = res.Location.File, res.Location.Line
		}
		return r, nil
	}
	sym, lookupErr := tab.Lookup(q)
	if lookupErr == nil {
		r.Name, r.Addr, r.Size = sym.Name, fmt.Sprintf("%#x", sym.Addr), sym.Size
		if loc, err := tab.FunctionLine(q); err == nil {
			r.File, r.Line = loc.File, loc.Line
		}
		return r, nil
	}
	if !strings.ContainsAny(q, ".[") {
		return r, lookupErr
	}
	v, err := tab.Expr(q)
	if err != nil {
		if errors.Is(err, symbols.ErrUnknownSymbol) || errors.Is(err, symbols.ErrBadExpr) {
			return r, err
		}
		return r, fmt.Errorf("expression %q: %w", q, err)
	}
	r.Name, r.Addr, r.Size, r.Type = q, fmt.Sprintf("%#x", v.Addr), v.Size, v.TypeName
	return r, nil
}

// looksLikeLocation reports whether q is an address, NAME+OFFSET or
// FILE:LINE rather than a name or an expression.
func looksLikeLocation(q string) bool {
	q = strings.TrimPrefix(q, "*")
	if strings.HasPrefix(q, "0x") || strings.HasPrefix(q, "0X") {
		return true
	}
	if i := strings.LastIndexByte(q, ':'); i > 0 {
		if _, err := strconv.Atoi(q[i+1:]); err == nil {
			return true
		}
	}
	return strings.Contains(q, "+")
}
