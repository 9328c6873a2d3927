package qmp

import (
	"errors"
	"strings"
	"testing"
)

func TestDumpResult(t *testing.T) {
	for _, tc := range []struct {
		name    string
		data    map[string]any
		want    DumpStatus
		wantErr string
		dumpErr bool
	}{
		{"completed", map[string]any{"result": map[string]any{"status": "completed", "completed": float64(268435456), "total": float64(268435456)}},
			DumpStatus{Status: "completed", Completed: 268435456, Total: 268435456}, "", false},
		{"failed with a reason", map[string]any{"result": map[string]any{"status": "failed", "completed": float64(4096), "total": float64(8192)}, "error": "No space left on device"},
			DumpStatus{Status: "failed", Completed: 4096, Total: 8192}, "No space left on device", true},
		{"failed without a reason", map[string]any{"result": map[string]any{"status": "failed"}},
			DumpStatus{Status: "failed"}, "status failed", true},
		{"no result", nil, DumpStatus{}, `status ""`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := dumpResult(Event{Name: "DUMP_COMPLETED", Data: tc.data}, "/x/vmcore")
			if got != tc.want {
				t.Errorf("status %+v, want %+v", got, tc.want)
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.wantErr)
			}
			var de *DumpError
			if errors.As(err, &de) != tc.dumpErr {
				t.Errorf("errors.As(*DumpError) = %v, want %v", !tc.dumpErr, tc.dumpErr)
			}
		})
	}
}
