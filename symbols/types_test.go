package symbols

import (
	"errors"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestParseExpr(t *testing.T) {
	tests := []struct {
		in    string
		name  string
		steps []exprStep
		bad   bool
	}{
		{in: "jiffies", name: "jiffies"},
		{in: "init_uts_ns.name.nodename", name: "init_uts_ns", steps: []exprStep{{member: "name"}, {member: "nodename"}}},
		{in: " init_task.comm[2] ", name: "init_task", steps: []exprStep{{member: "comm"}, {index: 2, isIdx: true}}},
		{in: "a[0x10][ 3 ].b", name: "a", steps: []exprStep{{index: 16, isIdx: true}, {index: 3, isIdx: true}, {member: "b"}}},
		{in: "_x9", name: "_x9"},
		{in: "", bad: true},
		{in: "9x", bad: true},
		{in: "a.", bad: true},
		{in: "a[", bad: true},
		{in: "a[i]", bad: true},
		{in: "a->b", bad: true},
		{in: "a+1", bad: true},
	}
	for _, tc := range tests {
		name, steps, err := parseExpr(tc.in)
		if tc.bad {
			if !errors.Is(err, ErrBadExpr) {
				t.Errorf("parseExpr(%q) = %q, %v, %v; want ErrBadExpr", tc.in, name, steps, err)
			}
			continue
		}
		if err != nil || name != tc.name || !reflect.DeepEqual(steps, tc.steps) {
			t.Errorf("parseExpr(%q) = %q, %+v, %v; want %q, %+v", tc.in, name, steps, err, tc.name, tc.steps)
		}
	}
}

// exprCases were answered by gdb 13 on debianCloud61 with
// printf "%#lx|%d", &(E), sizeof(E) and whatis E. Sizes and types hold
// for other 6.1 builds; addresses only for that one.
var exprCases = []struct {
	expr, addr string
	size       uint64
	typ        string
}{
	{"init_uts_ns.name.nodename", "0xffffffff82bf9ba1", 65, "char [65]"},
	{"init_uts_ns.name", "0xffffffff82bf9b60", 390, "struct new_utsname"},
	{"init_uts_ns", "0xffffffff82bf9b60", 432, "struct uts_namespace"},
	{"init_uts_ns.name.release[3]", "0xffffffff82bf9be5", 1, "char"},
	{"init_task.comm", "0xffffffff82a1b5e0", 16, "char [16]"},
	{"init_task.comm[2]", "0xffffffff82a1b5e2", 1, "char"},
	{"init_task.pid", "0xffffffff82a1b3b0", 4, "pid_t"},
	{"init_task.tasks.next", "0xffffffff82a1b2d0", 8, "struct list_head *"},
	{"init_task.thread_info.flags", "0xffffffff82a1aa40", 8, "unsigned long"},
	{"init_task.se.load", "0xffffffff82a1aac0", 16, "struct load_weight"},
	{"init_task.signal", "0xffffffff82a1b640", 8, "struct signal_struct *"},
	{"init_task.__state", "0xffffffff82a1aa58", 4, "unsigned int"},
	{"init_task.cpus_mask.bits", "0xffffffff82a1ae28", 1024, "unsigned long [128]"},
	{"init_task.rcu_read_unlock_special", "0xffffffff82a1b238", 4, "union rcu_special"},
	{"init_task.thread.fpu", "0xffffffff82a1bfc0", 4224, "struct fpu"},
	{"jiffies", "0xffffffff82a079c0", 8, "volatile unsigned long"},
	{"nr_cpu_ids", "0xffffffff82c39f50", 4, "unsigned int"},
}

func TestVmlinuxExpr(t *testing.T) {
	tb := openVmlinux(t)
	exact := tb.BuildID() == debianCloud61
	for _, tc := range exprCases {
		v, err := tb.Expr(tc.expr)
		if err != nil {
			t.Errorf("Expr(%s): %v", tc.expr, err)
			continue
		}
		if strings.HasPrefix(tc.expr, "init_uts_ns") || strings.HasPrefix(tc.expr, "init_task.comm") || exact {
			if v.Size != tc.size || v.TypeName != tc.typ {
				t.Errorf("Expr(%s) = %d bytes, %q; want %d, %q", tc.expr, v.Size, v.TypeName, tc.size, tc.typ)
			}
		}
		if want, _ := strconv.ParseUint(tc.addr, 0, 64); exact && v.Addr != want {
			t.Errorf("Expr(%s) at %#x, want %s", tc.expr, v.Addr, tc.addr)
		}
	}
	for _, bad := range []string{"init_uts_ns.nosuch", "init_uts_ns.name.nodename[65]", "init_task.comm.x", "init_task.signal[0]", "no_such_variable_xyz"} {
		if v, err := tb.Expr(bad); err == nil {
			t.Errorf("Expr(%s) = %v, want an error", bad, v)
		}
	}
}

// TestVmlinuxExprAgainstGDB asks gdb (if installed) about a few
// expressions on whatever vmlinux KSPEC_SYMBOLS names.
func TestVmlinuxExprAgainstGDB(t *testing.T) {
	if testing.Short() {
		t.Skip("runs gdb")
	}
	gdb, err := exec.LookPath("gdb")
	if err != nil {
		t.Skip("gdb is not installed")
	}
	tb := openVmlinux(t)
	exprs := []string{"init_uts_ns.name.nodename", "init_uts_ns.name", "init_uts_ns.name.release[3]", "jiffies", "nr_cpu_ids"}
	args := []string{"-nx", "-batch"}
	for _, e := range exprs {
		args = append(args, "-ex", `printf "%#lx|%d|", &(`+e+`), sizeof(`+e+`)`, "-ex", "whatis "+e)
	}
	out, err := exec.Command(gdb, append(args, tb.Path())...).CombinedOutput()
	if err != nil {
		t.Fatalf("gdb: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(exprs) {
		t.Fatalf("gdb said:\n%s", out)
	}
	for i, e := range exprs {
		v, err := tb.Expr(e)
		if err != nil {
			t.Errorf("Expr(%s): %v", e, err)
			continue
		}
		ours := strconv.FormatUint(v.Addr, 16)
		if got := "0x" + ours + "|" + strconv.FormatUint(v.Size, 10) + "|type = " + v.TypeName; got != lines[i] {
			t.Errorf("Expr(%s):\n ours %s\n gdb  %s", e, got, lines[i])
		}
	}
}

func TestVmlinuxOffsetof(t *testing.T) {
	tb := openVmlinux(t)
	task, err := tb.Expr("init_task")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ typ, path string }{
		{"struct task_struct", "comm"},
		{"task_struct", "comm[2]"},
		{"struct task_struct", "se.load"},
		{"task_struct", "thread_info.flags"},
	} {
		want, err := tb.Expr("init_task." + strings.TrimPrefix(prefixDot(tc.path), "."))
		if err != nil {
			t.Fatal(err)
		}
		got, err := tb.Offsetof(tc.typ, tc.path)
		if err != nil || got.Addr != want.Addr-task.Addr || got.Size != want.Size || got.TypeName != want.TypeName {
			t.Errorf("Offsetof(%s, %s) = %+v, %v; want offset %#x, %d bytes, %q", tc.typ, tc.path, got, err, want.Addr-task.Addr, want.Size, want.TypeName)
		}
	}
	if _, err := tb.Offsetof("union task_struct", "comm"); err == nil {
		t.Error("Offsetof(union task_struct) found a struct")
	}
	if _, err := tb.Offsetof("struct task_struct", "nosuch"); err == nil {
		t.Error("Offsetof(task_struct, nosuch) succeeded")
	}
}
