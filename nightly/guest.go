package nightly

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/kspec/kspec/guest"
	"github.com/kspec/kspec/report"
	"github.com/kspec/kspec/supervisor"
)

// guestRun runs the suite against one guest.
type guestRun struct {
	o           Options
	name        string // the guest reference (KSPEC_GUEST of its suite)
	su          *suite
	runDir, dir string // the run directory; the guest's, relative to it
	expected    []report.Case
	prog        *progress
	sem         chan struct{}
	tmp         string // scratch directory of the run (dry-run reports)
	g           *report.GuestResult
}

func (r *guestRun) printf(format string, args ...any) {
	r.prog.printf(r.dir, format, args...)
}

func (r *guestRun) run(ctx context.Context) *report.GuestResult {
	t0 := time.Now()
	r.g = &report.GuestResult{Guest: r.name}
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
	r.recordCPU(ctx, ref)
	// The guest's own listing: titles may name what its kernel has.
	if _, cases, err := dryRun(ctx, r.su.bin, r.o.LabelFilter, r.tmp, ref); err != nil {
		r.printf("listing the specs for this guest: %v (using the default guest's list)", err)
	} else {
		r.expected = inShard(r.o, cases)
	}
	if len(r.expected) == 0 {
		r.printf("no specs to run (shard %s)", r.o.Shard)
		return r.g
	}

	select { // wait for a free slot
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		r.fail("waiting to run", ctx.Err())
		return r.g
	}
	defer func() { <-r.sem }()

	specs, setup, boot, err := r.runSuite(ctx, ref, "", r.expected)
	if err != nil {
		r.g.Error = err.Error()
		r.printf("HARNESS ERROR: %v", err)
	}
	r.g.Specs, r.g.Setup, r.g.BootSeconds = specs, setup, boot
	if ids := report.NeedsRetry(specs); len(ids) > 0 && !r.o.NoRetry && ctx.Err() == nil {
		var again []report.Case
		for _, c := range r.expected {
			if slices.Contains(ids, c.ID) {
				again = append(again, c)
			}
		}
		retried, _, _, err := r.runSuite(ctx, ref, "-retry", again)
		if err != nil {
			r.printf("re-run: %v", err)
		}
		report.ApplyRetry(r.g.Specs, retried)
	}
	if err := report.WriteLogs(r.runDir, r.dir, r.g); err != nil {
		r.printf("writing console logs: %v", err)
	}
	c := r.g.Counts()
	r.printf("done in %s: %d passed (%d flaky), %d failed, %d errors, %d skipped", time.Since(t0).Round(100*time.Millisecond), c.Passed, c.Flaky, c.Failed, c.Error, c.Skipped)
	return r.g
}

// fail records a guest-level harness error: the expected specs did not run.
func (r *guestRun) fail(what string, err error) {
	r.g.Error = what + ": " + err.Error()
	r.g.Specs = report.NotRun(r.expected, report.Error, "not run: "+r.g.Error)
	r.printf("HARNESS ERROR: %s", r.g.Error)
	if werr := report.WriteLogs(r.runDir, r.dir, r.g); werr != nil {
		r.printf("writing console logs: %v", werr)
	}
}

