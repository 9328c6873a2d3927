package guest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeGuest plays a guest on the far side of a console: getty, login and a
// shell that understands kspec's command framing, on a tty with echo and
// onlcr until the shell's setup turns them off. Its output can be mangled
// (e.g. to inject kernel messages) and cut into small writes.
type fakeGuest struct {
	out   *io.PipeWriter // guest → console
	lines chan string    // console → guest, one line at a time

	mu       sync.Mutex
	echo     bool
	onlcr    bool
	chunk    int                   // bytes per write; 0: all at once
	mangle   func(s string) string // applied to everything printed (after onlcr)
	user     string
	password string
	prompt   string
	echoPass bool // login echoes the password (prompt printed before echo is off)
	commands map[string]func() (string, int)
	session  string // the nonce of the shell's EXIT trap and $ENV markers; "" until set up
	// logins counts successful logins.
	logins int
}

// newFakeGuest returns a guest and the console-side end of its serial line.
func newFakeGuest(t *testing.T) (*fakeGuest, io.ReadWriter) {
	t.Helper()
	cr, gw := io.Pipe() // guest writes, console reads
	gr, cw := io.Pipe() // console writes, guest reads
	g := &fakeGuest{
		out:      gw,
		lines:    make(chan string, 64),
		echo:     true,
		onlcr:    true,
		user:     "root",
		password: "kspec",
		prompt:   "root@kspec:~# ",
		commands: map[string]func() (string, int){
			"uname -r":   func() (string, int) { return "6.1.0-56-cloud-amd64\n", 0 },
			"false":      func() (string, int) { return "", 1 },
			"exit7":      func() (string, int) { return "seven\n", 7 },
			"printf foo": func() (string, int) { return "foo", 0 },
			"hostname":   func() (string, int) { return "kspec\n", 0 },
			":":          func() (string, int) { return "", 0 },
		},
	}
	go func() {
		sc := bufio.NewScanner(gr)
		for sc.Scan() {
			g.lines <- sc.Text()
		}
		close(g.lines)
	}()
	t.Cleanup(func() {
		gw.Close()
		gr.Close()
		cw.Close()
	})
	return g, struct {
		io.Reader
		io.Writer
	}{cr, cw}
}

// emit prints s the way the guest's tty would.
func (g *fakeGuest) emit(s string) {
	g.mu.Lock()
	if g.onlcr {
		s = strings.ReplaceAll(s, "\n", "\r\n")
	}
	if g.mangle != nil {
		s = g.mangle(s)
	}
	chunk := g.chunk
	g.mu.Unlock()
	g.write(s, chunk)
}

// raw prints s unchanged (e.g. a kernel message).
func (g *fakeGuest) raw(s string) { g.write(s, 0) }

func (g *fakeGuest) write(s string, chunk int) {
	if chunk <= 0 {
		chunk = len(s)
	}
	for len(s) > 0 {
		n := min(chunk, len(s))
		if _, err := io.WriteString(g.out, s[:n]); err != nil {
			return
		}
		s = s[n:]
	}
}

// readLine returns the next line sent to the guest, echoing it if the tty
// echoes; ok is false when the console side has gone.
func (g *fakeGuest) readLine(echo bool) (string, bool) {
	l, ok := <-g.lines
	if !ok {
		return "", false
	}
	g.mu.Lock()
	e := g.echo && echo
	g.mu.Unlock()
	if e {
		g.emit(l + "\n")
	}
	return l, true
}

// getty runs getty and login until a login succeeds, then the shell; after
// the shell's "exit" it starts over, like init respawning getty (which
// resets the tty).
func (g *fakeGuest) getty() {
	for {
		g.emit("\nkspec login: ")
		user, ok := g.readLine(true)
		if !ok {
			return
		}
		if user == "" {
			continue
		}
		g.emit("Password: ")
		pw, ok := g.readLine(g.echoPass)
		if !ok {
			return
		}
		g.emit("\n")
		if user != g.user || pw != g.password {
			g.emit("Login incorrect\n")
			continue
		}
		g.mu.Lock()
		g.logins++
		g.session = "" // a new login shell has no trap yet
		g.mu.Unlock()
		g.emit("\n\nBusyBox v1.35.0 built-in shell (ash)\n\n" + g.prompt)
		if !g.shell() {
			return
		}
		g.mu.Lock()
		g.echo, g.onlcr = true, true
		g.mu.Unlock()
	}
}

