package supervisor

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestNoListenerBeyondLoopback starts real QEMUs with the gdbstub on a unix
// socket and on TCP, and checks every listening socket QEMU owns: unix
// sockets live inside the 0700 run directory, TCP listeners are bound to
// 127.0.0.1 only — never to all interfaces as the bare -s does.
func TestNoListenerBeyondLoopback(t *testing.T) {
	for _, gdb := range []string{"unix", "tcp"} {
		t.Run(gdb, func(t *testing.T) {
			m := start(t, Config{FirmwareOnly: true, GDB: gdb})
			fi, err := os.Stat(m.Paths().RunDir)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o700 {
				t.Fatalf("run dir mode %v, want 0700", fi.Mode().Perm())
			}
			inodes := socketInodes(t, m.PID())
			tcp := listeners(t, "/proc/net/tcp", inodes)
			tcp6 := listeners(t, "/proc/net/tcp6", inodes)
			if len(tcp6) > 0 {
				t.Fatalf("QEMU listens on IPv6 TCP: %v", tcp6)
			}
			for _, addr := range tcp {
				if !strings.HasPrefix(addr, "127.0.0.1:") {
					t.Fatalf("QEMU listens on %s, beyond loopback", addr)
				}
			}
			if gdb == "tcp" && len(tcp) != 1 {
				t.Fatalf("want exactly the gdbstub on 127.0.0.1, got TCP listeners %v", tcp)
			}
			if gdb == "unix" && len(tcp) != 0 {
				t.Fatalf("want no TCP listener, got %v", tcp)
			}
			unix := unixListeners(t, inodes)
			if gdb == "unix" && len(unix) < 2 { // QMP and the gdbstub, at least
				t.Fatalf("found only unix listeners %v: the check is not seeing QEMU's sockets", unix)
			}
			for _, path := range unix {
				if filepath.Dir(path) != m.Paths().RunDir {
					t.Fatalf("unix socket %s outside the run dir %s", path, m.Paths().RunDir)
				}
			}
		})
	}
}

// socketInodes returns the inodes of pid's sockets.
func socketInodes(t *testing.T, pid int) map[string]bool {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, e := range ents {
		link, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			out[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	return out
}

// listeners returns "ip:port" of the listening sockets in a /proc/net/tcp*
// table that belong to inodes.
func listeners(t *testing.T, table string, inodes map[string]bool) []string {
	t.Helper()
	f, err := os.Open(table)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] { // 0A = LISTEN
			continue
		}
		out = append(out, decodeAddr(fields[1]))
	}
	return out
}

// decodeAddr turns /proc/net/tcp's "0100007F:1F90" into "127.0.0.1:8080";
// IPv6 addresses are returned raw (any is a failure anyway).
func decodeAddr(s string) string {
	host, port, _ := strings.Cut(s, ":")
	p, _ := strconv.ParseUint(port, 16, 16)
	if len(host) != 8 {
		return host + ":" + strconv.Itoa(int(p))
	}
	v, _ := strconv.ParseUint(host, 16, 32)
	return fmt.Sprintf("%d.%d.%d.%d:%d", v&0xff, v>>8&0xff, v>>16&0xff, v>>24, p)
}

// unixListeners returns the paths of listening unix sockets among inodes.
func unixListeners(t *testing.T, inodes map[string]bool) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		// Num RefCount Protocol Flags Type St Inode Path; Flags 00010000 = __SO_ACCEPTCON.
		if len(f) >= 8 && inodes[f[6]] && f[3] == "00010000" {
			out = append(out, f[7])
		}
	}
	return out
}
