package qmp

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Status is the VM run state from query-status.
type Status struct {
	// Running is true while guest CPUs execute.
	Running bool
	// State is QEMU's RunState, e.g. "prelaunch" (started with -S),
	// "running", "paused", "debug" (stopped by the gdbstub),
	// "guest-panicked", "shutdown", "restore-vm".
	State string
}

// Status runs query-status.
func (m *Monitor) Status(ctx context.Context) (Status, error) {
	var r struct {
		Running bool   `json:"running"`
		Status  string `json:"status"`
	}
	if err := m.Run(ctx, Command{Execute: "query-status"}, &r); err != nil {
		return Status{}, err
	}
	return Status{Running: r.Running, State: r.Status}, nil
}

// Stop pauses the guest ("stop"); QEMU emits a STOP event.
func (m *Monitor) Stop(ctx context.Context) error {
	return m.Run(ctx, Command{Execute: "stop"}, nil)
}

// Cont resumes the guest ("cont"); QEMU emits a RESUME event. It also starts
// a guest that QEMU was told to hold at reset with -S.
func (m *Monitor) Cont(ctx context.Context) error {
	return m.Run(ctx, Command{Execute: "cont"}, nil)
}

// Quit asks QEMU to exit ("quit"). QEMU closing the connection as it exits
// counts as success. The Monitor is closed afterwards.
func (m *Monitor) Quit(ctx context.Context) error {
	if err := m.Err(); err != nil {
		return fmt.Errorf("qmp: quit: %w", err)
	}
	err := m.Run(ctx, Command{Execute: "quit"}, nil)
	var ce *CommandError
	switch {
	case err == nil:
	case errors.As(err, &ce), ctx.Err() != nil:
		return err
	case errors.Is(err, ErrClosed):
		// The reply raced with QEMU closing the socket as it exits:
		// that is the success we asked for.
	default:
		return err
	}
	m.finish(fmt.Errorf("%w: after quit", ErrClosed))
	<-m.readDone
	return nil
}

// HumanMonitorCommand runs an HMP command line through
// human-monitor-command and returns its text output. HMP reports most
// failures as output text, not as a QMP error; see HMPSaveVM for a checked
// variant.
func (m *Monitor) HumanMonitorCommand(ctx context.Context, cmd string) (string, error) {
	var out string
	err := m.Run(ctx, Command{
		Execute:   "human-monitor-command",
		Arguments: map[string]any{"command-line": cmd},
	}, &out)
	return out, err
}

// HMPError is HMP output that reports a failure.
type HMPError struct {
	// Command is the HMP command line.
	Command string
	// Output is HMP's text output.
	Output string
}

// Error implements error.
func (e *HMPError) Error() string {
	return fmt.Sprintf("qmp: hmp %q: %s", e.Command, strings.TrimSpace(e.Output))
}

// hmpChecked runs an HMP command whose success prints nothing. Any output
// other than "warning:" lines is taken as a failure and returned as
// *HMPError: a snapshot command that printed something unexpected must not
// pass silently.
func (m *Monitor) hmpChecked(ctx context.Context, cmdline string) error {
	out, err := m.HumanMonitorCommand(ctx, cmdline)
	if err != nil {
		return err
	}
	if hmpFailed(out) {
		return &HMPError{Command: cmdline, Output: out}
	}
	return nil
}

// hmpFailed reports whether output from a command that is silent on success
// reports a failure.
func hmpFailed(out string) bool {
	for line := range strings.SplitSeq(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(strings.ToLower(line), "warning:") {
			continue
		}
		return true
	}
	return false
}

// checkTag rejects snapshot tags that HMP would split or misparse.
func checkTag(tag string) error {
	if tag == "" {
		return errors.New("qmp: empty snapshot tag")
	}
	if strings.ContainsAny(tag, " \t\r\n\"'\\") {
		return fmt.Errorf("qmp: snapshot tag %q contains whitespace, quotes or backslashes", tag)
	}
	return nil
}

// HMPSaveVM saves a snapshot named tag with HMP "savevm" (synchronous; the
// VM is paused meanwhile). HMP error text becomes *HMPError.
func (m *Monitor) HMPSaveVM(ctx context.Context, tag string) error {
	if err := checkTag(tag); err != nil {
		return err
	}
	return m.hmpChecked(ctx, "savevm "+tag)
}

// HMPLoadVM restores the snapshot tag with HMP "loadvm". A running VM keeps
// running afterwards; a stopped one stays stopped. HMP error text becomes
// *HMPError.
func (m *Monitor) HMPLoadVM(ctx context.Context, tag string) error {
	if err := checkTag(tag); err != nil {
		return err
	}
	return m.hmpChecked(ctx, "loadvm "+tag)
}

// HMPDeleteVM deletes the snapshot tag with HMP "delvm".
func (m *Monitor) HMPDeleteVM(ctx context.Context, tag string) error {
	if err := checkTag(tag); err != nil {
		return err
	}
	return m.hmpChecked(ctx, "delvm "+tag)
}

// BlockNode is one entry of query-named-block-nodes.
type BlockNode struct {
	// NodeName is the node's name, e.g. "kspec-scratch".
	NodeName string `json:"node-name"`
	// Driver is the block driver, e.g. "qcow2" (a format node) or "file".
	Driver string `json:"drv"`
	// File is the image file name.
	File string `json:"file"`
	// ReadOnly is true for read-only nodes (such as backing images).
	ReadOnly bool `json:"ro"`
	// Image describes the node's image, including its internal snapshots.
	Image BlockImage `json:"image"`
}

// BlockImage is the image part of a BlockNode.
type BlockImage struct {
	// Snapshots are the image's internal snapshots (qcow2).
	Snapshots []ImageSnapshot `json:"snapshots"`
}

// ImageSnapshot is one internal snapshot of an image.
type ImageSnapshot struct {
	// Name is the snapshot's tag.
	Name string `json:"name"`
	// VMStateSize is the size of the saved VM state; 0 for a disk-only
	// snapshot.
	VMStateSize uint64 `json:"vm-state-size"`
}

// BlockNodeInfo runs query-named-block-nodes (flat: without backing-chain
// details) and returns every named node.
func (m *Monitor) BlockNodeInfo(ctx context.Context) ([]BlockNode, error) {
	var nodes []BlockNode
	err := m.Run(ctx, Command{
		Execute:   "query-named-block-nodes",
		Arguments: map[string]any{"flat": true},
	}, &nodes)
	return nodes, err
}

// BlockNodes returns the names of all named block nodes (see
// BlockNodeInfo; the qcow2 format node is the one with Driver "qcow2").
func (m *Monitor) BlockNodes(ctx context.Context) ([]string, error) {
	nodes, err := m.BlockNodeInfo(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(nodes))
	for _, n := range nodes {
		names = append(names, n.NodeName)
	}
	return names, nil
}

// Chardev is one entry of query-chardev.
type Chardev struct {
	// Label is the chardev id.
	Label string `json:"label"`
	// Filename describes the backend, e.g.
	// "disconnected:tcp:127.0.0.1:40123,server=on".
	Filename string `json:"filename"`
}

// Chardevs runs query-chardev.
func (m *Monitor) Chardevs(ctx context.Context) ([]Chardev, error) {
	var cs []Chardev
	err := m.Run(ctx, Command{Execute: "query-chardev"}, &cs)
	return cs, err
}
