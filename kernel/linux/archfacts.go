package linux

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/kspec/kspec/arch"
)

// linuxArch is what Linux names differently on each architecture.
type linuxArch struct {
	// syscallPrefix starts the system call wrapper that the entry code
	// calls with the user's pt_regs.
	syscallPrefix string
	// genericSyscalls is true where the system call table is
	// asm-generic's, which has only the *at forms of the old path calls
	// (no mkdir, only mkdirat).
	genericSyscalls bool
	// dispatch is the function that calls a system call's wrapper.
	dispatch string
	// userEntry is where a system call from a 64-bit task enters the
	// kernel: the outermost frame of its backtrace.
	userEntry string
	// entries are where a task enters the kernel from user space or starts
	// running; a backtrace ending there is complete.
	entries []string
	// syscallArgs are the members of struct pt_regs that hold a system
	// call's arguments, in order.
	syscallArgs []string
	// currentRegister holds the current task while the CPU runs kernel
	// code ("" where a per-CPU variable does).
	currentRegister string
}

// archFacts is keyed by arch.Arch.Name.
var archFacts = map[string]linuxArch{
	"x86_64": {
		syscallPrefix: "__x64_sys_",
		dispatch:      "do_syscall_64",
		userEntry:     "entry_SYSCALL_64",
		entries:       []string{"entry_SYSCALL_64", "entry_SYSCALL_compat", "entry_SYSENTER_compat", "entry_INT80_compat", "ret_from_fork"},
		syscallArgs:   []string{"di", "si", "dx", "r10", "r8", "r9"},
	},
	"aarch64": {
		syscallPrefix:   "__arm64_sys_",
		genericSyscalls: true,
		dispatch:        "invoke_syscall",
		userEntry:       "el0t_64_sync",
		// The EL0 exception vectors' handlers (entry.S's entry_handler),
		// and a new task's first return.
		entries:         []string{"el0t_64_sync", "el0t_64_irq", "el0t_64_fiq", "el0t_64_error", "el0t_32_sync", "el0t_32_irq", "el0t_32_fiq", "el0t_32_error", "ret_from_fork"},
		syscallArgs:     []string{"regs[0]", "regs[1]", "regs[2]", "regs[3]", "regs[4]", "regs[5]"},
		currentRegister: "SP_EL0",
	},
}

// genericAt maps the old path system calls that asm-generic's table
// (arm64, riscv) replaces with their *at forms (or another call) to that
// call. A command that runs "mkdir" there enters mkdirat.
var genericAt = map[string]string{
	"mkdir":    "mkdirat",
	"rmdir":    "unlinkat",
	"unlink":   "unlinkat",
	"open":     "openat",
	"creat":    "openat",
	"symlink":  "symlinkat",
	"link":     "linkat",
	"rename":   "renameat",
	"mknod":    "mknodat",
	"chmod":    "fchmodat",
	"chown":    "fchownat",
	"access":   "faccessat",
	"readlink": "readlinkat",
	"pipe":     "pipe2",
	"fork":     "clone",
	"vfork":    "clone",
	"stat":     "newfstatat",
	"lstat":    "newfstatat",
	"poll":     "ppoll",
	"select":   "pselect6",
	"dup2":     "dup3",
}

// factsOf returns a's facts, or an error naming what is known.
func factsOf(a arch.Arch) (linuxArch, error) {
	f, ok := archFacts[a.Name()]
	if !ok {
		known := slices.Sorted(maps.Keys(archFacts))
		return linuxArch{}, fmt.Errorf("linux: system call facts of %s are not known (known: %s)", a.Name(), strings.Join(known, ", "))
	}
	return f, nil
}

// SyscallName returns the system call a program that calls call enters on
// a: call itself, or its asm-generic replacement where a has no such call
// ("mkdir" is "mkdirat" on arm64).
func SyscallName(a arch.Arch, call string) (string, error) {
	f, err := factsOf(a)
	if err != nil {
		return "", err
	}
	if r, ok := genericAt[call]; ok && f.genericSyscalls {
		return r, nil
	}
	return call, nil
}

// SyscallEntry returns the wrapper a system call enters first on a, the
// function the dispatcher calls with the user's pt_regs: "__x64_sys_mkdir"
// on x86_64, "__arm64_sys_mkdirat" for "mkdir" on arm64 (SyscallName).
func SyscallEntry(a arch.Arch, call string) (string, error) {
	name, err := SyscallName(a, call)
	if err != nil {
		return "", err
	}
	f, _ := factsOf(a)
	return f.syscallPrefix + name, nil
}

// SyscallDispatch returns the function that calls a system call's wrapper
// on a ("do_syscall_64", "invoke_syscall").
func SyscallDispatch(a arch.Arch) (string, error) {
	f, err := factsOf(a)
	return f.dispatch, err
}

// UserEntry returns where a 64-bit task's system call enters the kernel on
// a, the last frame of its backtrace ("entry_SYSCALL_64", "el0t_64_sync").
func UserEntry(a arch.Arch) (string, error) {
	f, err := factsOf(a)
	return f.userEntry, err
}

// SyscallArg returns the member of struct pt_regs that holds a system
// call's n-th argument (from 0) on a: "di" on x86_64, "regs[0]" on arm64.
func SyscallArg(a arch.Arch, n int) (string, error) {
	f, err := factsOf(a)
	if err != nil {
		return "", err
	}
	if n < 0 || n >= len(f.syscallArgs) {
		return "", fmt.Errorf("linux: a system call has arguments 0 to %d, not %d", len(f.syscallArgs)-1, n)
	}
	return f.syscallArgs[n], nil
}
