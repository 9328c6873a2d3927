package main

import (
	"context"
	"errors"
	"io"
	"strings"

	"github.com/kspec/kspec/guest"
	"github.com/kspec/kspec/nightly"
	runreport "github.com/kspec/kspec/report"
)

// cmdNightly parses kspec nightly's flags; package nightly does the run.
func cmdNightly(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("nightly", stderr)
	out := fs.String("out", "", "results directory; each run goes into a new <out>/<UTC time>/ (default $KSPEC_RESULTS or ~/.local/share/kspec/nightly)")
	guests := fs.String("guests", strings.Join(nightly.DefaultGuests, ","), "comma-separated guests: prepared guest names ("+strings.Join(guest.KnownGuests(), ", ")+") or guest config files")
	shard := fs.String("shard", "", "run only shard i/n of the specs (a deterministic subset); combine the shards' runs with `kspec report merge`")
	procs := fs.Int("procs", 0, "guests run at once (default: the number of CPUs, at most the number of guests)")
	suiteBin := fs.String("suite-binary", "", "the compiled suite to run (go test -c -o linux.test ./suites/linux); default: compile "+nightly.SuitePackage+" of the kspec source tree")
	source := fs.String("source", "", "kspec source tree to compile the suite from (default: the one containing the current directory)")
	labels := fs.String("label-filter", "", "Ginkgo label filter: run only the specs it selects")
	cache := fs.String("cache", "", "guest cache directory (default $KSPEC_CACHE or ~/.cache/kspec)")
	timeout := fs.Duration("timeout", nightly.DefaultTimeout, "limit for one suite run on one guest")
	noPrepare := fs.Bool("no-prepare", false, "use the prepared guests as they are; do not look for newer kernels")
	noRetry := fs.Bool("no-retry", false, "do not re-run failed specs (no flaky detection)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("kspec nightly: unexpected argument %q", fs.Arg(0))
	}
	if *timeout <= 0 {
		return usagef("kspec nightly: --timeout must be positive")
	}
	o := nightly.Options{Cache: *cache, SuiteBinary: *suiteBin, Source: *source, LabelFilter: *labels,
		Procs: *procs, Timeout: *timeout, NoPrepare: *noPrepare, NoRetry: *noRetry, Progress: stderr, Report: stdout}
	var err error
	if o.ResultsDir, err = nightly.ResultsDir(*out); err != nil {
		return err
	}
	if o.Shard, err = runreport.ParseShard(*shard); err != nil {
		return usagef("kspec nightly: --shard: %v", err)
	}
	if o.Guests, err = nightly.ParseGuests(*guests); err != nil {
		return err
	}
	for _, g := range o.Guests {
		if !guest.CanPrepare(g) { // a config file: it and its files are checked before any guest boots
			if err := checkGuestConfig("--guests", g); err != nil {
				return err
			}
		}
	}
	_, err = nightly.Run(ctx, o)
	return verdictExit(err)
}

// verdictExit maps a run's outcome to kspec's exit statuses: 1 for
// regressions or an interrupted run, 3 for harness errors.
func verdictExit(err error) error {
	switch {
	case errors.Is(err, nightly.ErrRegressed), errors.Is(err, nightly.ErrInterrupted):
		return exitError{code: exitFailed, err: err}
	case errors.Is(err, nightly.ErrIncomplete):
		return exitError{code: exitHarness, err: err}
	}
	return err
}
