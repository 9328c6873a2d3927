package guest

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCleaner(t *testing.T) {
	linux, _ := ProfileFor(OSLinux)
	tests := []struct {
		name    string
		chunks  []string
		user    string // committed user text
		kernel  []string
		partial string
	}{
		{"plain lines", []string{"a\r\nb\n"}, "a\r\nb\n", nil, ""},
		{"kernel line alone", []string{"x\n[    1.000000] hello\r\ny\n"}, "x\ny\n", []string{"[    1.000000] hello"}, ""},
		{"kernel line mid user line", []string{"kspec:ab[   12.345678] msg\r\ncd\n"}, "kspec:abcd\n", []string{"[   12.345678] msg"}, ""},
		{"kernel line inside a prompt", []string{"kspec log", "[    3.123456] random: crng init done\r\n", "in: "}, "", []string{"[    3.123456] random: crng init done"}, "kspec login: "},
		{"two kernel lines in a row", []string{"ab[    1.000000] k1\r\n[    2.000000] k2\r\ncd\n"}, "abcd\n", []string{"[    1.000000] k1", "[    2.000000] k2"}, ""},
		{"dmesg output ends in bare LF: user text", []string{"[    1.000000] Linux version\n"}, "[    1.000000] Linux version\n", nil, ""},
		{"kernel line inside a dmesg line", []string{"[    1.000000] ab[    2.000000] new\r\ncd\n"}, "[    1.000000] abcd\n", []string{"[    2.000000] new"}, ""},
		{"printk-caller format", []string{"[    5.000000][  T123] x\r\n"}, "", []string{"[    5.000000][  T123] x"}, ""},
		{"unfinished kernel line stays partial", []string{"# [    6.1"}, "", nil, "# [    6.1"},
		{"split in one-byte chunks", strings.Split("ab[    1.000000] k\r\ncd\n", ""), "abcd\n", []string{"[    1.000000] k"}, ""},
		{"brackets that are no timestamp", []string{"[drm] x\r\n"}, "[drm] x\r\n", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := cleaner{kernel: linux.KernelLine}
			var user bytes.Buffer
			var kern []string
			for _, ch := range tt.chunks {
				cl.feed([]byte(ch), func(l []byte) { user.Write(l) }, func(k string) { kern = append(kern, k) })
			}
			if user.String() != tt.user || !slices.Equal(kern, tt.kernel) || string(cl.partial()) != tt.partial {
				t.Errorf("got user %q kernel %q partial %q\nwant user %q kernel %q partial %q",
					user.String(), kern, cl.partial(), tt.user, tt.kernel, tt.partial)
			}
		})
	}
}

func TestCheckCommand(t *testing.T) {
	tests := []struct {
		cmd string
		ok  bool
	}{
		{"uname -r", true},
		{"for i in 1 2; do\n\techo $i\ndone", true},
		{"", false},
		{"  \n", false},
		{"echo \x03", false},
		{"echo \x7f", false},
		{strings.Repeat("x", maxLine+1), false},
	}
	for _, tt := range tests {
		if err := checkCommand(tt.cmd); (err == nil) != tt.ok {
			t.Errorf("checkCommand(%.20q) = %v, want ok=%v", tt.cmd, err, tt.ok)
		}
	}
}

// TestCommandLineNeverContainsMarker: the framed command line (and so its
// echo) must not contain what the markers look like in the output.
func TestCommandLineNeverContainsMarker(t *testing.T) {
	line := commandLine("0123456789abcdef", "echo hi", "\n")
	for _, m := range []string{"kspec:0123456789abcdef:B", "kspec:0123456789abcdef:E"} {
		if strings.Contains(line, m) {
			t.Errorf("command line %q contains marker %q", line, m)
		}
	}
}

const kmsg = "[   12.345678] test: injected message\r\n"

