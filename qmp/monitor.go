// Package qmp speaks the QEMU Machine Protocol (QMP) to one QEMU process:
// context-bounded commands, always-drained events with fan-out, and the
// snapshot jobs of QEMU >= 6.0.
//
// # Why not go-qemu's SocketMonitor
//
// The package is built on github.com/digitalocean/go-qemu's qmp types and
// its qmp.Monitor interface (GoQEMU adapts a Monitor so go-qemu's generated
// qmp/raw API runs on it), but it does not use go-qemu's SocketMonitor
// transport, whose pitfalls cannot all be wrapped from outside:
//
//   - its reader sends bufio.Scanner.Bytes() — a slice of the scanner's
//     buffer — to the goroutine running the command and immediately scans on,
//     so a reply followed by events (QEMU's job events follow the reply of
//     snapshot-save) is overwritten while it is decoded: replies come back as
//     event text, and encoding/json can panic ("data changing underfoot").
//     That is a data race inside go-qemu, reproducible in a few hundred
//     commands; no wrapper can fix it.
//   - its event channel is unbuffered and, once subscribed, must be drained
//     or every command deadlocks;
//   - it reads lines with a 64 KiB limit; a longer line ends its reader;
//   - it has no per-call timeout, and it matches replies to commands by
//     order only, so an abandoned command's late reply would answer the next.
//
// Here a single reader goroutine decodes QMP messages with encoding/json
// (no line limit; a message over MaxMessageSize ends the connection with an
// error wrapping ErrMessageTooLarge), every command carries an "id" that its
// reply echoes, events are fanned out without ever blocking the reader (slow
// subscribers lose events; see DroppedEvents), and every call takes a
// context. A call whose context ends returns at once and leaves the Monitor
// usable: its reply, when it comes, is recognised by id and discarded. (The
// command itself may still take effect in QEMU — QMP cannot cancel it.)
//
// A Monitor is safe for concurrent use.
package qmp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	goqmp "github.com/digitalocean/go-qemu/qmp"
)

// ErrClosed is wrapped by every error from a Monitor whose connection is
// gone: closed by Close, by QEMU closing the socket (for example because it
// exited), or by a protocol failure.
var ErrClosed = errors.New("qmp: monitor closed")

// ErrMessageTooLarge is wrapped by the connection error when QEMU sends a
// single message longer than MaxMessageSize.
var ErrMessageTooLarge = errors.New("qmp: message larger than MaxMessageSize")

// MaxMessageSize bounds one QMP message (reply or event). It only guards
// against a runaway peer; QEMU's largest replies (query-qmp-schema) are a few
// hundred KiB.
const MaxMessageSize = 64 << 20

// maxMessage is MaxMessageSize; tests lower it.
var maxMessage int64 = MaxMessageSize

// CommandError is a QMP error reply to a command.
type CommandError struct {
	// Command is the QMP command name ("execute").
	Command string
	// Class is the QMP error class, e.g. "GenericError",
	// "CommandNotFound", "DeviceNotFound".
	Class string
	// Desc is QEMU's human-readable description.
	Desc string
}

// Error implements error.
func (e *CommandError) Error() string {
	return fmt.Sprintf("qmp: %s: %s (%s)", e.Command, e.Desc, e.Class)
}

// Command is a convenience QMP command value for Run:
// {"execute": Execute, "arguments": Arguments}.
type Command struct {
	// Execute is the command name, e.g. "query-status".
	Execute string `json:"execute"`
	// Arguments, if non-nil, is marshalled as the command's arguments object.
	Arguments any `json:"arguments,omitempty"`
}

// message is any QMP server message: greeting, reply or event.
type message struct {
	QMP *struct {
		Version      goqmp.Version `json:"version"`
		Capabilities []string      `json:"capabilities"`
	} `json:"QMP"`
	Event     string         `json:"event"`
	Data      map[string]any `json:"data"`
	Timestamp struct {
		Seconds      int64 `json:"seconds"`
		Microseconds int64 `json:"microseconds"`
	} `json:"timestamp"`
	ID     json.RawMessage `json:"id"`
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
}

