package symbols

import (
	"debug/elf"
	"errors"
	"slices"
	"testing"
)

var testSyms = []testSym{
	{name: "do_mkdirat", value: 0x1100, size: 0x80, typ: elf.STT_FUNC, bind: elf.STB_GLOBAL, sec: 1},
	{name: "__x64_sys_mkdir", value: 0x1180, size: 0x20, typ: elf.STT_FUNC, bind: elf.STB_GLOBAL, sec: 1},
	{name: "__do_sys_newuname", value: 0x1200, size: 0x40, typ: elf.STT_FUNC, bind: elf.STB_LOCAL, sec: 1},
	// Two static functions with one name; the global alias wins Lookup.
	{name: "show_state", value: 0x1300, size: 0x10, typ: elf.STT_FUNC, bind: elf.STB_LOCAL, sec: 1},
	{name: "show_state", value: 0x1400, size: 0x10, typ: elf.STT_FUNC, bind: elf.STB_GLOBAL, sec: 1},
	// A sized function with a label inside, then a label in a gap.
	{name: "entry_SYSCALL_64", value: 0x1500, size: 0x100, typ: elf.STT_FUNC, bind: elf.STB_GLOBAL, sec: 1},
	{name: "entry_SYSCALL_64_after_hwframe", value: 0x1520, typ: elf.STT_NOTYPE, bind: elf.STB_GLOBAL, sec: 1},
	{name: "gap_label", value: 0x1700, typ: elf.STT_NOTYPE, bind: elf.STB_LOCAL, sec: 1},
	{name: "vfs_mkdir", value: 0x1800, size: 0x40, typ: elf.STT_FUNC, bind: elf.STB_GLOBAL, sec: 1},
	{name: "vfs_mkdir.cold", value: 0x1f00, size: 0x10, typ: elf.STT_FUNC, bind: elf.STB_LOCAL, sec: 1},
	{name: "init_uts_ns", value: 0x3000, size: 0x40, typ: elf.STT_OBJECT, bind: elf.STB_GLOBAL, sec: 2},
	{name: "abs_sym", value: 0x1234, typ: elf.STT_NOTYPE, bind: elf.STB_GLOBAL, abs: true},
	{name: "undef_sym", typ: elf.STT_FUNC, bind: elf.STB_GLOBAL, sec: 0},
}

func TestLookup(t *testing.T) {
	tb := openELF(t, buildELF(testSyms))
	tests := []struct {
		name     string
		want     Symbol
		wantErr  bool
		suggests []string // must be among the suggestions
	}{
		{name: "do_mkdirat", want: Symbol{Name: "do_mkdirat", Addr: 0x1100, Size: 0x80, Kind: Func, Global: true}},
		{name: "__do_sys_newuname", want: Symbol{Name: "__do_sys_newuname", Addr: 0x1200, Size: 0x40, Kind: Func}},
		{name: "show_state", want: Symbol{Name: "show_state", Addr: 0x1400, Size: 0x10, Kind: Func, Global: true}},
		{name: "init_uts_ns", want: Symbol{Name: "init_uts_ns", Addr: 0x3000, Size: 0x40, Kind: Object, Global: true}},
		{name: "abs_sym", want: Symbol{Name: "abs_sym", Addr: 0x1234, Kind: Other, Global: true}},
		{name: "undef_sym", wantErr: true},
		{name: "sys_mkdir", wantErr: true, suggests: []string{"__x64_sys_mkdir"}},
		{name: "mkdir", wantErr: true, suggests: []string{"__x64_sys_mkdir"}},
		{name: "do_mkdir", wantErr: true, suggests: []string{"do_mkdirat"}},
		{name: "do_mkdriat", wantErr: true, suggests: []string{"do_mkdirat"}},
		{name: "vfs_mkdir_", wantErr: true, suggests: []string{"vfs_mkdir"}},
		{name: "newuname", wantErr: true, suggests: []string{"__do_sys_newuname"}},
	}
	// Run twice: once answered by scans, once by the hash index.
	for pass := range 2 {
		for _, tc := range tests {
			got, err := tb.Lookup(tc.name)
			if tc.wantErr {
				var ue *UnknownSymbolError
				if !errors.Is(err, ErrUnknownSymbol) || !errors.As(err, &ue) {
					t.Errorf("pass %d: Lookup(%q) = %v, %v; want ErrUnknownSymbol", pass, tc.name, got, err)
					continue
				}
				for _, s := range tc.suggests {
					if !slices.Contains(ue.Suggestions, s) {
						t.Errorf("Lookup(%q) suggestions %q lack %q", tc.name, ue.Suggestions, s)
					}
				}
				continue
			}
			if err != nil || got != tc.want {
				t.Errorf("pass %d: Lookup(%q) = %+v, %v; want %+v", pass, tc.name, got, err, tc.want)
			}
		}
		for range linearLookups {
			tb.Lookup("do_mkdirat")
		}
	}
	all, err := tb.LookupAll("show_state")
	if err != nil || len(all) != 2 || all[0].Addr != 0x1400 || all[1].Addr != 0x1300 {
		t.Errorf("LookupAll(show_state) = %+v, %v", all, err)
	}
}

