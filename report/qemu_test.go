package report

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// The nightly report names the QEMU the guests ran under (text header and
// summary.json), and says nothing when it is unknown.
func TestSummaryNamesQEMU(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 2, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		qemu, want string
	}{
		{"10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)", "on ci with QEMU 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\n"},
		{"", "on ci\n"},
	} {
		s := &Summary{Run: "r1", Started: t0, Finished: t0.Add(time.Minute), Host: "ci", QEMU: tc.qemu}
		var b strings.Builder
		if err := WriteText(&b, s, ""); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), tc.want) {
			t.Errorf("QEMU %q: text report\n%s\nlacks %q", tc.qemu, b.String(), tc.want)
		}
		js, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(string(js), `"qemu":`); got != (tc.qemu != "") {
			t.Errorf("QEMU %q: summary.json %s", tc.qemu, js)
		}
	}
}

// A guest of another architecture ran under another emulator: its line
// names both; a guest under the run's QEMU repeats nothing.
func TestSummaryNamesEachGuestsQEMU(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
	s := &Summary{Run: "r1", Started: t0, Finished: t0.Add(time.Minute), QEMU: "7.2.22", Guests: []*GuestResult{
		{Guest: "debian-cloud", Kernel: "6.1.0-57-cloud-amd64", Arch: "x86_64", QEMU: "7.2.22"},
		{Guest: "debian-cloud-arm64", Kernel: "6.1.0-57-cloud-arm64", Arch: "aarch64", QEMU: "7.2.21"},
	}}
	var b strings.Builder
	if err := WriteText(&b, s, ""); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, l := range strings.Split(b.String(), "\n") {
		switch {
		case strings.Contains(l, "debian-cloud-arm64"):
			seen++
			if !strings.Contains(l, "[aarch64, QEMU 7.2.21]") {
				t.Errorf("arm64 line %q lacks its QEMU", l)
			}
		case strings.Contains(l, "debian-cloud "):
			seen++
			if strings.Contains(l, "QEMU") {
				t.Errorf("amd64 line %q repeats the run's QEMU", l)
			}
		}
	}
	if seen != 2 {
		t.Errorf("%d guest lines in\n%s", seen, b.String())
	}
}