// reply is what the reader hands to a waiting Run.
type reply struct {
	ret json.RawMessage
	err *CommandError // Command filled in by Run
}

// Monitor is a QMP connection to one QEMU process. Create it with Dial.
type Monitor struct {
	path    string
	conn    net.Conn
	dec     *json.Decoder // used by handshake, then only by read
	version goqmp.Version

	writeMu sync.Mutex // one command on the wire at a time

	pendMu  sync.Mutex
	pending map[string]chan reply // by command id
	nextID  atomic.Uint64

	closeOnce sync.Once
	closed    chan struct{} // closed when the connection is finished
	reason    error         // why; set before closed is closed
	readDone  chan struct{} // closed when the reader goroutine has exited

	evMu    sync.Mutex
	subs    map[*subscriber]struct{}
	hooks   map[*func(Event)]struct{} // OnEvent callbacks, run by the reader
	evDone  bool
	dropped atomic.Uint64
	orphans atomic.Uint64 // replies whose command was abandoned

	jobSeq atomic.Uint64
}

// Dial connects to the QMP unix socket at socketPath, retrying until the
// socket answers (QEMU creates it a moment after it starts) or ctx ends,
// and performs the capabilities handshake. The error names the socket.
func Dial(ctx context.Context, socketPath string) (*Monitor, error) {
	var lastErr error
	for attempt := 0; ; attempt++ {
		m, err := dialOnce(ctx, socketPath)
		if err == nil {
			return m, nil
		}
		lastErr = err
		delay := 10 * time.Millisecond << min(attempt, 3) // 10ms .. 80ms
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("qmp: dial %s: %w (last attempt: %v)", socketPath, ctx.Err(), lastErr)
		case <-t.C:
		}
	}
}

func dialOnce(ctx context.Context, path string) (*Monitor, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	// Bound the handshake by ctx: a QEMU that accepted the connection but
	// serves another client never greets.
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	m, err := handshake(c, path)
	if !stop() || err != nil {
		c.Close()
		if err == nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("qmp handshake on %s: %w", path, err)
	}
	_ = c.SetDeadline(time.Time{})
	go m.read()
	return m, nil
}

// handshake reads the greeting and negotiates capabilities; it returns the
// Monitor with its reader not yet started.
func handshake(c net.Conn, path string) (*Monitor, error) {
	m := &Monitor{
		path:     path,
		conn:     c,
		pending:  make(map[string]chan reply),
		closed:   make(chan struct{}),
		readDone: make(chan struct{}),
		subs:     make(map[*subscriber]struct{}),
		hooks:    make(map[*func(Event)]struct{}),
	}
	dec := m.newDecoder()
	var greet message
	if err := dec.Decode(&greet); err != nil {
		return nil, fmt.Errorf("read greeting: %w", err)
	}
	if greet.QMP == nil {
		return nil, errors.New("peer did not send a QMP greeting")
	}
	m.version = greet.QMP.Version
	if _, err := io.WriteString(c, `{"execute":"qmp_capabilities"}`+"\n"); err != nil {
		return nil, fmt.Errorf("send qmp_capabilities: %w", err)
	}
	for {
		var msg message
		if err := dec.Decode(&msg); err != nil {
			return nil, fmt.Errorf("read qmp_capabilities reply: %w", err)
		}
		if msg.Event != "" {
			continue // no subscriber can exist yet
		}
		if msg.Error != nil {
			return nil, &CommandError{Command: "qmp_capabilities", Class: msg.Error.Class, Desc: msg.Error.Desc}
		}
		break
	}
	m.dec = dec
	return m, nil
}

