package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kspec/kspec/guest"
	runreport "github.com/kspec/kspec/report"
)

// defaultNightlyGuests is the matrix a plain `kspec nightly` covers: the
// newest cloud kernel of each Debian line, oldest first (6.1, 6.12, the
// newest release, the next release candidate), so that a spec failing only
// on the newer lines stands out in the report's matrix.
var defaultNightlyGuests = []string{"debian-bookworm-cloud", "debian-trixie-cloud", "debian-sid-cloud", "debian-experimental-cloud"}

// suitePackage is the suite kspec nightly compiles from a source tree.
const suitePackage = "./suites/linux"

// nightlyOptions are kspec nightly's flags.
type nightlyOptions struct {
	out, cache, suiteBinary, source, labelFilter string
	guests                                       []string
	shard                                        runreport.Shard
	procs                                        int
	timeout                                      time.Duration
	noPrepare, noRetry                           bool
}

func cmdNightly(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("nightly", stderr)
	out := fs.String("out", "", "results directory; each run goes into a new <out>/<UTC time>/ (default $KSPEC_RESULTS or ~/.local/share/kspec/nightly)")
	guests := fs.String("guests", strings.Join(defaultNightlyGuests, ","), "comma-separated guests: prepared guest names ("+strings.Join(guest.KnownGuests(), ", ")+") or guest config files")
	shard := fs.String("shard", "", "run only shard i/n of the specs (a deterministic subset); combine the shards' runs with `kspec report merge`")
	procs := fs.Int("procs", 0, "guests run at once (default: the number of CPUs, at most the number of guests)")
	suiteBin := fs.String("suite-binary", "", "the compiled suite to run (go test -c -o linux.test ./suites/linux); default: compile "+suitePackage+" of the kspec source tree")
	source := fs.String("source", "", "kspec source tree to compile the suite from (default: the one containing the current directory)")
	labels := fs.String("label-filter", "", "Ginkgo label filter: run only the specs it selects")
	cache := fs.String("cache", "", "guest cache directory (default $KSPEC_CACHE or ~/.cache/kspec)")
	timeout := fs.Duration("timeout", 30*time.Minute, "limit for one suite run on one guest")
	noPrepare := fs.Bool("no-prepare", false, "use the prepared guests as they are; do not look for newer kernels")
	noRetry := fs.Bool("no-retry", false, "do not re-run failed specs (no flaky detection)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("kspec nightly: unexpected argument %q", fs.Arg(0))
	}
	o := nightlyOptions{cache: *cache, suiteBinary: *suiteBin, source: *source, labelFilter: *labels,
		procs: *procs, timeout: *timeout, noPrepare: *noPrepare, noRetry: *noRetry}
	var err error
	if o.out, err = resultsDir(*out); err != nil {
		return err
	}
	if o.shard, err = runreport.ParseShard(*shard); err != nil {
		return usagef("kspec nightly: --shard: %v", err)
	}
	for _, g := range strings.Split(*guests, ",") {
		g = strings.TrimSpace(g)
		if g == "" {
			continue
		}
		if !guest.CanPrepare(g) {
			if _, err := os.Stat(g); err != nil {
				return usagef("kspec nightly: --guests: %q is neither a guest kspec prepares (%s) nor a guest config file", g, strings.Join(guest.KnownGuests(), ", "))
			}
			if g, err = filepath.Abs(g); err != nil {
				return err
			}
		}
		if slices.Contains(o.guests, g) {
			return usagef("kspec nightly: --guests: %q given twice", g)
		}
		o.guests = append(o.guests, g)
	}
	if len(o.guests) == 0 {
		return usagef("kspec nightly: --guests: no guest given")
	}
	if o.procs <= 0 {
		o.procs = min(runtime.NumCPU(), len(o.guests))
	}
	if o.timeout <= 0 {
		return usagef("kspec nightly: --timeout must be positive")
	}
	return runNightly(ctx, o, stdout, stderr)
}

// resultsDir resolves --out.
func resultsDir(out string) (string, error) {
	if out == "" {
		out = os.Getenv("KSPEC_RESULTS")
	}
	if out == "" {
		base := os.Getenv("XDG_DATA_HOME")
		if base == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", usagef("kspec: no results directory: give --out DIR (%v)", err)
			}
			base = filepath.Join(home, ".local", "share")
		}
		out = filepath.Join(base, "kspec", "nightly")
	}
	return filepath.Abs(out)
}

// progress prints timestamped progress lines to stderr, one writer at a
// time (guests run in parallel).
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
	width int // guest column
}

