package main

import (
	"context"
	"errors"
	"io"
)

// cmdNightly runs the suites against the newest guests and reports changes.
func cmdNightly(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("nightly: not implemented yet")
}
