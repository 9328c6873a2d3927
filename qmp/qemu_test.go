package qmp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// qemuVM is a real QEMU halted at reset (-S), firmware only, with a qcow2
// scratch drive as block node "scratch" for snapshots.
type qemuVM struct {
	cmd  *exec.Cmd
	mon  *Monitor
	dir  string
	done chan struct{}
}

const scratchNode = "scratch"

// needQEMU returns the paths of qemu-system-x86_64 and qemu-img, failing
// loudly (or skipping with KSPEC_SKIP_MISSING=1) when they are missing.
func needQEMU(tb testing.TB) (qemu, img string) {
	tb.Helper()
	qemu = os.Getenv("KSPEC_QEMU")
	if qemu == "" {
		qemu = "qemu-system-x86_64"
	}
	var err1, err2 error
	qemu, err1 = exec.LookPath(qemu)
	img, err2 = exec.LookPath("qemu-img")
	if err := errors.Join(err1, err2); err != nil {
		msg := fmt.Sprintf("QEMU is needed for this test (apt-get install qemu-system-x86 qemu-utils): %v", err)
		if os.Getenv("KSPEC_SKIP_MISSING") == "1" {
			tb.Skip(msg)
		}
		tb.Fatal(msg)
	}
	return qemu, img
}

func startQEMU(tb testing.TB, memMiB int) *qemuVM {
	tb.Helper()
	qemu, img := needQEMU(tb)
	dir, err := os.MkdirTemp("", "kspec-qmp-test-*")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	scratch := filepath.Join(dir, "scratch.qcow2")
	if out, err := exec.Command(img, "create", "-q", "-f", "qcow2", scratch, "64M").CombinedOutput(); err != nil {
		tb.Fatalf("qemu-img: %v: %s", err, out)
	}
	sock := filepath.Join(dir, "qmp.sock")
	var stderr strings.Builder
	args := append(dataDirArgs(qemu), "-S", "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-accel", "tcg", "-m", fmt.Sprint(memMiB),
		"-qmp", "unix:"+sock+",server=on,wait=off",
		"-blockdev", "driver=qcow2,node-name="+scratchNode+",file.driver=file,file.filename="+scratch)
	cmd := exec.Command(qemu, args...)
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	vm := &qemuVM{cmd: cmd, dir: dir, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(vm.done) }()
	tb.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-vm.done
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mon, err := Dial(ctx, sock)
	if err != nil {
		tb.Fatalf("%v; qemu stderr: %s", err, stderr.String())
	}
	tb.Cleanup(func() { mon.Close() })
	vm.mon = mon
	return vm
}

// dataDirArgs returns -L for the firmware beside a QEMU that is not
// installed system-wide (what supervisor.DataDirs finds; the qmp package
// cannot import supervisor), or for $KSPEC_QEMU_DATA.
func dataDirArgs(qemu string) []string {
	var args []string
	if env := os.Getenv("KSPEC_QEMU_DATA"); env != "" {
		for _, d := range filepath.SplitList(env) {
			args = append(args, "-L", d)
		}
		return args
	}
	bin, err := filepath.EvalSymlinks(qemu)
	if err != nil {
		return nil
	}
	prefix := filepath.Dir(filepath.Dir(bin))
	if prefix == "/usr" || prefix == "/usr/local" {
		return nil
	}
	for _, d := range []string{"seabios", "qemu"} {
		if fi, err := os.Stat(filepath.Join(prefix, "share", d)); err == nil && fi.IsDir() {
			args = append(args, "-L", filepath.Join(prefix, "share", d))
		}
	}
	return args
}

