// Package faultinject makes real QEMU processes fail in ways the fault
// suite needs and QEMU has no command for. SeverUnixConnections drops the
// connections a process holds on a unix socket from the process's side, so
// both ends see a genuine connection loss (QEMU reads EOF, kspec reads EOF),
// not a client that merely closed its own end.
package faultinject

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// SeverUnixConnections shuts down (shutdown(2), both directions) every
// connected unix socket that process pid holds on the socket bound at path
// — e.g. QEMU's end of the gdbstub or QMP connection — and returns how many
// it severed. The listening socket is left alone, so the process keeps
// accepting new connections. It reaches into the process with
// pidfd_getfd(2), which needs the right to ptrace it (a child process of the
// caller qualifies). Severing nothing is an error.
func SeverUnixConnections(pid int, path string) (int, error) {
	inodes, err := connectedInodes(path)
	if err != nil {
		return 0, err
	}
	fds, err := socketFDs(pid, inodes)
	if err != nil {
		return 0, err
	}
	if len(fds) == 0 {
		return 0, fmt.Errorf("faultinject: process %d holds no connection on %s", pid, path)
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return 0, fmt.Errorf("faultinject: pidfd_open(%d): %w", pid, err)
	}
	defer unix.Close(pidfd)
	n := 0
	var errs []error
	for _, fd := range fds {
		local, err := unix.PidfdGetfd(pidfd, fd, 0)
		if err != nil {
			errs = append(errs, fmt.Errorf("pidfd_getfd(%d, fd %d): %w", pid, fd, err))
			continue
		}
		if err := unix.Shutdown(local, unix.SHUT_RDWR); err != nil {
			errs = append(errs, fmt.Errorf("shutdown fd %d of %d: %w", fd, pid, err))
		} else {
			n++
		}
		unix.Close(local)
	}
	if err := errors.Join(errs...); err != nil {
		return n, fmt.Errorf("faultinject: %w", err)
	}
	return n, nil
}

// connectedInodes returns the inodes of the connected (not listening) unix
// sockets whose address is path, from /proc/net/unix. An accepted
// connection carries the address of the socket it was accepted on.
func connectedInodes(path string) (map[string]bool, error) {
	f, err := os.Open("/proc/net/unix")
	if err != nil {
		return nil, fmt.Errorf("faultinject: %w", err)
	}
	defer f.Close()
	inodes := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Scan() // header: Num RefCount Protocol Flags Type St Inode Path
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 || fields[7] != path {
			continue
		}
		const connected = "03" // SS_CONNECTED; a listener is 01 (SS_UNCONNECTED)
		if fields[5] == connected {
			inodes[fields[6]] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("faultinject: read /proc/net/unix: %w", err)
	}
	return inodes, nil
}

// socketFDs returns pid's file descriptors that are sockets with one of the
// given inodes.
func socketFDs(pid int, inodes map[string]bool) ([]int, error) {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("faultinject: %w", err)
	}
	var fds []int
	for _, e := range ents {
		link, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		ino, ok := strings.CutPrefix(link, "socket:[")
		if !ok || !inodes[strings.TrimSuffix(ino, "]")] {
			continue
		}
		if fd, err := strconv.Atoi(e.Name()); err == nil {
			fds = append(fds, fd)
		}
	}
	return fds, nil
}