func (p *progress) printf(who, format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "[%6.1fs] %-*s %s\n", time.Since(p.start).Seconds(), p.width, who, fmt.Sprintf(format, args...))
}

// lineWriter turns written bytes into progress lines prefixed with who.
// Lines that only update a counter ("downloading: 12/930 MB") are shown at
// most every few seconds.
type lineWriter struct {
	p       *progress
	who     string
	pre     string
	rest    []byte
	lastKey string
	lastAt  time.Time
}

// counterEvery is how often a repeated counter line is shown.
const counterEvery = 5 * time.Second

// Write implements io.Writer.
func (w *lineWriter) Write(b []byte) (int, error) {
	w.rest = append(w.rest, b...)
	for {
		i := bytes.IndexByte(w.rest, '\n')
		if i < 0 {
			return len(b), nil
		}
		if line := strings.TrimSpace(string(w.rest[:i])); line != "" {
			key, _, counter := strings.Cut(line, ": ")
			if !counter || key != w.lastKey || time.Since(w.lastAt) >= counterEvery {
				w.p.printf(w.who, "%s%s", w.pre, line)
				w.lastKey, w.lastAt = key, time.Now()
			}
		}
		w.rest = w.rest[i+1:]
	}
}

func runNightly(ctx context.Context, o nightlyOptions, stdout, stderr io.Writer) error {
	start := time.Now()
	prog := &progress{w: stderr, start: start, width: 8}
	for _, g := range o.guests {
		prog.width = max(prog.width, len(runreport.GuestDir(g)))
	}
	id, runDir, err := runreport.NewRunDir(o.out, start)
	if err != nil {
		return fmt.Errorf("results directory: %w", err)
	}
	title := "run " + id
	if !o.shard.Whole() {
		title += ", shard " + o.shard.String()
	}
	prog.printf("nightly", "%s: %s on %s, into %s", title, strings.Join(o.guests, " and "), plural(o.procs, "guest at a time", "guests at a time"), runDir)

	tmp, err := os.MkdirTemp("", "kspec-nightly-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin, suiteName, workDir, err := suiteBinary(ctx, o, tmp, prog)
	if err != nil {
		os.RemoveAll(runDir)
		return err
	}
	suiteDesc, expected, err := dryRun(ctx, bin, o.labelFilter, tmp)
	if err != nil {
		os.RemoveAll(runDir)
		return err
	}
	all := len(expected)
	if !o.shard.Whole() {
		var mine []runreport.Case
		for _, c := range expected {
			if o.shard.Has(c.ID) {
				mine = append(mine, c)
			}
		}
		expected = mine
	}
	if o.shard.Whole() {
		prog.printf("nightly", "suite %q: %s", suiteDesc, plural(len(expected), "spec", "specs"))
	} else {
		prog.printf("nightly", "suite %q: %d of %d specs in shard %s", suiteDesc, len(expected), all, o.shard)
	}

	host, _ := os.Hostname()
	s := &runreport.Summary{Run: id, Started: start, Host: host, Suite: suiteName, LabelFilter: o.labelFilter, Shard: o.shard.String()}
	s.Guests = make([]*runreport.GuestResult, len(o.guests))
	sem := make(chan struct{}, o.procs)
	var wg sync.WaitGroup
	for i, name := range o.guests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &guestRun{o: o, name: name, bin: bin, suiteDesc: suiteDesc, workDir: workDir, runDir: runDir,
				dir: runreport.GuestDir(name), expected: expected, prog: prog, sem: sem}
			s.Guests[i] = r.run(ctx)
		}()
	}
	wg.Wait()
	s.Finished = time.Now()

	// Record the run even when interrupted: what ran is evidence.
	hist, err := runreport.Runs(o.out)
	if err != nil {
		return fmt.Errorf("reading earlier runs: %w", err)
	}
	s.Changes = runreport.Compare(hist, s)
	if err := finishRun(o.out, runDir, s); err != nil {
		return err
	}
	prog.printf("nightly", "done in %s: %s", time.Since(start).Round(time.Second), filepath.Join(runDir, runreport.RunHTMLFile))
	if err := runreport.WriteText(stdout, s, runDir); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nreport: %s\nindex:  %s\n", filepath.Join(runDir, runreport.RunHTMLFile), filepath.Join(o.out, runreport.IndexFile))
	if ctx.Err() != nil {
		return exitError{code: exitFailed, err: fmt.Errorf("interrupted; the guests were stopped and what ran is recorded in %s", runDir)}
	}
	return runVerdict(s)
}

