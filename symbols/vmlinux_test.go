package symbols

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// debianCloud61 is the build-id of the Debian vmlinux-6.1.0-56-cloud-amd64
// the exact line numbers below were taken from (with gdb 13).
const debianCloud61 = "3b43fad5034874490492495d552c0af6a5fab235"

// knownFunctions are answered the same by every recent x86-64 Linux; the
// lines are checked only on the build they were recorded from.
var knownFunctions = []struct {
	name string
	file string
	line int // on debianCloud61
}{
	{"do_mkdirat", "fs/namei.c", 4169},
	{"do_rmdir", "fs/namei.c", 4265},
	{"__do_sys_newuname", "kernel/sys.c", 1300},
	{"__x64_sys_mkdir", "fs/namei.c", 4204},
	{"vfs_mkdir", "fs/namei.c", 4143},
	{"kmalloc_trace", "mm/slab_common.c", 1025},
}

func TestVmlinuxFunctionLine(t *testing.T) {
	tb := openVmlinux(t)
	exact := tb.BuildID() == debianCloud61
	if !exact {
		t.Logf("build-id %s is not %s: checking files, not line numbers", tb.BuildID(), debianCloud61)
	}
	for _, kf := range knownFunctions {
		sym, err := tb.Lookup(kf.name)
		if err != nil {
			t.Errorf("Lookup(%s): %v", kf.name, err)
			continue
		}
		if sym.Kind != Func || sym.Size == 0 {
			t.Errorf("Lookup(%s) = %+v, want a sized function", kf.name, sym)
		}
		loc, err := tb.FunctionLine(kf.name)
		if err != nil {
			t.Errorf("FunctionLine(%s): %v", kf.name, err)
			continue
		}
		if loc.File != kf.file || loc.Function != kf.name || loc.Addr != sym.Addr || loc.Line <= 0 || loc.End <= loc.Addr {
			t.Errorf("FunctionLine(%s) = %+v, want %s at %#x", kf.name, loc, kf.file, sym.Addr)
		}
		if exact && loc.Line != kf.line {
			t.Errorf("FunctionLine(%s) line = %d, want %d", kf.name, loc.Line, kf.line)
		}
		if s, off, err := tb.SymbolAt(sym.Addr + 1); err != nil || s.Name != kf.name || off != 1 {
			t.Errorf("SymbolAt(%s+1) = %v+%d, %v", kf.name, s.Name, off, err)
		}
	}
}

func TestVmlinuxBuildID(t *testing.T) {
	tb := openVmlinux(t)
	if !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(tb.BuildID()) {
		t.Errorf("BuildID() = %q, want 40 hex digits", tb.BuildID())
	}
}

func TestVmlinuxSuggestions(t *testing.T) {
	tb := openVmlinux(t)
	tests := []struct{ name, suggest string }{
		{"sys_mkdir", "__x64_sys_mkdir"},
		{"mkdirat", "__x64_sys_mkdirat"},
		{"do_mkdir", "do_mkdirat"},
		{"do_mkdriat", "do_mkdirat"},
	}
	for _, tc := range tests {
		_, err := tb.Lookup(tc.name)
		var ue *UnknownSymbolError
		if !errors.As(err, &ue) || !errors.Is(err, ErrUnknownSymbol) {
			t.Errorf("Lookup(%q) = %v, want an UnknownSymbolError", tc.name, err)
			continue
		}
		if !slices.Contains(ue.Suggestions, tc.suggest) || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("Lookup(%q) error %q does not suggest %q", tc.name, err, tc.suggest)
		}
	}
}

// TestVmlinuxAgainstGDB asks gdb (if installed) `info line` for the known
// functions and a spread of other functions and compares the answers.
func TestVmlinuxAgainstGDB(t *testing.T) {
	if testing.Short() {
		t.Skip("runs gdb on the whole vmlinux")
	}
	gdb, err := exec.LookPath("gdb")
	if err != nil {
		t.Skip("gdb is not installed")
	}
	var names []string
	for _, kf := range knownFunctions {
		names = append(names, kf.name)
	}
	compareInfoLine(t, openVmlinux(t), gdb, names)
}

// The arm64 vmlinux ($KSPEC_ARM64_SYMBOLS, the debian-cloud-arm64 guest's)
// against gdb-multiarch: functions with an ftrace patch site start, for
// gdb's `info line` as for FunctionLine, after its NOPs.
func TestArm64VmlinuxAgainstGDB(t *testing.T) {
	if testing.Short() {
		t.Skip("runs gdb-multiarch on the whole vmlinux")
	}
	gdb, err := exec.LookPath("gdb-multiarch")
	if err != nil {
		t.Fatal("gdb-multiarch is not installed (apt-get install gdb-multiarch; scripts/setup does)")
	}
	tb, err := Open(vmlinuxFrom(t, "KSPEC_ARM64_SYMBOLS", "usr/lib/debug/boot/vmlinux-<abi> from linux-image-<abi>-cloud-arm64-dbg"))
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	if tb.elf.Machine != elf.EM_AARCH64 {
		t.Fatalf("%s is %v, not an arm64 vmlinux", tb.Path(), tb.elf.Machine)
	}
	names := []string{"do_mkdirat", "do_rmdir", "__do_sys_newuname", "__arm64_sys_mkdirat", "vfs_mkdir", "invoke_syscall", "el0_svc"}
	sym, err := tb.Lookup("do_mkdirat")
	if err != nil {
		t.Fatal(err)
	}
	if entry := tb.FunctionEntry(sym); entry != sym.Addr+8 {
		t.Errorf("FunctionEntry(do_mkdirat) = %#x, want %#x, after the two NOPs of its patch site at %#x", entry, sym.Addr+8, sym.Addr)
	}
	compareInfoLine(t, tb, gdb, names)
}

