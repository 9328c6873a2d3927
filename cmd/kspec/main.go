// Command kspec boots a kernel under QEMU, logs in on its serial console and
// debugs it through QEMU's gdbstub with kspec's own GDB client.
//
//	kspec guest prepare [--json] [--force]   build the default guest from Debian packages
//	kspec exec -- CMD...                     boot, log in, run CMD, print its output
//	kspec probe --break FUNC --run CMD       boot, break on FUNC, run CMD, report the hit (backtrace, task)
//	kspec probe --watch EXPR --run CMD       boot, watch EXPR for writes, run CMD, report the writer
//	kspec sym NAME|ADDR|EXPR [--symbols FILE] resolve a kernel symbol, address or expression
//	kspec boot [--halted]                    the guest's console on this terminal, gdb attachable
//	kspec nightly [--out DIR]                run the suites on the newest guests, report regressions
//	kspec report merge|html DIR...           merge shard results; render HTML reports
//	kspec init [DIR]                         write a new suite of kernel specs (the spec kit's example)
//
// Exit status: 0 success; 1 the command in the guest failed, a breakpoint was
// not hit or the kernel failed; 2 bad input or a missing prerequisite (the
// message says how to fix it); 3 the harness itself failed.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/kspec/kspec/archive"
	"github.com/kspec/kspec/guest"
	"github.com/kspec/kspec/harness"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailed  = 1
	exitUsage   = 2
	exitHarness = 3
	// exitInterrupted is the shell's convention for a SIGINT death.
	exitInterrupted = 130
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// usageError is a mistake in the command line; it exits 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// exitError carries a chosen exit status without a message of its own.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func (e exitError) Unwrap() error { return e.err }

const usage = `usage: kspec <command> [flags]

commands:
  guest prepare [--json] [--force] [--source] [--guest NAME] [--mirror URL] [--keyring FILE]
                                                    build a guest (debian-<suite>-<flavour>) from Debian's archive into the cache
  guest list                                        list prepared guests
  guest env [--guest NAME]                          shell exports (KSPEC_KERNEL, KSPEC_SYMBOLS, ...) of a prepared guest
  exec [--timeout D] [guest flags] -- CMD...         boot, log in, run CMD, print its output, exit with its status
                                                    (a CMD that ends the login shell, e.g. exit 3, exits with that status)
  probe --break FUNC --run CMD [--json] [--timeout D] [guest flags]
                                                    boot, break on FUNC, run CMD, report the first hit
                                                    with its backtrace and task (comm, pid); fails at once
                                                    (exit 1, with CMD's status and output) if CMD finishes first
  probe --watch EXPR --run CMD [--json] [--timeout D] [guest flags]
                                                    boot, watch EXPR (e.g. init_uts_ns.name.nodename) for
                                                    writes, run CMD, report the writer
  sym NAME|ADDR|FILE:LINE|EXPR... [--symbols FILE] [guest flags]
                                                    resolve kernel symbols, addresses or expressions
  boot [--halted] [guest flags]                     the guest's console on this terminal; prints the gdb command to attach
  nightly [--out DIR] [--guests a,b] [--shard i/n]  prepare the newest guests, run the suites on each, report what changed
  report merge|html DIR...                          combine shard results into one run; (re)render the HTML report
  repro [--state] [--hold-limit D] DIR             re-run the failed spec of a repro bundle (a failed spec's log directory),
                                                    holding on failure; --state boots into the saved failing state for gdb
  init [--module PATH] [DIR]                        write a new Ginkgo suite built on the spec kit (kspectest), with a go.mod
                                                    outside a module; its one spec passes on the default guest

guest flags (all commands that boot): --guest NAME|FILE --kernel F --symbols F --initrd F --disk F
  --append S --os linux|freebsd --user U --password-file F --memory MiB --cpus N --accel auto|kvm|tcg
  --qemu BIN --cache DIR
Run 'kspec <command> --help' for a command's flags.`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "guest":
		err = cmdGuest(ctx, args[1:], stdout, stderr)
	case "exec":
		err = cmdExec(ctx, args[1:], stdout, stderr)
	case "probe":
		err = cmdProbe(ctx, args[1:], stdout, stderr)
	case "sym":
		err = cmdSym(ctx, args[1:], stdout, stderr)
	case "boot":
		err = cmdBoot(ctx, args[1:], stdout, stderr)
	case "nightly":
		err = cmdNightly(ctx, args[1:], stdout, stderr)
	case "report":
		err = cmdReport(ctx, args[1:], stdout, stderr)
	case "init":
		err = cmdInit(ctx, args[1:], stdout, stderr)
	case "repro":
		err = cmdRepro(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "kspec: unknown command %q\n%s\n", args[0], usage)
		return exitUsage
	}
	return report(err, stderr)
}

// report prints err (if any) and maps it to an exit status.
func report(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	var ee exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "kspec:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "kspec:", err)
	var ue usageError
	switch {
	case errors.As(err, &ue), errors.Is(err, harness.ErrBadInput), errors.Is(err, harness.ErrMissing), errors.Is(err, guest.ErrUnknownGuest), errors.Is(err, archive.ErrKeyring):
		return exitUsage
	case errors.Is(err, harness.ErrNotHit), harness.IsKernelFailure(err):
		return exitFailed
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(stderr, "kspec: interrupted; QEMU stopped and its run directory removed")
		return exitInterrupted
	default:
		return exitHarness
	}
}