var (
	fakeBegin = regexp.MustCompile(`^printf '%s:%s:B\\n' kspec ([0-9a-f]{16}); \{ (.*)$`)
	fakeEnd   = regexp.MustCompile(`^\}; printf '\\n%s:%s:E:%d\\n' kspec ([0-9a-f]{16}) \$\?$`)
)

// shell runs framed commands until the console side goes away (false) or
// it reads "exit" (true).
func (g *fakeGuest) shell() bool {
	for {
		l, ok := g.readLine(true)
		if !ok {
			return false
		}
		if l == "exit" {
			return true
		}
		m := fakeBegin.FindStringSubmatch(l)
		if m == nil {
			g.emit(g.prompt) // an empty line, "exec /bin/sh", ...
			continue
		}
		nonce, cmd := m[1], []string{m[2]}
		for {
			l, ok = g.readLine(true)
			if !ok {
				return false
			}
			if e := fakeEnd.FindStringSubmatch(l); e != nil {
				if e[1] != nonce {
					panic("nonce mismatch")
				}
				break
			}
			cmd = append(cmd, l)
		}
		g.emit("kspec:" + nonce + ":B\n")
		// Commands that end the shell or put another on the console, with
		// the output the real busybox guest printed for them (recorded
		// with TestRealGuest's transcript).
		g.mu.Lock()
		session := g.session
		g.mu.Unlock()
		switch c := strings.Join(cmd, "\n"); {
		case strings.HasPrefix(c, "exit "):
			if session != "" { // the EXIT trap
				g.emit("\nkspec:" + session + ":X:" + strings.TrimPrefix(c, "exit ") + "\n")
			}
			return true
		case c == "kill -9 $$":
			return true
		case c == "exec sh" || c == "sh":
			g.emit("\n\nBusyBox v1.35.0 built-in shell (ash)\nEnter 'help' for a list of built-in commands.\n\n")
			if session != "" { // the $ENV file
				g.emit("\nkspec:" + session + ":R\n")
			}
			g.emit("~ # ")
			for {
				l, ok := g.readLine(true)
				if !ok {
					return false
				}
				if l == "exit" {
					break
				}
				g.emit("~ # ")
			}
			if c == "exec sh" {
				return true
			}
			g.emit("\nkspec:" + nonce + ":E:0\n" + g.prompt)
			continue
		}
		out, status := g.exec(strings.Join(cmd, "\n"))
		g.emit(out)
		g.emit("\nkspec:" + nonce + ":E:" + strconv.Itoa(status) + "\n" + g.prompt)
	}
}

// fakeTrap matches the session setup's EXIT trap (see sessionSetup).
var fakeTrap = regexp.MustCompile(`^trap 'printf "\\n%s:%s:X:%d\\n" kspec ([0-9a-f]{16}) "\$\?"' EXIT; `)

func (g *fakeGuest) exec(cmd string) (string, int) {
	if m := fakeTrap.FindStringSubmatch(cmd); m != nil {
		g.mu.Lock()
		g.session = m[1]
		g.mu.Unlock()
		return "", 0
	}
	if strings.HasPrefix(cmd, "stty ") {
		g.mu.Lock()
		defer g.mu.Unlock()
		if strings.Contains(cmd, "-echo") {
			g.echo = false
		}
		if strings.Contains(cmd, "-onlcr") {
			g.onlcr = false
		}
		return "", 0
	}
	g.mu.Lock()
	f := g.commands[cmd]
	g.mu.Unlock()
	if f == nil {
		return fmt.Sprintf("sh: %s: not found\n", cmd), 127
	}
	return f()
}

// replay plays a recorded console transcript: "guest" lines are printed,
// "host" lines must be what the console sends next (each is one line; the
// recorded text ends in "\n"). Then the shell takes over.
func (g *fakeGuest) replay(t *testing.T, path string) {
	f, err := os.Open(path)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		dir, quoted, _ := strings.Cut(line, " ")
		text, err := strconv.Unquote(strings.TrimSpace(quoted))
		if err != nil {
			t.Errorf("%s:%d: %v", path, n, err)
			return
		}
		switch dir {
		case "guest":
			g.raw(text)
		case "host":
			got, ok := <-g.lines
			if !ok {
				return
			}
			if got+"\n" != text {
				t.Errorf("%s:%d: console sent %q, transcript has %q", path, n, got+"\n", text)
			}
		default:
			t.Errorf("%s:%d: unknown direction %q", path, n, dir)
			return
		}
	}
	g.shell()
}
