package symbols

import (
	"debug/elf"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// lineTestImage builds an image with two units: fs/namei.c (C, relative
// directories, one header) and an assembler unit with absolute paths.
func lineTestImage(withAranges bool) []byte {
	files := func(fs ...struct {
		name string
		dir  uint64
	}) []struct {
		name string
		dir  uint64
	} {
		return fs
	}
	type f = struct {
		name string
		dir  uint64
	}
	c := &lineProg{}
	c.setAddress(0x1100).advanceLine(9).copyRow(). // 0x1100 namei.c:10
							row(5, 1).  // 0x1105 :11
							row(11, 1). // 0x1110 :12
		// Two rows at one address: gdb keeps the last.
		row(0x10, 8).  // 0x1120 :20
		row(0, 1).     // 0x1120 :21
		row(0x10, 9).  // 0x1130 :30
		negateStmt().  // a non-statement row at the same address
		row(0, 1).     // 0x1130 :31 (not a statement) -> :30 wins
		negateStmt().  //
		row(0x10, 9).  // 0x1140 :40
		setFile(2).    // switch to fs.h at the same address:
		row(0, -35).   // 0x1140 fs.h:5 replaces :40
		setFile(1).    //
		row(0x10, 45). // 0x1150 :50
		setFile(2).    // a non-statement row of another file at the
		negateStmt().  // same address is ignored
		row(0, -44).   // 0x1150 fs.h:6
		negateStmt().  //
		setFile(1).    //
		advanceLine(54).
		discriminator(3).
		row(0x10, 0).           // 0x1160 :60 (discriminator 3)
		discriminator(5).       // same line, non-zero discriminator:
		row(8, 0).              // 0x1168 not recorded
		setColumn(7).row(8, 1). // 0x1170 :61 col 7
		advancePC(0x10).endSequence().
		// A second sequence: a discriminated line, an ignored row of
		// another file, and the line again 4 bytes on. gdb 13 records
		// it (its set_file makes the file left the last one).
		setAddress(0x1190).advanceLine(69).setColumn(0).copyRow(). // 0x1190 :70
		discriminator(11).row(0, 2).                               // 0x1190 :72
		setFile(2).discriminator(11).negateStmt().
		advanceLine(-60).copyRow(). // 0x1190 fs.h:12, ignored
		setFile(1).discriminator(11).advanceLine(60).
		row(4, 0).              // 0x1194 :72, not a statement
		negateStmt().row(4, 0). // 0x1198 :72
		advancePC(8).endSequence()
	asm := &lineProg{}
	asm.setAddress(0x1800).advanceLine(64).copyRow(). // 0x1800 head_64.S:65
								row(7, 2). // 0x1807 :67
								advancePC(9).endSequence()
	cus := []testCU{
		{
			name: "fs/namei.c", compDir: "debian/build", low: 0x1100, high: 0x11a0,
			dirs:  []string{"debian/build", "fs", "include/linux/"},
			files: files(f{"namei.c", 1}, f{"namei.c", 1}, f{"fs.h", 2}),
			prog:  c,
		},
		{
			name: "/src/arch/x86/kernel/head_64.S", compDir: "/src/debian/build", low: 0x1800, high: 0x1810,
			dirs:  []string{"/src/debian/build", "/src/arch/x86/kernel"},
			files: files(f{"head_64.S", 1}, f{"head_64.S", 1}),
			prog:  asm,
		},
	}
	syms := []testSym{
		{name: "do_mkdirat", value: 0x1100, size: 0x80, typ: elf.STT_FUNC, bind: elf.STB_GLOBAL, sec: 1},
		{name: "late_entry", value: 0x1108, size: 0x8, typ: elf.STT_FUNC, bind: elf.STB_GLOBAL, sec: 1},
		{name: "startup_64", value: 0x1800, size: 0x10, typ: elf.STT_FUNC, bind: elf.STB_GLOBAL, sec: 1},
		{name: "no_lines", value: 0x1900, size: 0x10, typ: elf.STT_FUNC, bind: elf.STB_GLOBAL, sec: 1},
	}
	return buildELF(syms, dwarfSections(cus, withAranges)...)
}

func TestLineAt(t *testing.T) {
	tests := []struct {
		addr      uint64
		file      string
		line, col int
		start     uint64
		end       uint64
		stmt      bool
		noLine    bool
	}{
		{addr: 0x1100, file: "fs/namei.c", line: 10, start: 0x1100, end: 0x1105, stmt: true},
		{addr: 0x1104, file: "fs/namei.c", line: 10, start: 0x1100, end: 0x1105, stmt: true},
		{addr: 0x1105, file: "fs/namei.c", line: 11, start: 0x1105, end: 0x1110, stmt: true},
		{addr: 0x1120, file: "fs/namei.c", line: 21, start: 0x1120, end: 0x1130, stmt: true},
		{addr: 0x1130, file: "fs/namei.c", line: 30, start: 0x1130, end: 0x1140, stmt: true},
		{addr: 0x1140, file: "include/linux/fs.h", line: 5, start: 0x1140, end: 0x1150, stmt: true},
		{addr: 0x1150, file: "fs/namei.c", line: 50, start: 0x1150, end: 0x1160, stmt: true},
		{addr: 0x116c, file: "fs/namei.c", line: 60, start: 0x1160, end: 0x1170, stmt: true},
		{addr: 0x1170, file: "fs/namei.c", line: 61, col: 7, start: 0x1170, end: 0x1180, stmt: true},
		{addr: 0x1180, noLine: true},
		{addr: 0x1190, file: "fs/namei.c", line: 72, start: 0x1190, end: 0x1194, stmt: true},
		// (0x1198 repeats the discriminated line: coalesced into 0x1194.)
		{addr: 0x1196, file: "fs/namei.c", line: 72, start: 0x1194, end: 0x11a0, stmt: false},
		{addr: 0x1803, file: "/src/arch/x86/kernel/head_64.S", line: 65, start: 0x1800, end: 0x1807, stmt: true},
		{addr: 0x1900, noLine: true},
	}
	for _, aranges := range []bool{true, false} {
		tb := openELF(t, lineTestImage(aranges))
		for _, tc := range tests {
			loc, err := tb.LineAt(tc.addr)
			if tc.noLine {
				if !errors.Is(err, ErrNoLine) {
					t.Errorf("aranges=%v: LineAt(%#x) = %+v, %v; want ErrNoLine", aranges, tc.addr, loc, err)
				}
				continue
			}
			if err != nil {
				t.Errorf("aranges=%v: LineAt(%#x): %v", aranges, tc.addr, err)
				continue
			}
			if loc.File != tc.file || loc.Line != tc.line || loc.Column != tc.col || loc.Addr != tc.start || loc.End != tc.end || loc.IsStmt != tc.stmt {
				t.Errorf("aranges=%v: LineAt(%#x) = %#v; want %s:%d col %d [%#x, %#x)", aranges, tc.addr, loc, tc.file, tc.line, tc.col, tc.start, tc.end)
			}
		}
	}
}

func TestFunctionLine(t *testing.T) {
	tb := openELF(t, lineTestImage(true))
	tests := []struct {
		name   string
		want   string
		err    error
		gdbOut string
	}{
		{name: "do_mkdirat", want: "fs/namei.c:10",
			gdbOut: `Line 10 of "fs/namei.c" starts at address 0x1100 <do_mkdirat> and ends at 0x1105 <do_mkdirat+5>.`},
		{name: "startup_64", want: "/src/arch/x86/kernel/head_64.S:65",
			gdbOut: `Line 65 of "/src/arch/x86/kernel/head_64.S" starts at address 0x1800 <startup_64> and ends at 0x1807 <startup_64+7>.`},
		// The row covering late_entry starts before it: no line (gdb).
		{name: "late_entry", err: ErrNoLine},
		{name: "no_lines", err: ErrNoLine},
		{name: "missing", err: ErrUnknownSymbol},
	}
	for _, tc := range tests {
		loc, err := tb.FunctionLine(tc.name)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("FunctionLine(%q) = %v, %v; want %v", tc.name, loc, err, tc.err)
			}
			continue
		}
		if err != nil || loc.String() != tc.want || loc.Function != tc.name {
			t.Errorf("FunctionLine(%q) = %+v, %v; want %s", tc.name, loc, err, tc.want)
		}
		if got := tb.GDBInfoLine(loc); got != tc.gdbOut {
			t.Errorf("GDBInfoLine(%q) =\n %s\nwant\n %s", tc.name, got, tc.gdbOut)
		}
	}
}

