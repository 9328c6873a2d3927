package linux

// linuxArch is what Linux names differently on each architecture.
type linuxArch struct {
	// syscallPrefix starts the system call wrapper that the entry code
	// calls with the user's pt_regs.
	syscallPrefix string
	// entries are where a task enters the kernel from user space or starts
	// running; a backtrace ending there is complete.
	entries []string
}

// archFacts is keyed by arch.Arch.Name.
var archFacts = map[string]linuxArch{
	"x86_64": {
		syscallPrefix: "__x64_sys_",
		entries:       []string{"entry_SYSCALL_64", "entry_SYSCALL_compat", "entry_SYSENTER_compat", "entry_INT80_compat", "ret_from_fork"},
	},
}
