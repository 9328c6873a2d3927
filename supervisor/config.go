// Package supervisor runs one QEMU process for kspec: a pure command-line
// builder (BuildArgs), a private 0700 run directory holding unix sockets
// for QMP and the gdbstub, a qcow2 scratch drive for snapshot VM state, the
// guest's serial console on a pty (continuously drained into a log file and
// in-memory buffers), QEMU's stderr, exit detection and teardown.
//
// It knows nothing of the guest OS. QEMU is always started halted at reset
// (-S); the caller continues it over QMP (Machine.QMP().Cont) or a debugger.
package supervisor

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kspec/kspec/arch"
)

// Block node names and chardev ids that BuildArgs gives QEMU.
const (
	// ScratchNode is the qcow2 format node of the scratch drive that holds
	// snapshots' VM state; pass it as vmstate to qmp snapshot calls.
	ScratchNode = "kspec-scratch"
	// DiskNode is the qcow2 format node of the boot disk's overlay.
	DiskNode = "kspec-disk"
	// ConsoleChardev is the chardev id of the serial console.
	ConsoleChardev = "kspec-con"
	// GDBChardev is the chardev id of the gdbstub's socket.
	GDBChardev = "kspec-gdb"
)

// Config describes the QEMU process. The zero value of every field is a
// sensible default; only a boot source (Kernel, Disk or FirmwareOnly) is
// required.
type Config struct {
	// Arch is the guest's CPU architecture; it gives the defaults of QEMU
	// and Machine. Default arch.Default().
	Arch arch.Arch
	// QEMU is the system emulator binary, a name looked up on $PATH or a
	// path. Default: Arch's (arch.Arch.QEMU). (The harness maps KSPEC_QEMU
	// onto it; this package reads no environment.)
	QEMU string
	// QEMUImg is the qemu-img binary used to create the scratch drive and
	// the disk overlay. Default: "qemu-img" next to QEMU when QEMU is a
	// path containing a directory, else "qemu-img" on $PATH.
	QEMUImg string

	// DataDirs are QEMU's firmware and data directories (-L, searched in
	// order before QEMU's compiled-in one). nil: Start uses DataDirs(QEMU),
	// the share/seabios and share/qemu beside a QEMU that is not installed
	// system-wide (scripts/qemu-extra unpacks one), so no wrapper script is
	// needed. Empty and non-nil: none.
	DataDirs []string

	// Kernel is a kernel image for direct boot (-kernel).
	Kernel string
	// Initrd is an initramfs for direct boot (-initrd); needs Kernel.
	Initrd string
	// Append is the kernel command line (-append); needs Kernel.
	Append string

	// Disk is a boot disk image (raw or qcow2, e.g. a FreeBSD image). The
	// image itself is never written: Start creates a qcow2 overlay backed
	// by it in the run dir (Paths.DiskOverlay, node DiskNode), so guest
	// writes go to the overlay, vanish with the run dir, and are included
	// in snapshots (a -snapshot temporary file would live outside the run
	// dir). The overlay is attached as an IDE disk unless DiskInterface
	// says otherwise. Disk and Kernel may be combined (kernel boot with a
	// root disk).
	Disk string
	// DiskFormat is Disk's format ("raw", "qcow2", ...). Default: probed
	// with qemu-img info.
	DiskFormat string
	// DiskInterface is how the disk is attached: "ide" (default, bootable
	// by every BIOS guest) or "virtio" (virtio-blk-pci).
	DiskInterface string

	// FirmwareOnly allows starting with neither Kernel nor Disk: the
	// firmware runs and finds nothing to boot. For tests and probes.
	FirmwareOnly bool

	// Machine is the -machine value. Default: Arch's (arch.Arch.Machine;
	// empty leaves QEMU's, "pc" on x86_64).
	Machine string
	// CPU is the -cpu model. Default: "host" under KVM, QEMU's default
	// (qemu64) under TCG.
	CPU string
	// MemoryMiB is guest RAM in MiB. Default 256.
	MemoryMiB int
	// CPUs is the number of vCPUs. Default 1.
	CPUs int

	// Accel is "auto" (default), "kvm" or "tcg". "auto" picks KVM only
	// with evidence that a guest runs under it here: a verdict cached in
	// AccelCache or a boot probe of Kernel (see ResolveAccel); otherwise
	// TCG. A QEMU that dies during Start under a KVM that "auto" chose is
	// started again under TCG (Machine.AccelReason says why). "kvm" is
	// never downgraded.
	Accel string
	// AccelCache is the file where "auto" keeps its verdicts (per host
	// kernel, QEMU binary and guest kernel) so only the first boot on a
	// machine pays for a probe. "" keeps none.
	AccelCache string
	// KVM replaces the checks "auto" and "kvm" make of this machine's KVM;
	// nil means the real ones. For tests.
	KVM *KVMHost

	// ScratchMiB is the virtual size of the qcow2 scratch drive (node
	// ScratchNode) that carries snapshots' VM state. Default 64; qcow2
	// grows as needed, so this bounds nothing but the guest-visible size
	// (the drive is not attached to any guest device).
	ScratchMiB int

	// GDB selects the gdbstub's socket: "unix" (default; Paths.GDBSocket
	// in the run dir) or "tcp" (127.0.0.1 on an ephemeral port, never
	// another interface).
	GDB string

	// PanicDevice adds the architecture's pvpanic device (x86: ISA, I/O
	// port 0x505; arm64 virt: pvpanic-pci) with
	// "-action panic=pause", so a guest kernel panic pauses the VM (state
	// preserved for a debugger) and QMP reports GUEST_PANICKED. The guest
	// needs a driver: Linux's pvpanic-mmio (CONFIG_PVPANIC_MMIO; a module
	// in Debian's cloud kernel, so an initramfs must load it), FreeBSD has
	// none — watch the console for panics too.
	PanicDevice bool

	// ScratchFrom, when set, is a qcow2 image (e.g. a saved failing state
	// with its snapshots) whose copy becomes the scratch drive instead of
	// an empty one; the image itself is never written.
	ScratchFrom string

	// VMCoreInfo adds QEMU's vmcoreinfo device, through which a guest
	// kernel (Linux with its qemu_fw_cfg driver) tells QEMU where its
	// VMCOREINFO note is; dump-guest-memory then copies the note into the
	// core, so crash(8) and makedumpfile find the kernel's layout without
	// guessing.
	VMCoreInfo bool

	// RunDirBase is where the run dir "kspec-run-*" is created. Default
	// os.TempDir(). Unix socket paths must stay under 108 bytes, so keep
	// it short.
	RunDirBase string
	// KeepRunDir keeps the run dir (console and stderr logs, overlay,
	// scratch drive) after Stop; sockets are still removed.
	KeepRunDir bool

	// ExtraArgs are appended to QEMU's command line. Options kspec manages
	// itself (-s, -gdb, -qmp, -daemonize) are rejected.
	ExtraArgs []string
}

