package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kspec/kspec/qmp"
)

func TestPreferredDumpFormat(t *testing.T) {
	for _, tc := range []struct {
		offered []string
		want    string
	}{
		{[]string{"elf", "kdump-zlib", "kdump-lzo", "kdump-snappy", "win-dmp"}, "kdump-zlib"},
		{[]string{"elf", "kdump-lzo"}, "kdump-lzo"},
		{[]string{"elf", "kdump-snappy", "kdump-lzo"}, "kdump-snappy"},
		{[]string{"elf"}, "elf"},
		{nil, "elf"},
	} {
		if got := qmp.PreferredDumpFormat(tc.offered); got != tc.want {
			t.Errorf("PreferredDumpFormat(%q) = %q, want %q", tc.offered, got, tc.want)
		}
	}
}

func TestSlug(t *testing.T) {
	for in, want := range map[string]string{
		"fs mkdir hits do_mkdirat in fs/namei.c": "fs-mkdir-hits-do_mkdirat-in-fs-namei.c",
		"  ":                                     "spec",
		"[It] a/b":                               "It-a-b",
		strings.Repeat("x", 100):                 strings.Repeat("x", 80),
	} {
		if got := slug(in); got != want {
			t.Errorf("slug(%q) = %q, want %q", in, got, want)
		}
	}
}

// needTool returns the path of a tool a test runs, failing loudly when it
// is missing (skipping with KSPEC_SKIP_MISSING=1).
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv(SkipMissingEnv) == "1" {
			t.Skipf("%s=1: %s not found", SkipMissingEnv, name)
		}
		t.Fatalf("%s not found (%v): apt-get install -y %s (scripts/setup does)", name, err, pkg)
	}
	return p
}

