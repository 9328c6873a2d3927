package harness

import (
	"strings"
	"testing"

	"github.com/kspec/kspec/rsp"
)

func TestRenderTranscript(t *testing.T) {
	var r recorder
	w := func(s string) { r.Write([]byte(s)) }
	w("old timeline\n")
	r.beginSpec()
	// A console sync: kspec's own command, not typed.
	w("root@kspec:~# kspec:0123456789abcdef:B\n\nkspec:0123456789abcdef:E:0\n")
	r.typed("uname -r")
	w("root@kspec:~# kspec:1111111111111111:B\n6.1.0\n\nkspec:1111111111111111:E:0\n")
	r.typed("mkdir /tmp/x")
	w("root@kspec:~# kspec:2222222222222222:B\n\nkspec:2222222222222222:E:0\n")
	r.typed("printf abc; false")
	w("root@kspec:~# kspec:3333333333333333:B\nabc\nkspec:3333333333333333:E:1\n")
	w("[   12.345678] kernel says hi\r\n")
	r.typed("echo a\necho b")
	w("root@kspec:~# kspec:4444444444444444:B\na\n\nb\n\nkspec:4444444444444444:E:0\n")
	raw, truncated := r.since(r.specStartOffset())
	if truncated {
		t.Error("truncated")
	}
	got := renderTranscript(raw)
	want := `$ uname -r
6.1.0
[exit 0]
$ mkdir /tmp/x
[exit 0]
$ printf abc; false
abc
[exit 1]
[   12.345678] kernel says hi
$ echo a
$ echo b
a

b
[exit 0]
`
	if got != want {
		t.Errorf("rendered:\n%s\nwant:\n%s", got, want)
	}
}

func TestRecorderBounds(t *testing.T) {
	var r recorder
	r.beginSpec()
	chunk := strings.Repeat("x", 4096) + "\n"
	for i := 0; i < 3*transcriptKeep/len(chunk); i++ {
		r.Write([]byte(chunk))
	}
	if len(r.buf) > 2*transcriptKeep {
		t.Errorf("buffer grew to %d", len(r.buf))
	}
	s, truncated := r.since(0)
	if !truncated || len(s) < transcriptKeep {
		t.Errorf("since(0): truncated %v, %d bytes", truncated, len(s))
	}
	r.noteStop(rsp.StopReply{Kind: 'T', Signal: 5, Raw: "T05thread:01;"})
	r.beginSpec()
	if r.lastStop != nil {
		t.Error("BeginSpec kept the last stop")
	}
}

func TestRecorderBusy(t *testing.T) {
	var r recorder
	done := false
	r.started("sleep 1", func() bool { return done })
	if b := r.busy(); len(b) != 1 || b[0] != "sleep 1" {
		t.Errorf("busy %q", b)
	}
	done = true
	if b := r.busy(); len(b) != 0 {
		t.Errorf("busy after collection %q", b)
	}
	r.markDirty()
	if b := r.busy(); len(b) != 1 {
		t.Errorf("busy when dirty %q", b)
	}
	r.settled()
	if b := r.busy(); len(b) != 0 {
		t.Errorf("busy after settled %q", b)
	}
}

func TestRenderTypedAfterPrompt(t *testing.T) {
	var r recorder
	r.Write([]byte("root@kspec:~# kspec:0123456789abcdef:B\nx\n\nkspec:0123456789abcdef:E:0\nroot@kspec:~# "))
	r.typed("mkdir /tmp/d")
	r.Write([]byte("partial output"))
	r.typed("true")
	raw, _ := r.since(0)
	if got, want := renderTranscript(raw), "x\n$ mkdir /tmp/d\npartial output\n$ true\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
