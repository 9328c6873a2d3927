package main

import (
	"context"
	"errors"
	"io"
)

// cmdReport merges shard results and renders reports.
func cmdReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("report: not implemented yet")
}
