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

// TestWriterAgainstCpio checks the archive with GNU cpio: the listing, file
// contents, modes, symlinks and device nodes as cpio understands them.
func TestWriterAgainstCpio(t *testing.T) {
	cpio, err := exec.LookPath("cpio")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("cpio is not installed (apt-get install cpio)")
		}
		t.Skip("cpio is not installed (apt-get install cpio)")
	}
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

	list := exec.Command(cpio, "-t", "-v", "--quiet")
	list.Stdin = bytes.NewReader(buf.Bytes())
	out, err := list.CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -t: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{
		"drwxr-xr-x", "etc\n",
		"-rw-r-----", "etc/hello\n",
		"-rw-------", "etc/odd\n",
		"lrwxrwxrwx", "link -> etc/hello\n",
		"drwxrwxrwt", "tmp\n",
		"crw-------", "5,   1", "console\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("cpio -tv lacks %q:\n%s", want, text)
		}
	}

	dir := t.TempDir()
	// Extract without the device node (that needs CAP_MKNOD).
	extract := exec.Command(cpio, "-i", "-d", "--quiet", "--no-absolute-filenames", "etc/*", "link", "empty")
	extract.Dir = dir
	extract.Stdin = bytes.NewReader(buf.Bytes())
	if out, err := extract.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v\n%s", err, out)
	}
	for name, want := range map[string]string{"etc/hello": "hello, world\n", "etc/odd": "12345", "empty": "", "link": "hello, world\n"} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
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
