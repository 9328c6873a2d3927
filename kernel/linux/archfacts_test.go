package linux

import (
	"strings"
	"testing"

	"github.com/kspec/kspec/arch"
	"github.com/kspec/kspec/arch/amd64"
	"github.com/kspec/kspec/arch/arm64"
)

// riscv is an architecture Linux's facts do not cover.
type riscv struct{ arch.Arch }

func (riscv) Name() string { return "riscv64" }

func TestSyscallFacts(t *testing.T) {
	x86, a64 := amd64.Arch{}, arm64.Arch{}
	for _, tc := range []struct {
		a                          arch.Arch
		call, entry                string
		dispatch, user, arg0, arg2 string
	}{
		{x86, "mkdir", "__x64_sys_mkdir", "do_syscall_64", "entry_SYSCALL_64", "di", "dx"},
		{x86, "newuname", "__x64_sys_newuname", "do_syscall_64", "entry_SYSCALL_64", "di", "dx"},
		{a64, "mkdir", "__arm64_sys_mkdirat", "invoke_syscall", "el0t_64_sync", "regs[0]", "regs[2]"},
		{a64, "rmdir", "__arm64_sys_unlinkat", "invoke_syscall", "el0t_64_sync", "regs[0]", "regs[2]"},
		{a64, "chdir", "__arm64_sys_chdir", "invoke_syscall", "el0t_64_sync", "regs[0]", "regs[2]"},
		{a64, "sethostname", "__arm64_sys_sethostname", "invoke_syscall", "el0t_64_sync", "regs[0]", "regs[2]"},
	} {
		if got, err := SyscallEntry(tc.a, tc.call); err != nil || got != tc.entry {
			t.Errorf("%s: SyscallEntry(%q) = %q, %v; want %q", tc.a.Name(), tc.call, got, err, tc.entry)
		}
		if got, err := (OS{}).SyscallEntry(tc.call, tc.a); err != nil || got != tc.entry {
			t.Errorf("%s: OS.SyscallEntry(%q) = %q, %v; want %q", tc.a.Name(), tc.call, got, err, tc.entry)
		}
		if got, err := SyscallDispatch(tc.a); err != nil || got != tc.dispatch {
			t.Errorf("%s: SyscallDispatch = %q, %v", tc.a.Name(), got, err)
		}
		if got, err := UserEntry(tc.a); err != nil || got != tc.user {
			t.Errorf("%s: UserEntry = %q, %v", tc.a.Name(), got, err)
		}
		if !(OS{}).EntryFunction(tc.user, tc.a) {
			t.Errorf("%s: EntryFunction(%q) = false", tc.a.Name(), tc.user)
		}
		if got, err := SyscallArg(tc.a, 0); err != nil || got != tc.arg0 {
			t.Errorf("%s: SyscallArg(0) = %q, %v", tc.a.Name(), got, err)
		}
		if got, err := SyscallArg(tc.a, 2); err != nil || got != tc.arg2 {
			t.Errorf("%s: SyscallArg(2) = %q, %v", tc.a.Name(), got, err)
		}
	}
	if _, err := SyscallArg(x86, 6); err == nil || !strings.Contains(err.Error(), "0 to 5") {
		t.Errorf("SyscallArg(6) = %v", err)
	}
	if (OS{}).EntryFunction("do_mkdirat", a64) {
		t.Error("do_mkdirat is an entry function")
	}
	if _, err := SyscallEntry(riscv{}, "mkdir"); err == nil || !strings.Contains(err.Error(), "riscv64") || !strings.Contains(err.Error(), "aarch64, x86_64") {
		t.Errorf("riscv64: %v", err)
	}
}
