package linux

import (
	"slices"
	"testing"
)

func TestParseRelease(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Version
		bad  bool
	}{
		{in: "6.1.0-57-cloud-amd64", want: Version{6, 1, 0}},
		{in: "6.12.117+deb13-cloud-amd64", want: Version{6, 12, 117}},
		{in: "7.2.13+deb14-cloud-amd64", want: Version{7, 2, 13}},
		{in: "7.3-cloud-amd64", want: Version{7, 3, 0}},
		{in: "7.3.0-rc7", want: Version{7, 3, 0}},
		{in: " 5.10 ", want: Version{5, 10, 0}},
		{in: "", bad: true},
		{in: "7", bad: true},
		{in: "cloud-amd64", bad: true},
		{in: "1.2.3.4", bad: true},
		{in: "7..3", bad: true},
	} {
		got, err := ParseRelease(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("ParseRelease(%q) = %v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseRelease(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestCompare(t *testing.T) {
	for _, tc := range []struct {
		a, b Version
		want int
	}{
		{Version{6, 1, 0}, Version{6, 1, 0}, 0},
		{Version{6, 1, 57}, Version{6, 12, 0}, -1},
		{Version{7, 0, 0}, Version{6, 15, 3}, 1},
		{Version{7, 2, 13}, Version{7, 2, 9}, 1},
	} {
		if got := tc.a.Compare(tc.b); got != tc.want {
			t.Errorf("%v.Compare(%v) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := tc.a.AtLeast(tc.b); got != (tc.want >= 0) {
			t.Errorf("%v.AtLeast(%v) = %v", tc.a, tc.b, got)
		}
	}
}

func TestReleaseFromBanner(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Linux version 7.2.13+deb14-cloud-amd64 (debian-kernel@lists.debian.org) (x86_64-linux-gnu-gcc-16 ...) #1 SMP PREEMPT_DYNAMIC Debian 7.2.13-1 (2026-10-28)\n", "7.2.13+deb14-cloud-amd64"},
		{"Linux version 6.1.0-57-cloud-amd64 (debian-kernel@lists.debian.org)", "6.1.0-57-cloud-amd64"},
		{"FreeBSD 14.1-RELEASE", ""},
		{"Linux version ", ""},
	} {
		got, err := ReleaseFromBanner(tc.in)
		if (err != nil) != (tc.want == "") || got != tc.want {
			t.Errorf("ReleaseFromBanner(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestFunctionName(t *testing.T) {
	for _, tc := range []struct {
		v          Version
		name, want string
	}{
		{V(6, 1), "do_mkdirat", "do_mkdirat"},
		{V(6, 12), "do_mkdirat", "do_mkdirat"},
		{V(7, 0), "do_mkdirat", "filename_mkdirat"},
		{Version{7, 2, 13}, "do_rmdir", "filename_rmdir"},
		{V(6, 1), "filename_unlinkat", "do_unlinkat"},
		{Version{}, "do_renameat2", "filename_renameat2"},
		{V(7, 3), "vfs_read", "vfs_read"},
	} {
		if got := FunctionName(tc.v, tc.name); got != tc.want {
			t.Errorf("FunctionName(%v, %q) = %q, want %q", tc.v, tc.name, got, tc.want)
		}
	}
	if got, want := FunctionNames("filename_symlinkat"), []string{"do_symlinkat", "filename_symlinkat"}; !slices.Equal(got, want) {
		t.Errorf("FunctionNames = %q, want %q", got, want)
	}
	if got := FunctionNames("vfs_write"); !slices.Equal(got, []string{"vfs_write"}) {
		t.Errorf("FunctionNames(vfs_write) = %q", got)
	}
}

func TestCurrentTaskVariables(t *testing.T) {
	for _, tc := range []struct {
		v     Version
		first string
	}{
		{Version{6, 1, 0}, "current_task"},
		{Version{6, 2, 0}, "pcpu_hot.current_task"},
		{Version{6, 12, 117}, "pcpu_hot.current_task"},
		{Version{6, 15, 0}, "current_task"},
		{Version{7, 2, 13}, "current_task"},
	} {
		if got := CurrentTaskVariables(tc.v); got[0] != tc.first || len(got) != 2 {
			t.Errorf("CurrentTaskVariables(%v) = %q, want %s first", tc.v, got, tc.first)
		}
	}
}
