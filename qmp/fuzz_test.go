package qmp

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"testing"
	"time"
)

// FuzzReplyDecoder feeds arbitrary bytes to the Monitor's reader after a
// good handshake, as if QEMU sent them: replies (to a pending command and
// to nobody), events (to a subscriber that never reads), garbage, huge or
// truncated JSON. Whatever arrives, the reader must not panic or block, must
// end when the connection does with an error wrapping ErrClosed, and must
// deliver at most one reply to the pending command, with its return value
// or error as sent.
func FuzzReplyDecoder(f *testing.F) {
	for _, seed := range []string{
		`{"return": {}, "id": "kspec-1"}`,
		`{"return": {"status": "running", "running": true}, "id": "kspec-1"}`,
		`{"error": {"class": "GenericError", "desc": "no"}, "id": "kspec-1"}`,
		`{"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 2}}`,
		`{"event": "GUEST_PANICKED", "data": {"action": "pause", "info": {"type": "hyper-v"}}, "timestamp": {"seconds": 1, "microseconds": 2}}` + "\n" + `{"event": "STOP"}`,
		`{"return": [], "id": "other"}{"return": 1, "id": "kspec-1"}`,
		`{"return": {}, "id": 7}`,
		`{"id": "kspec-1"}`,
		`{"return": {"a": [1, 2, {"b": null}]}, "id": "kspec-1"`,
		`[1, 2, 3]`,
		`"a string"`,
		`{"event": 5}`,
		`{"error": null, "return": null, "id": "kspec-1"}`,
		"\x00\xff{",
		``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		client, server := net.Pipe()
		serverDone := make(chan struct{})
		go func() {
			defer close(serverDone)
			defer server.Close()
			server.Write([]byte(`{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": []}}` + "\n"))
			buf := make([]byte, 256)
			if _, err := server.Read(buf); err != nil { // qmp_capabilities
				return
			}
			server.Write([]byte(`{"return": {}}` + "\n"))
			server.Write(data)
		}()
		m, err := handshake(client, "fuzz")
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		ch := make(chan reply, 1)
		m.pending["kspec-1"] = ch
		events, unsubscribe := m.Subscribe(1) // never read: must not block
		defer unsubscribe()
		go m.read()

		<-serverDone
		select {
		case <-m.readDone:
		case <-time.After(10 * time.Second): // a bound on a hang, not a sync
			t.Fatal("the reader did not end after the connection closed")
		}
		if err := m.Err(); !errors.Is(err, ErrClosed) {
			t.Fatalf("Err() = %v, want ErrClosed", err)
		}
		for range events { // closed by the reader's end
		}
		select {
		case r := <-ch:
			if r.err == nil && r.ret == nil {
				t.Fatalf("a reply with neither return nor error")
			}
			if r.ret != nil && !json.Valid(r.ret) {
				t.Fatalf("return value %q is not JSON", r.ret)
			}
		default:
		}
		if len(ch) != 0 {
			t.Fatal("two replies for one command")
		}
		// A call after the end fails at once with the reason.
		if _, err := m.run(context.Background(), "query-status", []byte(`{"execute":"query-status"}`)); !errors.Is(err, ErrClosed) {
			t.Fatalf("run after close: %v", err)
		}
		m.Close()
	})
}
