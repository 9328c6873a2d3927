package source

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeTree writes a small kernel-shaped tree and returns its root.
func fakeTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for p, body := range map[string]string{
		"fs/namei.c":                "/* namei */\n\nint do_mkdirat(int dfd)\n{\n\treturn 0;\n}\n",
		"arch/x86/entry/entry_64.S": "SYM_CODE_START(entry_SYSCALL_64)\n\tcall\tdo_syscall_64\n",
		"arch/x86/kernel/head64.c":  "void x86_64_start_kernel(void) {}\n",
		"include/linux/fs.h":        "struct file;\n",
	} {
		f := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// debianUnits are compilation units as Debian's reproducible kernel build
// names them: assembler units absolute under the build path, C units
// relative to a relative compilation directory; a generated file first.
func debianUnits(seen *int) func(yield func(Unit) bool) error {
	units := []Unit{
		{Name: "/build/reproducible-path/linux-6.1.192/debian/build/build_amd64_none_cloud-amd64/arch/x86/kernel/gen.S",
			CompDir: "/build/reproducible-path/linux-6.1.192/debian/build/build_amd64_none_cloud-amd64"},
		{Name: "/build/reproducible-path/linux-6.1.192/arch/x86/entry/entry_64.S",
			CompDir: "/build/reproducible-path/linux-6.1.192/debian/build/build_amd64_none_cloud-amd64"},
		{Name: "arch/x86/kernel/head64.c", CompDir: "debian/build/build_amd64_none_cloud-amd64"},
		{Name: "fs/namei.c", CompDir: "debian/build/build_amd64_none_cloud-amd64"},
		{Name: "fs/open.c", CompDir: "debian/build/build_amd64_none_cloud-amd64"},
	}
	return func(yield func(Unit) bool) error {
		for _, u := range units {
			*seen++
			if !yield(u) {
				return nil
			}
		}
		return nil
	}
}

func TestNewLearnsPrefixes(t *testing.T) {
	root := fakeTree(t)
	seen := 0
	tree, err := New(root, debianUnits(&seen))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"debian/build/build_amd64_none_cloud-amd64", "/build/reproducible-path/linux-6.1.192"} // longest first
	if got := tree.Prefixes(); !slices.Equal(got, want) {
		t.Errorf("Prefixes = %q, want %q", got, want)
	}
	if seen != 3 {
		t.Errorf("New read %d units, want 3 (it stops once both kinds are known)", seen)
	}
	wantArgs := []string{
		"-ex", "set substitute-path debian/build/build_amd64_none_cloud-amd64 " + root,
		"-ex", "set substitute-path /build/reproducible-path/linux-6.1.192 " + root,
	}
	if got := tree.GDBArgs(); !slices.Equal(got, wantArgs) {
		t.Errorf("GDBArgs = %q, want %q", got, wantArgs)
	}
}

func TestPath(t *testing.T) {
	root := fakeTree(t)
	seen := 0
	learned, err := New(root, debianUnits(&seen))
	if err != nil {
		t.Fatal(err)
	}
	bare, err := New(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		tree *Tree
		file string
		want string // relative to root; "" for not in the tree
	}{
		{"relative to the root", learned, "fs/namei.c", "fs/namei.c"},
		{"relative, not cleaned", learned, "./fs/../fs/namei.c", "fs/namei.c"},
		{"absolute under the build path", learned, "/build/reproducible-path/linux-6.1.192/arch/x86/entry/entry_64.S", "arch/x86/entry/entry_64.S"},
		{"under the relative compilation directory", learned, "debian/build/build_amd64_none_cloud-amd64/fs/namei.c", "fs/namei.c"},
		{"absolute under an unknown prefix: the longest tail", bare, "/somewhere/else/linux/include/linux/fs.h", "include/linux/fs.h"},
		{"a generated header", learned, "debian/build/build_amd64_none_cloud-amd64/include/generated/autoconf.h", ""},
		{"a single name is never guessed", bare, "/x/namei.c", ""},
		{"a relative name that climbs: its tail", learned, "../fs/namei.c", "fs/namei.c"},
		{"never outside the tree", bare, strings.Repeat("../", 40) + "etc/passwd", ""},
		{"empty", learned, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.tree.Path(tc.file)
			if tc.want == "" {
				if !errors.Is(err, ErrNotInTree) {
					t.Errorf("Path(%q) = %q, %v; want ErrNotInTree", tc.file, got, err)
				}
				return
			}
			if want := filepath.Join(root, filepath.FromSlash(tc.want)); err != nil || got != want {
				t.Errorf("Path(%q) = %q, %v; want %q", tc.file, got, err, want)
			}
		})
	}
}

func TestLines(t *testing.T) {
	root := fakeTree(t)
	tree, err := New(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		from, to int
		want     []SourceLine
		err      string
	}{
		{"one line", 3, 3, []SourceLine{{3, "int do_mkdirat(int dfd)"}}, ""},
		{"around the start", -1, 2, []SourceLine{{1, "/* namei */"}, {2, ""}}, ""},
		{"clipped at the end", 5, 9, []SourceLine{{5, "\treturn 0;"}, {6, "}"}}, ""},
		{"past the end", 7, 9, nil, "has 6 lines, not line 7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tree.Lines("fs/namei.c", tc.from, tc.to)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("Lines = %v, %v; want an error saying %q", got, err, tc.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("Lines(%d, %d) = %v, %v; want %v", tc.from, tc.to, got, err, tc.want)
			}
		})
	}
	if s, err := tree.Line("fs/namei.c", 4); err != nil || s != "{" {
		t.Errorf("Line 4 = %q, %v", s, err)
	}
	if _, err := tree.Line("fs/open.c", 1); !errors.Is(err, ErrNotInTree) {
		t.Errorf("Line of a missing file = %v, want ErrNotInTree", err)
	}
}

func TestNewBadRoot(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, root := range []string{filepath.Join(t.TempDir(), "missing"), f} {
		if _, err := New(root, nil); err == nil {
			t.Errorf("New(%s) succeeded", root)
		}
	}
}
