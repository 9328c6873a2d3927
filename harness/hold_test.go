package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kspec/kspec/source"
)

func TestGDBCommandQuoting(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "fs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "fs", "namei.c"), []byte("{\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tree, err := source.New(root, func(yield func(source.Unit) bool) error {
		yield(source.Unit{Name: "fs/namei.c", CompDir: "debian/build/b"})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		gdb, vmlinux, sock string
		tree               *source.Tree
		want               string
	}{
		{"gdb", "/c/vmlinux", "/tmp/kspec-run-1/hold.sock", nil, "gdb -q -ex 'target remote /tmp/kspec-run-1/hold.sock' /c/vmlinux"},
		{"gdb", "/my dir/it's", "/tmp/r/hold.sock", nil, `gdb -q -ex 'target remote /tmp/r/hold.sock' '/my dir/it'\''s'`},
		{"gdb", "/c/vmlinux", "/tmp/r/hold.sock", tree, "gdb -q -ex 'set substitute-path debian/build/b " + root + "' -ex 'target remote /tmp/r/hold.sock' /c/vmlinux"},
		{"gdb-multiarch", "/a/vmlinux", "/tmp/r/hold.sock", nil, "gdb-multiarch -q -ex 'target remote /tmp/r/hold.sock' /a/vmlinux"},
	} {
		if got := gdbCommand(tc.gdb, tc.vmlinux, tc.sock, tc.tree); got != tc.want {
			t.Errorf("gdbCommand(%q, %q) = %s, want %s", tc.vmlinux, tc.sock, got, tc.want)
		}
	}
}

// gdbFrame matches a frame line of gdb's bt: "#1  0x... in NAME (" or
// "#0  NAME (".
var gdbFrame = regexp.MustCompile(`(?m)^#(\d+)\s+(?:0x[0-9a-f]+ in )?(\S+) \(`)

// A spec that fails at a do_mkdirat hit with the hold switch leaves the
// guest stopped there; the printed gdb command attaches (gdb in batch
// mode), gdb's bt names kspec's frames, and when gdb quits no QEMU and no
// run dir are left.
func TestHoldHandsTheFailingStopToGDB(t *testing.T) {
	gdb, err := exec.LookPath("gdb")
	if err != nil {
		t.Fatalf("gdb not found (%v): apt-get install -y gdb", err)
	}
	tg := bootForTest(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bp, err := tg.Break(ctx, "do_mkdirat")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tg.Start(ctx, "mkdir /tmp/held"); err != nil {
		t.Fatal(err)
	}
	hit, err := bp.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The spec's assertion fails here, on purpose; its failure hook holds.
	t.Logf("failing on purpose at %s", hit)
	pid, runDir := tg.Machine().PID(), tg.Machine().Paths().RunDir

	type gdbRun struct {
		out string
		err error
	}
	ran := make(chan gdbRun, 1)
	var held Held
	err = tg.Hold(ctx, HoldOptions{Limit: 2 * time.Minute, Announce: func(h Held) {
		held = h
		t.Logf("announced:\n%s", h)
		fi, err := os.Stat(h.Socket)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("hold socket %s: %v %v, want mode 0600", h.Socket, fi.Mode(), err)
		}
		// Run exactly the printed command, in batch mode, through a shell.
		go func() {
			cmd := exec.CommandContext(ctx, "sh", "-c", h.GDBCommand+" -batch -ex bt -ex list")
			cmd.Env = append(os.Environ(), "HOME="+t.TempDir()) // no ~/.gdbinit
			out, err := cmd.CombinedOutput()
			ran <- gdbRun{string(out), err}
		}()
	}})
	if err != nil {
		t.Fatalf("hold: %v", err)
	}
	g := <-ran
	if g.err != nil {
		t.Fatalf("%s: %v\n%s", gdb, g.err, g.out)
	}
	t.Logf("gdb:\n%s", g.out)
	if held.BacktraceErr != nil {
		t.Fatalf("kspec's backtrace: %v", held.BacktraceErr)
	}
	var gdbNames []string
	for _, m := range gdbFrame.FindAllStringSubmatch(g.out, -1) {
		gdbNames = append(gdbNames, m[2])
	}
	if len(gdbNames) < len(held.Backtrace) {
		t.Fatalf("gdb's bt has %d frames %v, kspec's %d", len(gdbNames), gdbNames, len(held.Backtrace))
	}
	for i, f := range held.Backtrace {
		if gdbNames[i] != f.Function {
			t.Errorf("frame #%d: gdb %s, kspec %s", i, gdbNames[i], f.Function)
		}
	}
	if held.Backtrace[0].Function != "do_mkdirat" {
		t.Errorf("kspec's frame #0 is %s, want do_mkdirat", held.Backtrace[0].Function)
	}
	// With a prepared source tree, the printed command's substitute-path
	// rules let gdb's list show the stop's line, as kspec does.
	if _, err := tg.Source(); err != nil {
		if os.Getenv("KSPEC_TEST_SOURCE") == "1" { // scripts/test prepared it
			t.Errorf("no source tree for the guest: %v", err)
		}
		t.Logf("source part skipped: %v", err)
	} else {
		want := fmt.Sprintf("%d\t%s\n", held.Stop.Line, held.Stop.Source)
		if held.Stop.Source == "" || !strings.Contains(g.out, want) || strings.Contains(g.out, "No such file") {
			t.Errorf("gdb's list does not show %q (kspec's line of %s:%d)", want, held.Stop.File, held.Stop.Line)
		}
		if !strings.Contains(held.GDBCommand, "set substitute-path") || !strings.Contains(held.String(), "=> ") {
			t.Errorf("the hold announcement lacks the substitute-path rules or the source:\n%s", held)
		}
	}
	if !strings.Contains(g.out, "detached") {
		t.Errorf("gdb did not detach when it quit")
	}
	// Nothing left behind once gdb quit and Hold returned.
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("QEMU pid %d still exists after the hold (kill 0: %v)", pid, err)
	}
	if _, err := os.Stat(runDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("run dir %s still exists after the hold (%v)", runDir, err)
	}
}