// recordCPU records the guest's architecture and the version of the QEMU
// its suite boots it with ($KSPEC_QEMU, else the architecture's emulator):
// a run over amd64 and arm64 guests uses two QEMU binaries.
func (r *guestRun) recordCPU(ctx context.Context, ref string) {
	spec, err := guest.Lookup(ref, r.o.Cache)
	if err != nil {
		return // the suite reports it
	}
	cpu, err := spec.CPU()
	if err != nil {
		return
	}
	r.g.Arch = cpu.Name()
	if v, err := supervisor.QEMUVersion(ctx, cmp.Or(os.Getenv("KSPEC_QEMU"), cpu.QEMU())); err == nil {
		r.g.QEMU = v.String()
	} else {
		r.printf("QEMU version unknown: %v", err)
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
		r.printf("guest config %s: kernel %s", r.name, cmp.Or(spec.Version, "(version unknown)"))
		return r.name, nil
	}
	var m *guest.Manifest
	if r.o.NoPrepare {
		var err error
		if m, err = guest.ReadManifest(r.name, r.o.Cache); err != nil {
			return "", err
		}
		r.g.Prepared = "not checked for updates (--no-prepare)"
	} else {
		t0 := time.Now()
		r.printf("preparing the newest kernel")
		lw := &lineWriter{p: r.prog, who: r.dir, pre: "prepare: "}
		_, res, err := guest.Prepare(ctx, r.name, guest.PrepareOptions{CacheDir: r.o.Cache, Progress: lw})
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
		if mm, err := guest.ReadManifest(r.name, r.o.Cache); err == nil {
			m = mm
		}
	}
	if m != nil {
		r.g.Kernel, r.g.BuildID = m.Version, m.BuildID
		for _, p := range append([]guest.Package{m.Metapackage}, m.Packages...) {
			if p.Name != "" {
				r.g.Packages = append(r.g.Packages, report.Package{Name: p.Name, Version: p.Version})
			}
		}
	}
	return r.name, nil
}

// runSuite runs the suite binary once for the given specs and parses its
// JUnit report. suffix names the attempt's files ("" or "-retry"). A run
// that leaves no JUnit report is an error; its specs are then "not run".
func (r *guestRun) runSuite(ctx context.Context, ref, suffix string, specs []report.Case) (results, setup []report.Spec, boot float64, err error) {
	junitRel := r.dir + "/junit" + suffix + ".xml"
	outRel := r.dir + "/output" + suffix + ".log"
	junit := filepath.Join(r.runDir, filepath.FromSlash(junitRel))
	args := []string{"-ginkgo.v", "-ginkgo.no-color", "-ginkgo.junit-report=" + junit,
		"-ginkgo.timeout=" + r.o.Timeout.String(), "-test.timeout=" + (r.o.Timeout + 5*time.Minute).String()}
	if r.o.LabelFilter != "" {
		args = append(args, "-ginkgo.label-filter="+r.o.LabelFilter)
	}
	if suffix != "" || !r.o.Shard.Whole() { // a subset: focus on exactly those specs
		for _, c := range specs {
			args = append(args, "-ginkgo.focus="+report.FocusRegex(r.su.desc, c.ID))
		}
	}
	logf, err := os.Create(filepath.Join(r.runDir, filepath.FromSlash(outRel)))
	if err != nil {
		return report.NotRun(specs, report.Error, "not run: "+err.Error()), nil, 0, err
	}
	defer logf.Close()
	r.g.Files = append(r.g.Files, junitRel, outRel)

	cmd := exec.CommandContext(ctx, r.su.bin, args...)
	// A failed spec's evidence (vmcore, repro bundle: harness.FailureEvidence)
	// goes into the run, beside the guest's logs; the failure's page shows
	// where (its "kspec evidence" report entry).
	cmd.Env = append(childEnv(ref), "KSPEC_LOGDIR="+filepath.Join(r.runDir, r.dir, "failures"+suffix))
	cmd.Dir = r.su.workDir
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

	j, jerr := report.ReadJUnit(junit)
	if jerr != nil {
		why := fmt.Sprintf("the suite left no JUnit report (%v; exit: %v); see %s", jerr, runErr, outRel)
		if ctx.Err() != nil {
			why = "interrupted before the suite wrote its report"
		}
		return report.NotRun(specs, report.Error, "not run: "+why), nil, 0, errors.New(why)
	}
	results, setup, boot = report.Results(j, specs)
	return results, setup, boot, nil
}

// follow reads the suite's verbose output and prints progress.
func (r *guestRun) follow(out io.Reader, n int) {
	var p report.Progress
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
