package harness

import (
	"github.com/kspec/kspec/qmp"
	"github.com/kspec/kspec/rsp"
	"github.com/kspec/kspec/supervisor"
)

// trackResumes reports every QMP RESUME event to the debugger client
// (rsp.Client.NoteResumed), so that the client never sends a packet to a VM
// resumed behind its back: a QMP cont of the spec's or of a person's, a
// snapshot restore of a running VM. QEMU >= 8.1 sends the client no stop
// reply for such a VM's stops and discards, unanswered, a packet that
// reaches it while it runs. The hook runs in the QMP reader, so the client
// knows before the cont that caused the event returns. RESUME events of the
// client's own continues are reported too; they cost the next request one
// interrupt-and-probe round trip. STOP events are not reported: by the time
// one is handled a later RESUME may already have run the VM again, and the
// client settles a stopped VM correctly anyway (QEMU ignores 0x03 then).
func (t *Target) trackResumes(mon *qmp.Monitor) {
	if t.unresume != nil {
		t.unresume()
	}
	t.unresume = mon.OnEvent(func(ev qmp.Event) {
		if ev.Name != "RESUME" {
			return
		}
		if c := t.gdbNow.Load(); c != nil {
			c.NoteResumed()
		}
	})
}

// setDebugger makes c the Target's debugger client (also for trackResumes).
func (t *Target) setDebugger(c *rsp.Client) {
	t.gdb = c
	t.gdbNow.Store(c)
}

// QEMUVersion is the version of the QEMU running the guest, from QMP's
// greeting (the zero Version if it cannot be parsed). Specs of behaviour
// that differs by QEMU version assert each version's.
func (t *Target) QEMUVersion() supervisor.Version {
	v, _ := supervisor.ParseVersion(t.QMP().Version())
	return v
}
