package qmp

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// Event is an asynchronous QMP event such as STOP, RESUME, SHUTDOWN or
// GUEST_PANICKED.
type Event struct {
	// Name is the event name, e.g. "STOP".
	Name string
	// Data is the event's "data" object (nil when it has none).
	Data map[string]any
	// Timestamp is QEMU's timestamp for the event (host wall clock).
	Timestamp time.Time
}

// String renders the event for logs and error messages.
func (e Event) String() string {
	if len(e.Data) == 0 {
		return e.Name
	}
	return fmt.Sprintf("%s %v", e.Name, e.Data)
}

// DataString returns Data[key] if it is a string, else "".
func (e Event) DataString(key string) string {
	s, _ := e.Data[key].(string)
	return s
}

type subscriber struct {
	ch      chan Event
	match   func(Event) bool // nil: every event
	dropped atomic.Uint64
}

// dispatch runs the OnEvent hooks and hands ev to every matching
// subscriber without blocking.
func (m *Monitor) dispatch(ev Event) {
	m.evMu.Lock()
	defer m.evMu.Unlock()
	for fn := range m.hooks {
		(*fn)(ev)
	}
	for s := range m.subs {
		if s.match != nil && !s.match(ev) {
			continue
		}
		select {
		case s.ch <- ev:
		default:
			s.dropped.Add(1)
			m.dropped.Add(1)
		}
	}
}

// endEvents closes every subscription once the connection is finished.
func (m *Monitor) endEvents() {
	m.evMu.Lock()
	defer m.evMu.Unlock()
	m.evDone = true
	for s := range m.subs {
		close(s.ch)
		delete(m.subs, s)
	}
}

// DroppedEvents is the number of events not delivered to some subscriber
// because its buffer was full, summed over all subscribers.
func (m *Monitor) DroppedEvents() uint64 { return m.dropped.Load() }

// OnEvent calls fn for every event that arrives from now on, in the
// Monitor's reader, before it reads anything further. So when a command
// returns, fn has seen every event QEMU emitted before the command's reply
// (a RESUME before the reply to "cont"): fn can keep state in step with
// commands other parts of the program send. fn must be quick and must not
// call the Monitor. The returned function removes the hook (idempotent).
func (m *Monitor) OnEvent(fn func(Event)) (remove func()) {
	p := &fn
	m.evMu.Lock()
	m.hooks[p] = struct{}{}
	m.evMu.Unlock()
	return func() {
		m.evMu.Lock()
		delete(m.hooks, p)
		m.evMu.Unlock()
	}
}

// Subscribe returns a channel receiving every event that arrives from now
// on, and a function that ends the subscription (idempotent). The channel
// holds up to buffer events (minimum 1); when it is full, new events are
// dropped for this subscriber and counted in DroppedEvents — a slow or
// absent reader never blocks the Monitor. The channel is closed when the
// subscription ends or the connection does.
func (m *Monitor) Subscribe(buffer int) (<-chan Event, func()) {
	s := m.subscribe(buffer, nil)
	return s.ch, func() { m.unsubscribe(s) }
}

func (m *Monitor) subscribe(buffer int, match func(Event) bool) *subscriber {
	s := &subscriber{ch: make(chan Event, max(buffer, 1)), match: match}
	m.evMu.Lock()
	defer m.evMu.Unlock()
	if m.evDone {
		close(s.ch)
		return s
	}
	m.subs[s] = struct{}{}
	return s
}

func (m *Monitor) unsubscribe(s *subscriber) {
	m.evMu.Lock()
	defer m.evMu.Unlock()
	if _, ok := m.subs[s]; ok {
		delete(m.subs, s)
		close(s.ch)
	}
}

// Waiter waits for an event. Create it BEFORE the action that causes the
// event, so the event cannot slip past between the action and the wait:
//
//	w := mon.NewWaiter("STOP")
//	defer w.Close()
//	if err := mon.Stop(ctx); err != nil { ... }
//	ev, err := w.Wait(ctx)
//
// A Waiter buffers up to 64 matching events; it may be waited on repeatedly.
type Waiter struct {
	m    *Monitor
	s    *subscriber
	desc string
}

// waiterBuffer is how many matching events a Waiter holds before dropping.
const waiterBuffer = 64

// NewWaiter subscribes to events whose name is one of names (any event if
// names is empty).
func (m *Monitor) NewWaiter(names ...string) *Waiter {
	names = slices.Clone(names)
	var match func(Event) bool
	desc := "any event"
	if len(names) > 0 {
		match = func(e Event) bool { return slices.Contains(names, e.Name) }
		desc = strings.Join(names, "|")
	}
	return &Waiter{m: m, s: m.subscribe(waiterBuffer, match), desc: desc}
}

// NewWaiterFunc subscribes to events for which match returns true. match runs
// on the Monitor's event goroutine and must be quick and must not call the
// Monitor. desc names the awaited event in errors.
func (m *Monitor) NewWaiterFunc(desc string, match func(Event) bool) *Waiter {
	return &Waiter{m: m, s: m.subscribe(waiterBuffer, match), desc: desc}
}

// Wait returns the next matching event, or an error when ctx ends or the
// connection closes first.
func (w *Waiter) Wait(ctx context.Context) (Event, error) {
	select {
	case ev, ok := <-w.s.ch:
		if !ok {
			if err := w.m.Err(); err != nil {
				return Event{}, fmt.Errorf("qmp: waiting for %s: %w", w.desc, err)
			}
			return Event{}, fmt.Errorf("qmp: waiting for %s: waiter closed", w.desc)
		}
		return ev, nil
	case <-ctx.Done():
		return Event{}, fmt.Errorf("qmp: waiting for %s: %w", w.desc, ctx.Err())
	}
}

// Dropped is how many matching events this Waiter lost to a full buffer.
func (w *Waiter) Dropped() uint64 { return w.s.dropped.Load() }

// Close ends the subscription. Idempotent.
func (w *Waiter) Close() { w.m.unsubscribe(w.s) }

// WaitEvent waits for the next event named one of names that arrives after
// the call. It suits events caused by something else (the guest, another
// goroutine). For an event your own command causes, use NewWaiter before the
// command instead: an event that arrives before WaitEvent subscribes is
// missed.
func (m *Monitor) WaitEvent(ctx context.Context, names ...string) (Event, error) {
	w := m.NewWaiter(names...)
	defer w.Close()
	return w.Wait(ctx)
}
