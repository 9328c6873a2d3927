package initramfs

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strings"
)

// RecipeVersion identifies the layout BuildBusybox produces. It is recorded
// in every prepared guest's manifest; bump it whenever the produced
// initramfs changes so that caches can tell old builds from new ones.
const RecipeVersion = 2 // 2: root password no longer equals the hostname (the console redacts it)

// Applets get a symlink to /bin/busybox in the image itself, so that login
// works even before /etc/init.d/rcS has run `busybox --install -s` (which
// links every other applet).
var Applets = []string{
	"/bin/sh", "/bin/ash", "/bin/cat", "/bin/echo", "/bin/ls", "/bin/mkdir",
	"/bin/rmdir", "/bin/mount", "/bin/umount", "/bin/uname", "/bin/hostname",
	"/bin/sleep", "/bin/stty", "/bin/printf", "/bin/true", "/bin/false",
	"/bin/dmesg", "/bin/login", "/sbin/getty", "/sbin/init", "/sbin/reboot",
	"/sbin/poweroff", "/sbin/halt",
}

// BusyboxOptions describes one busybox initramfs.
type BusyboxOptions struct {
	// Busybox is the content of a statically linked busybox binary.
	Busybox []byte
	// Hostname goes to /etc/hostname; empty means "kspec".
	Hostname string
	// PasswordHash is root's crypt(3) hash for /etc/shadow (see
	// SHA512Crypt). Empty is refused: the console login must be a real
	// login/Password exchange.
	PasswordHash string
	// Console is the serial console getty runs on; empty means "ttyS0".
	Console string
}

// inittab is busybox init's configuration: system setup, then a getty on
// the serial console, respawned after every logout. %[1]s is the console.
const inittab = `::sysinit:/etc/init.d/rcS
%[1]s::respawn:/sbin/getty -L 115200 %[1]s vt100
::ctrlaltdel:/sbin/reboot
::shutdown:/bin/umount -a -r
`

// rcS mounts the pseudo file systems, links all busybox applets, sets the
// hostname and enables magic SysRq (for fault tests driven over the console).
const rcS = `#!/bin/sh
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=0755 tmpfs /run
hostname -F /etc/hostname
echo 1 > /proc/sys/kernel/sysrq
`

// profile is read by login shells (busybox login starts "-sh").
const profile = `export PATH=/sbin:/usr/sbin:/bin:/usr/bin
export HOME=/root
PS1='\u@\h:\w\$ '
`

// BuildBusybox writes a gzip'd newc initramfs to w: busybox with init,
// getty and login, /etc/passwd, /etc/shadow (root's hash), /etc/group,
// /etc/profile, /etc/inittab and /etc/init.d/rcS. The kernel runs /init,
// a link to busybox, which becomes busybox init and reads /etc/inittab.
func BuildBusybox(w io.Writer, opts BusyboxOptions) error {
	if len(opts.Busybox) == 0 {
		return errors.New("initramfs: no busybox binary")
	}
	if opts.PasswordHash == "" || strings.ContainsAny(opts.PasswordHash, ":\n") {
		return errors.New("initramfs: root needs a crypt(3) password hash without ':' or newlines")
	}
	host := opts.Hostname
	if host == "" {
		host = "kspec"
	}
	tty := opts.Console
	if tty == "" {
		tty = "ttyS0"
	}
	zw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return err
	}
	cw := NewWriter(zw)
	add := func(err error) {
		if err != nil && cw.err == nil {
			cw.err = err
		}
	}
	for _, d := range []string{"/bin", "/sbin", "/usr", "/usr/bin", "/usr/sbin", "/etc", "/etc/init.d",
		"/proc", "/sys", "/dev", "/run", "/mnt", "/var"} {
		add(cw.Dir(d, 0o755))
	}
	add(cw.Dir("/root", 0o700))
	add(cw.Dir("/tmp", 0o1777))
	add(cw.CharDev("/dev/console", 0o600, 5, 1))
	add(cw.CharDev("/dev/null", 0o666, 1, 3))
	add(cw.File("/bin/busybox", 0o755, opts.Busybox))
	add(cw.Symlink("/init", "/bin/busybox"))
	for _, a := range Applets {
		add(cw.Symlink(a, "/bin/busybox"))
	}
	add(cw.File("/etc/inittab", 0o644, fmt.Appendf(nil, inittab, tty)))
	add(cw.File("/etc/init.d/rcS", 0o755, []byte(rcS)))
	add(cw.File("/etc/hostname", 0o644, []byte(host+"\n")))
	add(cw.File("/etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\n")))
	add(cw.File("/etc/shadow", 0o600, []byte("root:"+opts.PasswordHash+":19000:0:99999:7:::\n")))
	add(cw.File("/etc/group", 0o644, []byte("root:x:0:\n")))
	add(cw.File("/etc/profile", 0o644, []byte(profile)))
	add(cw.File("/etc/shells", 0o644, []byte("/bin/sh\n/bin/ash\n")))
	add(cw.Close())
	if cw.err != nil {
		return fmt.Errorf("initramfs: %w", cw.err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	return nil
}
