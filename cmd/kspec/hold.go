package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/kspec/kspec/harness"
)

// holdFlags are --hold and --hold-limit of `kspec probe` and `kspec exec`.
type holdFlags struct {
	hold  bool
	limit time.Duration
}

func (h *holdFlags) register(fs *flag.FlagSet, where string) {
	fs.BoolVar(&h.hold, "hold", false, "keep the guest stopped "+where+" and print a gdb command that attaches to it; kspec tears the guest down when that gdb quits")
	fs.DurationVar(&h.limit, "hold-limit", harness.DefaultHoldLimit, "with --hold: how long to wait for gdb to attach and quit")
}

// check rejects a bad --hold-limit before anything boots.
func (h *holdFlags) check() error {
	if h.limit <= 0 {
		return usagef("kspec: --hold-limit %s: want a positive duration such as 30m", h.limit)
	}
	return nil
}

// holdNow holds the guest where it is (see harness.Target.Hold), printing
// the gdb command on stderr.
func (h *holdFlags) holdNow(ctx context.Context, t *harness.Target, stderr io.Writer) error {
	return t.Hold(ctx, harness.HoldOptions{
		Limit:    h.limit,
		Announce: func(held harness.Held) { fmt.Fprint(stderr, held.String()) },
	})
}

// holdFailure returns failure, first holding the guest for gdb when --hold
// was given. A hold that fails is reported beside the failure.
func (h *holdFlags) holdFailure(ctx context.Context, t *harness.Target, stderr io.Writer, failure error) error {
	if !h.hold {
		return failure
	}
	msg := failure.Error()
	var code exitError
	if errors.As(failure, &code) && msg == "" {
		msg = fmt.Sprintf("the command exited with status %d", code.code)
	}
	fmt.Fprintf(stderr, "kspec: failed: %s\n", msg)
	if err := h.holdNow(ctx, t, stderr); err != nil {
		var ee exitError
		if errors.As(failure, &ee) {
			fmt.Fprintf(stderr, "kspec: hold: %v\n", err)
			return failure
		}
		return errors.Join(failure, err)
	}
	return failure
}