// finishRun writes a run's summary.json, summary.txt, report.html, the
// results directory's index and its latest link.
func finishRun(out, runDir string, s *runreport.Summary) error {
	if err := runreport.WriteSummary(runDir, s); err != nil {
		return err
	}
	var text bytes.Buffer
	if err := runreport.WriteText(&text, s, runDir); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(runDir, runreport.TextFile), text.Bytes(), 0o644); err != nil {
		return err
	}
	if err := runreport.WriteHTML(out, runDir, s); err != nil {
		return err
	}
	return runreport.SetLatest(out, filepath.Base(runDir))
}

// runVerdict is the exit status of a run: 1 for regressions, 3 for harness
// errors, 0 otherwise (known failures, flaky specs and fixes included).
func runVerdict(s *runreport.Summary) error {
	switch {
	case s.Changes.Regressed():
		return exitError{code: exitFailed, err: fmt.Errorf("%s since %s", plural(len(s.Changes.Regressions), "regression", "regressions"), s.Changes.Previous)}
	case s.HarnessErrors():
		return exitError{code: exitHarness, err: errors.New("harness errors: the run is incomplete (see the report)")}
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// suiteBinary returns the suite test binary to run: --suite-binary, or one
// compiled from the source tree into tmp. It also returns the directory to
// run it in (the suite's package directory, as `go test` does).
func suiteBinary(ctx context.Context, o nightlyOptions, tmp string, prog *progress) (bin, name, dir string, err error) {
	if o.suiteBinary != "" {
		bin, err := filepath.Abs(o.suiteBinary)
		if err != nil {
			return "", "", "", err
		}
		if fi, err := os.Stat(bin); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return "", "", "", usagef("kspec nightly: --suite-binary %s: not an executable file", o.suiteBinary)
		}
		return bin, bin, "", nil
	}
	root := o.source
	if root == "" {
		root = findSourceTree()
	}
	if root == "" {
		return "", "", "", usagef("kspec nightly: no suite to run: run it inside a kspec source tree, give --source DIR, or give --suite-binary FILE (build one with: go test -c -o linux.test %s)", suitePackage)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", "", "", usagef("kspec nightly: compiling the suite needs the go command (Go ≥ 1.26) on $PATH, or give --suite-binary FILE")
	}
	bin = filepath.Join(tmp, "linux.test")
	t0 := time.Now()
	cmd := exec.CommandContext(ctx, goBin, "test", "-c", "-o", bin, suitePackage)
	cmd.Dir = root
	if outb, err := cmd.CombinedOutput(); err != nil {
		return "", "", "", exitError{code: exitHarness, err: fmt.Errorf("compiling the suite (%s in %s): %v\n%s", suitePackage, root, err, outb)}
	}
	prog.printf("nightly", "compiled %s of %s in %s", suitePackage, root, time.Since(t0).Round(100*time.Millisecond))
	return bin, suitePackage, filepath.Join(root, filepath.FromSlash(suitePackage)), nil
}

// findSourceTree returns the kspec module root containing the current
// directory, or "".
func findSourceTree() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil {
			for _, l := range strings.Split(string(data), "\n") {
				if f := strings.Fields(l); len(f) == 2 && f[0] == "module" {
					if f[1] == "github.com/kspec/kspec" {
						return dir
					}
					return ""
				}
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// dryRun lists the specs the suite binary would run with the label filter:
// its description and specs.
func dryRun(ctx context.Context, bin, labelFilter, tmp string) (string, []runreport.Case, error) {
	junit := filepath.Join(tmp, "dry-run.xml")
	args := []string{"-ginkgo.dry-run", "-ginkgo.no-color", "-ginkgo.junit-report=" + junit}
	if labelFilter != "" {
		args = append(args, "-ginkgo.label-filter="+labelFilter)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = childEnv("")
	outb, err := cmd.CombinedOutput()
	j, jerr := runreport.ReadJUnit(junit)
	if jerr != nil {
		if err == nil {
			err = jerr
		}
		return "", nil, exitError{code: exitHarness, err: fmt.Errorf("listing the suite's specs (%s -ginkgo.dry-run): %v\n%s", bin, err, tail(outb, 2000))}
	}
	return j.Suite, runreport.Expected(j), nil
}

// childEnv is the environment of a suite process for the guest: the real
// suites never skip in a nightly run (KSPEC_SKIP_MISSING would hide a
// missing guest as skipped specs).
func childEnv(guestRef string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "KSPEC_SKIP_MISSING=") || strings.HasPrefix(kv, "KSPEC_GUEST=") {
			continue
		}
		env = append(env, kv)
	}
	if guestRef != "" {
		env = append(env, "KSPEC_GUEST="+guestRef)
	}
	return env
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// guestRun runs the suite against one guest.
type guestRun struct {
	o                             nightlyOptions
	name, bin, suiteDesc, workDir string
	runDir, dir                   string // the run directory; the guest's, relative to it
	expected                      []runreport.Case
	prog                          *progress
	sem                           chan struct{}
	g                             *runreport.GuestResult
}

func (r *guestRun) printf(format string, args ...any) {
	r.prog.printf(r.dir, format, args...)
}

func (r *guestRun) run(ctx context.Context) *runreport.GuestResult {
	t0 := time.Now()
	r.g = &runreport.GuestResult{Guest: r.name}
	defer func() { r.g.Seconds = time.Since(t0).Seconds() }()
	if err := os.MkdirAll(filepath.Join(r.runDir, r.dir), 0o755); err != nil {
		r.fail("creating the guest's directory", err)
		return r.g
	}
	ref, err := r.prepare(ctx)
	if err != nil {
		r.fail("preparing the guest", err)
		return r.g
	}
	if len(r.expected) == 0 {
		r.printf("no specs to run (shard %s)", r.o.shard)
		return r.g
	}

	select { // wait for a free slot
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		r.fail("waiting to run", ctx.Err())
		return r.g
	}
	defer func() { <-r.sem }()

	specs, setup, boot, err := r.suite(ctx, ref, "", r.expected)
	if err != nil {
		r.g.Error = err.Error()
		r.printf("HARNESS ERROR: %v", err)
	}
	r.g.Specs, r.g.Setup, r.g.BootSeconds = specs, setup, boot
	if ids := runreport.NeedsRetry(specs); len(ids) > 0 && !r.o.noRetry && ctx.Err() == nil {
		var again []runreport.Case
		for _, c := range r.expected {
			if slices.Contains(ids, c.ID) {
				again = append(again, c)
			}
		}
		retried, _, _, err := r.suite(ctx, ref, "-retry", again)
		if err != nil {
			r.printf("re-run: %v", err)
		}
		runreport.ApplyRetry(r.g.Specs, retried)
	}
	if err := runreport.WriteLogs(r.runDir, r.dir, r.g); err != nil {
		r.printf("writing console logs: %v", err)
	}
	c := r.g.Counts()
	r.printf("done in %s: %d passed (%d flaky), %d failed, %d errors, %d skipped", time.Since(t0).Round(100*time.Millisecond), c.Passed, c.Flaky, c.Failed, c.Error, c.Skipped)
	return r.g
}

// fail records a guest-level harness error: the expected specs did not run.
func (r *guestRun) fail(what string, err error) {
	r.g.Error = what + ": " + err.Error()
	r.g.Specs = runreport.NotRun(r.expected, runreport.Error, "not run: "+r.g.Error)
	r.printf("HARNESS ERROR: %s", r.g.Error)
	if werr := runreport.WriteLogs(r.runDir, r.dir, r.g); werr != nil {
		r.printf("writing console logs: %v", werr)
	}
}

// prepare makes sure the guest's newest kernel is prepared and records its
// versions; it returns the KSPEC_GUEST value for the suite.
func (r *guestRun) prepare(ctx context.Context) (string, error) {
	if !guest.CanPrepare(r.name) { // a config file
		spec, err := guest.LoadConfig(r.name)
		if err != nil {
			return "", err
		}
		// A user-described guest is reported by its name (the config's
		// "name", or the file's) and the kernel release read from its image.
		r.g.Guest, r.g.Kernel, r.g.Prepared = spec.Name, spec.Version, "config file"
		r.printf("guest config %s: kernel %s", r.name, valueOr(spec.Version, "(version unknown)"))
		return r.name, nil
	}
	var m *guest.Manifest
	if r.o.noPrepare {
		var err error
		if m, err = guest.ReadManifest(r.name, r.o.cache); err != nil {
			return "", err
		}
		r.g.Prepared = "not checked for updates (--no-prepare)"
	} else {
		t0 := time.Now()
		r.printf("preparing the newest kernel")
		lw := &lineWriter{p: r.prog, who: r.dir, pre: "prepare: "}
		_, res, err := guest.Prepare(ctx, r.name, guest.PrepareOptions{CacheDir: r.o.cache, Progress: lw})
		if err != nil {
			return "", err
		}
		m = res.Manifest
		r.g.Fallback = res.Fallback
		r.g.Prepared = "already prepared"
		if res.Built {
			r.g.Prepared = fmt.Sprintf("built in %s", res.Total.Round(100*time.Millisecond))
		}
		r.printf("kernel %s: %s (checked in %s)", m.Version, r.g.Prepared, time.Since(t0).Round(100*time.Millisecond))
		if res.Fallback != "" {
			r.printf("note: %s", res.Fallback)
		}
	}
	if m == nil {
		if mm, err := guest.ReadManifest(r.name, r.o.cache); err == nil {
			m = mm
		}
	}
	if m != nil {
		r.g.Kernel, r.g.BuildID = m.Version, m.BuildID
		for _, p := range append([]guest.Package{m.Metapackage}, m.Packages...) {
			if p.Name != "" {
				r.g.Packages = append(r.g.Packages, runreport.Package{Name: p.Name, Version: p.Version})
			}
		}
	}
	return r.name, nil
}

// suite runs the suite binary once for the given specs and parses its
// JUnit report. suffix names the attempt's files ("" or "-retry"). A run
// that leaves no JUnit report is an error; its specs are then "not run".
func (r *guestRun) suite(ctx context.Context, ref, suffix string, specs []runreport.Case) (results, setup []runreport.Spec, boot float64, err error) {
	junitRel := r.dir + "/junit" + suffix + ".xml"
	outRel := r.dir + "/output" + suffix + ".log"
	junit := filepath.Join(r.runDir, filepath.FromSlash(junitRel))
	args := []string{"-ginkgo.v", "-ginkgo.no-color", "-ginkgo.junit-report=" + junit,
		"-ginkgo.timeout=" + r.o.timeout.String(), "-test.timeout=" + (r.o.timeout + 5*time.Minute).String()}
	if r.o.labelFilter != "" {
		args = append(args, "-ginkgo.label-filter="+r.o.labelFilter)
	}
	if suffix != "" || !r.o.shard.Whole() { // a subset: focus on exactly those specs
		for _, c := range specs {
			args = append(args, "-ginkgo.focus="+runreport.FocusRegex(r.suiteDesc, c.ID))
		}
	}
	logf, err := os.Create(filepath.Join(r.runDir, filepath.FromSlash(outRel)))
	if err != nil {
		return runreport.NotRun(specs, runreport.Error, "not run: "+err.Error()), nil, 0, err
	}
	defer logf.Close()
	r.g.Files = append(r.g.Files, junitRel, outRel)

	cmd := exec.CommandContext(ctx, r.bin, args...)
	cmd.Env = childEnv(ref)
	cmd.Dir = r.workDir
	if cmd.Dir == "" {
		cmd.Dir = filepath.Join(r.runDir, r.dir)
	}
	// On interrupt Ginkgo gets SIGINT, so that it stops the guest, runs the
	// cleanup and still writes its report.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = time.Minute
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	var follow sync.WaitGroup
	follow.Add(1)
	go func() {
		defer follow.Done()
		r.follow(io.TeeReader(pr, logf), len(specs))
	}()
	if suffix != "" {
		r.printf("re-running %s once (KSPEC_GUEST=%s)", plural(len(specs), "failed spec", "failed specs"), ref)
	} else {
		r.printf("running %s (KSPEC_GUEST=%s)", plural(len(specs), "spec", "specs"), ref)
	}
	runErr := cmd.Run()
	pw.Close()
	follow.Wait()

	j, jerr := runreport.ReadJUnit(junit)
	if jerr != nil {
		why := fmt.Sprintf("the suite left no JUnit report (%v; exit: %v); see %s", jerr, runErr, outRel)
		if ctx.Err() != nil {
			why = "interrupted before the suite wrote its report"
		}
		return runreport.NotRun(specs, runreport.Error, "not run: "+why), nil, 0, errors.New(why)
	}
	results, setup, boot = runreport.Results(j, specs)
	return results, setup, boot, nil
}

// follow reads the suite's verbose output and prints progress.
func (r *guestRun) follow(out io.Reader, n int) {
	var p runreport.Progress
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		e, ok := p.Line(sc.Text())
		if !ok {
			continue
		}
		switch e.Kind {
		case "setup":
			if e.Result == "passed" && e.Text != "[BeforeSuite]" {
				continue
			}
			if e.Text == "[BeforeSuite]" && e.Result == "passed" {
				r.printf("booted and logged in (BeforeSuite %.1fs)", e.Seconds)
				continue
			}
			r.printf("%s %s (%.1fs)", e.Text, e.Result, e.Seconds)
		case "spec":
			mark := map[string]string{"passed": "✓", "skipped": "–"}[e.Result]
			if mark == "" {
				mark = "✗ " + e.Result
			}
			total := p.Total
			if total == 0 {
				total = n
			}
			r.printf("%d/%d %s %s (%.1fs)", p.Done, total, mark, e.Text, e.Seconds)
		}
	}
	io.Copy(io.Discard, out) // never block the suite on a long line
}
