package supervisor

import (
	"errors"
	"github.com/kspec/kspec/arch/arm64"
	"slices"
	"strings"
	"testing"
)

// hasSeq reports whether want appears in args as consecutive elements.
func hasSeq(args []string, want ...string) bool {
	for i := 0; i+len(want) <= len(args); i++ {
		if slices.Equal(args[i:i+len(want)], want) {
			return true
		}
	}
	return false
}

// hasPrefixSeq is hasSeq where each element need only start with want's.
func hasPrefixSeq(args []string, want ...string) bool {
	for i := 0; i+len(want) <= len(args); i++ {
		match := true
		for j, w := range want {
			if !strings.HasPrefix(args[i+j], w) {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

func TestBuildArgs(t *testing.T) {
	p := PathsIn("/run/k/kspec-run-1")
	kernel := Config{Kernel: "/k/vmlinuz", Initrd: "/k/initrd.gz", Append: "console=ttyS0 nokaslr"}
	with := func(c Config, f func(*Config)) Config { f(&c); return c }
	tcpPaths := p
	tcpPaths.GDBAddr = "127.0.0.1:5555"
	commaPaths := PathsIn("/tmp/a,b/kspec-run-1")

	tests := []struct {
		name    string
		cfg     Config
		paths   Paths
		accel   string
		want    [][]string // each must appear as a consecutive run
		notWant [][]string
		errs    []string // substrings of the error; nil: no error
	}{
		{
			name: "kernel defaults", cfg: kernel, paths: p, accel: "tcg",
			want: [][]string{
				{"-S"}, {"-no-user-config"}, {"-nodefaults"}, {"-display", "none"}, {"-no-reboot"},
				{"-accel", "tcg"}, {"-m", "256"}, {"-smp", "1"},
				{"-kernel", "/k/vmlinuz"}, {"-initrd", "/k/initrd.gz"}, {"-append", "console=ttyS0 nokaslr"},
				{"-blockdev", "driver=qcow2,node-name=kspec-scratch,file.driver=file,file.filename=/run/k/kspec-run-1/scratch.qcow2"},
				{"-chardev", "stdio,id=kspec-con,signal=off"}, {"-serial", "chardev:kspec-con"},
				{"-qmp", "unix:/run/k/kspec-run-1/qmp.sock,server=on,wait=off"},
				{"-chardev", "socket,id=kspec-gdb,path=/run/k/kspec-run-1/gdb.sock,server=on,wait=off"},
				{"-gdb", "chardev:kspec-gdb"},
			},
			notWant: [][]string{{"-cpu"}, {"-device", "pvpanic"}, {"-machine"}},
		},
		{
			name: "gdb tcp binds 127.0.0.1", cfg: with(kernel, func(c *Config) { c.GDB = "tcp" }), paths: tcpPaths, accel: "tcg",
			want: [][]string{{"-chardev", "socket,id=kspec-gdb,host=127.0.0.1,port=5555,ipv4=on,server=on,wait=off,nodelay=on"}, {"-gdb", "chardev:kspec-gdb"}},
		},
		{
			name: "gdb tcp ephemeral port by default", cfg: with(kernel, func(c *Config) { c.GDB = "tcp" }), paths: p, accel: "tcg",
			want: [][]string{{"-chardev", "socket,id=kspec-gdb,host=127.0.0.1,port=0,ipv4=on,server=on,wait=off,nodelay=on"}},
		},
		{
			name: "gdb tcp on another interface is refused", cfg: with(kernel, func(c *Config) { c.GDB = "tcp" }),
			paths: func() Paths { q := p; q.GDBAddr = "0.0.0.0:1234"; return q }(), accel: "tcg",
			errs: []string{"127.0.0.1 only"},
		},
		{
			name: "gdb tcp with empty host is refused", cfg: with(kernel, func(c *Config) { c.GDB = "tcp" }),
			paths: func() Paths { q := p; q.GDBAddr = ":1234"; return q }(), accel: "tcg",
			errs: []string{"127.0.0.1 only"},
		},
		{
			name: "unknown gdb mode", cfg: with(kernel, func(c *Config) { c.GDB = "serial" }), paths: p, accel: "tcg",
			errs: []string{`Config.GDB "serial"`},
		},
		{
			name: "data dirs become -L in order", cfg: with(kernel, func(c *Config) {
				c.DataDirs = []string{"/opt/q/usr/share/seabios", "/opt/q/usr/share/qemu"}
			}), paths: p, accel: "tcg",
			want: [][]string{{"-L", "/opt/q/usr/share/seabios", "-L", "/opt/q/usr/share/qemu"}},
		},
		{
			name: "no data dirs, no -L", cfg: kernel, paths: p, accel: "tcg",
			notWant: [][]string{{"-L"}},
		},
		{
			name: "an empty data dir is refused", cfg: with(kernel, func(c *Config) { c.DataDirs = []string{""} }), paths: p, accel: "tcg",
			errs: []string{"Config.DataDirs has an empty directory"},
		},
		{
			name: "kvm uses -cpu host", cfg: kernel, paths: p, accel: "kvm",
			want: [][]string{{"-accel", "kvm"}, {"-cpu", "host"}},
		},
		{
			name: "explicit cpu and machine", cfg: with(kernel, func(c *Config) { c.CPU = "max"; c.Machine = "q35" }), paths: p, accel: "kvm",
			want: [][]string{{"-cpu", "max"}, {"-machine", "q35"}}, notWant: [][]string{{"-cpu", "host"}},
		},
		{
			name: "auto must be resolved first", cfg: kernel, paths: p, accel: "auto",
			errs: []string{`accelerator "auto"`},
		},
		{
			name: "memory and cpus", cfg: with(kernel, func(c *Config) { c.MemoryMiB = 1024; c.CPUs = 4 }), paths: p, accel: "tcg",
			want: [][]string{{"-m", "1024"}, {"-smp", "4"}},
		},
		{
			name: "negative memory and cpus", cfg: with(kernel, func(c *Config) { c.MemoryMiB = -1; c.CPUs = -2 }), paths: p, accel: "tcg",
			errs: []string{"MemoryMiB -1", "CPUs -2"},
		},
		{
			name: "disk boots from an IDE overlay", cfg: Config{Disk: "/img/freebsd.raw"}, paths: p, accel: "tcg",
			want: [][]string{
				{"-blockdev", "driver=qcow2,node-name=kspec-disk,file.driver=file,file.filename=/run/k/kspec-run-1/disk.qcow2"},
				{"-device", "ide-hd,drive=kspec-disk,bus=ide.0,unit=0"},
			},
			notWant: [][]string{{"-kernel"}, {"-snapshot"}, {"-drive"}},
		},
		{
			name: "disk over virtio with a kernel", cfg: with(kernel, func(c *Config) { c.Disk = "/img/root.qcow2"; c.DiskInterface = "virtio" }), paths: p, accel: "tcg",
			want: [][]string{{"-kernel", "/k/vmlinuz"}, {"-device", "virtio-blk-pci,drive=kspec-disk"}},
		},
		{
			name: "bad disk interface", cfg: Config{Disk: "/img/x", DiskInterface: "scsi"}, paths: p, accel: "tcg",
			errs: []string{`DiskInterface "scsi"`},
		},
		{
			name: "neither kernel nor disk", cfg: Config{}, paths: p, accel: "tcg",
			errs: []string{"-kernel", "-drive", "Config.Kernel", "Config.Disk"},
		},
		{
			name: "firmware only", cfg: Config{FirmwareOnly: true}, paths: p, accel: "tcg",
			notWant: [][]string{{"-kernel"}, {"-blockdev", "driver=qcow2,node-name=kspec-disk"}},
		},
		{
			name: "initrd and append need a kernel", cfg: Config{Disk: "/img/x", Initrd: "/i", Append: "quiet"}, paths: p, accel: "tcg",
			errs: []string{"need Config.Kernel"},
		},
		{
			name: "panic device", cfg: with(kernel, func(c *Config) { c.PanicDevice = true }), paths: p, accel: "tcg",
			want: [][]string{{"-device", "pvpanic"}, {"-action", "panic=pause"}},
		},
		{
			name: "arm64 virt", cfg: with(kernel, func(c *Config) { c.Arch = arm64.Arch{}; c.PanicDevice = true; c.Append = "console=ttyAMA0" }), paths: p, accel: "tcg",
			want: [][]string{{"-machine", "virt"}, {"-accel", "tcg"}, {"-cpu", "max"}, {"-device", "pvpanic-pci"}, {"-append", "console=ttyAMA0"}},
		},
		{
			name: "arm64 under kvm uses the host cpu", cfg: with(kernel, func(c *Config) { c.Arch = arm64.Arch{} }), paths: p, accel: "kvm",
			want:    [][]string{{"-machine", "virt"}, {"-cpu", "host"}},
			notWant: [][]string{{"-cpu", "max"}},
		},
		{
			name: "vmcoreinfo device", cfg: with(kernel, func(c *Config) { c.VMCoreInfo = true }), paths: p, accel: "tcg",
			want: [][]string{{"-device", "vmcoreinfo"}},
		},
		{
			name: "no vmcoreinfo device unless asked", cfg: kernel, paths: p, accel: "tcg",
			notWant: [][]string{{"-device", "vmcoreinfo"}},
		},
		{
			name: "extra args come last", cfg: with(kernel, func(c *Config) { c.ExtraArgs = []string{"-rtc", "base=utc", "-d", "guest_errors"} }), paths: p, accel: "tcg",
			want: [][]string{{"-rtc", "base=utc", "-d", "guest_errors"}},
		},
		{
			name: "extra -s is refused", cfg: with(kernel, func(c *Config) { c.ExtraArgs = []string{"-s"} }), paths: p, accel: "tcg",
			errs: []string{"contains -s", "tcp::1234"},
		},
		{
			name: "extra --gdb and -daemonize are refused", cfg: with(kernel, func(c *Config) { c.ExtraArgs = []string{"--gdb", "tcp::1234", "-daemonize"} }), paths: p, accel: "tcg",
			errs: []string{"contains --gdb", "contains -daemonize"},
		},
		{
			name: "commas in paths are escaped", cfg: with(kernel, func(c *Config) { c.Disk = "/img/x" }), paths: commaPaths, accel: "tcg",
			want: [][]string{
				{"-qmp", "unix:/tmp/a,,b/kspec-run-1/qmp.sock,server=on,wait=off"},
				{"-chardev", "socket,id=kspec-gdb,path=/tmp/a,,b/kspec-run-1/gdb.sock,server=on,wait=off"},
				{"-blockdev", "driver=qcow2,node-name=kspec-scratch,file.driver=file,file.filename=/tmp/a,,b/kspec-run-1/scratch.qcow2"},
				{"-blockdev", "driver=qcow2,node-name=kspec-disk,file.driver=file,file.filename=/tmp/a,,b/kspec-run-1/disk.qcow2"},
			},
		},
		{
			name: "socket path too long", cfg: kernel, paths: PathsIn("/" + strings.Repeat("d", 120)), accel: "tcg",
			errs: []string{"unix socket limit", "RunDirBase"},
		},
		{
			name: "missing paths", cfg: with(kernel, func(c *Config) { c.Disk = "/img/x" }), paths: Paths{}, accel: "tcg",
			errs: []string{"QMPSocket is empty", "Scratch is empty", "DiskOverlay is empty", "GDBSocket is empty"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args, err := BuildArgs(tc.cfg, tc.paths, tc.accel)
			if tc.errs != nil {
				if err == nil {
					t.Fatalf("want error, got %q", args)
				}
				for _, s := range tc.errs {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not mention %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !hasSeq(args, w...) {
					t.Errorf("missing %q in %q", w, args)
				}
			}
			for _, w := range tc.notWant {
				if hasPrefixSeq(args, w...) {
					t.Errorf("unexpected %q in %q", w, args)
				}
			}
			// Invariants of every command line.
			if !slices.Contains(args, "-S") {
				t.Error("QEMU must start halted (-S)")
			}
			for _, a := range args[:len(args)-len(tc.cfg.ExtraArgs)] {
				if a == "-s" || strings.Contains(a, "tcp::") || strings.Contains(a, "0.0.0.0") {
					t.Errorf("gdbstub or socket open beyond loopback: %q in %q", a, args)
				}
				if strings.Contains(a, "host=") && !strings.Contains(a, "host=127.0.0.1,") {
					t.Errorf("socket host other than 127.0.0.1: %q", a)
				}
			}
			if n := len(tc.cfg.ExtraArgs); n > 0 && !slices.Equal(args[len(args)-n:], tc.cfg.ExtraArgs) {
				t.Errorf("ExtraArgs not last: %q", args)
			}
		})
	}
}

// BuildArgs must not depend on anything but its inputs.
func TestBuildArgsIsDeterministic(t *testing.T) {
	cfg := Config{Kernel: "/k", PanicDevice: true, GDB: "tcp"}
	a, err1 := BuildArgs(cfg, PathsIn("/r"), "tcg")
	b, err2 := BuildArgs(cfg, PathsIn("/r"), "tcg")
	if err := errors.Join(err1, err2); err != nil || !slices.Equal(a, b) {
		t.Fatalf("%q vs %q (%v)", a, b, err)
	}
}

func TestWithDefaults(t *testing.T) {
	tests := []struct {
		in      Config
		qemuImg string
	}{
		{Config{}, "qemu-img"},
		{Config{QEMU: "qemu-system-x86_64"}, "qemu-img"},
		{Config{QEMU: "/opt/q/bin/qemu-system-x86_64"}, "/opt/q/bin/qemu-img"},
		{Config{QEMU: "/opt/q/bin/qemu-system-x86_64", QEMUImg: "/usr/bin/qemu-img"}, "/usr/bin/qemu-img"},
	}
	for _, tc := range tests {
		c := tc.in.withDefaults()
		if c.QEMUImg != tc.qemuImg {
			t.Errorf("%+v: QEMUImg %q, want %q", tc.in, c.QEMUImg, tc.qemuImg)
		}
		if c.MemoryMiB != 256 || c.CPUs != 1 || c.Accel != "auto" || c.ScratchMiB != 64 || c.GDB != "unix" || c.DiskInterface != "ide" {
			t.Errorf("defaults: %+v", c)
		}
	}
}

func TestSnapshotNodes(t *testing.T) {
	tests := []struct {
		cfg  Config
		devs []string
	}{
		{Config{Kernel: "/k"}, []string{ScratchNode}},
		{Config{Disk: "/d"}, []string{ScratchNode, DiskNode}},
	}
	for _, tc := range tests {
		vm, devs := SnapshotNodes(tc.cfg)
		if vm != ScratchNode || !slices.Equal(devs, tc.devs) {
			t.Errorf("%+v: %s %v", tc.cfg, vm, devs)
		}
	}
}