// limitedReader fails once more than MaxMessageSize bytes are read past the
// end of the last complete message.
type limitedReader struct {
	r     io.Reader
	total int64
	mark  func() int64 // offset of the end of the last decoded message
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.total-l.mark() > maxMessage {
		return 0, ErrMessageTooLarge
	}
	n, err := l.r.Read(p)
	l.total += int64(n)
	return n, err
}

func (m *Monitor) newDecoder() *json.Decoder {
	lr := &limitedReader{r: bufio.NewReaderSize(m.conn, 64<<10)}
	dec := json.NewDecoder(lr)
	lr.mark = dec.InputOffset
	return dec
}

// read is the only reader of the connection. It never blocks on anyone:
// replies go to buffered per-command channels, events to subscribers
// without waiting.
func (m *Monitor) read() {
	defer close(m.readDone)
	var err error
	for {
		var msg message
		if err = m.dec.Decode(&msg); err != nil {
			break
		}
		switch {
		case msg.Event != "":
			m.dispatch(Event{
				Name:      msg.Event,
				Data:      msg.Data,
				Timestamp: time.Unix(msg.Timestamp.Seconds, msg.Timestamp.Microseconds*1000),
			})
		case msg.Return != nil || msg.Error != nil:
			var id string
			_ = json.Unmarshal(msg.ID, &id)
			m.pendMu.Lock()
			ch, ok := m.pending[id]
			delete(m.pending, id)
			m.pendMu.Unlock()
			if !ok {
				m.orphans.Add(1) // abandoned by a context, or not ours
				continue
			}
			r := reply{ret: msg.Return}
			if msg.Error != nil {
				r.err = &CommandError{Class: msg.Error.Class, Desc: msg.Error.Desc}
			}
			ch <- r // buffered, never blocks
		}
	}
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		err = fmt.Errorf("%w: QEMU closed %s", ErrClosed, m.path)
	case errors.Is(err, ErrMessageTooLarge):
		err = fmt.Errorf("%w: %w (%d bytes)", ErrClosed, ErrMessageTooLarge, maxMessage)
	default:
		err = fmt.Errorf("%w: reading %s: %w", ErrClosed, m.path, err)
	}
	m.finish(err)
	m.endEvents()
}

// finish marks the connection finished with reason (which wraps ErrClosed)
// and closes the socket, which ends the reader.
func (m *Monitor) finish(reason error) {
	m.closeOnce.Do(func() {
		m.reason = reason
		close(m.closed)
		_ = m.conn.Close()
	})
}

// Path returns the socket path the Monitor is connected to.
func (m *Monitor) Path() string { return m.path }

// Version returns the QEMU version from the QMP greeting, e.g. "7.2.22".
func (m *Monitor) Version() string { return m.version.String() }

// Done returns a channel closed when the connection is finished (Close,
// QEMU closing the socket, or a protocol error); Err then says why.
func (m *Monitor) Done() <-chan struct{} { return m.closed }

// Err returns nil while the connection is open, else why it closed (an error
// wrapping ErrClosed).
func (m *Monitor) Err() error {
	select {
	case <-m.closed:
		return m.reason
	default:
		return nil
	}
}

// OrphanReplies counts replies that arrived for commands whose context had
// already ended; they were discarded.
func (m *Monitor) OrphanReplies() uint64 { return m.orphans.Load() }

// Close disconnects from QEMU. Calls in flight return errors wrapping
// ErrClosed and subscriber channels are closed. Idempotent; safe to call
// concurrently with anything else. When Close returns, no goroutine of the
// Monitor is left.
func (m *Monitor) Close() error {
	m.finish(fmt.Errorf("%w by Close", ErrClosed))
	<-m.readDone
	return nil
}

