package guest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRealGuest boots the prepared debian-cloud guest under QEMU (TCG) with
// an initramfs built here with its own password, and drives its console:
// a wrong password, login, commands, exit statuses, kernel messages.
// It needs the prepared guest (`go run ./cmd/kspec guest prepare`) and
// QEMU; KSPEC_SKIP_MISSING=1 turns their absence into a skip.
func TestRealGuest(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a real guest")
	}
	missing := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("KSPEC_SKIP_MISSING") == "1" {
			t.Skipf(format, args...)
		}
		t.Fatalf(format+" (KSPEC_SKIP_MISSING=1 skips this test instead)", args...)
	}
	spec, err := Find(defaultGuest, "")
	if err != nil {
		missing("%v", err)
	}
	qemu := os.Getenv("KSPEC_QEMU")
	if qemu == "" {
		qemu = "qemu-system-x86_64"
	}
	if qemu, err = exec.LookPath(qemu); err != nil {
		missing("QEMU: %v", err)
	}
	const password = "real-guest-test-pw"
	initrd := filepath.Join(t.TempDir(), "initrd.img")
	if err := BuildInitramfs(initrd, filepath.Join(filepath.Dir(spec.Symbols), FileBusybox), password, "kspec-test"); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// Test-only boot: the real supervisor lives elsewhere.
	cmd := exec.CommandContext(ctx, qemu, "-accel", "tcg", "-m", "256", "-smp", "1",
		"-nodefaults", "-display", "none", "-no-reboot", "-serial", "stdio",
		"-kernel", spec.Kernel, "-initrd", initrd, "-append", spec.Append)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var qerr bytes.Buffer
	cmd.Stderr = &qerr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	var tmu sync.Mutex
	var transcript bytes.Buffer
	defer func() {
		if t.Failed() {
			tmu.Lock()
			t.Logf("console transcript:\n%s\nqemu stderr:\n%s", transcript.String(), qerr.String())
			tmu.Unlock()
		}
	}()
	var kmu sync.Mutex
	var kernel []string
	profile, _ := ProfileFor(spec.OS)
	c := NewConsole(struct {
		io.Reader
		io.Writer
	}{stdout, stdin}, profile, ConsoleOptions{
		Transcript:   writerFunc(func(p []byte) (int, error) { tmu.Lock(); defer tmu.Unlock(); return transcript.Write(p) }),
		OnKernelLine: func(l string) { kmu.Lock(); kernel = append(kernel, l); kmu.Unlock() },
	})

	start := time.Now()
	err = c.Login(ctx, spec.User, "wrong-password")
	if !errors.Is(err, ErrLoginIncorrect) {
		t.Fatalf("Login with a wrong password = %v, want ErrLoginIncorrect", err)
	}
	if strings.Contains(err.Error(), "wrong-password") {
		t.Errorf("the error shows the password: %v", err)
	}
	t.Logf("login incorrect after %v", time.Since(start))
	if err := c.Login(ctx, spec.User, password); err != nil {
		t.Fatal(err)
	}
	t.Logf("logged in after %v", time.Since(start))

	run := func(cmd string) Result {
		t.Helper()
		res, err := c.Run(ctx, cmd)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := run("uname -r"); res.Output != spec.Version+"\n" || res.Status != 0 {
		t.Errorf("uname -r = %+v, want %q", res, spec.Version)
	}
	if res := run("false"); res.Status != 1 || res.Output != "" {
		t.Errorf("false = %+v, want status 1", res)
	}
	if res := run("ls /nonexistent"); res.Status == 0 || !strings.Contains(res.Output, "No such file") {
		t.Errorf("ls /nonexistent = %+v", res)
	}
	if res := run("cat /etc/hostname; hostname"); res.Output != "kspec-test\nkspec-test\n" {
		t.Errorf("hostname = %q", res.Output)
	}
	if res := run("printf 'no newline'"); res.Output != "no newline" {
		t.Errorf("printf = %q", res.Output)
	}
	// A kernel message printed while a command runs: out of Output, into
	// Kernel; dmesg's copy of it is output.
	res := run("echo '<2>kspec: hello from the test' > /dev/kmsg; echo after")
	if res.Output != "after\n" || !slices.ContainsFunc(res.Kernel, func(l string) bool { return strings.HasSuffix(l, "kspec: hello from the test") }) {
		t.Errorf("kmsg run = %+v, want output \"after\\n\" and the message in Kernel", res)
	}
	if res := run("dmesg | grep 'hello from the test'"); !strings.Contains(res.Output, "] kspec: hello from the test\n") || len(res.Kernel) != 0 {
		t.Errorf("dmesg = %+v", res)
	}
	if res := run("cd /proc\npwd"); res.Output != "/proc\n" {
		t.Errorf("multi-line = %q", res.Output)
	}
	if res := run("pwd"); res.Output != "/proc\n" {
		t.Errorf("cd did not persist: %q", res.Output)
	}
	p, err := c.Start(ctx, "sleep 1; echo started")
	if err != nil {
		t.Fatal(err)
	}
	if res, err := p.Wait(ctx); err != nil || res.Output != "started\n" {
		t.Errorf("Start/Wait = %+v, %v", res, err)
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// Commands that end the login shell: each is reported at once (a
	// deadline of its own makes a hang a failure), with its status where
	// the shell printed one, and the next command works in a new login.
	for _, tc := range []struct {
		cmd    string
		status int // -1: unknown
	}{
		{"exit 3", 3},
		{"exec sh", -1},
		{"logout", -1}, // busybox ash has no logout: "not found" is fine too
		{"kill -9 $$", -1},
		{"kill -HUP 0", -1}, // hangs up the shell's session
		{"sh", -1},          // an interactive shell on top of the login shell
	} {
		cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
		t0 := time.Now()
		res, err := c.Run(cctx, tc.cmd)
		ccancel()
		var se *ShellEndedError
		survived := errors.As(err, &se) && se.How == ShellNested
		switch {
		case tc.cmd == "logout" && err == nil && res.Status == 127:
			t.Logf("logout: %q (status %d)", res.Output, res.Status)
			survived = true
		case !errors.As(err, &se):
			t.Errorf("Run(%q) = %+v, %v; want a *ShellEndedError", tc.cmd, res, err)
		case tc.status >= 0 && (!se.StatusKnown || se.Status != tc.status):
			t.Errorf("Run(%q): %v; want exit status %d", tc.cmd, err, tc.status)
		case se.Err != nil || (se.How != ShellNested) != se.LoggedIn:
			t.Errorf("Run(%q): %v; want kspec logged in again", tc.cmd, err)
		default:
			t.Logf("%s after %v: %v", tc.cmd, time.Since(t0).Round(time.Millisecond), err)
		}
		want := "alive\n/root\n" // a new login shell starts in root's home
		if survived {
			want = "alive\n/proc\n"
		}
		if res := run("echo alive; pwd"); res.Output != want {
			t.Errorf("after %q: %q, want %q", tc.cmd, res.Output, want)
		}
		if tc.cmd == "sh" {
			break
		}
		run("cd /proc")
	}
	tmu.Lock()
	if tr := transcript.String(); strings.Contains(tr, password) || strings.Contains(tr, "wrong-password") {
		t.Error("a password is in the console transcript")
	}
	tmu.Unlock()
	t0 := time.Now()
	for range 20 {
		run("true")
	}
	t.Logf("Run(true) takes %v", time.Since(t0)/20)
}
