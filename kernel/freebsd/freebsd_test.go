package freebsd

import (
	"testing"

	"github.com/kspec/kspec/arch/amd64"
)

func TestSyscallEntry(t *testing.T) {
	if got, err := (OS{}).SyscallEntry("mkdir", amd64.Arch{}); err != nil || got != "sys_mkdir" {
		t.Errorf("SyscallEntry(mkdir) = %q, %v", got, err)
	}
}

func TestCheckBoot(t *testing.T) {
	for _, tc := range []struct {
		kernel, disk string
		n            int
	}{
		{"", "freebsd.img", 0},
		{"", "", 1},
		{"kernel", "freebsd.img", 1},
		{"kernel", "", 2},
	} {
		if bad := (OS{}).CheckBoot(tc.kernel, "", tc.disk); len(bad) != tc.n {
			t.Errorf("CheckBoot(%q, %q) = %q, want %d problems", tc.kernel, tc.disk, bad, tc.n)
		}
	}
}
