package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadInputExitsTwo checks that command-line mistakes are caught before
// anything boots, exit 2, and say what was wrong.
func TestBadInputExitsTwo(t *testing.T) {
	dir := t.TempDir()
	notELF := filepath.Join(dir, "not-elf")
	if err := os.WriteFile(notELF, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "usage"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"probe without break", []string{"probe", "--run", "mkdir /tmp/x"}, "--break FUNC and --run CMD"},
		{"probe stray arg", []string{"probe", "--break", "x", "--run", "mkdir", "/tmp/x"}, "unexpected argument"},
		{"exec without command", []string{"exec"}, "give the command"},
		{"bad accel", []string{"exec", "--accel", "xen", "--", "true"}, `--accel "xen"`},
		{"missing kernel file", []string{"exec", "--kernel", filepath.Join(dir, "nope"), "--", "true"}, "--kernel"},
		{"bad os", []string{"exec", "--kernel", notELF, "--os", "plan9", "--", "true"}, "--os"},
		{"initrd without kernel", []string{"exec", "--initrd", notELF, "--", "true"}, "--initrd: only for a guest described on the command line (with --kernel or --disk)"},
		{"sym not elf", []string{"sym", "--symbols", notELF, "do_mkdirat"}, "--symbols"},
		{"sym missing file", []string{"sym", "--symbols", filepath.Join(dir, "nope"), "do_mkdirat"}, "nope"},
		{"unknown flag", []string{"probe", "--frob"}, "flag provided but not defined"},
		{"guest without subcommand", []string{"guest"}, "prepare"},
		{"repro without a bundle", []string{"repro"}, "give one repro bundle directory"},
		{"repro of a directory that is no bundle", []string{"repro", dir}, "is not a repro bundle"},
		{"repro bad hold limit", []string{"repro", "--hold-limit", "0s", dir}, "--hold-limit"},
		{"probe --vmcore into a missing directory", []string{"probe", "--vmcore", filepath.Join(dir, "no", "core"), "--break", "x", "--run", "true"}, "does not exist"},
		{"probe bad hold limit", []string{"probe", "--hold", "--hold-limit", "-1s", "--break", "x", "--run", "true"}, "--hold-limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr: %s", code, exitUsage, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("stderr %q does not mention %q", stderr.String(), tt.want)
			}
		})
	}
}
