package symbols

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"
)

// BenchmarkFirstLookup measures a fresh Table answering its first
// FunctionLine: open, symbol table, address map, one unit's line program.
func BenchmarkFirstLookup(b *testing.B) {
	path := vmlinux(b)
	for b.Loop() {
		t, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := t.FunctionLine("do_mkdirat"); err != nil {
			b.Fatal(err)
		}
		t.Close()
	}
}

// BenchmarkFirstLookupIndexed is BenchmarkFirstLookup with a ready
// on-disk index.
func BenchmarkFirstLookupIndexed(b *testing.B) {
	path := vmlinux(b)
	dir := b.TempDir()
	t, err := OpenIndexed(path, dir)
	if err != nil {
		b.Fatal(err)
	}
	t.Close()
	for b.Loop() {
		t, err := OpenIndexed(path, dir)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := t.FunctionLine("do_mkdirat"); err != nil {
			b.Fatal(err)
		}
		t.Close()
	}
}

// BenchmarkWarmLookup measures FunctionLine on an open Table that has
// answered it before.
func BenchmarkWarmLookup(b *testing.B) {
	t := openVmlinux(b)
	if _, err := t.FunctionLine("do_mkdirat"); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := t.FunctionLine("do_mkdirat"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSymbolAt measures address-to-symbol lookups on a warm Table.
func BenchmarkSymbolAt(b *testing.B) {
	t := openVmlinux(b)
	sym, err := t.Lookup("do_mkdirat")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, _, err := t.SymbolAt(sym.Addr + 16); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLookupPhases breaks the first lookup into its phases.
func BenchmarkLookupPhases(b *testing.B) {
	path := vmlinux(b)
	b.Run("open", func(b *testing.B) {
		for b.Loop() {
			t, _ := Open(path)
			t.Close()
		}
	})
	b.Run("nameIndex", func(b *testing.B) {
		t := openVmlinux(b)
		s, _ := t.loadSymtab()
		for b.Loop() {
			s.buildNameIndex()
		}
	})
	b.Run("addrIndex", func(b *testing.B) {
		t := openVmlinux(b)
		s, _ := t.loadSymtab()
		for b.Loop() {
			s.buildAddrIndex()
		}
	})
	b.Run("aranges", func(b *testing.B) {
		t := openVmlinux(b)
		d, _ := t.dwarf()
		for b.Loop() {
			if _, err := parseAranges(d.aranges, d.order); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decodeLines", func(b *testing.B) {
		t := openVmlinux(b)
		sym, _ := t.Lookup("do_mkdirat")
		d, _ := t.dwarf()
		u, _ := d.unitForAddr(sym.Addr)
		for b.Loop() {
			if _, err := d.decodeLines(u); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unitRanges", func(b *testing.B) {
		for b.Loop() {
			t, _ := Open(path)
			d, _ := t.dwarf()
			if _, err := d.loadUnitRanges(); err != nil {
				b.Fatal(err)
			}
			t.Close()
		}
	})
}

// vmlinux returns $KSPEC_SYMBOLS or stops the test: it fails, telling how
// to set the variable, unless KSPEC_SKIP_MISSING=1 asks for a skip.
func vmlinux(tb testing.TB) string {
	tb.Helper()
	return vmlinuxFrom(tb, "KSPEC_SYMBOLS", "usr/lib/debug/boot/vmlinux-<abi> from linux-image-<abi>-cloud-amd64-dbg")
}

// vmlinuxFrom returns the vmlinux $env names; the test fails when it is
// not there (skips with KSPEC_SKIP_MISSING=1), saying how to set it.
func vmlinuxFrom(tb testing.TB, env, example string) string {
	tb.Helper()
	p := os.Getenv(env)
	msg := env + " is not set"
	if p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		} else {
			msg = env + ": " + err.Error()
		}
	}
	msg += "; set " + env + " to a vmlinux with DWARF (the prepared guest's, e.g. " +
		example + "; `kspec guest env` prints it), or KSPEC_SKIP_MISSING=1 to skip"
	if os.Getenv("KSPEC_SKIP_MISSING") == "1" {
		tb.Skip(msg)
	}
	tb.Fatal(msg)
	return ""
}

// openVmlinux opens $KSPEC_SYMBOLS for the duration of the test.
func openVmlinux(tb testing.TB) *Table {
	tb.Helper()
	t, err := Open(vmlinux(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { t.Close() })
	return t
}

// BenchmarkScanLookup measures a name lookup without the hash index.
func BenchmarkScanLookup(b *testing.B) {
	t := openVmlinux(b)
	s, _ := t.loadSymtab()
	for b.Loop() {
		found := false
		s.scan("do_mkdirat", func(int) bool { found = true; return false })
		if !found {
			b.Fatal("not found")
		}
	}
}

// BenchmarkFirstUnwind measures a fresh Table unwinding a recorded stop
// (17 frames with inlined calls): FDE index, CFI, DIE walks.
func BenchmarkFirstUnwind(b *testing.B) {
	path := vmlinux(b)
	raw, err := os.ReadFile("testdata/unwind/mkdir-kmem_cache_alloc_lru.json")
	if err != nil {
		b.Fatal(err)
	}
	var s unwindSample
	if err := json.Unmarshal(raw, &s); err != nil {
		b.Fatal(err)
	}
	regs := map[int]uint64{}
	for name, v := range s.Regs {
		regs[dwarfRegs[name]], _ = strconv.ParseUint(v, 0, 64)
	}
	stack, _ := hex.DecodeString(s.StackHex)
	base, _ := strconv.ParseUint(s.StackAddr, 0, 64)
	readMem := func(addr uint64, n int) ([]byte, error) {
		if addr < base || addr+uint64(n) > base+uint64(len(stack)) {
			return nil, fmt.Errorf("address %#x outside the recorded stack", addr)
		}
		return stack[addr-base : addr-base+uint64(n)], nil
	}
	for b.Loop() {
		t, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		if t.BuildID() != s.BuildID {
			b.Skip("sample from another build")
		}
		frames, err := t.Unwind(regs[16], func(r int) (uint64, bool) { v, ok := regs[r]; return v, ok }, readMem)
		if err != nil || len(frames) != 17 {
			b.Fatal(len(frames), err)
		}
		t.Close()
	}
}

// BenchmarkFirstExpr measures a fresh Table evaluating
// init_uts_ns.name.nodename.
func BenchmarkFirstExpr(b *testing.B) {
	path := vmlinux(b)
	for b.Loop() {
		t, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := t.Expr("init_uts_ns.name.nodename"); err != nil {
			b.Fatal(err)
		}
		t.Close()
	}
}
