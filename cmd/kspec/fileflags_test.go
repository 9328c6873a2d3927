package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// fileFixtures are files for the flag table: fakes that only look like a
// kernel or a vmlinux (nothing boots them) and files that are wrong in
// every way CheckFile tells.
type fileFixtures struct {
	dir                                   string
	elf, elf2, bzImage, text, empty, fifo string
	unreadable, subdir, missing, password string
}

func newFileFixtures(t *testing.T) fileFixtures {
	t.Helper()
	d := t.TempDir()
	f := fileFixtures{dir: d,
		elf: filepath.Join(d, "vmlinux"), elf2: filepath.Join(d, "other-vmlinux"), bzImage: filepath.Join(d, "bzImage"),
		text: filepath.Join(d, "notes.txt"), empty: filepath.Join(d, "empty"), fifo: filepath.Join(d, "fifo"),
		unreadable: filepath.Join(d, "unreadable"), subdir: filepath.Join(d, "subdir"), missing: filepath.Join(d, "nope"),
		password: filepath.Join(d, "password")}
	bz := make([]byte, 0x400)
	copy(bz[0x202:], "HdrS")
	elf := append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 57)...)
	for path, data := range map[string][]byte{f.elf: elf, f.elf2: elf, f.bzImage: bz, f.text: []byte("hello\n"),
		f.empty: nil, f.unreadable: []byte("secret\n"), f.password: []byte("pw\n")} {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(f.unreadable, 0); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(f.fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(f.subdir, 0o755); err != nil {
		t.Fatal(err)
	}
	return f
}

// config writes a guest config file.
func (f fileFixtures) config(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(f.dir, name+".json")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// noBootEnv makes any boot observable: $KSPEC_QEMU is a script that
// records its start in a marker file (and fails), $TMPDIR (where run
// directories go) is a fresh empty directory and the guest cache is
// empty. It returns the marker and the TMPDIR.
func noBootEnv(t *testing.T) (marker, tmp string) {
	t.Helper()
	bin := t.TempDir()
	marker = filepath.Join(bin, "qemu-started")
	qemu := filepath.Join(bin, "qemu-system-x86_64")
	script := fmt.Sprintf("#!/bin/sh\necho \"$@\" >> '%s'\necho 'fake qemu: refusing to run' >&2\nexit 1\n", marker)
	if err := os.WriteFile(qemu, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp = t.TempDir()
	t.Setenv("KSPEC_QEMU", qemu)
	t.Setenv("TMPDIR", tmp)
	t.Setenv("KSPEC_CACHE", t.TempDir())
	t.Setenv("KSPEC_GUEST", "")
	t.Setenv("KSPEC_ACCEL", "tcg")
	return marker, tmp
}

// assertNothingBooted fails t if QEMU was started or anything was left in
// TMPDIR.
func assertNothingBooted(t *testing.T, marker, tmp string) {
	t.Helper()
	if data, err := os.ReadFile(marker); err == nil {
		t.Errorf("QEMU was started: %s", data)
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("left in TMPDIR: %v", left)
	}
}

// TestFileFlagsCheckedBeforeBoot runs every flag and config field that
// names a file, wrong in each way that can be told cheaply, and every
// flag that cannot apply to the chosen guest, through every command that
// takes guest flags: each exits 2 naming the flag (or key), the file and
// what is wrong, and no QEMU is started.
func TestFileFlagsCheckedBeforeBoot(t *testing.T) {
	f := newFileFixtures(t)
	good := []string{"--kernel", f.bzImage, "--symbols", f.elf} // a described guest whose files pass
	cfg := func(name, fields string) string {
		return f.config(t, name, `{"os": "linux", `+fields+`}`)
	}
	q := func(s string) string { return fmt.Sprintf("%q", s) }
	cfgOK := `"kernel": ` + q(f.bzImage) + `, "symbols": ` + q(f.elf) + `, "password": ""`

	type row struct {
		name string
		args []string // guest flags
		want []string // substrings of stderr
		root bool     // meaningful only when not root (root reads every file)
	}
	var rows []row
	// Each file-naming flag, wrong in each way.
	for _, ff := range []struct {
		flag string
		rest []string // the other flags of a guest that would boot
		kind string   // what the flag wants, as the error says it
		bad  string   // a file of the wrong kind ("" = no kind)
	}{
		{"--symbols", nil, "not an ELF file", f.bzImage},
		{"--kernel", []string{"--symbols", f.elf}, "not an x86 bzImage", f.elf},
		{"--initrd", good, "", ""},
		{"--disk", []string{"--symbols", f.elf}, "", ""},
		{"--password-file", good, "", ""},
	} {
		cases := []struct {
			what, path, want string
			root             bool
		}{
			{"missing", f.missing, "does not exist", false},
			{"a directory", f.subdir, "is a directory", false},
			{"empty", f.empty, "is empty", false},
			{"a named pipe", f.fifo, "not a regular file (it is a named pipe)", false},
			{"unreadable", f.unreadable, "cannot be read: permission denied", true},
		}
		if ff.kind != "" {
			cases = append(cases, struct {
				what, path, want string
				root             bool
			}{"the wrong kind", ff.bad, ff.kind, false}, struct {
				what, path, want string
				root             bool
			}{"a text file", f.text, ff.kind, false})
		}
		for _, c := range cases {
			rows = append(rows, row{name: ff.flag + " " + c.what, args: append(append([]string{}, ff.rest...), ff.flag, c.path),
				want: []string{ff.flag + " " + c.path + " ", c.want}, root: c.root})
		}
	}
	rows = append(rows,
		// The brief's own case: --symbols with the default prepared guest.
		row{name: "--symbols with the default guest", args: []string{"--symbols", "/nonexistent/vmlinux"},
			want: []string{"--symbols /nonexistent/vmlinux does not exist"}},
		row{name: "--symbols with a named guest", args: []string{"--guest", "debian-cloud", "--symbols", f.text},
			want: []string{"--symbols " + f.text + " is not an ELF file"}},
		// --guest FILE and the files it names.
		row{name: "--guest file missing", args: []string{"--guest", f.missing + ".json"}, want: []string{"--guest " + f.missing + ".json does not exist"}},
		row{name: "--guest file a directory", args: []string{"--guest", f.subdir + "/"}, want: []string{"--guest " + f.subdir + "/ is a directory"}},
		row{name: "--guest file empty", args: []string{"--guest", f.config(t, "empty", "")}, want: []string{"--guest " + filepath.Join(f.dir, "empty.json") + " is empty"}},
		row{name: "--guest file not JSON", args: []string{"--guest", f.config(t, "garbage", "{kernel")}, want: []string{"guest config " + filepath.Join(f.dir, "garbage.json"), "not valid JSON"}},
		row{name: "config: symbols missing", args: []string{"--guest", cfg("c1", `"kernel": `+q(f.bzImage)+`, "symbols": "nosuch-vmlinux", "password": ""`)},
			want: []string{filepath.Join(f.dir, "c1.json"), "symbols: " + filepath.Join(f.dir, "nosuch-vmlinux") + " does not exist"}},
		row{name: "config: symbols not ELF", args: []string{"--guest", cfg("c2", `"kernel": `+q(f.bzImage)+`, "symbols": `+q(f.text)+`, "password": ""`)},
			want: []string{"guest config " + filepath.Join(f.dir, "c2.json"), "symbols: " + f.text + " is not an ELF file"}},
		row{name: "config: kernel not a bzImage", args: []string{"--guest", cfg("c3", `"kernel": `+q(f.elf)+`, "symbols": `+q(f.elf)+`, "password": ""`)},
			want: []string{"guest config " + filepath.Join(f.dir, "c3.json"), "kernel: " + f.elf + " is not an x86 bzImage", "that is the symbol file"}},
		row{name: "config: kernel a directory", args: []string{"--guest", cfg("c4", `"kernel": `+q(f.subdir)+`, "symbols": `+q(f.elf)+`, "password": ""`)},
			want: []string{filepath.Join(f.dir, "c4.json"), "kernel: " + f.subdir + " is a directory"}},
		row{name: "config: initrd empty", args: []string{"--guest", cfg("c5", cfgOK+`, "initrd": `+q(f.empty))},
			want: []string{filepath.Join(f.dir, "c5.json"), "initrd: " + f.empty + " is empty"}},
		row{name: "config: disk a named pipe", args: []string{"--guest", cfg("c6", cfgOK+`, "disk": `+q(f.fifo))},
			want: []string{filepath.Join(f.dir, "c6.json"), "disk: " + f.fifo + " is not a regular file"}},
		row{name: "config: password_file missing", args: []string{"--guest", cfg("c7", `"kernel": `+q(f.bzImage)+`, "symbols": `+q(f.elf)+`, "password_file": `+q(f.missing))},
			want: []string{filepath.Join(f.dir, "c7.json"), "password_file: ", f.missing}},
		row{name: "config: password_file empty", args: []string{"--guest", cfg("c8", `"kernel": `+q(f.bzImage)+`, "symbols": `+q(f.elf)+`, "password_file": `+q(f.empty))},
			want: []string{filepath.Join(f.dir, "c8.json"), "password_file: " + f.empty + " is empty"}},
		row{name: "--symbols over a config file's", args: []string{"--guest", cfg("c9", cfgOK), "--symbols", f.empty},
			want: []string{"--symbols " + f.empty + " is empty"}},
		// Flags that cannot apply to the chosen guest.
		row{name: "--initrd with a FreeBSD disk guest", args: []string{"--disk", f.text, "--os", "freebsd", "--symbols", f.elf, "--initrd", f.text},
			want: []string{"--initrd is only loaded with --kernel"}},
		row{name: "--append with a disk guest", args: []string{"--disk", f.text, "--symbols", f.elf, "--append", "console=ttyS0"},
			want: []string{"--append is the command line of --kernel"}},
		row{name: "--kernel with a FreeBSD guest", args: []string{"--disk", f.text, "--os", "freebsd", "--symbols", f.elf, "--kernel", f.bzImage},
			want: []string{"--kernel cannot boot a FreeBSD guest"}},
		row{name: "--kernel with a named guest", args: []string{"--guest", "debian-cloud", "--kernel", f.bzImage, "--symbols", f.elf},
			want: []string{"--guest debian-cloud and --kernel/--disk both name a guest"}},
		row{name: "--disk with a config file", args: []string{"--guest", cfg("c10", cfgOK), "--disk", f.text},
			want: []string{"--guest " + filepath.Join(f.dir, "c10.json") + " and --kernel/--disk"}},
		row{name: "--initrd with the default guest", args: []string{"--initrd", f.text}, want: []string{"--initrd: only for a guest described"}},
		row{name: "--user and --password-file with a config file", args: []string{"--guest", cfg("c11", cfgOK), "--user", "alice", "--password-file", f.password},
			want: []string{"--user, --password-file: only for a guest described"}},
		row{name: "--os with the default guest", args: []string{"--os", "freebsd"}, want: []string{"--os: only for a guest described"}},
	)

	commands := []struct {
		name string
		argv func(flags []string) []string
	}{
		{"exec", func(fl []string) []string { return append(append([]string{"exec"}, fl...), "--", "true") }},
		{"probe", func(fl []string) []string {
			return append([]string{"probe", "--break", "do_mkdirat", "--run", "true"}, fl...)
		}},
		{"probe --watch", func(fl []string) []string {
			return append([]string{"probe", "--watch", "init_uts_ns.name.nodename", "--run", "true"}, fl...)
		}},
		{"boot", func(fl []string) []string { return append([]string{"boot"}, fl...) }},
		{"sym", func(fl []string) []string { return append(append([]string{"sym", "--no-index"}, fl...), "do_mkdirat") }},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			if r.root && os.Geteuid() == 0 {
				t.Skip("root reads files whatever their mode")
			}
			for _, c := range commands {
				t.Run(c.name, func(t *testing.T) {
					marker, tmp := noBootEnv(t)
					argv := c.argv(r.args)
					code, _, stderr := runKspec(argv...)
					t.Logf("kspec %s: exit %d: %s", strings.Join(argv, " "), code, stderr)
					if code != exitUsage {
						t.Errorf("exit %d, want %d", code, exitUsage)
					}
					for _, w := range r.want {
						if !strings.Contains(stderr, w) {
							t.Errorf("stderr does not say %q", w)
						}
					}
					assertNothingBooted(t, marker, tmp)
				})
			}
		})
	}
}

// TestGuestsConfigCheckedBeforeNightly: kspec nightly checks a guest config
// named in --guests, and the files it names, before it runs anything.
func TestGuestsConfigCheckedBeforeNightly(t *testing.T) {
	f := newFileFixtures(t)
	bad := f.config(t, "bad", fmt.Sprintf(`{"os": "linux", "kernel": %q, "symbols": %q, "password": ""}`, f.text, f.elf))
	for _, tt := range []struct {
		guests string
		want   []string
	}{
		{bad, []string{"--guests", "guest config " + bad, "kernel: " + f.text + " is not an x86 bzImage"}},
		{f.empty, []string{"--guests " + f.empty + " is empty"}},
		{f.subdir, []string{"--guests " + f.subdir + " is a directory"}},
	} {
		t.Run(filepath.Base(tt.guests), func(t *testing.T) {
			marker, tmp := noBootEnv(t)
			out := t.TempDir()
			code, _, stderr := runKspec("nightly", "--no-prepare", "--out", out, "--guests", tt.guests)
			t.Logf("exit %d: %s", code, stderr)
			if code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not say %q", w)
				}
			}
			assertNothingBooted(t, marker, tmp)
			if left, _ := os.ReadDir(out); len(left) > 0 {
				t.Errorf("left in --out: %v", left)
			}
		})
	}
}

