package qmp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	goqmp "github.com/digitalocean/go-qemu/qmp"
)

// GoQEMU adapts the Monitor to go-qemu's qmp.Monitor interface, so go-qemu's
// generated typed API runs over this transport:
//
//	st, err := raw.NewMonitor(m.GoQEMU()).QueryStatus()
//
// go-qemu's interface has no contexts: the adapter's Run is bounded only by
// the connection (prefer Monitor.Run where a deadline matters). Connect is a
// no-op (the Monitor is already connected) and Disconnect closes the
// Monitor. Events returns a subscription that ends with ctx or the
// connection; like every subscriber it drops events it cannot buffer rather
// than block.
func (m *Monitor) GoQEMU() goqmp.Monitor { return goQEMU{m} }

type goQEMU struct{ m *Monitor }

var _ goqmp.Monitor = goQEMU{}

// Connect implements go-qemu's qmp.Monitor; the Monitor is already connected.
func (g goQEMU) Connect() error {
	return g.m.Err()
}

// Disconnect implements go-qemu's qmp.Monitor by closing the Monitor.
func (g goQEMU) Disconnect() error { return g.m.Close() }

// Run implements go-qemu's qmp.Monitor: command is a JSON command object;
// the result is the whole reply object, {"return": ...}. A QMP error is
// returned as *CommandError.
func (g goQEMU) Run(command []byte) ([]byte, error) {
	var head struct {
		Execute string `json:"execute"`
	}
	if err := json.Unmarshal(command, &head); err != nil || head.Execute == "" {
		return nil, fmt.Errorf("qmp: command %.100s has no \"execute\" name", command)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(command, &obj); err != nil {
		return nil, fmt.Errorf("qmp: %s: %w", head.Execute, err)
	}
	if _, ok := obj["id"]; ok {
		return nil, errors.New(`qmp: command already has an "id"; the Monitor assigns ids itself`)
	}
	compact, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	ret, err := g.m.run(context.Background(), head.Execute, compact)
	if err != nil {
		return nil, err
	}
	return json.Marshal(struct {
		Return json.RawMessage `json:"return"`
	}{ret})
}

// Events implements go-qemu's qmp.Monitor.
func (g goQEMU) Events(ctx context.Context) (<-chan goqmp.Event, error) {
	if err := g.m.Err(); err != nil {
		return nil, err
	}
	in, cancel := g.m.Subscribe(256)
	out := make(chan goqmp.Event, 256)
	go func() {
		defer close(out)
		defer cancel()
		for {
			select {
			case ev, ok := <-in:
				if !ok {
					return
				}
				ge := goqmp.Event{Event: ev.Name, Data: ev.Data}
				ge.Timestamp.Seconds = ev.Timestamp.Unix()
				ge.Timestamp.Microseconds = int64(ev.Timestamp.Nanosecond() / 1000)
				select {
				case out <- ge:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}