// runWithStdin runs a tool with commands on stdin and returns its output.
func runWithStdin(ctx context.Context, t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir()) // no ~/.crashrc or ~/.gdbinit
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// A core taken at a do_mkdirat hit opens in crash, which names the mkdir
// task and, from the hit's stack pointer, its system-call backtrace; the
// ELF core opens in gdb, which reads the running kernel's init_uts_ns from
// it and stands at do_mkdirat. Sizes and dump times are logged.
//
// Debian bookworm's crash 8.0.2 does not know the exception-stack layout
// of the 6.1.1xx kernels ("(unknown) STACK SIZE: 0" in `mach`), so its
// plain `bt` fails on every task of such a kernel, with any core; `bt -S`
// with the stack pointer (kspec's, equal to the core's NT_PRSTATUS one)
// walks the task's stack instead.
func TestVmcoreAtMkdirOpensInCrashAndGDB(t *testing.T) {
	crash := needTool(t, "crash", "crash")
	gdb := needTool(t, "gdb", "gdb")
	tg := bootForTest(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bp, err := tg.Break(ctx, "do_mkdirat")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tg.Start(ctx, "mkdir /tmp/cored"); err != nil {
		t.Fatal(err)
	}
	hit, err := bp.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	task, err := hit.Task(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rsp, err := tg.cpuRegister(ctx, hit.CPU, "rsp")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kdump, err := tg.Vmcore(ctx, filepath.Join(dir, "vmcore"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("core: %s", kdump)
	if !strings.HasPrefix(kdump.Format, "kdump-") {
		t.Errorf("format %s: QEMU 7.2 offers compressed kdump, which should be chosen", kdump.Format)
	}
	// The guest is still stopped at the hit: a second core (ELF, for gdb)
	// shows the same instant.
	os.Setenv("KSPEC_VMCORE_FORMAT", "elf")
	elf, err := tg.Vmcore(ctx, filepath.Join(dir, "vmcore.elf"))
	os.Unsetenv("KSPEC_VMCORE_FORMAT")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("core: %s", elf)
	if err := tg.stoppedAt(ctx, hit); err != nil {
		t.Errorf("after the dumps: %v", err)
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, "*.partial")); len(matches) > 0 {
		t.Errorf("partial files left: %v", matches)
	}

	vmlinux := tg.Spec().Symbols
	for _, core := range []Vmcore{kdump} { // crash reads the ELF core too, but each load costs ~30 s
		out := runWithStdin(ctx, t, fmt.Sprintf("ps | grep mkdir\nbt -S %#x %d\nquit\n", rsp, task.PID), crash, "-s", vmlinux, core.Path)
		t.Logf("crash on %s:\n%s", core.Format, out)
		psLine := regexp.MustCompile(fmt.Sprintf(`(?m)^>?\s+%d\s+.*\smkdir$`, task.PID))
		if !psLine.MatchString(out) {
			t.Errorf("crash (%s core): ps does not list mkdir as pid %d", core.Format, task.PID)
		}
		for _, want := range []string{
			fmt.Sprintf(`PID: %d .*COMMAND: "mkdir"`, task.PID),
			`\] __x64_sys_mkdir at `,
			`\] do_syscall_64 at `,
			`ORIG_RAX: 0000000000000053`, // the mkdir system call (83)
		} {
			if !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("crash (%s core): bt has no %q", core.Format, want)
			}
		}
	}
	out := runWithStdin(ctx, t, "", gdb, "-batch", "-ex", "p init_uts_ns.name.nodename", "-ex", "p init_uts_ns.name.release", vmlinux, elf.Path)
	t.Logf("gdb on the ELF core:\n%s", out)
	// The vmlinux says "(none)"; only the core has the guest's hostname.
	host := tg.Spec().Hostname
	if host == "" {
		t.Fatalf("guest %s has no hostname to look for", tg.Spec().Name)
	}
	if !strings.Contains(out, fmt.Sprintf("%q", host)) {
		t.Errorf("gdb did not read nodename %q from the core", host)
	}
	if !strings.Contains(out, "#0  do_mkdirat (") {
		t.Errorf("gdb's frame of the core is not at do_mkdirat")
	}
	if !strings.Contains(out, tg.Spec().Version) {
		t.Errorf("gdb did not read release %s", tg.Spec().Version)
	}
}

// How to open a core: crash always; the guest CPU's gdb for an ELF core,
// and a word that Debian's crash reads only its own architecture.
func TestVmcoreString(t *testing.T) {
	for _, tc := range []struct {
		name    string
		v       Vmcore
		want    []string
		notWant []string
	}{
		{"amd64 kdump", Vmcore{Path: "/l/vmcore", Format: "kdump-zlib", Symbols: "/g/vmlinux", GDB: "gdb"},
			[]string{"open with: crash /g/vmlinux /l/vmcore", "gdb cannot read kdump cores"}, []string{"built for"}},
		{"amd64 elf, GDB unset", Vmcore{Path: "/l/vmcore", Format: "elf", Symbols: "/g/vmlinux"},
			[]string{"or:        gdb /g/vmlinux /l/vmcore"}, []string{"built for"}},
		{"arm64 elf", Vmcore{Path: "/l/vmcore", Format: "elf", Symbols: "/g/vmlinux", GDB: "gdb-multiarch"},
			[]string{"or:        gdb-multiarch /g/vmlinux /l/vmcore", "a crash built for the guest's CPU"}, nil},
		{"arm64 kdump", Vmcore{Path: "/l/vmcore", Format: "kdump-zlib", Symbols: "/g/vmlinux", GDB: "gdb-multiarch"},
			[]string{"gdb-multiarch cannot read kdump cores"}, nil},
	} {
		s := tc.v.String()
		for _, w := range tc.want {
			if !strings.Contains(s, w) {
				t.Errorf("%s: %q lacks %q", tc.name, s, w)
			}
		}
		for _, w := range tc.notWant {
			if strings.Contains(s, w) {
				t.Errorf("%s: %q has %q", tc.name, s, w)
			}
		}
	}
}
