package harness

import (
	"fmt"
	"strings"
	"sync"

	"github.com/kspec/kspec/arch"
	"github.com/kspec/kspec/guest"
	"github.com/kspec/kspec/source"
	"github.com/kspec/kspec/symbols"
)

// sourceState is the Target's kernel source tree, opened on first use.
type sourceState struct {
	once sync.Once
	tree *source.Tree
	err  error
}

// openSource opens the source tree prepared for spec (guest.SourceTree),
// learning the build's directories from syms' compilation units. A guest
// without one is an error wrapping guest.ErrNoSource.
func openSource(spec *guest.Spec, syms *symbols.Table) (*source.Tree, error) {
	root, err := guest.SourceTree(spec)
	if err != nil {
		return nil, err
	}
	var units func(yield func(source.Unit) bool) error
	if syms != nil {
		units = func(yield func(source.Unit) bool) error {
			return syms.Units(func(u symbols.Unit) bool { return yield(source.Unit{Name: u.Name, CompDir: u.CompDir}) })
		}
	}
	return source.New(root, units)
}

// Source returns the kernel source tree of the running guest (`kspec guest
// prepare --source`), or nil with the reason when there is none: hits,
// backtraces, failure reports and gdb commands show source lines only
// with one.
func (t *Target) Source() (*source.Tree, error) {
	t.src.once.Do(func() {
		if t.spec == nil {
			t.src.err = fmt.Errorf("%w: no guest", guest.ErrNoSource)
			return
		}
		t.src.tree, t.src.err = openSource(t.spec, t.syms)
	})
	return t.src.tree, t.src.err
}

// SourceLine returns the text of a line of the running kernel's source, ""
// when there is no source tree or the file is not in it.
func (t *Target) SourceLine(file string, line int) string {
	tree, err := t.Source()
	if err != nil || tree == nil || file == "" || line <= 0 {
		return ""
	}
	s, err := tree.Line(file, line)
	if err != nil {
		return ""
	}
	return s
}

// SourceContext returns the lines around a source line (around lines
// before and after it), numbered, the line itself marked with "=>", or
// "" without a source tree.
func (t *Target) SourceContext(file string, line, around int) string {
	tree, err := t.Source()
	if err != nil || tree == nil || file == "" || line <= 0 {
		return ""
	}
	return FormatSourceContext(tree, file, line, around)
}

// FormatSourceContext renders lines line-around..line+around of file from
// tree, numbered, line itself marked with "=>"; "" when the file is not
// in the tree.
func FormatSourceContext(tree *source.Tree, file string, line, around int) string {
	ls, err := tree.Lines(file, line-around, line+around)
	if err != nil {
		return ""
	}
	var b strings.Builder
	for _, l := range ls {
		mark := "  "
		if l.N == line {
			mark = "=>"
		}
		fmt.Fprintf(&b, "%s %5d  %s\n", mark, l.N, l.Text)
	}
	return strings.TrimRight(b.String(), "\n")
}

// gdbCommand is a shell command line that starts gdb (the guest CPU's,
// arch.Arch.GDB: gdb-multiarch for arm64) on vmlinux attached to sock;
// with a source tree it first sets the `substitute-path` rules that let
// gdb's `list` find the kernel's files in it.
func gdbCommand(gdb, vmlinux, sock string, tree *source.Tree) string {
	return gdbCommandTarget(gdb, vmlinux, "target remote "+sock, tree)
}

// gdbCommandTarget is gdbCommand with the whole target command given.
func gdbCommandTarget(gdb, vmlinux, target string, tree *source.Tree) string {
	args := []string{gdb, "-q"}
	if tree != nil {
		for _, a := range tree.GDBArgs() {
			args = append(args, shellQuote(a))
		}
	}
	args = append(args, "-ex", shellQuote(target), shellQuote(vmlinux))
	return strings.Join(args, " ")
}

// GDBCommand is the shell command line a person runs to attach gdb to a
// guest of spec through target (a gdb command such as "target remote
// /run/.../gdb.sock"): gdb on the guest's symbol file and, when the guest
// has a prepared source tree, the `set substitute-path` rules for it.
func GDBCommand(spec *guest.Spec, target string) string {
	gdb := arch.Default().GDB()
	if cpu, err := spec.CPU(); err == nil {
		gdb = cpu.GDB()
	}
	return gdbCommandTarget(gdb, spec.Symbols, target, sourceForCommand(spec))
}

// sourceForCommand opens the guest's source tree for a gdb command line,
// nil when it has none (or its symbols cannot be read: the command is
// still useful without).
func sourceForCommand(spec *guest.Spec) *source.Tree {
	if _, err := guest.SourceTree(spec); err != nil {
		return nil
	}
	syms, err := symbols.Open(spec.Symbols)
	if err != nil {
		return nil
	}
	defer syms.Close()
	tree, err := openSource(spec, syms)
	if err != nil {
		return nil
	}
	return tree
}

// FramesSource returns the text of each frame's source line ("" where
// unknown or without a source tree), nil without a source tree.
func (t *Target) FramesSource(frames []Frame) []string {
	if tree, err := t.Source(); err != nil || tree == nil {
		return nil
	}
	out := make([]string, len(frames))
	for i, f := range frames {
		out[i] = t.SourceLine(f.File, f.Line)
	}
	return out
}

// indent prefixes every line of s with prefix.
func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}
