package initramfs

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestSHA512Crypt(t *testing.T) {
	// Vectors from Ulrich Drepper's SHA-crypt specification (cross-checked
	// with glibc's crypt(3)).
	tests := []struct {
		password, salt string
		rounds         int
		want           string
	}{
		{"Hello world!", "saltstring", 0,
			"$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
		{"Hello world!", "saltstringsaltstring", 10000,
			"$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."},
		{"This is just a test", "toolongsaltstring", 5000,
			"$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0"},
		{"a very much longer text to encrypt.  This one even stretches over morethan one line.", "anotherlongsaltstring", 1400,
			"$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1"},
		{"we have a short salt string but not a short password", "short", 77777,
			"$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxFmtlcGZelFl5CxtgfiAc0"},
		{"a short string", "asaltof16chars..", 123456,
			"$6$rounds=123456$asaltof16chars..$BtCwjqMJGx5hrJhZywWvt0RLE8uZ4oPwcelCjmw2kSYu.Ec6ycULevoBK25fs2xXgMNrCzIMVcgEJAstJeonj1"},
		{"the minimum number is still observed", "roundstoolow", 10,
			"$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX."},
	}
	for _, tt := range tests {
		t.Run(tt.salt, func(t *testing.T) {
			got, err := SHA512Crypt(tt.password, tt.salt, tt.rounds)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("SHA512Crypt(%q, %q, %d)\n got %s\nwant %s", tt.password, tt.salt, tt.rounds, got, tt.want)
			}
		})
	}
	if _, err := SHA512Crypt("x", "bad$salt", 0); err == nil {
		t.Error("a salt with '$' was accepted")
	}
	if s := RandomSalt(); len(s) != 16 || strings.Trim(s, cryptAlphabet) != "" {
		t.Errorf("RandomSalt() = %q", s)
	}
}

func TestCleanName(t *testing.T) {
	tests := []struct {
		in, want string
		bad      bool
	}{
		{"/bin/sh", "bin/sh", false},
		{"./etc//passwd", "etc/passwd", false},
		{"dev/../init", "init", false},
		{"/", "", true},
		{"", "", true},
		{"TRAILER!!!", "", true},
	}
	for _, tt := range tests {
		got, err := cleanName(tt.in)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("cleanName(%q) = %q, %v; want %q, bad=%v", tt.in, got, err, tt.want, tt.bad)
		}
	}
}

func TestWriterErrors(t *testing.T) {
	w := NewWriter(io.Discard)
	if err := w.Dir("/etc", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := w.Dir("etc", 0o755); err == nil {
		t.Error("duplicate entry accepted")
	}
	if err := w.Symlink("/x", ""); err == nil {
		t.Error("empty symlink target accepted")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.File("/late", 0o644, nil); err == nil {
		t.Error("write after Close accepted")
	}
}

// cpioTool returns a cpio to check archives with: GNU cpio, or else the
// busybox of a prepared guest (busybox cpio), and whether it is GNU's.
func cpioTool(t *testing.T) ([]string, bool) {
	if p, err := exec.LookPath("cpio"); err == nil {
		return []string{p}, true
	}
	cache := os.Getenv("KSPEC_CACHE")
	if cache == "" {
		if d, err := os.UserCacheDir(); err == nil {
			cache = filepath.Join(d, "kspec")
		}
	}
	if m, _ := filepath.Glob(filepath.Join(cache, "guests", "*", "*", "busybox")); len(m) > 0 {
		return []string{m[0], "cpio"}, false
	}
	msg := "no cpio to check the archive with: apt-get install cpio (or prepare a guest, whose busybox has cpio)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return nil, false
}

// TestWriterAgainstCpio checks the archive with a real cpio: the listing,
// file contents, symlinks and (with GNU cpio) modes and device nodes.
func TestWriterAgainstCpio(t *testing.T) {
	cpio, gnu := cpioTool(t)
	run := func(dir string, args ...string) string {
		t.Helper()
		var buf bytes.Buffer
		w := NewWriter(&buf)
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(w.Dir("/etc", 0o755))
		must(w.File("/etc/hello", 0o640, []byte("hello, world\n")))
		must(w.File("/etc/odd", 0o600, []byte("12345"))) // needs padding
		must(w.File("/empty", 0o644, nil))
		must(w.Symlink("/link", "etc/hello"))
		must(w.Dir("/tmp", 0o1777))
		must(w.CharDev("/console", 0o600, 5, 1))
		must(w.Close())
		cmd := exec.Command(cpio[0], append(cpio[1:], args...)...)
		cmd.Dir = dir
		cmd.Stdin = &buf
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", strings.Join(cpio, " "), strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	list := run("", "-t")
	for _, want := range []string{"etc\n", "etc/hello\n", "etc/odd\n", "empty\n", "link\n", "tmp\n", "console\n"} {
		if !strings.Contains(list, want) {
			t.Errorf("cpio -t lacks %q:\n%s", want, list)
		}
	}
	if gnu {
		text := run("", "-t", "-v", "--quiet")
		for _, want := range []string{
			"drwxr-xr-x", "-rw-r-----", "-rw-------", "lrwxrwxrwx", "link -> etc/hello\n",
			"drwxrwxrwt", "crw-------", "5,   1",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("cpio -tv lacks %q:\n%s", want, text)
			}
		}
	}

	dir := t.TempDir()
	// Extract without the device node (that needs CAP_MKNOD).
	run(dir, "-i", "-d", "etc", "etc/hello", "etc/odd", "link", "empty")
	for name, want := range map[string]string{"etc/hello": "hello, world\n", "etc/odd": "12345", "empty": "", "link": "hello, world\n"} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}
	if fi, err := os.Lstat(filepath.Join(dir, "link")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("link is not a symlink: %v", err)
	}
}

func TestBuildBusybox(t *testing.T) {
	var buf bytes.Buffer
	hash, err := SHA512Crypt("secret", "abc", 0)
	if err != nil {
		t.Fatal(err)
	}
	opts := BusyboxOptions{Busybox: []byte("#!fake busybox\n"), PasswordHash: hash, Hostname: "box"}
	if err := BuildBusybox(&buf, opts); err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	if err := BuildBusybox(&again, opts); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("two builds from the same inputs differ: the initramfs is not reproducible")
	}
	zr, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"bin/busybox\x00", "init\x00", "sbin/getty\x00", "etc/inittab\x00",
		"ttyS0::respawn:/sbin/getty -L 115200 ttyS0 vt100", "root:" + hash + ":", "box\n", "TRAILER!!!"} {
		if !bytes.Contains(raw, []byte(want)) {
			t.Errorf("initramfs lacks %q", want)
		}
	}
	if bytes.Contains(raw, []byte("secret")) {
		t.Error("the password itself is in the initramfs")
	}
	for _, bad := range []BusyboxOptions{{PasswordHash: hash}, {Busybox: []byte("x")}, {Busybox: []byte("x"), PasswordHash: "a:b"}} {
		if err := BuildBusybox(io.Discard, bad); err == nil {
			t.Errorf("BuildBusybox(%+v) accepted", bad)
		}
	}
}