func TestResolve(t *testing.T) {
	tb := openELF(t, lineTestImage(true))
	tests := []struct {
		expr    string
		want    string
		wantErr error
	}{
		{expr: "do_mkdirat", want: "0x1100 <do_mkdirat> at fs/namei.c:10"},
		{expr: " do_mkdirat+0x20 ", want: "0x1120 <do_mkdirat+32> at fs/namei.c:21"},
		{expr: "do_mkdirat+16", want: "0x1110 <do_mkdirat+16> at fs/namei.c:12"},
		// late_entry, sized and closer, ends before 0x1140: like gdb's
		// minimal symbols, SymbolAt then gives up.
		{expr: "0x1140", want: "0x1140 at include/linux/fs.h:5"},
		{expr: "0x1106", want: "0x1106 <do_mkdirat+6> at fs/namei.c:11"},
		{expr: "*0X1803", want: "0x1803 <startup_64+3> at /src/arch/x86/kernel/head_64.S:65"},
		{expr: "0x1900", want: "0x1900 <no_lines>"},
		{expr: "0x9000", want: "0x9000"},
		{expr: "fs/namei.c:11", want: "0x1105 <do_mkdirat+5> at fs/namei.c:11"},
		{expr: "namei.c:x", wantErr: ErrBadExpr},
		{expr: "namei.c:999", wantErr: ErrNoLine},
		{expr: "nope", wantErr: ErrUnknownSymbol},
		{expr: "do_mkdirat+zz", wantErr: errAny},
		{expr: "", wantErr: errAny},
	}
	for _, tc := range tests {
		r, err := tb.Resolve(tc.expr)
		if tc.wantErr != nil {
			if err == nil || tc.wantErr != errAny && !errors.Is(err, tc.wantErr) {
				t.Errorf("Resolve(%q) = %v, %v; want error %v", tc.expr, r, err, tc.wantErr)
			}
			continue
		}
		if err != nil || r.String() != tc.want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", tc.expr, r.String(), err, tc.want)
		}
	}
}

