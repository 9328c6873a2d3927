package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kspec/kspec/kspectest/example"
)

// kspecModule is the module a new suite requires.
const kspecModule = "github.com/kspec/kspec"

// cmdInit writes a new suite, the spec kit's example (package
// kspectest/example), into DIR, with a go.mod when DIR is in no module.
func cmdInit(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("init", stderr)
	module := fs.String("module", "", "module path of the go.mod written when DIR is in no Go module (default example.com/<DIR's name>)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: kspec init [--module PATH] [DIR]\n\nWrites a Ginkgo suite of kernel specs built on kspec's spec kit (package kspectest) into DIR\n(default: the current directory), and a go.mod when DIR is not inside a Go module.")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return usagef("kspec init: give at most one directory, not %q", fs.Args())
	}
	dir := "."
	if fs.NArg() == 1 {
		dir = fs.Arg(0)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return usagef("kspec init: %s is not a directory", dir)
	}
	files, err := suiteFiles(packageName(filepath.Base(dir)))
	if err != nil {
		return err
	}
	if moduleRoot(dir) == "" {
		files["go.mod"] = goMod(cmp.Or(*module, "example.com/"+packageName(filepath.Base(dir))))
	} else if *module != "" {
		return usagef("kspec init: --module: %s is inside the module of %s already", dir, filepath.Join(moduleRoot(dir), "go.mod"))
	}
	names := make([]string, 0, len(files))
	for name := range files {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			return usagef("kspec init: %s exists; give another directory (kspec init writes only new files)", filepath.Join(dir, name))
		}
		names = append(names, name)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	slices.Sort(names)
	for _, name := range names {
		if err := os.WriteFile(filepath.Join(dir, name), files[name], 0o644); err != nil {
			return fmt.Errorf("kspec init: %w", err)
		}
		fmt.Fprintf(stdout, "wrote %s\n", filepath.Join(dir, name))
	}
	fmt.Fprintf(stdout, `
next, in %s:
  go mod edit -replace %s=/path/to/kspec   # kspec is not published as a module yet: use a checkout
  go mod tidy
  kspec guest prepare                      # once: the default guest
  go test ./...
`, dir, kspecModule)
	return nil
}

// suiteFiles are the example suite's files with package pkg_test.
func suiteFiles(pkg string) (map[string][]byte, error) {
	files := map[string][]byte{}
	err := fs.WalkDir(example.Files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := example.Files.ReadFile(path)
		if err != nil {
			return err
		}
		files[path] = bytes.Replace(b, []byte(example.Package), []byte("package "+pkg+"_test"), 1)
		return nil
	})
	return files, err
}

// goMod is the go.mod of a new suite module.
func goMod(module string) []byte {
	return []byte(fmt.Sprintf(`module %s

go 1.26

// kspec is not published as a module yet: point this requirement at a
// kspec checkout, then let go add the rest,
//
//	go mod edit -replace %s=/path/to/kspec
//	go mod tidy
require %s v0.0.0-00010101000000-000000000000
`, module, kspecModule, kspecModule))
}

// moduleRoot is the directory of the go.mod that dir (or its nearest
// existing ancestor) is in, or "".
func moduleRoot(dir string) string {
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// packageName makes a Go package name of a directory name: lower case,
// letters, digits and underscores, not starting with a digit.
func packageName(base string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(base) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
			b.WriteRune(r)
		case b.Len() > 0:
			b.WriteRune('_')
		}
	}
	name := strings.Trim(b.String(), "_")
	if name == "" || (name[0] >= '0' && name[0] <= '9') {
		name = "kernel" + name
	}
	return name
}
