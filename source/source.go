// Package source maps the file names a kernel's debug info gives (relative
// like "fs/namei.c", or absolute under the build machine's directory like
// "/build/reproducible-path/linux-6.1.192/arch/x86/entry/entry_64.S") to a
// local source tree, reads their lines, and says which `set
// substitute-path` rules make gdb's `list` find the same files. It knows
// nothing of DWARF parsing (the caller hands it the compilation units'
// names) nor of guests (the caller names the tree).
package source

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// Unit is a compilation unit's DW_AT_name and DW_AT_comp_dir.
type Unit struct {
	Name, CompDir string
}

// ErrNotInTree: a file the debug info names is not in the source tree
// (e.g. a header the build generated).
var ErrNotInTree = errors.New("not in the source tree")

// Tree is a kernel source tree on disk. It is safe for concurrent use.
type Tree struct {
	root string
	// prefixes are the build directories the debug info names files
	// under, longest first: a file under one is the tree's file at the
	// rest of its path.
	prefixes []string

	mu    sync.Mutex
	paths map[string]string   // file name as DWARF gives it -> path in the tree ("" if none)
	files map[string][]string // path in the tree -> its lines
	order []string            // files in the order read, to bound the cache
}

// maxFiles bounds how many files' lines a Tree keeps.
const maxFiles = 32

// maxProbe is how many units New looks at per kind of name (absolute or
// relative) before giving up on that kind.
const maxProbe = 64

// New returns the tree at root, learning the build's directories from the
// compilation units units yields (it stops asking once it knows both the
// directory absolute names are under and the one relative names are
// relative to, or after a bounded number of units). units may be nil: then
// only names relative to the tree's root are found.
func New(root string, units func(yield func(Unit) bool) error) (*Tree, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("source tree: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("source tree %s is not a directory", root)
	}
	t := &Tree{root: root, paths: map[string]string{}, files: map[string][]string{}}
	if units == nil {
		return t, nil
	}
	// Absolute names (assembler units) and names relative to the
	// compilation directory (C units of a reproducible build) usually sit
	// under different prefixes: learn one of each, trying a bounded number
	// of units of each kind (a unit of a generated file is not in the
	// tree).
	tried := map[bool]int{}
	learned := map[bool]bool{}
	err = units(func(u Unit) bool {
		abs := path.IsAbs(u.Name)
		if !learned[abs] && tried[abs] < maxProbe {
			tried[abs]++
			full := u.Name
			if !abs {
				full = path.Join(u.CompDir, u.Name)
			}
			if p, _, ok := t.prefixOf(full); ok {
				learned[abs] = true
				if !slices.Contains(t.prefixes, p) {
					t.prefixes = append(t.prefixes, p)
				}
			}
		}
		done := func(abs bool) bool { return learned[abs] || tried[abs] >= maxProbe }
		return !(done(true) && done(false))
	})
	if err != nil {
		return nil, fmt.Errorf("source tree %s: reading the compilation units: %w", root, err)
	}
	slices.SortFunc(t.prefixes, func(a, b string) int { return len(b) - len(a) })
	return t, nil
}

// Root is the tree's directory.
func (t *Tree) Root() string { return t.root }

// Prefixes are the build directories learned from the compilation units,
// longest first.
func (t *Tree) Prefixes() []string { return slices.Clone(t.prefixes) }

// prefixOf finds the directory full is under by looking for the longest
// tail of full (at least two components: "fs/namei.c") that exists in the
// tree: it returns that prefix ("" for a name relative to the root) and
// the tree's file.
func (t *Tree) prefixOf(full string) (prefix, file string, ok bool) {
	parts := strings.Split(strings.TrimPrefix(path.Clean(full), "/"), "/")
	for i := 0; i+2 <= len(parts); i++ {
		rest := strings.Join(parts[i:], "/")
		if f := filepath.Join(t.root, filepath.FromSlash(rest)); inTree(rest) && isFile(f) {
			p := strings.Join(parts[:i], "/")
			if path.IsAbs(full) {
				p = "/" + p
			}
			return p, f, true
		}
	}
	return "", "", false
}

