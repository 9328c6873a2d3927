package qmp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// JobError is a QEMU job that concluded with an error (from query-jobs).
type JobError struct {
	// ID is the job id.
	ID string
	// Type is the job type, e.g. "snapshot-load".
	Type string
	// Desc is QEMU's error text, e.g. "Snapshot 'x' does not exist in one
	// or more devices".
	Desc string
}

// Error implements error.
func (e *JobError) Error() string {
	return fmt.Sprintf("qmp: %s job %s failed: %s", e.Type, e.ID, e.Desc)
}

// JobInfo is one entry of query-jobs.
type JobInfo struct {
	// ID is the job id.
	ID string `json:"id"`
	// Type is the job type, e.g. "snapshot-save".
	Type string `json:"type"`
	// Status is the job status, e.g. "running" or "concluded".
	Status string `json:"status"`
	// Error is set when a concluded job failed.
	Error string `json:"error,omitempty"`
}

// Jobs runs query-jobs.
func (m *Monitor) Jobs(ctx context.Context) ([]JobInfo, error) {
	var jobs []JobInfo
	err := m.Run(ctx, Command{Execute: "query-jobs"}, &jobs)
	return jobs, err
}

// SnapshotSave saves the VM state and the disks' contents as snapshot tag
// with the snapshot-save job (QEMU >= 6.0). vmstateNode is the qcow2 format
// node that receives the RAM/device state; devices lists every writable
// node to snapshot and must include vmstateNode. The call returns when the
// job has concluded (seen through its JOB_STATUS_CHANGE event, not by
// polling) and has been dismissed; a failed job is returned as *JobError.
// The VM is paused while the job runs and resumed afterwards if it was
// running.
func (m *Monitor) SnapshotSave(ctx context.Context, tag, vmstateNode string, devices []string) error {
	if err := checkSnapshotArgs(tag, vmstateNode, devices, true); err != nil {
		return err
	}
	return m.runJob(ctx, "snapshot-save", map[string]any{
		"tag": tag, "vmstate": vmstateNode, "devices": devices,
	})
}

// SnapshotLoad restores snapshot tag with the snapshot-load job; arguments
// and behaviour as for SnapshotSave. A running VM keeps running afterwards.
func (m *Monitor) SnapshotLoad(ctx context.Context, tag, vmstateNode string, devices []string) error {
	if err := checkSnapshotArgs(tag, vmstateNode, devices, true); err != nil {
		return err
	}
	return m.runJob(ctx, "snapshot-load", map[string]any{
		"tag": tag, "vmstate": vmstateNode, "devices": devices,
	})
}

// SnapshotDelete deletes snapshot tag from devices with the snapshot-delete
// job.
func (m *Monitor) SnapshotDelete(ctx context.Context, tag string, devices []string) error {
	if err := checkSnapshotArgs(tag, "", devices, false); err != nil {
		return err
	}
	return m.runJob(ctx, "snapshot-delete", map[string]any{
		"tag": tag, "devices": devices,
	})
}

func checkSnapshotArgs(tag, vmstate string, devices []string, needVMState bool) error {
	if tag == "" {
		return errors.New("qmp: empty snapshot tag")
	}
	if needVMState && vmstate == "" {
		return errors.New("qmp: no vmstate node given (the qcow2 format node that holds the VM state)")
	}
	if len(devices) == 0 {
		return errors.New("qmp: no devices given for the snapshot (list every writable block node, including the vmstate node)")
	}
	return nil
}

// runJob starts a job, waits for its conclusion event, reads its result
// from query-jobs and dismisses it.
func (m *Monitor) runJob(ctx context.Context, kind string, args map[string]any) error {
	id := fmt.Sprintf("kspec-%s-%d-%d-%d", kind, os.Getpid(), time.Now().UnixNano(), m.jobSeq.Add(1))
	args["job-id"] = id
	w := m.NewWaiterFunc("JOB_STATUS_CHANGE concluded for "+id, func(e Event) bool {
		if e.Name != "JOB_STATUS_CHANGE" || e.DataString("id") != id {
			return false
		}
		s := e.DataString("status")
		return s == "concluded" || s == "null"
	})
	defer w.Close()
	if err := m.Run(ctx, Command{Execute: kind, Arguments: args}, nil); err != nil {
		return err
	}
	if _, err := w.Wait(ctx); err != nil {
		return fmt.Errorf("qmp: %s job %s (may still be running): %w", kind, id, err)
	}
	jobs, err := m.Jobs(ctx)
	if err != nil {
		return fmt.Errorf("qmp: %s job %s concluded but its result is unknown: %w", kind, id, err)
	}
	var jobErr error
	found := false
	for _, j := range jobs {
		if j.ID != id {
			continue
		}
		found = true
		if j.Error != "" {
			jobErr = &JobError{ID: id, Type: j.Type, Desc: j.Error}
		}
		if j.Status == "concluded" {
			if err := m.Run(ctx, Command{Execute: "job-dismiss", Arguments: map[string]any{"id": id}}, nil); err != nil {
				return errors.Join(jobErr, fmt.Errorf("qmp: dismiss %s job %s: %w", kind, id, err))
			}
		}
	}
	if !found {
		return fmt.Errorf("qmp: %s job %s concluded but is missing from query-jobs, result unknown", kind, id)
	}
	return jobErr
}
