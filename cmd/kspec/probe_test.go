package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/kspec/kspec/guest"
	"github.com/kspec/kspec/harness"
)

// kernelFiles returns the kernel and symbols of $KSPEC_KERNEL and
// $KSPEC_SYMBOLS, or else of the prepared default guest.
func kernelFiles(t *testing.T) (kernel, vmlinux string) {
	t.Helper()
	kernel, vmlinux = os.Getenv("KSPEC_KERNEL"), os.Getenv("KSPEC_SYMBOLS")
	if kernel != "" && vmlinux != "" {
		return kernel, vmlinux
	}
	spec, err := guest.Find(harness.DefaultGuest, "")
	if err == nil {
		return spec.Kernel, spec.Symbols
	}
	if os.Getenv("KSPEC_SKIP_MISSING") == "1" {
		t.Skip("no prepared guest and KSPEC_KERNEL/KSPEC_SYMBOLS not set")
	}
	t.Fatalf("no kernel to test with (%v): run go run ./cmd/kspec guest prepare, or set KSPEC_KERNEL and KSPEC_SYMBOLS (KSPEC_SKIP_MISSING=1 skips)", err)
	return "", ""
}

func runKspec(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestSymResolvesExpressions(t *testing.T) {
	_, vmlinux := kernelFiles(t)
	code, out, stderr := runKspec("sym", "--no-index", "--symbols", vmlinux, "--json", "init_uts_ns.name.nodename", "init_task.comm[2]", "do_mkdirat", "do_mkdirat+5")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got []symResult
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(got) != 4 {
		t.Fatalf("got %d results: %s", len(got), out)
	}
	if g := got[0]; g.Type != "char [65]" || g.Size != 65 || !strings.HasPrefix(g.Addr, "0xffffffff") {
		t.Errorf("nodename: %+v", g)
	}
	if g := got[1]; g.Type != "char" || g.Size != 1 {
		t.Errorf("comm[2]: %+v", g)
	}
	if g := got[2]; g.Name != "do_mkdirat" || g.File != "fs/namei.c" || g.Type != "" {
		t.Errorf("do_mkdirat: %+v", g)
	}
	if g := got[3]; g.Name != "do_mkdirat" || g.Offset != 5 {
		t.Errorf("do_mkdirat+5: %+v", g)
	}
}

// Bad expressions and addresses exit 2 and name the problem, and probe
// checks its expression before it boots anything.
func TestSymAndProbeBadExpressions(t *testing.T) {
	kernel, vmlinux := kernelFiles(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"sym", "--no-index", "--symbols", vmlinux, "init_task.nosuch"}, `has no member "nosuch"`},
		{[]string{"sym", "--no-index", "--symbols", vmlinux, "nosuch_variable.x"}, `unknown symbol "nosuch_variable"`},
		{[]string{"sym", "--no-index", "--symbols", vmlinux, "init_task.comm[99]"}, "99"},
		{[]string{"sym", "--no-index", "--symbols", vmlinux, "0xfoo"}, `malformed address "0xfoo"`},
		{[]string{"probe", "--kernel", kernel, "--symbols", vmlinux, "--watch", "init_task.nosuch", "--run", "true"}, `--watch: `},
		{[]string{"probe", "--kernel", kernel, "--symbols", vmlinux, "--watch", "x", "--break", "y", "--run", "true"}, "not both"},
		{[]string{"probe", "--watch", "x"}, "--run CMD"},
	} {
		code, _, stderr := runKspec(tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 mentioning %q", tc.args, code, stderr, tc.want)
		}
		if strings.Contains(stderr, "booting") {
			t.Errorf("%q booted a guest before checking its input", tc.args)
		}
	}
}

func TestLooksLikeLocation(t *testing.T) {
	for q, want := range map[string]bool{
		"0xffffffff81000000": true, "*0xffffffff81000000": true, "do_mkdirat+5": true, "fs/namei.c:4169": true,
		"do_mkdirat": false, "init_uts_ns.name.nodename": false, "init_task.comm[2]": false, "a.isra.0": false,
	} {
		if got := looksLikeLocation(q); got != want {
			t.Errorf("%q: %v, want %v", q, got, want)
		}
	}
}