func TestConsole(t *testing.T) {
	linux, _ := ProfileFor(OSLinux)
	type env struct {
		t    *testing.T
		ctx  context.Context
		c    *Console
		g    *fakeGuest
		kern func() []string
	}
	login := func(e env) {
		e.t.Helper()
		if err := e.c.Login(e.ctx, "root", "kspec"); err != nil {
			e.t.Fatal(err)
		}
	}
	run := func(e env, cmd string, wantOut string, wantStatus int) Result {
		e.t.Helper()
		res, err := e.c.Run(e.ctx, cmd)
		if err != nil {
			e.t.Fatal(err)
		}
		if res.Output != wantOut || res.Status != wantStatus {
			e.t.Errorf("Run(%q) = %q, %d; want %q, %d", cmd, res.Output, res.Status, wantOut, wantStatus)
		}
		return res
	}
	tests := []struct {
		name  string
		setup func(g *fakeGuest) // before the guest starts
		opts  ConsoleOptions
		body  func(e env)
	}{
		{"login and run with echo and CRLF", nil, ConsoleOptions{}, func(e env) {
			login(e)
			run(e, "uname -r", "6.1.0-56-cloud-amd64\n", 0)
			run(e, "printf foo", "foo", 0)
		}},
		{"non-zero exit status", nil, ConsoleOptions{}, func(e env) {
			login(e)
			run(e, "false", "", 1)
			run(e, "exit7", "seven\n", 7)
			run(e, "nosuchcommand", "sh: nosuchcommand: not found\n", 127)
		}},
		{"every byte in its own read", func(g *fakeGuest) { g.chunk = 1 }, ConsoleOptions{}, func(e env) {
			login(e)
			run(e, "uname -r", "6.1.0-56-cloud-amd64\n", 0)
			run(e, "false", "", 1)
		}},
		{"kernel messages inside the login and shell prompts", func(g *fakeGuest) {
			g.mangle = func(s string) string {
				s = strings.Replace(s, "login: ", "log"+kmsg+"in: ", 1)
				s = strings.Replace(s, "Password: ", "Pass"+kmsg+"word: ", 1)
				return strings.Replace(s, ":~# ", ":~"+kmsg+"# ", 1)
			}
		}, ConsoleOptions{}, func(e env) {
			login(e)
			run(e, "uname -r", "6.1.0-56-cloud-amd64\n", 0)
			if k := e.kern(); len(k) < 3 {
				t.Errorf("OnKernelLine saw %q, want at least 3 messages", k)
			}
		}},
		{"kernel messages inside output and markers", nil, ConsoleOptions{}, func(e env) {
			login(e)
			e.g.mu.Lock()
			e.g.mangle = func(s string) string {
				s = strings.Replace(s, "56-cloud", "56-"+kmsg+"cloud", 1)
				s = strings.Replace(s, ":B\n", ":"+kmsg+"B\n", 1)
				s = strings.Replace(s, ":E:", ":E"+kmsg+":", 1)
				return strings.Replace(s, "kspec:", kmsg+"kspec:", 1)
			}
			e.g.mu.Unlock()
			res := run(e, "uname -r", "6.1.0-56-cloud-amd64\n", 0)
			if len(res.Kernel) == 0 || res.Kernel[0] != strings.TrimSpace(kmsg) {
				t.Errorf("Result.Kernel = %q, want the injected message", res.Kernel)
			}
		}},
		{"a status split by a kernel message", nil, ConsoleOptions{}, func(e env) {
			login(e)
			e.g.mu.Lock()
			e.g.commands["exit127"] = func() (string, int) { return "", 127 }
			e.g.mangle = func(s string) string { return strings.Replace(s, ":E:1", ":E:1"+kmsg, 1) }
			e.g.mu.Unlock()
			run(e, "exit127", "", 127)
		}},
		{"dmesg output is output", nil, ConsoleOptions{}, func(e env) {
			login(e)
			e.g.mu.Lock()
			e.g.commands["dmesg"] = func() (string, int) { return "[    0.000000] Linux version 6.1\n[    1.000000] x\n", 0 }
			e.g.mu.Unlock()
			if res := run(e, "dmesg", "[    0.000000] Linux version 6.1\n[    1.000000] x\n", 0); len(res.Kernel) != 0 {
				t.Errorf("dmesg output taken for kernel messages: %q", res.Kernel)
			}
		}},
		{"wrong password", nil, ConsoleOptions{}, func(e env) {
			start := time.Now()
			err := e.c.Login(e.ctx, "root", "not-the-password")
			if !errors.Is(err, ErrLoginIncorrect) {
				t.Fatalf("Login with a wrong password = %v, want ErrLoginIncorrect", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("ErrLoginIncorrect took %v", d)
			}
			if !strings.Contains(err.Error(), `"root"`) || strings.Contains(err.Error(), "not-the-password") {
				t.Errorf("error must name the user and not the password: %v", err)
			}
			login(e) // getty asks again
			run(e, "hostname", "kspec\n", 0)
		}},
		{"no login prompt: timeout carries the tail", func(g *fakeGuest) { g.user = "" }, ConsoleOptions{LoginNudge: -1}, func(e env) {
			ctx, cancel := context.WithTimeout(e.ctx, 200*time.Millisecond)
			defer cancel()
			err := e.c.Login(ctx, "root", "kspec")
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want DeadlineExceeded", err)
			}
			if !strings.Contains(err.Error(), "Booting the fake kernel") || !strings.Contains(err.Error(), "login prompt") {
				t.Errorf("error lacks the console tail or what was awaited: %v", err)
			}
		}},
		{"nudge reprints a missed login prompt", func(g *fakeGuest) { g.user = "nudge" }, ConsoleOptions{LoginNudge: 20 * time.Millisecond}, func(e env) {
			login(e)
		}},
		{"start, guest stopped, wait", nil, ConsoleOptions{}, func(e env) {
			login(e)
			release := make(chan struct{})
			e.g.mu.Lock()
			e.g.commands["mkdir /tmp/x"] = func() (string, int) { <-release; return "", 0 }
			e.g.mu.Unlock()
			p, err := e.c.Start(e.ctx, "mkdir /tmp/x")
			if err != nil {
				t.Fatal(err)
			}
			short, cancel := context.WithCancel(e.ctx)
			cancel()
			if _, err := p.Wait(short); !errors.Is(err, context.Canceled) {
				t.Errorf("Wait while the guest is stopped = %v, want Canceled", err)
			}
			close(release)
			if res, err := p.Wait(e.ctx); err != nil || res.Status != 0 {
				t.Errorf("Wait = %+v, %v", res, err)
			}
			run(e, "uname -r", "6.1.0-56-cloud-amd64\n", 0)
		}},
		{"a timed-out command's late output is not the next one's", nil, ConsoleOptions{}, func(e env) {
			login(e)
			release := make(chan struct{})
			e.g.mu.Lock()
			e.g.commands["slow"] = func() (string, int) { <-release; return "slow output\n", 3 }
			e.g.mu.Unlock()
			ctx, cancel := context.WithTimeout(e.ctx, 50*time.Millisecond)
			_, err := e.c.Run(ctx, "slow")
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v", err)
			}
			close(release)
			run(e, "hostname", "kspec\n", 0)
			if err := e.c.Sync(e.ctx); err != nil {
				t.Fatal(err)
			}
		}},
		{"an echoed password stays out of the transcript and the tail", func(g *fakeGuest) { g.echoPass = true; g.chunk = 3 },
			ConsoleOptions{PasswordSettle: -1}, func(e env) {
				if err := e.c.Login(e.ctx, "root", "not-the-password"); !errors.Is(err, ErrLoginIncorrect) {
					t.Fatalf("Login = %v", err)
				}
				login(e)
				if tail := e.c.Tail(4096); strings.Contains(tail, "not-the-password") || !strings.Contains(tail, "Password: ********") {
					t.Errorf("Tail shows the password or no redaction: %q", tail)
				}
			}},
		// LoginNudge -1: Login after Logout must find the prompt Logout
		// waited for, not one that a nudge makes getty print again.
		{"logout, then log in again through kernel messages", nil, ConsoleOptions{LoginNudge: -1}, func(e env) {
			login(e)
			run(e, "hostname", "kspec\n", 0)
			e.g.mu.Lock()
			e.g.mangle = func(s string) string {
				s = strings.Replace(s, "login: ", "log"+kmsg+"in: ", 1)
				return strings.Replace(s, "Password: ", "Pass"+kmsg+"word: ", 1)
			}
			e.g.mu.Unlock()
			if err := e.c.Logout(e.ctx); err != nil {
				e.t.Fatal(err)
			}
			if err := e.c.Login(e.ctx, "root", "not-the-password"); !errors.Is(err, ErrLoginIncorrect) {
				e.t.Fatalf("Login with a wrong password after Logout = %v, want ErrLoginIncorrect", err)
			}
			login(e)
			run(e, "uname -r", "6.1.0-56-cloud-amd64\n", 0)
			if err := e.c.Logout(e.ctx); err != nil {
				e.t.Fatal(err)
			}
			login(e)
			run(e, "hostname", "kspec\n", 0)
		}},
		// A command that ends the login shell is reported at once with its
		// exit status where the shell printed one, and kspec logs in again.
		{"a command that ends the login shell", nil, ConsoleOptions{}, func(e env) {
			login(e)
			for _, tc := range []struct {
				cmd    string
				how    ShellEnd
				status int
				known  bool
				relog  bool
			}{
				{"exit 3", ShellExited, 3, true, true},
				{"exit 0", ShellExited, 0, true, true},
				{"kill -9 $$", ShellKilled, 0, false, true},
				{"exec sh", ShellReplaced, 0, false, true},
				{"sh", ShellNested, 0, false, false},
			} {
				e.g.mu.Lock()
				logins := e.g.logins
				e.g.mu.Unlock()
				res, err := e.c.Run(e.ctx, tc.cmd)
				var se *ShellEndedError
				if !errors.As(err, &se) || !errors.Is(err, ErrShellEnded) {
					e.t.Fatalf("Run(%q) = %+v, %v; want a *ShellEndedError", tc.cmd, res, err)
				}
				if se.How != tc.how || se.StatusKnown != tc.known || se.Status != tc.status || se.LoggedIn != tc.relog || se.Err != nil {
					e.t.Errorf("Run(%q): %+v, want how %d, status %d (known %v), logged in again %v", tc.cmd, se, tc.how, tc.status, tc.known, tc.relog)
				}
				if tc.how != ShellNested && !strings.Contains(err.Error(), "the command ended the login shell") {
					e.t.Errorf("Run(%q): %q does not say the command ended the login shell", tc.cmd, err)
				}
				e.g.mu.Lock()
				if got := e.g.logins - logins; tc.relog && got != 1 || !tc.relog && got != 0 {
					e.t.Errorf("Run(%q): %d logins since, want relogin %v", tc.cmd, got, tc.relog)
				}
				e.g.mu.Unlock()
				run(e, "uname -r", "6.1.0-56-cloud-amd64\n", 0)
			}
		}},
		// Output that looks like a login prompt, without the reset tty of a
		// new getty, is output.
		{"a command that prints a login prompt of its own", func(g *fakeGuest) {
			g.commands["fakelogin"] = func() (string, int) { return "\nkspec login: ", 0 }
		}, ConsoleOptions{}, func(e env) {
			login(e)
			run(e, "fakelogin", "\nkspec login: ", 0)
		}},
		{"logging in again fails: later commands fail at once, naming why", nil, ConsoleOptions{LoginNudge: -1}, func(e env) {
			login(e)
			e.g.mu.Lock()
			e.g.password = "changed"
			e.g.mu.Unlock()
			_, err := e.c.Run(e.ctx, "exit 4")
			var se *ShellEndedError
			if !errors.As(err, &se) || se.Status != 4 || se.LoggedIn || !errors.Is(err, ErrLoginIncorrect) {
				e.t.Fatalf("Run(exit 4) = %v; want a *ShellEndedError with status 4 wrapping ErrLoginIncorrect", err)
			}
			_, err = e.c.Run(e.ctx, "uname -r")
			if err == nil || errors.Is(err, ErrShellEnded) || !strings.Contains(err.Error(), `"exit 4" ended the login shell`) {
				e.t.Errorf("Run after a failed re-login = %v; want an error naming the command that ended the shell", err)
			}
			if err := e.c.Login(e.ctx, "root", "changed"); err != nil {
				e.t.Fatal(err)
			}
			run(e, "uname -r", "6.1.0-56-cloud-amd64\n", 0)
		}},
		{"logout without a new login prompt: timeout carries the tail", nil, ConsoleOptions{}, func(e env) {
			login(e)
			e.g.mu.Lock()
			e.g.mangle = func(s string) string { return strings.Replace(s, "kspec login: ", "init gave up", 1) }
			e.g.mu.Unlock()
			ctx, cancel := context.WithTimeout(e.ctx, 200*time.Millisecond)
			defer cancel()
			err := e.c.Logout(ctx)
			if !errors.Is(err, context.DeadlineExceeded) {
				e.t.Fatalf("err = %v, want DeadlineExceeded", err)
			}
			if !strings.Contains(err.Error(), "logging out") || !strings.Contains(err.Error(), "init gave up") {
				e.t.Errorf("error lacks what was awaited or the console tail: %v", err)
			}
		}},
		{"an echoed password behind or inside kernel messages stays hidden", func(g *fakeGuest) {
			g.echoPass = true
			g.mangle = func(s string) string {
				switch s {
				case "not-the-password\r\n": // a message between the prompt and the echo
					return kmsg + s
				case "kspec\r\n": // a message splitting the echo
					return "ks" + kmsg + "pec\r\n"
				}
				return s
			}
		}, ConsoleOptions{PasswordSettle: -1}, func(e env) {
			err := e.c.Login(e.ctx, "root", "not-the-password")
			if !errors.Is(err, ErrLoginIncorrect) || strings.Contains(err.Error(), "not-the-password") {
				e.t.Fatalf("Login = %v, want ErrLoginIncorrect without the password", err)
			}
			login(e)
			run(e, "hostname", "kspec\n", 0)
			tail := e.c.Tail(8192)
			if strings.Contains(tail, "not-the-password") || strings.Contains(tail, "ks"+kmsg+"pec") || strings.Count(tail, kmsg+redacted+"\r\n") != 2 {
				e.t.Errorf("Tail shows a password or lacks the redactions: %q", tail)
			}
			if k := e.kern(); len(k) < 3 {
				e.t.Errorf("OnKernelLine saw %q, want the boot message and the two around the passwords", k)
			}
		}},
		{"an echoed password split by kernel messages, one byte at a time", func(g *fakeGuest) {
			g.echoPass = true
			g.chunk = 1
			g.mangle = func(s string) string {
				if s == "kspec\r\n" {
					return kmsg + "k" + kmsg + "spec\r\n"
				}
				return s
			}
		}, ConsoleOptions{PasswordSettle: -1}, func(e env) {
			login(e)
			run(e, "uname -r", "6.1.0-56-cloud-amd64\n", 0)
			if tail := e.c.Tail(8192); strings.Contains(tail, "spec\r\n") || strings.Contains(tail, "k"+kmsg) || strings.Count(tail, redacted+"\r\n") != 1 {
				e.t.Errorf("Tail shows the password or no redaction: %q", tail)
			}
		}},
		{"expect", nil, ConsoleOptions{}, func(e env) {
			m, err := e.c.Expect(e.ctx, regexp.MustCompile(`\w+ login: `))
			if err != nil || m != "kspec login: " {
				t.Fatalf("Expect = %q, %v", m, err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			g, rw := newFakeGuest(t)
			if tt.setup != nil {
				tt.setup(g)
			}
			var mu sync.Mutex
			var kern []string
			opts := tt.opts
			opts.OnKernelLine = func(l string) { mu.Lock(); kern = append(kern, l); mu.Unlock() }
			var transcript bytes.Buffer
			var tmu sync.Mutex
			opts.Transcript = writerFunc(func(p []byte) (int, error) { tmu.Lock(); defer tmu.Unlock(); return transcript.Write(p) })
			c := NewConsole(rw, linux, opts)
			go func() {
				g.raw("Booting the fake kernel\r\n" + kmsg)
				switch g.user {
				case "":
					return // never prints a login prompt
				case "nudge": // the first prompt went nowhere
					g.user = "root"
					if _, ok := <-g.lines; !ok {
						return
					}
				}
				g.getty()
			}()
			tt.body(env{t: t, ctx: ctx, c: c, g: g, kern: func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(kern) }})
			tmu.Lock()
			defer tmu.Unlock()
			if tr := transcript.String(); strings.Contains(tr, "Password: kspec") || strings.Contains(tr, "not-the-password") {
				t.Errorf("a password is in the transcript: %q", tr)
			}
		})
	}
}

