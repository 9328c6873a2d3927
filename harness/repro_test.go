package harness

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A repro bundle written at a do_mkdirat hit names the exact guest and
// QEMU, and BootState boots straight into its saved state: the printed gdb
// command attaches, gdb's bt is kspec's backtrace at the hit, and when gdb
// quits no QEMU and no run dir are left. A bundle of another kernel build
// is refused.
func TestReproBundleBootsIntoTheFailingState(t *testing.T) {
	needTool(t, "gdb", "gdb")
	tg := bootForTest(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bp, err := tg.Break(ctx, "do_mkdirat")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tg.Start(ctx, "mkdir /tmp/repro"); err != nil {
		t.Fatal(err)
	}
	hit, err := bp.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	frames, err := hit.Backtrace(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	b, err := tg.WriteBundle(ctx, dir, "repro test at do_mkdirat", true)
	if err != nil {
		t.Fatal(err)
	}
	tg.Close()
	raw, err := os.ReadFile(filepath.Join(dir, BundleFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d bytes; state %d bytes", BundleFile, len(raw), b.State.Bytes)
	if b.Guest.Version != tg.Spec().Version || len(b.Guest.Artifacts) == 0 || len(b.Guest.Packages) == 0 {
		t.Errorf("bundle guest %+v: want version %s with packages and artifacts", b.Guest, tg.Spec().Version)
	}
	if b.QEMU.Version == "" || !slices.Contains(b.QEMU.Args, "vmcoreinfo") || b.State == nil || b.State.Thread != hit.CPU+1 {
		t.Errorf("bundle QEMU %+v, state %+v", b.QEMU, b.State)
	}

	// Another build of the same version is refused before anything boots.
	var bad Bundle
	if err := json.Unmarshal(raw, &bad); err != nil {
		t.Fatal(err)
	}
	bad.Guest.Artifacts[0].SHA256 = strings.Repeat("0", 64)
	if _, err := bad.CheckGuest(Options{}); !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "another build") {
		t.Errorf("a bundle of another build: %v, want ErrBadInput naming it", err)
	}

	type gdbRun struct {
		out string
		err error
	}
	ran := make(chan gdbRun, 1)
	var runDir string
	var qemuPID int
	err = BootState(ctx, Options{}, dir, HoldOptions{Limit: 2 * time.Minute, Announce: func(h Held) {
		t.Logf("announced:\n%s", h)
		runDir = filepath.Dir(h.Socket)
		if pids, err := os.ReadFile(filepath.Join(runDir, "pids")); err == nil {
			for _, line := range strings.Split(string(pids), "\n") {
				if f := strings.Fields(line); len(f) >= 2 && f[0] == "qemu" {
					qemuPID, _ = strconv.Atoi(f[1])
				}
			}
		}
		go func() {
			cmd := exec.CommandContext(ctx, "sh", "-c", h.GDBCommand+" -batch -ex bt")
			cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
			out, err := cmd.CombinedOutput()
			ran <- gdbRun{string(out), err}
		}()
	}})
	if err != nil {
		t.Fatalf("BootState: %v", err)
	}
	g := <-ran
	if g.err != nil {
		t.Fatalf("gdb: %v\n%s", g.err, g.out)
	}
	t.Logf("gdb:\n%s", g.out)
	var names []string
	for _, m := range gdbFrame.FindAllStringSubmatch(g.out, -1) {
		names = append(names, m[2])
	}
	if len(names) < len(frames) {
		t.Fatalf("gdb's bt %v is shorter than kspec's %d frames", names, len(frames))
	}
	for i, f := range frames {
		if names[i] != f.Function {
			t.Errorf("frame #%d: gdb %s, kspec %s", i, names[i], f.Function)
		}
	}
	if !strings.Contains(g.out, `"/tmp/repro"`) {
		t.Errorf("gdb does not see the mkdir of /tmp/repro in the saved state")
	}
	if qemuPID == 0 {
		t.Errorf("no QEMU pid found in %s", runDir)
	} else if err := syscall.Kill(qemuPID, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("QEMU pid %d still exists (kill 0: %v)", qemuPID, err)
	}
	if _, err := os.Stat(runDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("run dir %s still exists (%v)", runDir, err)
	}
}