// Paths are the files of one run, all inside RunDir.
type Paths struct {
	// RunDir is the private (0700) run directory.
	RunDir string
	// QMPSocket is the QMP unix socket.
	QMPSocket string
	// GDBSocket is the gdbstub's unix socket (GDB "unix").
	GDBSocket string
	// GDBAddr is the gdbstub's TCP address (GDB "tcp"): "127.0.0.1:PORT".
	// Before QEMU starts it may be "127.0.0.1:0" (any free port); Machine
	// reports the bound one.
	GDBAddr string
	// Scratch is the qcow2 scratch drive (node ScratchNode).
	Scratch string
	// DiskOverlay is the qcow2 overlay over Config.Disk (node DiskNode).
	DiskOverlay string
	// ConsoleLog receives every byte of the serial console.
	ConsoleLog string
	// ConsoleTTY is the pty slave the serial console is attached to. QEMU
	// opens it as a "serial" chardev, which puts it fully in raw mode: the
	// stdio chardev would leave output post-processing (OPOST|ONLCR) on, so
	// every "\n" the guest sent would arrive as "\r\n". Empty: stdio.
	ConsoleTTY string
	// StderrLog receives QEMU's stderr.
	StderrLog string
	// PIDFile records the harness and QEMU PIDs for CleanStale.
	PIDFile string
}

// consoleChardev is the serial console's chardev: the pty slave when there
// is one (raw), QEMU's stdio otherwise.
func consoleChardev(p Paths) string {
	if p.ConsoleTTY != "" {
		return "serial,id=" + ConsoleChardev + ",path=" + optEscape(p.ConsoleTTY)
	}
	return "stdio,id=" + ConsoleChardev + ",signal=off"
}

