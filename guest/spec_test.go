package guest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadConfigFreeBSDExample(t *testing.T) {
	spec, err := LoadConfig("testdata/freebsd-example/guest.json")
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := filepath.Abs("testdata/freebsd-example")
	want := Spec{Name: "freebsd-14", OS: OSFreeBSD, Arch: DefaultArch, Version: "14.1-RELEASE",
		Symbols: filepath.Join(dir, "kernel.debug"), Disk: filepath.Join(dir, "freebsd-14.1.img"),
		User: "root", Password: "kspec", PasswordFile: filepath.Join(dir, "root-password"),
		MemoryMiB: 1024, CPUs: 1, Hostname: "kspec"}
	if *spec != want {
		t.Errorf("LoadConfig =\n%+v\nwant\n%+v", *spec, want)
	}
	data, _ := json.Marshal(spec)
	if strings.Contains(string(data), `"kspec"`) && strings.Contains(string(data), "password\":") {
		t.Errorf("the password is in the JSON: %s", data)
	}
	for _, key := range []string{`"name"`, `"os"`, `"arch"`, `"version"`, `"kernel"`, `"symbols"`, `"initrd"`} {
		if !strings.Contains(string(data), key) {
			t.Errorf("JSON lacks the contract key %s: %s", key, data)
		}
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"bzImage", "vmlinux", "initrd.img", "disk.img", "kernel.debug", "pw"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		config  string
		check   func(t *testing.T, s *Spec)
		wantErr []string // substrings of the error; nil: no error
	}{
		{"linux with defaults", `{"os": "linux", "kernel": "bzImage", "symbols": "vmlinux", "initrd": "initrd.img", "password": ""}`,
			func(t *testing.T, s *Spec) {
				if s.Name != "guest" || s.Kernel != filepath.Join(dir, "bzImage") || s.Append != "console=ttyS0 nokaslr panic=-1 quiet" ||
					s.User != "root" || s.MemoryMiB != DefaultMemoryMiB || s.CPUs != 1 || s.Arch != "x86_64" {
					t.Errorf("spec = %+v", s)
				}
			}, nil},
		{"explicit empty append", `{"os": "linux", "kernel": "bzImage", "symbols": "vmlinux", "append": "", "password": "x"}`,
			func(t *testing.T, s *Spec) {
				if s.Append != "" {
					t.Errorf("append = %q", s.Append)
				}
			}, nil},
		{"absolute paths", `{"os": "linux", "kernel": "` + filepath.Join(dir, "bzImage") + `", "symbols": "vmlinux", "disk": "disk.img", "password_file": "pw"}`,
			func(t *testing.T, s *Spec) {
				if s.Password != "x" || s.Disk != filepath.Join(dir, "disk.img") {
					t.Errorf("spec = %+v", s)
				}
			}, nil},
		{"missing os", `{"kernel": "bzImage", "symbols": "vmlinux", "password": ""}`, nil, []string{"os: missing", `"linux"`, `"freebsd"`}},
		{"unknown os", `{"os": "plan9", "symbols": "vmlinux", "password": ""}`, nil, []string{`os: "plan9" is not supported`}},
		{"typo in a key", `{"os": "linux", "kernal": "bzImage", "symbols": "vmlinux", "password": ""}`, nil, []string{`unknown field "kernal"`, "known keys"}},
		{"wrong type", `{"os": "linux", "kernel": "bzImage", "symbols": "vmlinux", "password": "", "memory_mib": "lots"}`, nil, []string{"memory_mib", "number"}},
		{"not JSON", `{"os": linux}`, nil, []string{"not valid JSON"}},
		{"trailing data", `{"os": "linux", "kernel": "bzImage", "symbols": "vmlinux", "password": ""} {}`, nil, []string{"trailing data"}},
		{"no symbols", `{"os": "linux", "kernel": "bzImage", "password": ""}`, nil, []string{"symbols: missing"}},
		{"symbols missing on disk", `{"os": "freebsd", "disk": "disk.img", "symbols": "nosuch.debug", "password": ""}`, nil,
			[]string{"symbols: " + filepath.Join(dir, "nosuch.debug") + " does not exist", "kernel.debug"}},
		{"freebsd needs a disk", `{"os": "freebsd", "symbols": "kernel.debug", "password": ""}`, nil, []string{"disk: missing", "comconsole"}},
		{"freebsd has no kernel", `{"os": "freebsd", "kernel": "bzImage", "disk": "disk.img", "symbols": "kernel.debug", "password": ""}`, nil, []string{`kernel: FreeBSD`, `remove "kernel"`}},
		{"linux needs a kernel or disk", `{"os": "linux", "symbols": "vmlinux", "password": ""}`, nil, []string{"kernel: missing"}},
		{"initrd without kernel", `{"os": "linux", "disk": "disk.img", "initrd": "initrd.img", "symbols": "vmlinux", "password": ""}`, nil, []string{`initrd: only used with "kernel"`}},
		{"both passwords", `{"os": "linux", "kernel": "bzImage", "symbols": "vmlinux", "password": "a", "password_file": "pw"}`, nil, []string{"password, password_file"}},
		{"no password", `{"os": "linux", "kernel": "bzImage", "symbols": "vmlinux"}`, nil, []string{"password: missing", "password_file"}},
		{"missing password file", `{"os": "linux", "kernel": "bzImage", "symbols": "vmlinux", "password_file": "nosuch"}`, nil, []string{"password_file:"}},
		{"too little memory", `{"os": "linux", "kernel": "bzImage", "symbols": "vmlinux", "password": "", "memory_mib": 16}`, nil, []string{"memory_mib: 16 is too small"}},
		{"other arch", `{"os": "linux", "arch": "riscv64", "kernel": "bzImage", "symbols": "vmlinux", "password": ""}`, nil, []string{`arch: "riscv64" is not supported`}},
		{"several errors at once", `{"os": "linux", "kernel": "nosuch", "symbols": "vmlinux", "password": "", "cpus": 1000}`, nil, []string{"kernel: ", "cpus: 1000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "guest.json")
			if err := os.WriteFile(path, []byte(tt.config), 0o644); err != nil {
				t.Fatal(err)
			}
			spec, err := LoadConfig(path)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				tt.check(t, spec)
				return
			}
			if err == nil {
				t.Fatalf("LoadConfig accepted %s", tt.config)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestLookup(t *testing.T) {
	if s, err := Lookup("testdata/freebsd-example/guest.json", t.TempDir()); err != nil || s.OS != OSFreeBSD {
		t.Errorf("Lookup(path) = %+v, %v", s, err)
	}
	if _, err := Lookup("debian-cloud", t.TempDir()); err == nil || !strings.Contains(err.Error(), "guest prepare") {
		t.Errorf("Lookup(name) in an empty cache = %v", err)
	}
}

func TestProfileFor(t *testing.T) {
	tests := []struct {
		os     string
		prompt string // must match ShellPrompt
		login  string
		pass   string
		ok     bool
	}{
		{"linux", "root@kspec:~# \x1b[6n", "\r\nkspec login: ", "Password: ", true},
		{"Linux", "# ", "login: ", "Password: ", true},
		{"freebsd", "root@kspec:~ # ", "\r\nFreeBSD/amd64 (kspec) (ttyu0)\r\n\r\nlogin: ", "Password:", true},
		{"windows", "", "", "", false},
	}
	for _, tt := range tests {
		p, err := ProfileFor(tt.os)
		if (err == nil) != tt.ok {
			t.Errorf("ProfileFor(%q) = %v", tt.os, err)
			continue
		}
		if !tt.ok {
			continue
		}
		if !p.ShellPrompt.MatchString(tt.prompt) || !p.LoginPrompt.MatchString(tt.login) || !p.PasswordPrompt.MatchString(tt.pass) {
			t.Errorf("%s: prompts do not match", tt.os)
		}
		if p.ShellPrompt.MatchString(tt.login) || p.ShellPrompt.MatchString(tt.pass) || p.LoginPrompt.MatchString(tt.prompt) {
			t.Errorf("%s: prompts are confused with each other", tt.os)
		}
	}
}
