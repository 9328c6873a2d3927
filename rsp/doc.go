// Package rsp is a client for the GDB Remote Serial Protocol (RSP) over any
// io.ReadWriter.
//
// It knows nothing of QEMU or of symbols, but it is written for QEMU's
// gdbstub (7.2 to 10.x) and honours its quirks: acknowledgement mode for
// every packet (no QStartNoAckMode), PacketSize negotiated in hex (0x1000
// up to 10.1, 0x20020 from 10.2) with `m` capped at half of it, packets of
// PacketSize characters or more silently dropped, `p`/`P` unusable until
// target.xml has been read, and the rule that any byte sent while the VM
// runs stops it. Stop replies differ by version: 7.2 sends one whenever the
// VM stops, 8.1 and later only once per resume by the debugger, so a VM
// resumed behind the client's back (QMP cont; report it with NoteResumed)
// stops without a word, and a packet sent to it is never answered. The
// client knows where the target is from what it sent and what it is told,
// never from a stop reply it did not ask for (see state.go).
//
// A Client owns one reader goroutine and one writer goroutine. The reader
// demultiplexes what the stub sends: a reply goes to the oldest outstanding
// request (the protocol has no sequence numbers, so replies are matched in
// order), a stop reply that no request is waiting for goes to a stop queue
// (see WaitStop), and `O` console packets go to the Monitor call that asked
// for them or to Output.
//
// Every call takes a context. A call whose context expires leaves its request
// behind as abandoned; the next call resynchronises before it sends anything
// (it sends a probe whose reply it can recognise, a read of target.xml at an
// offset and length of its choosing, and drops every reply before it), so a
// late or missing reply never shifts the replies of later calls.
//
// Errors wrap with %w and name the packet that was sent: an empty reply is
// ErrUnsupported, an `Exx` reply is a *RemoteError, a lost connection is
// ErrConnectionClosed.
//
// Files: client.go (the Client, its options and accessors), connect.go (the
// handshake: qSupported, target.xml), wire.go (reader and writer goroutines,
// acknowledgements, routing replies), call.go (the request life cycle,
// probes and resynchronisation), state.go (where the target is: stop queue,
// running or stopped), packets.go (one method per packet), memory.go
// (pipelined m, M), stop.go (stop replies), codec.go (framing).
package rsp