func TestSymbolAt(t *testing.T) {
	tb := openELF(t, buildELF(testSyms))
	tests := []struct {
		addr    uint64
		name    string
		off     uint64
		wantErr bool
	}{
		{addr: 0x1100, name: "do_mkdirat"},
		{addr: 0x1110, name: "do_mkdirat", off: 0x10},
		{addr: 0x117f, name: "do_mkdirat", off: 0x7f},
		{addr: 0x1180, name: "__x64_sys_mkdir"},
		// A sized symbol that contains the address wins over a closer
		// zero-sized label (gdb's rule).
		{addr: 0x1530, name: "entry_SYSCALL_64", off: 0x30},
		// Past every sized symbol: the closest label.
		{addr: 0x1710, name: "gap_label", off: 0x10},
		// Between sized symbols with no label: nothing.
		{addr: 0x1250, wantErr: true},
		{addr: 0x1f08, name: "vfs_mkdir.cold", off: 8},
		{addr: 0x3010, name: "init_uts_ns", off: 0x10},
		// Outside every section.
		{addr: 0x9000, wantErr: true},
		{addr: 0x1000, wantErr: true},
	}
	for _, tc := range tests {
		sym, off, err := tb.SymbolAt(tc.addr)
		if tc.wantErr {
			if !errors.Is(err, ErrNoSymbol) {
				t.Errorf("SymbolAt(%#x) = %v+%#x, %v; want ErrNoSymbol", tc.addr, sym.Name, off, err)
			}
			continue
		}
		if err != nil || sym.Name != tc.name || off != tc.off {
			t.Errorf("SymbolAt(%#x) = %v+%#x, %v; want %s+%#x", tc.addr, sym.Name, off, err, tc.name, tc.off)
		}
	}
}

func TestBuildID(t *testing.T) {
	id := []byte{0x3b, 0x43, 0xfa, 0xd5, 0x03}
	tb := openELF(t, buildELF(testSyms, testSection{name: ".notes", typ: elf.SHT_NOTE, flags: elf.SHF_ALLOC, addr: 0x4000,
		data: append(append([]byte{}, []byte{4, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 'X', 'e', 'n', 0, 1, 2, 3, 4}...), buildIDNote(id)...)}))
	if got := tb.BuildID(); got != "3b43fad503" {
		t.Errorf("BuildID() = %q, want 3b43fad503", got)
	}
	if got := openELF(t, buildELF(testSyms)).BuildID(); got != "" {
		t.Errorf("BuildID() without a note = %q", got)
	}
}

func TestClosed(t *testing.T) {
	tb := openELF(t, buildELF(testSyms))
	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tb.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := tb.Lookup("do_mkdirat"); !errors.Is(err, ErrClosed) {
		t.Errorf("Lookup after Close: %v", err)
	}
	if _, _, err := tb.SymbolAt(0x1100); !errors.Is(err, ErrClosed) {
		t.Errorf("SymbolAt after Close: %v", err)
	}
	if _, err := tb.LineAt(0x1100); !errors.Is(err, ErrClosed) {
		t.Errorf("LineAt after Close: %v", err)
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b  string
		limit int
		want  int
	}{
		{"", "", 2, 0},
		{"abc", "abc", 2, 0},
		{"do_mkdirat", "do_mkdriat", 2, 2},
		{"do_mkdirat", "do_mkdirt", 2, 1},
		{"kitten", "sitting", 5, 3},
		{"kitten", "sitting", 2, 3}, // over the limit: limit+1
		{"a", "abcdef", 2, 3},
	}
	for _, tc := range tests {
		if got := editDistance(tc.a, tc.b, tc.limit); got != tc.want {
			t.Errorf("editDistance(%q, %q, %d) = %d, want %d", tc.a, tc.b, tc.limit, got, tc.want)
		}
	}
}
