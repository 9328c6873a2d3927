package qmp

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/digitalocean/go-qemu/qmp/raw"
)

func TestGoQEMUAdapterRunsGeneratedAPI(t *testing.T) {
	f := newFakeQMP(t, func(c *fakeConn, cmd fakeCmd) {
		switch cmd.Execute {
		case "query-status":
			cmd.ok(map[string]any{"status": "paused", "running": false, "singlestep": false})
		case "stop":
			c.event("STOP", nil)
			cmd.ok(map[string]any{})
		default:
			cmd.fail("CommandNotFound", "The command "+cmd.Execute+" has not been found")
		}
	})
	m := dialFake(t, f)
	g := m.GoQEMU()
	if err := g.Connect(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	events, err := g.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r := raw.NewMonitor(g)
	st, err := r.QueryStatus()
	if err != nil || st.Status != raw.RunStatePaused || st.Running {
		t.Fatalf("QueryStatus = %+v, %v", st, err)
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-events:
		if ev.Event != "STOP" || ev.Timestamp.Seconds != 1700000000 {
			t.Fatalf("event %+v", ev)
		}
	case <-ctx.Done():
		t.Fatal("no STOP event")
	}
	_, err = g.Run([]byte(`{"execute":"nosuch"}`))
	var ce *CommandError
	if !errors.As(err, &ce) || ce.Class != "CommandNotFound" {
		t.Fatalf("nosuch: %v", err)
	}
	if _, err := g.Run([]byte(`{"execute":"x","id":1}`)); err == nil {
		t.Fatal("command with its own id accepted")
	}
	if err := g.Disconnect(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-events; ok {
		t.Fatal("events channel open after Disconnect")
	}
}