// compareInfoLine compares FunctionLine of names, plus every 2000th unique
// sized function (a spread over the image), with gdb's `info line`.
func compareInfoLine(t *testing.T, tb *Table, gdb string, names []string) {
	t.Helper()
	count := map[string]int{}
	var funcs []string
	tb.Symbols(func(s Symbol) bool {
		count[s.Name]++
		if s.Kind == Func && s.Size > 0 {
			funcs = append(funcs, s.Name)
		}
		return true
	})
	for i := 0; i < len(funcs); i += 2000 {
		if count[funcs[i]] == 1 {
			names = append(names, funcs[i])
		}
	}
	args := []string{"-nx", "-batch"}
	for _, n := range names {
		args = append(args, "-ex", "echo @@@\\n", "-ex", "info line "+n)
	}
	args = append(args, tb.Path())
	out, err := exec.Command(gdb, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("gdb: %v\n%s", err, out)
	}
	answers := map[int][]string{}
	q := -1
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if sc.Text() == "@@@" {
			q++
			continue
		}
		if q >= 0 {
			answers[q] = append(answers[q], stripSymbols(sc.Text()))
		}
	}
	matched := 0
	for i, n := range names {
		var ours string
		loc, err := tb.FunctionLine(n)
		switch {
		case errors.Is(err, ErrNoLine):
			sym, _ := tb.Lookup(n)
			ours = fmt.Sprintf("No line number information available for address %#x", tb.FunctionEntry(sym))
		case err != nil:
			t.Errorf("FunctionLine(%s): %v", n, err)
			continue
		default:
			ours = stripSymbols(tb.GDBInfoLine(loc))
		}
		if slices.Contains(answers[i], ours) {
			matched++
		} else {
			t.Errorf("%s:\n ours: %s\n gdb:  %s", n, ours, strings.Join(answers[i], "\n       "))
		}
	}
	t.Logf("%d/%d functions match %s", matched, len(names), gdb)
}

// stripSymbols removes gdb's <symbol+offset> annotations, which name
// addresses after DWARF functions where we use ELF symbols.
func stripSymbols(s string) string {
	return regexp.MustCompile(` <[^>]*>`).ReplaceAllString(s, "")
}

