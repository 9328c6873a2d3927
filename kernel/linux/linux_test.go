package linux

import (
	"strings"
	"testing"

	"github.com/kspec/kspec/arch/amd64"
)

func TestSyscallEntry(t *testing.T) {
	for _, tc := range []struct{ call, want string }{
		{"mkdir", "__x64_sys_mkdir"},
		{"sethostname", "__x64_sys_sethostname"},
	} {
		if got, err := (OS{}).SyscallEntry(tc.call, amd64.Arch{}); err != nil || got != tc.want {
			t.Errorf("SyscallEntry(%q) = %q, %v; want %q", tc.call, got, err, tc.want)
		}
	}
}

func TestEntryFunction(t *testing.T) {
	for _, tc := range []struct {
		fn   string
		want bool
	}{
		{"entry_SYSCALL_64", true},
		{"ret_from_fork", true},
		{"do_syscall_64", false},
		{"", false},
	} {
		if got := (OS{}).EntryFunction(tc.fn, amd64.Arch{}); got != tc.want {
			t.Errorf("EntryFunction(%q) = %v", tc.fn, got)
		}
	}
}

func TestCheckBoot(t *testing.T) {
	if bad := (OS{}).CheckBoot("", "", ""); len(bad) != 1 || !strings.HasPrefix(bad[0], "kernel: missing") {
		t.Errorf("no boot source: %q", bad)
	}
	for _, src := range [][3]string{{"bzImage", "initrd", ""}, {"", "", "disk.img"}} {
		if bad := (OS{}).CheckBoot(src[0], src[1], src[2]); bad != nil {
			t.Errorf("CheckBoot%q = %q", src, bad)
		}
	}
}

func TestMessages(t *testing.T) {
	m := OS{}.Messages()
	for _, tc := range []struct{ line, kind string }{
		{"Kernel panic - not syncing: sysrq triggered crash", "panic"},
		{"BUG: kernel NULL pointer dereference, address: 0000000000000000", "oops"},
		{"general protection fault, probably for non-canonical address", "oops"},
		{"sysrq: Trigger a crash", ""},
	} {
		kind := ""
		for _, f := range m.Failures {
			if f.Pattern.MatchString(tc.line) {
				kind = f.Kind
				break
			}
		}
		if kind != tc.kind {
			t.Errorf("%q: kind %q, want %q", tc.line, kind, tc.kind)
		}
	}
	if got := m.Stamp.ReplaceAllString("[    4.050000][    T1] BUG: x", ""); got != "BUG: x" {
		t.Errorf("Stamp left %q", got)
	}
}
