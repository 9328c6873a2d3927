package faultinject

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSeverUnixConnections hands the accepted end of a unix connection to a
// child process (as QEMU holds its gdbstub connection) and severs it there:
// this side must read EOF, and the listener must keep accepting.
func TestSeverUnixConnections(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	f, err := server.(*net.UnixConn).File()
	if err != nil {
		t.Fatal(err)
	}
	server.Close()
	child := exec.Command("sleep", "60")
	child.ExtraFiles = []*os.File{f}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })

	if _, err := SeverUnixConnections(os.Getpid(), path+".other"); err == nil || !strings.Contains(err.Error(), "holds no connection") {
		t.Fatalf("severing a path nobody uses = %v; want 'holds no connection'", err)
	}
	n, err := SeverUnixConnections(child.Process.Pid, path)
	if err != nil || n != 1 {
		t.Fatalf("SeverUnixConnections = %d, %v; want 1, nil", n, err)
	}
	if b, err := io.ReadAll(client); err != nil || len(b) != 0 {
		t.Fatalf("client read %q, %v after the sever; want EOF", b, err)
	}
	again, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("the listener stopped accepting: %v", err)
	}
	again.Close()
}