// The control of the table: with files that pass the checks the same
// command does start QEMU, so the table's "nothing booted" can fail.
func TestFileFlagsControlBoots(t *testing.T) {
	f := newFileFixtures(t)
	marker, _ := noBootEnv(t)
	code, _, stderr := runKspec("boot", "--kernel", f.bzImage, "--symbols", f.elf, "--initrd", f.text, "--password-file", f.password)
	t.Logf("exit %d: %s", code, stderr)
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("QEMU was not started for good files (exit %d): %s", code, stderr)
	}
	if code == exitOK || code == exitUsage {
		t.Errorf("exit %d from a QEMU that refuses to run", code)
	}
}

// --symbols replaces the symbol file of a guest named by --guest (here a
// config file) and keeps the rest of it.
func TestSymbolsFlagOverridesGuest(t *testing.T) {
	f := newFileFixtures(t)
	noBootEnv(t)
	cfg := f.config(t, "g", fmt.Sprintf(`{"os": "linux", "kernel": %q, "symbols": %q, "password": "", "memory_mib": 300}`, f.bzImage, f.elf))
	g := guestFlags{guest: cfg, symbols: f.elf2}
	o, err := g.options()
	if err != nil {
		t.Fatal(err)
	}
	if o.Spec.Symbols != f.elf2 || o.Spec.Kernel != f.bzImage || o.Spec.MemoryMiB != 300 {
		t.Fatalf("spec %+v", o.Spec)
	}
}
