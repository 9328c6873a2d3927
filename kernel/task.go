package kernel

import (
	"encoding/binary"
	"fmt"

	"github.com/kspec/kspec/arch"
	"github.com/kspec/kspec/symbols"
)

// Task is the kernel's current task on a stopped vCPU: on Linux the
// task_struct that `current` names, on FreeBSD curthread and its process.
type Task struct {
	// Addr is the address of the task_struct (Linux) or struct thread
	// (FreeBSD).
	Addr uint64
	// Comm is the task's command name (task_struct.comm; FreeBSD
	// proc.p_comm).
	Comm string
	// PID is the process ID as getpid() in the process returns it
	// (Linux task_struct.tgid; FreeBSD proc.p_pid).
	PID int
	// TID is the thread ID (Linux task_struct.pid, which the kernel calls
	// the pid; FreeBSD thread.td_tid). It equals PID for a process's main
	// thread.
	TID int
}

// String formats the task like "mkdir[123]".
func (k Task) String() string {
	if k.TID != 0 && k.TID != k.PID {
		return fmt.Sprintf("%s[%d/%d]", k.Comm, k.PID, k.TID)
	}
	return fmt.Sprintf("%s[%d]", k.Comm, k.PID)
}

// Env is what finding the current task needs from a stopped guest; tests
// supply DWARF-shaped fakes.
type Env interface {
	// Expr evaluates a static expression (symbols.Table.Expr).
	Expr(e string) (symbols.Value, error)
	// Offsetof locates a struct member (symbols.Table.Offsetof).
	Offsetof(typ, member string) (symbols.Value, error)
	// Read reads guest memory.
	Read(addr uint64, n int) ([]byte, error)
	// Reg reads a register of a vCPU by its gdbstub name.
	Reg(cpu int, name string) (uint64, error)
	// Arch is the guest's CPU architecture.
	Arch() arch.Arch
	// Release is the running kernel's release or version ("6.1.0-57-cloud-amd64",
	// "7.2.13"); "" if unknown.
	Release() string
}

// TaskFinder finds the current task of one guest OS, with the symbols and
// offsets NewTaskFinder resolved.
type TaskFinder interface {
	Current(env Env, cpu int) (Task, error)
}

// Member is a resolved struct member: offset and size.
type Member struct{ Off, Size uint64 }

// ResolveMember locates typ's member name in the kernel's DWARF.
func ResolveMember(env Env, typ, name string) (Member, error) {
	v, err := env.Offsetof(typ, name)
	if err != nil {
		return Member{}, fmt.Errorf("offsetof(%s, %s): %w", typ, name, err)
	}
	return Member{Off: v.Addr, Size: v.Size}, nil
}

// ReadUint reads a little-endian unsigned integer of 1, 2, 4 or 8 bytes.
func ReadUint(env Env, addr uint64, size int) (uint64, error) {
	b, err := env.Read(addr, size)
	if err != nil {
		return 0, err
	}
	if len(b) < size {
		return 0, fmt.Errorf("short read at %#x", addr)
	}
	switch size {
	case 1:
		return uint64(b[0]), nil
	case 2:
		return uint64(binary.LittleEndian.Uint16(b)), nil
	case 4:
		return uint64(binary.LittleEndian.Uint32(b)), nil
	case 8:
		return binary.LittleEndian.Uint64(b), nil
	}
	return 0, fmt.Errorf("%d bytes at %#x are not an integer", size, addr)
}

// ReadTask reads the command name and IDs of a task whose name and IDs live
// in the struct at base (a task at addr). idA is read into PID and TID; a
// non-zero idB then into TID. what names the struct in errors.
func ReadTask(env Env, addr, base uint64, comm, idA, idB Member, what string) (Task, error) {
	task := Task{Addr: addr}
	name, err := env.Read(base+comm.Off, int(comm.Size))
	if err != nil {
		return Task{}, fmt.Errorf("%s %#x comm: %w", what, base, err)
	}
	task.Comm = CString(name)
	a, err := ReadUint(env, base+idA.Off, int(idA.Size))
	if err != nil {
		return Task{}, fmt.Errorf("%s %#x id: %w", what, base, err)
	}
	task.PID, task.TID = int(int32(a)), int(int32(a))
	if idB.Size != 0 {
		b, err := ReadUint(env, base+idB.Off, int(idB.Size))
		if err != nil {
			return Task{}, fmt.Errorf("%s %#x id: %w", what, base, err)
		}
		task.TID = int(int32(b))
	}
	return task, nil
}

// CString returns the bytes up to the first NUL, as a string.
func CString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
