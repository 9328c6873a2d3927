package guest

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

// cleanAll feeds data to a Linux cleaner in chunks of at most chunk bytes
// (0: all at once) and returns the user text, the kernel messages and the
// unfinished line.
func cleanAll(data []byte, chunk int) (user string, kern []string, partial string) {
	linux, _ := ProfileFor(OSLinux)
	cl := cleaner{kernel: linux.KernelLine}
	var u bytes.Buffer
	for len(data) > 0 {
		n := len(data)
		if chunk > 0 {
			n = min(n, chunk)
		}
		cl.feed(data[:n], func(l []byte) { u.Write(l) }, func(k string) { kern = append(kern, k) })
		data = data[n:]
	}
	return u.String(), kern, string(cl.partial())
}

// FuzzCleanerChunking checks the console matcher on arbitrary console
// bytes: how the pty happens to cut the stream into reads changes nothing
// (whole, in chunks of any size, byte by byte), every kernel message starts
// with a printk timestamp and is a single line, every user line ends in a
// newline, and no byte is invented.
func FuzzCleanerChunking(f *testing.F) {
	for _, seed := range []string{
		"a\r\nb\n",
		"kspec:ab[   12.345678] msg\r\ncd\n",
		"kspec log[    3.123456] random: crng init done\r\nin: ",
		"ab[    1.000000] k1\r\n[    2.000000] k2\r\ncd\n",
		"[    1.000000] Linux version\n",
		"[    5.000000][  T123] x\r\n",
		"# [    6.1",
		"[    3.600620] Kernel panic - not syncing: sysrq triggered crash\r\n[    3.6] CPU: 0 PID: 1\r\n",
		"Password: [    4.000000] BUG: kernel NULL pointer dereference\r\n\r\n",
		"\r\r\n\n[ 1.0]\r\n[[[    1.000000]]\r\n",
	} {
		f.Add([]byte(seed), uint8(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		user, kern, partial := cleanAll(data, 0)
		for _, c := range []int{int(chunk) + 1, 1} {
			u, k, p := cleanAll(data, c)
			if u != user || !slices.Equal(k, kern) || p != partial {
				t.Fatalf("chunks of %d: user %q kernel %q partial %q\nwhole: user %q kernel %q partial %q", c, u, k, p, user, kern, partial)
			}
		}
		linux, _ := ProfileFor(OSLinux)
		total := len(user) + len(partial)
		for _, k := range kern {
			if loc := linux.KernelLine.FindStringIndex(k); loc == nil || loc[0] != 0 {
				t.Fatalf("kernel message %q does not start with a timestamp", k)
			}
			if strings.Contains(k, "\n") {
				t.Fatalf("kernel message %q spans lines", k)
			}
			total += len(k) + 2 // its "\r\n" at least
		}
		if total > len(data)+strings.Count(string(data), "\n") {
			t.Fatalf("%d bytes out of %d in", total, len(data))
		}
		for _, l := range strings.SplitAfter(user, "\n") {
			if l != "" && !strings.HasSuffix(l, "\n") {
				t.Fatalf("user line %q without newline", l)
			}
		}
	})
}

// FuzzCleanerInterleave checks that a kernel message landing anywhere in a
// command's output (or a prompt) is cut out cleanly: the user text reads as
// if the message had never been printed, and the message is reported whole.
func FuzzCleanerInterleave(f *testing.F) {
	f.Add("kspec:ab12:B\nhello\nkspec:ab12:E:0\n", "random: crng init done", uint16(9))
	f.Add("root@kspec:~# ", "Kernel panic - not syncing: x", uint16(3))
	f.Add("login: ", "audit: type=1400", uint16(0))
	f.Add("a\nb\nc\n", "BUG: soft lockup - CPU#0 stuck for 22s!", uint16(200))
	f.Fuzz(func(t *testing.T, user, msg string, at uint16) {
		// Program output after login ends lines with a bare "\n" (onlcr is
		// off) and the kernel's message is one line: keep the inputs so.
		user = strings.NewReplacer("\r", "", "[", "(").Replace(user)
		msg = strings.NewReplacer("\r", "", "\n", " ", "[", "(").Replace(msg)
		pos := int(at) % (len(user) + 1)
		kmsg := "[   12.345678] " + msg
		data := user[:pos] + kmsg + "\r\n" + user[pos:]
		for _, chunk := range []int{0, 1, 7} {
			u, k, p := cleanAll([]byte(data), chunk)
			if u+p != user {
				t.Fatalf("chunks of %d: user text %q, want %q (kernel %q)", chunk, u+p, user, k)
			}
			if len(k) != 1 || k[0] != kmsg {
				t.Fatalf("chunks of %d: kernel %q, want [%q]", chunk, k, kmsg)
			}
		}
	})
}
