package harness

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/kspec/kspec/qmp"
)

// Snapshots lists the tags of the snapshots QEMU holds for this guest (the
// snapshots with VM state on the run's scratch drive, whoever saved them),
// sorted.
func (t *Target) Snapshots(ctx context.Context) ([]string, error) {
	const op = "list snapshots (query-named-block-nodes)"
	mon, err := t.monitor(ctx, op)
	if err != nil {
		return nil, err
	}
	nodes, err := mon.BlockNodeInfo(ctx)
	if err != nil {
		return nil, t.harnessErr(op, err)
	}
	vmstate, _ := t.machine.SnapshotNodes()
	var tags []string
	for _, n := range nodes {
		if n.NodeName != vmstate {
			continue
		}
		for _, s := range n.Image.Snapshots {
			if s.VMStateSize > 0 && !slices.Contains(tags, s.Name) {
				tags = append(tags, s.Name)
			}
		}
	}
	slices.Sort(tags)
	return tags, nil
}

// checkSnapshotTag refuses, before anything of the guest is touched, to
// restore a snapshot that does not exist: the error wraps ErrBadInput and
// lists the snapshots there are. A tag this Target saved is trusted without
// asking QEMU (Reset stays one command); a snapshot that vanished anyway is
// classified by snapshotLoadErr.
func (t *Target) checkSnapshotTag(ctx context.Context, op, tag string) error {
	if tag == "" {
		return fmt.Errorf("%w: %s: empty snapshot tag", ErrBadInput, op)
	}
	t.snap.mu.Lock()
	known := t.snap.saved[tag]
	t.snap.mu.Unlock()
	if known {
		return nil
	}
	tags, err := t.Snapshots(ctx)
	if err != nil {
		return err
	}
	if !slices.Contains(tags, tag) {
		return noSnapshotErr(op, tag, tags)
	}
	return nil
}

// snapshotDamaged reports whether QEMU refused to load tag although it has
// that snapshot: the snapshot is damaged (or was saved by a differently
// configured QEMU). QEMU resets the machine before it reads a snapshot's VM
// state, so after such a failure the guest is not the one that ran: it
// must stay stopped until another snapshot is loaded (resumed, it would
// run the firmware over the old RAM).
func (t *Target) snapshotDamaged(ctx context.Context, tag string, err error) bool {
	if !qemuRefused(err) {
		return false
	}
	tags, lerr := t.Snapshots(ctx)
	return lerr == nil && slices.Contains(tags, tag)
}

// qemuRefused reports whether err is QEMU's answer to a snapshot command
// (rather than a lost connection).
func qemuRefused(err error) bool {
	var he *qmp.HMPError
	var je *qmp.JobError
	var ce *qmp.CommandError
	return errors.As(err, &he) || errors.As(err, &je) || errors.As(err, &ce)
}

// snapshotLoadErr explains a failed load of tag. A damaged snapshot (see
// snapshotDamaged) is a *HarnessError carrying QEMU's message and the tag,
// saying that the guest is left stopped; a snapshot QEMU does not have
// (deleted behind kspec's back) is bad input listing the snapshots there
// are; anything else is a *HarnessError for the restore.
func (t *Target) snapshotLoadErr(ctx context.Context, op, tag string, err error, damaged bool) error {
	if damaged {
		return t.harnessErr(op, fmt.Errorf("QEMU could not load snapshot %q, which exists (it is damaged, or was saved by a differently configured QEMU): %w; "+
			"QEMU reset the machine before loading it, so the guest is left stopped and unusable: restore another snapshot or boot again", tag, err))
	}
	if qemuRefused(err) {
		if tags, lerr := t.Snapshots(ctx); lerr == nil && !slices.Contains(tags, tag) {
			return noSnapshotErr(op, tag, tags)
		}
	}
	return t.harnessErr(op, err)
}

// noSnapshotErr is the error for a snapshot tag QEMU does not have.
func noSnapshotErr(op, tag string, tags []string) error {
	have := "there are no snapshots"
	if len(tags) > 0 {
		q := make([]string, len(tags))
		for i, s := range tags {
			q[i] = fmt.Sprintf("%q", s)
		}
		have = "the snapshots are " + strings.Join(q, ", ")
	}
	return fmt.Errorf("%w: %s: there is no snapshot %q; %s (save one with SaveSnapshot, or SaveBaseline for Reset)", ErrBadInput, op, tag, have)
}