func TestVmlinuxIndex(t *testing.T) {
	path := vmlinux(t)
	dir := t.TempDir()
	plain := openVmlinux(t)
	queries := []string{"do_mkdirat", "vfs_mkdir", "entry_SYSCALL_64", "init_uts_ns"}
	for round := range 3 {
		tb, err := OpenIndexed(path, dir)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := tb.IndexPath(dir)
		if tb.IndexFile() != want {
			t.Errorf("round %d: IndexFile() = %q, want %q", round, tb.IndexFile(), want)
		}
		if !strings.Contains(want, tb.BuildID()) {
			t.Errorf("index path %q is not keyed by the build-id", want)
		}
		for _, q := range queries {
			a, errA := tb.Resolve(q)
			b, errB := plain.Resolve(q)
			if a != b || (errA == nil) != (errB == nil) {
				t.Errorf("round %d: indexed Resolve(%s) = %v, %v; plain %v, %v", round, q, a, errA, b, errB)
			}
		}
		// An address no unit covers is answered from the stored map.
		sym, _ := tb.Lookup("__SCT__tp_func_workqueue_execute_end")
		if sym.Addr != 0 {
			if _, err := tb.LineAt(sym.Addr); !errors.Is(err, ErrNoLine) {
				t.Errorf("LineAt(__SCT__...) = %v, want ErrNoLine", err)
			}
		}
		tb.Close()
		if round == 1 {
			// Damage the index: the next open must rebuild it.
			if err := os.WriteFile(want, []byte("KSPECSYMgarbage"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestVmlinuxConcurrent(t *testing.T) {
	tb := openVmlinux(t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				kf := knownFunctions[(g+i)%len(knownFunctions)]
				loc, err := tb.FunctionLine(kf.name)
				if err != nil || loc.File != kf.file {
					t.Errorf("FunctionLine(%s) = %v, %v", kf.name, loc, err)
					return
				}
				if _, _, err := tb.SymbolAt(loc.Addr); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestVmlinuxLineAddrs checks breakpoint addresses of source lines against
// gdb's `break FILE:LINE` on debianCloud61.
func TestVmlinuxLineAddrs(t *testing.T) {
	tb := openVmlinux(t)
	if tb.BuildID() != debianCloud61 {
		t.Skip("addresses recorded on", debianCloud61)
	}
	tests := []struct {
		file string
		line int
		want string
	}{
		{"fs/namei.c", 4186, "do_mkdirat@0xffffffff813633ce fs/namei.c:4186"},
		{"fs/namei.c", 4170, "do_mkdirat@0xffffffff813632d5 fs/namei.c:4170"},
		{"fs/namei.c", 4169, "do_mkdirat@0xffffffff813632a0 fs/namei.c:4169"},
	}
	for _, tc := range tests {
		locs, err := tb.LineAddrs(tc.file, tc.line)
		if err != nil || len(locs) != 1 || fmt.Sprintf("%s@%#x %s", locs[0].Function, locs[0].Addr, locs[0]) != tc.want {
			t.Errorf("LineAddrs(%s:%d) = %v, %v; want %s", tc.file, tc.line, locs, err, tc.want)
		}
	}
}

// TestVmlinuxInlinedCopies checks the breakpoint locations of a function
// that exists only inlined: __do_sys_sethostname, inlined into
// __x64_sys_sethostname and __ia32_sys_sethostname with no out-of-line
// copy in the Debian cloud kernels 6.1.0-57, 6.12.117 and 7.2.13. Each
// copy's entry must lie in a function, and the inline chain there must
// start with the copy's function.
func TestVmlinuxInlinedCopies(t *testing.T) {
	tb := openVmlinux(t)
	const name = "__do_sys_sethostname"
	if _, err := tb.Lookup(name); err == nil {
		t.Logf("%s is out of line in this kernel: no inlined-only function to check", name)
		if got, err := tb.FirstOf(name); err != nil || got != name {
			t.Errorf("FirstOf(%s) = %q, %v", name, got, err)
		}
		return
	}
	copies, err := tb.InlinedCopies(name)
	if err != nil {
		t.Fatalf("InlinedCopies(%s): %v", name, err)
	}
	for _, c := range copies {
		sym, _, err := tb.SymbolAt(c.Entry)
		if err != nil {
			t.Errorf("copy at %#x is in no function: %v", c.Entry, err)
			continue
		}
		frames, err := tb.InlinedAt(c.Entry)
		if err != nil || len(frames) < 2 || frames[0].Function != name || !frames[0].Inlined {
			t.Errorf("InlinedAt(%#x) (in %s) = %+v, %v; want %s inlined first", c.Entry, sym.Name, frames, err, name)
		}
		t.Logf("%s inlined at %#x in %s (%s:%d)", name, c.Entry, sym.Name, frames[0].File, frames[0].Line)
	}
	if got, err := tb.FirstOf("kspec_no_such_function", name); err != nil || got != name {
		t.Errorf("FirstOf(missing, %s) = %q, %v", name, got, err)
	}
	if _, err := tb.FirstOf("kspec_no_such_function", "kspec_nor_this"); !errors.Is(err, ErrUnknownSymbol) {
		t.Errorf("FirstOf of missing names: %v, want ErrUnknownSymbol", err)
	}
}

// TestVmlinuxUnnamedMembers finds members that sit inside unnamed structs
// and unions, which kernel lines move them into: struct filename's name is
// in an unnamed struct __filename_head from Linux 7.0, struct file's f_path
// in an anonymous union in 7.x, and pcpu_hot.current_task (6.2-6.14) in an
// anonymous union and struct. The answers must not depend on the line.
func TestVmlinuxUnnamedMembers(t *testing.T) {
	tb := openVmlinux(t)
	for _, tc := range []struct{ typ, path, typeName string }{
		{"struct filename", "name", "char const *"},
		{"struct file", "f_path.dentry", "struct dentry *"},
		{"struct task_struct", "comm", "char [16]"},
	} {
		v, err := tb.Offsetof(tc.typ, tc.path)
		if err != nil {
			t.Errorf("Offsetof(%s, %s): %v", tc.typ, tc.path, err)
			continue
		}
		if v.TypeName != tc.typeName || v.Size == 0 {
			t.Errorf("Offsetof(%s, %s) = %+v, want a %s", tc.typ, tc.path, v, tc.typeName)
		}
	}
	if v, err := tb.Offsetof("struct filename", "name"); err == nil && v.Addr != 0 {
		t.Errorf("struct filename's name at %#x, want 0 (the path is its first word on every line)", v.Addr)
	}
	if _, err := tb.Lookup("pcpu_hot"); err == nil {
		v, err := tb.Expr("pcpu_hot.current_task")
		if err != nil || v.TypeName != "struct task_struct *" || v.Size != 8 {
			t.Errorf("Expr(pcpu_hot.current_task) = %+v, %v", v, err)
		}
	}
}
