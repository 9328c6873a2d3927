package supervisor

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procInfo is what /proc/<pid>/stat says about a process.
type procInfo struct {
	state     byte   // R, S, D, Z, ...
	pgrp      int    // process group
	startTime uint64 // clock ticks after boot; tells a reused PID apart
}

// readProc parses /proc/<pid>/stat.
func readProc(pid int) (procInfo, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procInfo{}, err
	}
	return parseStat(b)
}

// parseStat parses the contents of /proc/<pid>/stat. The command name (field
// 2) is in parentheses and may itself contain spaces and parentheses, so
// fields are counted from the last ')'.
func parseStat(b []byte) (procInfo, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procInfo{}, errors.New("malformed stat: no ')'")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), f[2] field 5 (pgrp), f[19] field 22 (starttime).
	if len(f) < 20 || len(f[0]) != 1 {
		return procInfo{}, errors.New("malformed stat: too few fields")
	}
	pgrp, err1 := strconv.Atoi(f[2])
	start, err2 := strconv.ParseUint(f[19], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return procInfo{}, fmt.Errorf("malformed stat: %w", err)
	}
	return procInfo{state: f[0][0], pgrp: pgrp, startTime: start}, nil
}

// alive reports whether pid runs and is the process that started at
// startTime (0: any); zombies count as dead.
func alive(pid int, startTime uint64) bool {
	if pid <= 0 {
		return false
	}
	pi, err := readProc(pid)
	if err != nil {
		return false
	}
	if pi.state == 'Z' || pi.state == 'X' || pi.state == 'x' {
		return false
	}
	return startTime == 0 || pi.startTime == startTime
}

// pidRecord is one line of the pid file.
type pidRecord struct {
	pid       int
	startTime uint64
}

// writePIDFile records the harness (and, once started, QEMU) so CleanStale
// can tell live runs from dead ones. Written atomically.
func writePIDFile(path string, harness, qemu int) error {
	var b strings.Builder
	for _, r := range []struct {
		role string
		pid  int
	}{{"harness", harness}, {"qemu", qemu}} {
		if r.pid <= 0 {
			continue
		}
		pi, err := readProc(r.pid)
		if err != nil {
			return fmt.Errorf("supervisor: pid file: %w", err)
		}
		fmt.Fprintf(&b, "%s %d %d\n", r.role, r.pid, pi.startTime)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("supervisor: pid file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("supervisor: pid file: %w", err)
	}
	return nil
}

// readPIDFile parses a pid file written by writePIDFile.
func readPIDFile(path string) (map[string]pidRecord, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parsePIDFile(b)
}

func parsePIDFile(b []byte) (map[string]pidRecord, error) {
	recs := map[string]pidRecord{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("malformed pid file line %q", sc.Text())
		}
		pid, err1 := strconv.Atoi(f[1])
		st, err2 := strconv.ParseUint(f[2], 10, 64)
		if err := errors.Join(err1, err2); err != nil || pid <= 0 {
			return nil, fmt.Errorf("malformed pid file line %q", sc.Text())
		}
		recs[f[0]] = pidRecord{pid, st}
	}
	if _, ok := recs["harness"]; !ok {
		return nil, errors.New("pid file has no harness line")
	}
	return recs, nil
}

// staleGrace is how old a run dir without a readable pid file must be
// before CleanStale takes it as abandoned (a live Start writes the file
// right after creating the dir).
const staleGrace = time.Minute

// CleanStale removes run dirs ("kspec-run-*" under base, owned by this
// user) left by harness processes that are gone, killing their QEMU if it
// still runs. A dir is stale when the harness PID recorded in its pid file
// is dead (or reused by another process). Its QEMU is killed only if its
// recorded PID is alive with the recorded start time and its command line
// names the dir — never a process that merely reuses the PID. Dirs of live
// harnesses, including this process, are left alone; dirs without a pid
// file are removed once older than a minute. base "" means os.TempDir().
// It returns the dirs removed.
func CleanStale(base string) (removed []string, err error) {
	if base == "" {
		base = os.TempDir()
	}
	dirs, err := filepath.Glob(filepath.Join(base, "kspec-run-*"))
	if err != nil {
		return nil, fmt.Errorf("supervisor: clean stale: %w", err)
	}
	var errs []error
	for _, dir := range dirs {
		fi, err := os.Lstat(dir)
		if err != nil || !fi.IsDir() {
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
			continue
		}
		recs, err := readPIDFile(filepath.Join(dir, "pids"))
		if err != nil {
			if time.Since(fi.ModTime()) < staleGrace {
				continue // probably being created
			}
		} else {
			h := recs["harness"]
			if alive(h.pid, h.startTime) {
				continue
			}
			if q, ok := recs["qemu"]; ok && alive(q.pid, q.startTime) && cmdlineMentions(q.pid, dir) {
				if err := killAndWait(q.pid); err != nil {
					errs = append(errs, fmt.Errorf("supervisor: clean stale %s: %w", dir, err))
					continue
				}
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, fmt.Errorf("supervisor: clean stale: %w", err))
			continue
		}
		removed = append(removed, dir)
	}
	return removed, errors.Join(errs...)
}

// cmdlineMentions reports whether pid's command line contains dir.
func cmdlineMentions(pid int, dir string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && bytes.Contains(b, []byte(dir))
}

// killAndWait SIGKILLs pid (its whole group when it leads one) and polls
// /proc until it is gone or a zombie.
func killAndWait(pid int) error {
	target := pid
	if pi, err := readProc(pid); err == nil && pi.pgrp == pid {
		target = -pid
	}
	if err := syscall.Kill(target, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill qemu pid %d: %w", pid, err)
	}
	deadline := time.Now().Add(killGrace)
	for alive(pid, 0) {
		if time.Now().After(deadline) {
			return fmt.Errorf("qemu pid %d survived SIGKILL for %v", pid, killGrace)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}