// PathsIn returns the standard file names inside runDir.
func PathsIn(runDir string) Paths {
	return Paths{
		RunDir:      runDir,
		QMPSocket:   filepath.Join(runDir, "qmp.sock"),
		GDBSocket:   filepath.Join(runDir, "gdb.sock"),
		Scratch:     filepath.Join(runDir, "scratch.qcow2"),
		DiskOverlay: filepath.Join(runDir, "disk.qcow2"),
		ConsoleLog:  filepath.Join(runDir, "console.log"),
		StderrLog:   filepath.Join(runDir, "qemu.stderr"),
		PIDFile:     filepath.Join(runDir, "pids"),
	}
}

// withDefaults fills in zero values.
func (c Config) withDefaults() Config {
	if c.Arch == nil {
		c.Arch = arch.Default()
	}
	if c.QEMU == "" {
		c.QEMU = c.Arch.QEMU()
	}
	if c.Machine == "" {
		c.Machine = c.Arch.Machine()
	}
	if c.QEMUImg == "" {
		c.QEMUImg = "qemu-img"
		if strings.ContainsRune(c.QEMU, filepath.Separator) {
			c.QEMUImg = filepath.Join(filepath.Dir(c.QEMU), "qemu-img")
		}
	}
	if c.DiskInterface == "" {
		c.DiskInterface = "ide"
	}
	if c.MemoryMiB == 0 {
		c.MemoryMiB = 256
	}
	if c.CPUs == 0 {
		c.CPUs = 1
	}
	if c.Accel == "" {
		c.Accel = "auto"
	}
	if c.ScratchMiB == 0 {
		c.ScratchMiB = 64
	}
	if c.GDB == "" {
		c.GDB = "unix"
	}
	return c
}

// MaxSocketPath is the longest unix socket path Linux accepts (sun_path
// is 108 bytes including the terminating NUL).
const MaxSocketPath = 107

// LongSockets lists the unix sockets of p whose paths are longer than
// MaxSocketPath, each as "PATH is N bytes".
func (p Paths) LongSockets() []string {
	var long []string
	for _, s := range []string{p.QMPSocket, p.GDBSocket} {
		if len(s) > MaxSocketPath {
			long = append(long, fmt.Sprintf("%s is %d bytes", s, len(s)))
		}
	}
	return long
}

// managedOptions are QEMU options ExtraArgs may not contain.
var managedOptions = map[string]string{
	"-s":          "opens a gdbstub on tcp::1234 on every interface; the gdbstub is managed (Config.GDB)",
	"-gdb":        "the gdbstub is managed (Config.GDB)",
	"-qmp":        "the QMP socket is managed",
	"-qmp-pretty": "the QMP socket is managed",
	"-daemonize":  "QEMU must stay the supervised child",
}

