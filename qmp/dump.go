package qmp

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Guest memory dumps (dump-guest-memory) for crash(8) and gdb.

// Dump formats of dump-guest-memory. The kdump ones are makedumpfile's
// compressed format (QEMU 7.2 writes its "flattened" variant), which crash
// reads; DumpELF is an uncompressed ELF core, which gdb reads.
const (
	DumpELF         = "elf"
	DumpKdumpZlib   = "kdump-zlib"
	DumpKdumpLZO    = "kdump-lzo"
	DumpKdumpSnappy = "kdump-snappy"
)

// DumpFormats runs query-dump-guest-memory-capability: the formats this
// QEMU can write.
func (m *Monitor) DumpFormats(ctx context.Context) ([]string, error) {
	var r struct {
		Formats []string `json:"formats"`
	}
	if err := m.Run(ctx, Command{Execute: "query-dump-guest-memory-capability"}, &r); err != nil {
		return nil, err
	}
	return r.Formats, nil
}

// PreferredDumpFormat picks the most useful format of those offered:
// compressed kdump (zlib first: every crash build reads it), else ELF.
func PreferredDumpFormat(offered []string) string {
	for _, f := range []string{DumpKdumpZlib, DumpKdumpSnappy, DumpKdumpLZO} {
		if slices.Contains(offered, f) {
			return f
		}
	}
	return DumpELF
}

// DumpStatus is query-dump's answer (and DUMP_COMPLETED's result).
type DumpStatus struct {
	// Status is "none", "active", "completed" or "failed".
	Status string `json:"status"`
	// Completed and Total are bytes of guest memory written and to write.
	Completed uint64 `json:"completed"`
	Total     uint64 `json:"total"`
}

// QueryDump runs query-dump: the progress of the last detached dump.
func (m *Monitor) QueryDump(ctx context.Context) (DumpStatus, error) {
	var s DumpStatus
	err := m.Run(ctx, Command{Execute: "query-dump"}, &s)
	return s, err
}

// DumpError is a dump that QEMU started and then reported failed.
type DumpError struct {
	// Path is the file QEMU was writing.
	Path string
	// Reason is DUMP_COMPLETED's error text.
	Reason string
}

// Error implements error.
func (e *DumpError) Error() string {
	return fmt.Sprintf("qmp: dump-guest-memory to %s failed: %s", e.Path, e.Reason)
}

// DumpGuestMemory writes the guest's physical memory to path (a file QEMU
// opens itself, so a path on QEMU's machine) in format (one of
// DumpFormats). An ELF core is written with paging on: its segments carry
// the guest's virtual addresses (from its page tables) besides the
// physical ones, so gdb can read kernel variables from it; kdump formats
// cannot be combined with paging and are for crash(8). It
// runs the dump detached, as a background job of QEMU, and waits for its
// DUMP_COMPLETED event, so the Monitor stays usable meanwhile. A running
// VM is paused by QEMU for the dump and resumed after it; a stopped one
// stays stopped. When ctx ends first, the error says so and the dump may
// still be running in QEMU (QEMU has no way to cancel it): wait with
// QueryDump, or stop QEMU.
func (m *Monitor) DumpGuestMemory(ctx context.Context, path, format string) (DumpStatus, error) {
	if path == "" {
		return DumpStatus{}, errors.New("qmp: dump-guest-memory: empty path")
	}
	if format == "" {
		format = DumpELF
	}
	w := m.NewWaiter("DUMP_COMPLETED")
	defer w.Close()
	err := m.Run(ctx, Command{Execute: "dump-guest-memory", Arguments: map[string]any{
		"paging":   format == DumpELF,
		"protocol": "file:" + path,
		"format":   format,
		"detach":   true,
	}}, nil)
	if err != nil {
		return DumpStatus{}, fmt.Errorf("qmp: dump-guest-memory to %s (%s): %w", path, format, err)
	}
	ev, err := w.Wait(ctx)
	if err != nil {
		return DumpStatus{}, fmt.Errorf("qmp: dump-guest-memory to %s: %w", path, err)
	}
	return dumpResult(ev, path)
}

// dumpResult reads a DUMP_COMPLETED event.
func dumpResult(ev Event, path string) (DumpStatus, error) {
	var s DumpStatus
	if r, ok := ev.Data["result"].(map[string]any); ok {
		s.Status, _ = r["status"].(string)
		if v, ok := r["completed"].(float64); ok {
			s.Completed = uint64(v)
		}
		if v, ok := r["total"].(float64); ok {
			s.Total = uint64(v)
		}
	}
	if reason := ev.DataString("error"); reason != "" || s.Status == "failed" {
		if reason == "" {
			reason = "status failed"
		}
		return s, &DumpError{Path: path, Reason: reason}
	}
	if s.Status != "completed" {
		return s, fmt.Errorf("qmp: dump-guest-memory to %s: DUMP_COMPLETED with status %q", path, s.Status)
	}
	return s, nil
}