// errAny stands for any error in test tables.
var errAny = errors.New("any error")

func TestJoinPath(t *testing.T) {
	tests := []struct{ dir, name, want string }{
		{"fs", "namei.c", "fs/namei.c"},
		{"arch/x86/include/asm/trace/", "fpu.h", "arch/x86/include/asm/trace/fpu.h"},
		{"include/trace/../../arch", "x.h", "include/trace/../../arch/x.h"},
		{"", "a.c", "a.c"},
		{"/abs", "a.S", "/abs/a.S"},
	}
	for _, tc := range tests {
		if got := joinPath(tc.dir, tc.name); got != tc.want {
			t.Errorf("joinPath(%q, %q) = %q, want %q", tc.dir, tc.name, got, tc.want)
		}
	}
}

func TestOpenIndexed(t *testing.T) {
	src := openELF(t, lineTestImage(false))
	cache := t.TempDir()
	for round := range 2 {
		tb, err := OpenIndexed(src.Path(), cache)
		if err != nil {
			t.Fatal(err)
		}
		if tb.IndexFile() == "" {
			t.Fatalf("round %d: no index in use", round)
		}
		if r, err := tb.Resolve("0x1106"); err != nil || r.String() != "0x1106 <do_mkdirat+6> at fs/namei.c:11" {
			t.Errorf("round %d: Resolve = %v, %v", round, r, err)
		}
		if _, err := tb.LineAt(0x1900); !errors.Is(err, ErrNoLine) {
			t.Errorf("round %d: LineAt(no unit) = %v", round, err)
		}
		tb.Close()
	}
	// An unwritable cache leaves a working table without an index.
	tb, err := OpenIndexed(src.Path(), "/proc/self/nonexistent")
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	if tb.IndexFile() != "" {
		t.Errorf("IndexFile() = %q for an unwritable cache", tb.IndexFile())
	}
	if loc, err := tb.FunctionLine("do_mkdirat"); err != nil || loc.Line != 10 {
		t.Errorf("FunctionLine without index = %v, %v", loc, err)
	}
}

func TestLineAddrs(t *testing.T) {
	tb := openELF(t, lineTestImage(true))
	tests := []struct {
		file    string
		line    int
		want    []string // FUNCTION@ADDR FILE:LINE
		wantErr bool
	}{
		{file: "fs/namei.c", line: 10, want: []string{"do_mkdirat@0x1100 fs/namei.c:10"}},
		// (No function from 0x1110 on: see TestResolve.)
		{file: "namei.c", line: 21, want: []string{"@0x1120 fs/namei.c:21"}},
		// No row for line 13: the next line with code.
		{file: "fs/namei.c", line: 13, want: []string{"@0x1120 fs/namei.c:20"}},
		// Line 31 has only a non-statement row and line 40's row gave way
		// to fs.h:5 at the same address: the next line is 50.
		{file: "fs/namei.c", line: 31, want: []string{"@0x1150 fs/namei.c:50"}},
		{file: "fs.h", line: 5, want: []string{"@0x1140 include/linux/fs.h:5"}},
		{file: "head_64.S", line: 66, want: []string{"startup_64@0x1807 /src/arch/x86/kernel/head_64.S:67"}},
		{file: "fs/namei.c", line: 1000, wantErr: true},
		{file: "nosuch.c", line: 1, wantErr: true},
		{file: "fs/namei.c", line: 0, wantErr: true},
	}
	for _, tc := range tests {
		locs, err := tb.LineAddrs(tc.file, tc.line)
		if tc.wantErr {
			if err == nil {
				t.Errorf("LineAddrs(%s:%d) = %v, want an error", tc.file, tc.line, locs)
			}
			continue
		}
		var got []string
		for _, l := range locs {
			got = append(got, fmt.Sprintf("%s@%#x %s", l.Function, l.Addr, l))
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("LineAddrs(%s:%d) = %q, %v; want %q", tc.file, tc.line, got, err, tc.want)
		}
	}
}