// Run sends cmd and decodes the reply's "return" value into result (which
// may be nil to discard it). cmd is anything that marshals to a QMP command
// object, such as Command or a struct with "execute" and "arguments"
// fields; a plain string is taken as a command without arguments. Run adds
// the "id" itself.
//
// A QMP error reply is returned as *CommandError. Every other error names
// the command and wraps its cause with %w: the context's error if ctx ended
// first (the Monitor stays usable), or an error wrapping ErrClosed if the
// connection finished.
func (m *Monitor) Run(ctx context.Context, cmd any, result any) error {
	name, raw, err := encodeCommand(cmd)
	if err != nil {
		return fmt.Errorf("qmp: %s: encode command: %w", name, err)
	}
	ret, err := m.run(ctx, name, raw)
	if err != nil {
		return err
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(ret, result); err != nil {
		return fmt.Errorf("qmp: %s: decode return value %.200s into %T: %w", name, ret, result, err)
	}
	return nil
}

// run sends raw (a command object without id) and waits for its reply.
func (m *Monitor) run(ctx context.Context, name string, raw []byte) (json.RawMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("qmp: %s: %w", name, err)
	}
	if err := m.Err(); err != nil {
		return nil, fmt.Errorf("qmp: %s: %w", name, err)
	}
	id := "kspec-" + strconv.FormatUint(m.nextID.Add(1), 10)
	line := make([]byte, 0, len(raw)+32)
	line = append(line, raw[:len(raw)-1]...) // drop the closing brace
	line = append(line, `,"id":"`...)
	line = append(line, id...)
	line = append(line, "\"}\n"...)

	ch := make(chan reply, 1)
	m.pendMu.Lock()
	m.pending[id] = ch
	m.pendMu.Unlock()
	abandon := func() {
		m.pendMu.Lock()
		delete(m.pending, id)
		m.pendMu.Unlock()
	}

	if err := m.write(ctx, line); err != nil {
		abandon()
		return nil, fmt.Errorf("qmp: %s: %w", name, err)
	}
	select {
	case r := <-ch:
		if r.err != nil {
			r.err.Command = name
			return nil, r.err
		}
		return r.ret, nil
	case <-ctx.Done():
		abandon()
		return nil, fmt.Errorf("qmp: %s: %w (the command may still take effect; its reply will be discarded)", name, ctx.Err())
	case <-m.closed:
		abandon()
		return nil, fmt.Errorf("qmp: %s: %w", name, m.reason)
	}
}

// write sends one command line, bounded by ctx. A write that times out
// part-way would desynchronise the stream, so it finishes the connection.
func (m *Monitor) write(ctx context.Context, line []byte) error {
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	if err := m.Err(); err != nil {
		return err
	}
	dl, _ := ctx.Deadline()
	_ = m.conn.SetWriteDeadline(dl)
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = m.conn.SetWriteDeadline(time.Unix(1, 0))
		close(fired)
	})
	n, err := m.conn.Write(line)
	if !stop() {
		<-fired // its deadline must not leak into the next write
	}
	if err == nil {
		return nil
	}
	if n == 0 && ctx.Err() != nil {
		return ctx.Err()
	}
	reason := fmt.Errorf("%w: writing to %s: %w", ErrClosed, m.path, err)
	m.finish(reason)
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%w)", ctx.Err(), reason)
	}
	return reason
}

// encodeCommand marshals cmd and extracts its "execute" name.
func encodeCommand(cmd any) (string, []byte, error) {
	if s, ok := cmd.(string); ok {
		cmd = Command{Execute: s}
	}
	raw, err := json.Marshal(cmd)
	if err != nil {
		return fmt.Sprintf("%T", cmd), nil, err
	}
	var head struct {
		Execute string          `json:"execute"`
		ID      json.RawMessage `json:"id"`
	}
	if err := json.Unmarshal(raw, &head); err != nil || head.Execute == "" {
		return fmt.Sprintf("%T", cmd), nil, fmt.Errorf("command %.100s has no \"execute\" name", raw)
	}
	if head.ID != nil {
		return head.Execute, nil, errors.New(`command already has an "id"; Run assigns ids itself`)
	}
	return head.Execute, raw, nil
}
