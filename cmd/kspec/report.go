package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/kspec/kspec/nightly"
	runreport "github.com/kspec/kspec/report"
)

func cmdReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("kspec report: want a subcommand: merge, html or show")
	}
	switch args[0] {
	case "merge":
		return cmdReportMerge(args[1:], stdout, stderr)
	case "html":
		return cmdReportHTML(args[1:], stdout, stderr)
	case "show":
		return cmdReportShow(args[1:], stdout, stderr)
	default:
		return usagef("kspec report: unknown subcommand %q: want merge, html or show", args[0])
	}
}

// cmdReportMerge combines shard runs into one run of a results directory,
// compares it with the runs before it and renders its report, like a
// whole `kspec nightly` run; the exit status is the same.
func cmdReportMerge(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("report merge", stderr)
	out := fs.String("out", "", "results directory to add the merged run to (default $KSPEC_RESULTS or ~/.local/share/kspec/nightly)")
	partial := fs.Bool("partial", false, "accept an incomplete set of shards")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: kspec report merge [--out DIR] [--partial] SHARD-RUN-DIR...\n\nCombines the run directories of `kspec nightly --shard i/n` (one per i) into one run.")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("kspec report merge: give the shard run directories (<out>/<run> of each `kspec nightly --shard i/n`)")
	}
	dir, err := nightly.ResultsDir(*out)
	if err != nil {
		return err
	}
	var srcs []string
	for _, a := range fs.Args() {
		if _, err := os.Stat(filepath.Join(a, runreport.SummaryFile)); err != nil {
			return usagef("kspec report merge: %s is not a run directory (no %s)", a, runreport.SummaryFile)
		}
		srcs = append(srcs, a)
	}
	m, runDir, err := runreport.MergeRuns(dir, srcs, runreport.MergeOptions{Partial: *partial})
	if err != nil {
		return usagef("kspec report %v", err)
	}
	hist, err := runreport.Runs(dir)
	if err != nil {
		return err
	}
	m.Changes = runreport.Compare(hist, m)
	if err := nightly.Finish(dir, runDir, m); err != nil {
		return err
	}
	if err := nightly.WriteReport(stdout, dir, runDir, m); err != nil {
		return err
	}
	return verdictExit(nightly.Verdict(m))
}

// cmdReportHTML re-renders every run page and the index of a results
// directory (after upgrading kspec, or after copying runs in).
func cmdReportHTML(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("report html", stderr)
	out := fs.String("out", "", "results directory (default $KSPEC_RESULTS or ~/.local/share/kspec/nightly)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("kspec report html: unexpected argument %q", fs.Arg(0))
	}
	dir, err := nightly.ResultsDir(*out)
	if err != nil {
		return err
	}
	runs, err := runreport.Runs(dir)
	if err != nil {
		return err
	}
	if len(runs) == 0 {
		return usagef("kspec report html: no runs in %s", dir)
	}
	shards := map[string]bool{}
	for _, s := range runs {
		if err := runreport.WriteHTML(dir, filepath.Join(dir, s.Run), s); err != nil {
			return err
		}
		shards[s.Shard] = true
	}
	if shards[""] { // the index shows the whole runs when there are any
		if err := runreport.WriteIndex(dir, ""); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "rendered %d runs; index: %s\n", len(runs), filepath.Join(dir, runreport.IndexFile))
	return nil
}

// cmdReportShow prints a run's text summary (default: the latest run).
func cmdReportShow(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("report show", stderr)
	out := fs.String("out", "", "results directory (default $KSPEC_RESULTS or ~/.local/share/kspec/nightly)")
	if err := parse(fs, args); err != nil {
		return err
	}
	var runDir string
	switch fs.NArg() {
	case 0:
		dir, err := nightly.ResultsDir(*out)
		if err != nil {
			return err
		}
		runDir = filepath.Join(dir, runreport.LatestLink)
	case 1:
		runDir = fs.Arg(0)
	default:
		return usagef("kspec report show: give at most one run directory")
	}
	s, err := runreport.ReadSummary(runDir)
	if err != nil {
		return usagef("kspec report show: %v", err)
	}
	if real, err := filepath.EvalSymlinks(runDir); err == nil {
		runDir = real
		s.Run = filepath.Base(real)
	}
	return runreport.WriteText(stdout, s, runDir)
}