// Path returns the file of the tree that the debug info's file name
// names: a relative name relative to the root or to a learned build
// directory, an absolute one under a learned build directory, or, failing
// those, the longest tail of the name that exists in the tree.
func (t *Tree) Path(file string) (string, error) {
	if file == "" {
		return "", fmt.Errorf("no file name: %w", ErrNotInTree)
	}
	t.mu.Lock()
	p, ok := t.paths[file]
	t.mu.Unlock()
	if !ok {
		p = t.lookup(file)
		t.mu.Lock()
		t.paths[file] = p
		t.mu.Unlock()
	}
	if p == "" {
		return "", fmt.Errorf("%s: %w %s", file, ErrNotInTree, t.root)
	}
	return p, nil
}

func (t *Tree) lookup(file string) string {
	clean := path.Clean(file)
	var cands []string
	if !path.IsAbs(clean) {
		cands = append(cands, clean)
	}
	for _, p := range t.prefixes {
		if p == "" {
			continue
		}
		if rest, ok := strings.CutPrefix(clean, p+"/"); ok {
			cands = append(cands, rest)
		}
	}
	for _, c := range cands {
		if !inTree(c) {
			continue
		}
		if f := filepath.Join(t.root, filepath.FromSlash(c)); isFile(f) {
			return f
		}
	}
	_, f, _ := t.prefixOf(clean) // "" when no tail of it is in the tree
	return f
}

// Line returns the text of line n (1-based) of a file the debug info
// names, without its newline.
func (t *Tree) Line(file string, n int) (string, error) {
	ls, err := t.Lines(file, n, n)
	if err != nil {
		return "", err
	}
	return ls[0].Text, nil
}

// SourceLine is one numbered line of a file.
type SourceLine struct {
	N    int    `json:"n"`
	Text string `json:"text"`
}

// Lines returns lines from..to (1-based, inclusive) of a file the debug
// info names, clipped to the file; a from past its end is an error.
func (t *Tree) Lines(file string, from, to int) ([]SourceLine, error) {
	p, err := t.Path(file)
	if err != nil {
		return nil, err
	}
	lines, err := t.read(p)
	if err != nil {
		return nil, err
	}
	from = max(from, 1)
	to = min(to, len(lines))
	if from > to {
		return nil, fmt.Errorf("%s has %d lines, not line %d: the tree is not this kernel's source", p, len(lines), from)
	}
	out := make([]SourceLine, 0, to-from+1)
	for i := from; i <= to; i++ {
		out = append(out, SourceLine{N: i, Text: lines[i-1]})
	}
	return out, nil
}

// read returns a file's lines, cached.
func (t *Tree) read(p string) ([]string, error) {
	t.mu.Lock()
	lines, ok := t.files[p]
	t.mu.Unlock()
	if ok {
		return lines, nil
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("source: %s: %w", p, err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.files[p]; !ok {
		t.files[p] = lines
		t.order = append(t.order, p)
		if len(t.order) > maxFiles {
			delete(t.files, t.order[0])
			t.order = t.order[1:]
		}
	}
	return lines, nil
}

// Substitutions are the (from, to) pairs of gdb's `set substitute-path
// FROM TO` that make gdb find the debug info's files in the tree: each
// learned build directory maps to the root.
func (t *Tree) Substitutions() [][2]string {
	var out [][2]string
	for _, p := range t.prefixes {
		if p != "" {
			out = append(out, [2]string{p, t.root})
		}
	}
	return out
}

// GDBArgs are gdb command-line arguments (pairs of -ex and a command) that
// set the substitutions.
func (t *Tree) GDBArgs() []string {
	var args []string
	for _, s := range t.Substitutions() {
		args = append(args, "-ex", "set substitute-path "+s[0]+" "+s[1])
	}
	return args
}

// inTree reports whether a cleaned relative path stays inside the tree.
func inTree(rel string) bool {
	return rel != ".." && !strings.HasPrefix(rel, "../") && !path.IsAbs(rel)
}

// isFile reports whether p is a regular file (following links).
func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}