// TestQEMUOnEventSeesResumeBeforeContReturns: QEMU emits RESUME before the
// reply to cont, and an OnEvent hook runs before the reply is delivered,
// so whoever keeps state from events is in step when Cont returns.
func TestQEMUOnEventSeesResumeBeforeContReturns(t *testing.T) {
	m := startQEMU(t, 64).mon
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var resumes, stops atomic.Int32
	remove := m.OnEvent(func(ev Event) {
		switch ev.Name {
		case "RESUME":
			resumes.Add(1)
		case "STOP":
			stops.Add(1)
		}
	})
	for i := int32(1); i <= 3; i++ {
		if err := m.Cont(ctx); err != nil {
			t.Fatal(err)
		}
		if n := resumes.Load(); n != i {
			t.Fatalf("after cont %d the hook saw %d RESUME events", i, n)
		}
		if err := m.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		if n := stops.Load(); n != i {
			t.Fatalf("after stop %d the hook saw %d STOP events", i, n)
		}
	}
	remove()
	remove()
	if err := m.Cont(ctx); err != nil {
		t.Fatal(err)
	}
	if n := resumes.Load(); n != 3 {
		t.Errorf("a removed hook saw RESUME (%d)", n)
	}
}

func TestQEMUStatusStopContEvents(t *testing.T) {
	vm := startQEMU(t, 128)
	m := vm.mon
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	t.Logf("QEMU %s", m.Version())
	st, err := m.Status(ctx)
	if err != nil || st != (Status{Running: false, State: "prelaunch"}) {
		t.Fatalf("status = %+v, %v", st, err)
	}
	w := m.NewWaiter("STOP", "RESUME")
	defer w.Close()
	if err := m.Cont(ctx); err != nil {
		t.Fatal(err)
	}
	if ev, err := w.Wait(ctx); err != nil || ev.Name != "RESUME" {
		t.Fatalf("after cont: %v %v", ev, err)
	}
	if st, err := m.Status(ctx); err != nil || !st.Running || st.State != "running" {
		t.Fatalf("status = %+v, %v", st, err)
	}
	if err := m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if ev, err := w.Wait(ctx); err != nil || ev.Name != "STOP" {
		t.Fatalf("after stop: %v %v", ev, err)
	}
	if st, err := m.Status(ctx); err != nil || st.Running || st.State != "paused" {
		t.Fatalf("status = %+v, %v", st, err)
	}
	err = m.Run(ctx, "no-such-command", nil)
	var ce *CommandError
	if !errors.As(err, &ce) || ce.Class != "CommandNotFound" {
		t.Fatalf("unknown command: %v", err)
	}
	out, err := m.HumanMonitorCommand(ctx, "info status")
	if err != nil || !strings.Contains(out, "paused") {
		t.Fatalf("info status: %q %v", out, err)
	}
}

// 1000 stop/cont cycles (2000 events) with a subscriber that never reads:
// nothing deadlocks, and the events the subscriber could not hold are counted.
func TestQEMUStopContCyclesWithUnreadSubscriber(t *testing.T) {
	vm := startQEMU(t, 128)
	m := vm.mon
	unread, cancelUnread := m.Subscribe(4)
	defer cancelUnread()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	start := time.Now()
	const cycles = 1000
	for i := range cycles {
		if err := m.Cont(ctx); err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		if err := m.Stop(ctx); err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
	}
	// The reader may still be handing out the last events.
	deadline := time.Now().Add(5 * time.Second)
	for m.DroppedEvents() < 2*cycles-4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("%d stop/cont cycles in %v; %d events dropped for the unread subscriber, %d held",
		cycles, time.Since(start), m.DroppedEvents(), len(unread))
	if m.DroppedEvents() != 2*cycles-4 || len(unread) != 4 {
		t.Fatalf("dropped %d, held %d; want %d and 4", m.DroppedEvents(), len(unread), 2*cycles-4)
	}
}

