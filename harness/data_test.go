package harness

import (
	"errors"
	"strings"
	"testing"

	"github.com/onsi/gomega"

	"github.com/kspec/kspec/symbols"
)

func TestDataValues(t *testing.T) {
	for _, tc := range []struct {
		d       Data
		u       uint64
		i       int64
		wantErr bool
	}{
		{Data{Bytes: []byte{0xff}}, 0xff, -1, false},
		{Data{Bytes: []byte{0x34, 0x12}}, 0x1234, 0x1234, false},
		{Data{Bytes: []byte{0xfe, 0xff, 0xff, 0xff}}, 0xfffffffe, -2, false},
		{Data{Bytes: []byte{1, 0, 0, 0, 0, 0, 0, 0x80}}, 0x8000000000000001, -0x7fffffffffffffff, false},
		// a 3-bit field at bit 5 of 0b1110_0000 | ... = 0b111 -> -1 signed
		{Data{Value: symbols.Value{BitOffset: 5, BitSize: 3}, Bytes: []byte{0xe0, 0, 0, 0}}, 7, -1, false},
		{Data{Value: symbols.Value{BitOffset: 4, BitSize: 2}, Bytes: []byte{0x10}}, 1, 1, false},
		{Data{Value: symbols.Value{Expr: "x", TypeName: "char [3]"}, Bytes: []byte{1, 2, 3}}, 0, 0, true},
	} {
		u, err := tc.d.Uint()
		if (err != nil) != tc.wantErr {
			t.Errorf("%v: Uint err = %v", tc.d.Bytes, err)
			continue
		}
		if tc.wantErr {
			if !errors.Is(err, ErrBadInput) {
				t.Errorf("error %v does not wrap ErrBadInput", err)
			}
			continue
		}
		i, _ := tc.d.Int()
		if u != tc.u || i != tc.i {
			t.Errorf("%v (bits %d@%d): got %#x/%d, want %#x/%d", tc.d.Bytes, tc.d.BitSize, tc.d.BitOffset, u, i, tc.u, tc.i)
		}
	}
	d := Data{Value: symbols.Value{Expr: "init_uts_ns.name.nodename", TypeName: "char [65]", Size: 65}, Bytes: append([]byte("kspec\x00junk"), make([]byte, 55)...)}
	if d.CString() != "kspec" {
		t.Errorf("CString = %q", d.CString())
	}
	if !strings.Contains(d.String(), `"kspec"`) {
		t.Errorf("String = %q", d.String())
	}
}

func TestIsCharTypes(t *testing.T) {
	for _, s := range []string{"char [65]", "unsigned char [6]", "const char [4]"} {
		if !isCharArray(s) {
			t.Errorf("%q is a char array", s)
		}
	}
	for _, s := range []string{"char const *", "const char *", "char *"} {
		if !isCharPointer(s) {
			t.Errorf("%q is a char pointer", s)
		}
	}
	if isCharPointer("char **") || isCharArray("int [4]") {
		t.Error("false positive")
	}
}

func TestDebugMatchers(t *testing.T) {
	g := gomega.NewWithT(t)
	frames := []Frame{
		{Function: "do_mkdirat", File: "fs/namei.c", Line: 4169, PC: 0xffffffff813632a0},
		{Function: "__do_sys_mkdir", File: "fs/namei.c", Line: 4206, PC: 0xffffffff81363505, Inlined: true},
		{Function: "__x64_sys_mkdir", File: "fs/namei.c", Line: 4204, PC: 0xffffffff81363505},
		{Function: "do_syscall_64", File: "arch/x86/entry/common.c", Line: 76, PC: 0xffffffff81a03f4d},
	}
	g.Expect(frames).To(HaveBacktraceContaining("__x64_sys_mkdir", "do_syscall_64"))
	g.Expect(frames).To(HaveBacktraceContaining("__do_sys_mkdir"))
	m := HaveBacktraceContaining("do_syscall_64", "__x64_sys_rmdir")
	ok, err := m.Match(frames)
	g.Expect(err).NotTo(gomega.HaveOccurred())
	g.Expect(ok).To(gomega.BeFalse())
	msg := m.FailureMessage(frames)
	g.Expect(msg).To(gomega.ContainSubstring("missing __x64_sys_rmdir"))
	g.Expect(msg).To(gomega.ContainSubstring("#2  0xffffffff81363505 in __x64_sys_mkdir at fs/namei.c:4204"))
	g.Expect(msg).To(gomega.ContainSubstring("__do_sys_mkdir at fs/namei.c:4206 [inlined]"))

	task := Task{Addr: 0xffff8880054fe000, Comm: "mkdir", PID: 91, TID: 91}
	g.Expect(task).To(HaveComm("mkdir"))
	c := HaveComm("rmdir")
	ok, err = c.Match(task)
	g.Expect(err).NotTo(gomega.HaveOccurred())
	g.Expect(ok).To(gomega.BeFalse())
	g.Expect(c.FailureMessage(task)).To(gomega.ContainSubstring(`to be "rmdir", it is mkdir[91] (task 0xffff8880054fe000)`))

	_, err = HaveComm("x").Match(42)
	g.Expect(err).To(gomega.MatchError(gomega.ContainSubstring("expects a *harness.Hit")))
	_, err = HaveBacktraceContaining("x").Match(&Hit{Function: "f"})
	g.Expect(err).To(gomega.MatchError(errNoTarget))
}