func TestConsoleClosed(t *testing.T) {
	linux, _ := ProfileFor(OSLinux)
	g, rw := newFakeGuest(t)
	c := NewConsole(rw, linux, ConsoleOptions{})
	g.raw("bye\r\n")
	g.out.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := c.Login(ctx, "root", "kspec")
	if !errors.Is(err, ErrConsoleClosed) || !strings.Contains(err.Error(), "bye") {
		t.Errorf("Login on a closed console = %v, want ErrConsoleClosed with the tail", err)
	}
	<-c.Done()
}

// TestFreeBSDTranscript logs in with the FreeBSD profile against a console
// transcript of a FreeBSD guest and runs commands.
func TestFreeBSDTranscript(t *testing.T) {
	bsd, err := ProfileFor(OSFreeBSD)
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"testdata/freebsd-14.1-login.transcript", "testdata/freebsd-13.3-csh-login.transcript"} {
		t.Run(file, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			g, rw := newFakeGuest(t)
			g.prompt = "root@kspec:~ # "
			g.commands["uname -r"] = func() (string, int) { return "14.1-RELEASE\n", 0 }
			c := NewConsole(rw, bsd, ConsoleOptions{})
			go g.replay(t, file)
			if err := c.Login(ctx, "root", "kspec"); err != nil {
				t.Fatal(err)
			}
			res, err := c.Run(ctx, "uname -r")
			if err != nil || res.Output != "14.1-RELEASE\n" || res.Status != 0 {
				t.Errorf("Run(uname -r) = %+v, %v", res, err)
			}
			if res, err := c.Run(ctx, "false"); err != nil || res.Status != 1 {
				t.Errorf("Run(false) = %+v, %v", res, err)
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		g, rw := newFakeGuest(t)
		c := NewConsole(rw, bsd, ConsoleOptions{})
		go g.replay(t, "testdata/freebsd-14.1-login-incorrect.transcript")
		if err := c.Login(ctx, "root", "wrong"); !errors.Is(err, ErrLoginIncorrect) {
			t.Errorf("Login = %v, want ErrLoginIncorrect", err)
		}
	})
}
