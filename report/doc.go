// Package report records what a nightly kspec run found and tells people what
// changed: it reads the JUnit XML a Ginkgo suite writes, classifies every spec,
// keeps one summary per run in a results directory, compares a run with the
// runs before it, merges shard runs, and renders static HTML pages.
//
// # Statuses
//
// Every spec of a run gets one of four statuses, after KernelCI's test
// statuses (FAIL, ERROR, MISS/SKIP):
//
//   - passed: the kernel behaved as the spec says;
//   - failed: the kernel did not (an assertion about it failed, a
//     harness.KernelError such as a panic or an oops, a breakpoint the kernel
//     never reached, a symbol the kernel no longer has);
//   - error: the harness broke, so the run says nothing about the kernel
//     (a harness.HarnessError, a missing prerequisite, a panic in Go code, a
//     spec or suite timeout, an interrupt, a failed BeforeSuite, or a spec the
//     suite never reached);
//   - skipped: the spec chose not to run here (Skip, pending, filtered out).
//
// A spec that failed or errored and then passed when re-run once is passed
// with Flaky set: flaky, never a regression. See Classify for the exact rules.
//
// # Results directory
//
//	<out>/index.html                 every run: a spec × run matrix
//	<out>/latest -> <run>            the newest run
//	<out>/<run>/                     one run; <run> is its UTC start, e.g. 2026-11-26T020000Z
//	    summary.json                 Summary: guests, kernel and package versions, statuses, changes
//	    summary.txt                  the same as text: what changed since the previous run
//	    report.html                  the run's page
//	    <guest>/junit.xml            the suite's JUnit report
//	    <guest>/junit-retry.xml      the re-run of the specs that failed
//	    <guest>/output.log           the suite's verbose output (and output-retry.log)
//	    <guest>/logs/<spec>.log      failure, console transcript and spec output of each
//	                                 failed, errored or flaky spec
//
// The package only reads and writes files; running suites is the kspec
// command's job (kspec nightly).
package report