// BuildArgs returns QEMU's arguments (without the binary) for cfg, the run
// files p and the resolved accelerator accel ("kvm" or "tcg"). It is pure:
// it touches no files and starts nothing. Zero fields of cfg take their
// documented defaults. Every problem found is reported, joined.
func BuildArgs(cfg Config, p Paths, accel string) ([]string, error) {
	cfg = cfg.withDefaults()
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("supervisor: "+format, a...)) }

	if cfg.Kernel == "" && cfg.Disk == "" && !cfg.FirmwareOnly {
		bad("no boot source: set Config.Kernel (-kernel) or Config.Disk (-drive), or FirmwareOnly")
	}
	if cfg.Kernel == "" && (cfg.Initrd != "" || cfg.Append != "") {
		bad("Config.Initrd (-initrd) and Config.Append (-append) need Config.Kernel (-kernel)")
	}
	switch cfg.DiskInterface {
	case "ide", "virtio":
	default:
		bad("Config.DiskInterface %q: want \"ide\" or \"virtio\"", cfg.DiskInterface)
	}
	for _, d := range cfg.DataDirs {
		if d == "" {
			bad("Config.DataDirs has an empty directory")
		}
	}
	if cfg.MemoryMiB < 0 {
		bad("Config.MemoryMiB %d is negative", cfg.MemoryMiB)
	}
	if cfg.CPUs < 0 {
		bad("Config.CPUs %d is negative", cfg.CPUs)
	}
	switch accel {
	case "kvm", "tcg":
	default:
		bad("accelerator %q: want \"kvm\" or \"tcg\" (resolve \"auto\" first)", accel)
	}
	if p.QMPSocket == "" {
		bad("Paths.QMPSocket is empty")
	}
	if p.Scratch == "" {
		bad("Paths.Scratch is empty")
	}
	if cfg.Disk != "" && p.DiskOverlay == "" {
		bad("Paths.DiskOverlay is empty but Config.Disk is set")
	}
	for _, s := range p.LongSockets() {
		bad("socket path %s, over the %d-byte unix socket limit: use a shorter Config.RunDirBase", s, MaxSocketPath)
	}
	var gdbChardev string
	switch cfg.GDB {
	case "unix":
		if p.GDBSocket == "" {
			bad("Paths.GDBSocket is empty")
		}
		gdbChardev = "socket,id=" + GDBChardev + ",path=" + optEscape(p.GDBSocket) + ",server=on,wait=off"
	case "tcp":
		addr := p.GDBAddr
		if addr == "" {
			addr = "127.0.0.1:0"
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			bad("Paths.GDBAddr %q: %v", addr, err)
			break
		}
		if host != "127.0.0.1" {
			bad("Paths.GDBAddr %q: the gdbstub listens on 127.0.0.1 only", addr)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			bad("Paths.GDBAddr %q: bad port", addr)
		}
		gdbChardev = "socket,id=" + GDBChardev + ",host=127.0.0.1,port=" + port + ",ipv4=on,server=on,wait=off,nodelay=on"
	default:
		bad("Config.GDB %q: want \"unix\" or \"tcp\"", cfg.GDB)
	}
	for _, a := range cfg.ExtraArgs {
		opt := a
		if strings.HasPrefix(opt, "--") {
			opt = opt[1:]
		}
		if why, ok := managedOptions[opt]; ok {
			bad("Config.ExtraArgs contains %s: %s", a, why)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	args := []string{
		"-name", "kspec",
		"-S",
		"-no-user-config", "-nodefaults",
		"-display", "none",
		"-no-reboot",
	}
	for _, d := range cfg.DataDirs {
		args = append(args, "-L", d)
	}
	if cfg.Machine != "" {
		args = append(args, "-machine", cfg.Machine)
	}
	args = append(args, "-accel", accel)
	switch {
	case cfg.CPU != "":
		args = append(args, "-cpu", cfg.CPU)
	case accel == "kvm":
		args = append(args, "-cpu", "host")
	case cfg.Arch != nil && cfg.Arch.CPU() != "":
		args = append(args, "-cpu", cfg.Arch.CPU())
	}
	args = append(args,
		"-m", strconv.Itoa(cfg.MemoryMiB),
		"-smp", strconv.Itoa(cfg.CPUs),
	)
	if cfg.Kernel != "" {
		args = append(args, "-kernel", cfg.Kernel)
		if cfg.Initrd != "" {
			args = append(args, "-initrd", cfg.Initrd)
		}
		if cfg.Append != "" {
			args = append(args, "-append", cfg.Append)
		}
	}
	if cfg.Disk != "" {
		args = append(args, "-blockdev",
			"driver=qcow2,node-name="+DiskNode+",file.driver=file,file.filename="+optEscape(p.DiskOverlay))
		switch cfg.DiskInterface {
		case "virtio":
			args = append(args, "-device", "virtio-blk-pci,drive="+DiskNode)
		default:
			args = append(args, "-device", "ide-hd,drive="+DiskNode+",bus=ide.0,unit=0")
		}
	}
	args = append(args,
		"-blockdev", "driver=qcow2,node-name="+ScratchNode+",file.driver=file,file.filename="+optEscape(p.Scratch),
		"-chardev", consoleChardev(p),
		"-serial", "chardev:"+ConsoleChardev,
		"-qmp", "unix:"+optEscape(p.QMPSocket)+",server=on,wait=off",
		"-chardev", gdbChardev,
		"-gdb", "chardev:"+GDBChardev,
	)
	if cfg.PanicDevice {
		dev := "pvpanic"
		if cfg.Arch != nil {
			dev = cfg.Arch.PanicDevice()
		}
		args = append(args, "-device", dev, "-action", "panic=pause")
	}
	if cfg.VMCoreInfo {
		args = append(args, "-device", "vmcoreinfo")
	}
	args = append(args, cfg.ExtraArgs...)
	return args, nil
}

// optEscape escapes a value for QEMU's key=value option syntax, in which a
// literal comma is written as two.
func optEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// SnapshotNodes returns the vmstate node and the device list to pass to
// qmp's snapshot calls for cfg: the scratch drive, plus the disk overlay
// when there is a Disk.
func SnapshotNodes(cfg Config) (vmstate string, devices []string) {
	devices = []string{ScratchNode}
	if cfg.Disk != "" {
		devices = append(devices, DiskNode)
	}
	return ScratchNode, devices
}