func TestQEMUSnapshots(t *testing.T) {
	vm := startQEMU(t, 128)
	m := vm.mon
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	nodes, err := m.BlockNodeInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	idx := slices.IndexFunc(nodes, func(n BlockNode) bool { return n.NodeName == scratchNode })
	if idx < 0 || nodes[idx].Driver != "qcow2" || nodes[idx].ReadOnly {
		t.Fatalf("scratch node not found as writable qcow2: %+v", nodes)
	}
	names, err := m.BlockNodes(ctx)
	if err != nil || !slices.Contains(names, scratchNode) {
		t.Fatalf("BlockNodes = %v, %v", names, err)
	}

	devs := []string{scratchNode}
	if err := m.Cont(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.SnapshotSave(ctx, "job1", scratchNode, devs); err != nil {
		t.Fatal(err)
	}
	if err := m.SnapshotLoad(ctx, "job1", scratchNode, devs); err != nil {
		t.Fatal(err)
	}
	if st, err := m.Status(ctx); err != nil || !st.Running {
		t.Fatalf("a running VM should run on after snapshot-load: %+v %v", st, err)
	}
	err = m.SnapshotLoad(ctx, "nope", scratchNode, devs)
	var je *JobError
	if !errors.As(err, &je) || !strings.Contains(je.Desc, "nope") {
		t.Fatalf("loading a missing snapshot: %v", err)
	}
	err = m.SnapshotSave(ctx, "x", "no-such-node", []string{"no-such-node"})
	if err == nil {
		t.Fatal("save to a missing node succeeded")
	}
	t.Logf("save to a missing node: %v", err)

	if err := m.HMPSaveVM(ctx, "hmp1"); err != nil {
		t.Fatal(err)
	}
	if err := m.HMPLoadVM(ctx, "hmp1"); err != nil {
		t.Fatal(err)
	}
	// Each mechanism reads the other's snapshots.
	if err := m.HMPLoadVM(ctx, "job1"); err != nil {
		t.Fatal(err)
	}
	if err := m.SnapshotLoad(ctx, "hmp1", scratchNode, devs); err != nil {
		t.Fatal(err)
	}
	err = m.HMPLoadVM(ctx, "nope")
	var he *HMPError
	if !errors.As(err, &he) || !strings.Contains(he.Output, "nope") {
		t.Fatalf("HMP loadvm of a missing snapshot: %v", err)
	}

	if err := m.SnapshotDelete(ctx, "job1", devs); err != nil {
		t.Fatal(err)
	}
	if err := m.HMPDeleteVM(ctx, "hmp1"); err != nil {
		t.Fatal(err)
	}
	if err := m.SnapshotLoad(ctx, "job1", scratchNode, devs); !errors.As(err, &je) {
		t.Fatalf("deleted snapshot still loads: %v", err)
	}
	jobs, err := m.Jobs(ctx)
	if err != nil || len(jobs) != 0 {
		t.Fatalf("jobs left behind: %+v %v", jobs, err)
	}
	info, err := m.HumanMonitorCommand(ctx, "info snapshots")
	if err != nil || strings.Contains(info, "job1") || strings.Contains(info, "hmp1") {
		t.Fatalf("info snapshots after deletes: %q %v", info, err)
	}
}

func TestQEMUQuit(t *testing.T) {
	vm := startQEMU(t, 64)
	m := vm.mon
	w := m.NewWaiter("SHUTDOWN")
	defer w.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := m.Quit(ctx); err != nil {
		t.Fatal(err)
	}
	ev, err := w.Wait(ctx)
	if err != nil || ev.DataString("reason") != "host-qmp-quit" {
		t.Fatalf("SHUTDOWN: %v %v", ev, err)
	}
	select {
	case <-vm.done:
	case <-ctx.Done():
		t.Fatal("QEMU still running after quit")
	}
	if code := vm.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if err := m.Run(ctx, "query-status", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("after quit: %v", err)
	}
}

// benchVM starts a running 256 MiB guest with snapshot "bench".
func benchVM(b *testing.B) *Monitor {
	vm := startQEMU(b, 256)
	m := vm.mon
	ctx := context.Background()
	if err := m.Cont(ctx); err != nil {
		b.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // let the firmware touch some memory
	if err := m.SnapshotSave(ctx, "bench", scratchNode, []string{scratchNode}); err != nil {
		b.Fatal(err)
	}
	return m
}

func BenchmarkSnapshotLoad(b *testing.B) {
	m := benchVM(b)
	ctx := context.Background()
	for b.Loop() {
		if err := m.SnapshotLoad(ctx, "bench", scratchNode, []string{scratchNode}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHMPLoadVM(b *testing.B) {
	m := benchVM(b)
	ctx := context.Background()
	for b.Loop() {
		if err := m.HMPLoadVM(ctx, "bench"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkQueryStatus(b *testing.B) {
	vm := startQEMU(b, 64)
	ctx := context.Background()
	for b.Loop() {
		if _, err := vm.mon.Status(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
