package qmp

import (
	"encoding/json"
	"net"
	"path/filepath"
	"sync"
	"testing"
)

// fakeQMP is a scriptable QMP server on a unix socket.
type fakeQMP struct {
	t      *testing.T
	path   string
	ln     net.Listener
	handle func(c *fakeConn, cmd fakeCmd)
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns []*fakeConn
}

type fakeCmd struct {
	Execute   string         `json:"execute"`
	Arguments map[string]any `json:"arguments"`
	ID        any            `json:"id"`
	c         *fakeConn
}

// ok replies to the command with a "return" value, echoing its id.
func (cmd fakeCmd) ok(ret any) {
	cmd.c.send(map[string]any{"return": ret, "id": cmd.ID})
}

// fail replies to the command with a QMP error, echoing its id.
func (cmd fakeCmd) fail(class, desc string) {
	cmd.c.send(map[string]any{"error": map[string]any{"class": class, "desc": desc}, "id": cmd.ID})
}

type fakeConn struct {
	net.Conn
	mu sync.Mutex
}

// send writes v as one JSON line.
func (c *fakeConn) send(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	c.sendRaw(string(b))
}

func (c *fakeConn) sendRaw(line string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, _ = c.Write([]byte(line + "\r\n"))
}

func (c *fakeConn) event(name string, data map[string]any) {
	ev := map[string]any{"event": name, "timestamp": map[string]any{"seconds": 1700000000, "microseconds": 5}}
	if data != nil {
		ev["data"] = data
	}
	c.send(ev)
}

// newFakeQMP listens on a fresh socket; handle is called for every command
// after the capabilities handshake (nil: reply {"return":{}} to everything).
func newFakeQMP(t *testing.T, handle func(c *fakeConn, cmd fakeCmd)) *fakeQMP {
	t.Helper()
	f := &fakeQMP{t: t, path: filepath.Join(t.TempDir(), "qmp.sock"), handle: handle}
	if f.handle == nil {
		f.handle = func(_ *fakeConn, cmd fakeCmd) { cmd.ok(map[string]any{}) }
	}
	f.listen()
	t.Cleanup(f.close)
	return f
}

func (f *fakeQMP) listen() {
	ln, err := net.Listen("unix", f.path)
	if err != nil {
		f.t.Fatal(err)
	}
	f.ln = ln
	f.wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			c := &fakeConn{Conn: nc}
			f.mu.Lock()
			f.conns = append(f.conns, c)
			f.mu.Unlock()
			f.wg.Go(func() { f.serve(c) })
		}
	})
}

func (f *fakeQMP) serve(c *fakeConn) {
	defer c.Close()
	c.sendRaw(`{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "fake"}, "capabilities": ["oob"]}}`)
	dec := json.NewDecoder(c)
	for {
		var cmd fakeCmd
		if err := dec.Decode(&cmd); err != nil {
			return
		}
		cmd.c = c
		if cmd.Execute == "qmp_capabilities" {
			cmd.ok(map[string]any{})
			continue
		}
		f.handle(c, cmd)
	}
}

// dropAll closes every client connection (like QEMU exiting).
func (f *fakeQMP) dropAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.Close()
	}
}

func (f *fakeQMP) close() {
	f.ln.Close()
	f.dropAll()
	f.wg.Wait()
}
