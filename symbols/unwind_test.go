package symbols

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/kspec/kspec/arch/amd64"
)

// unwindSample is a stop recorded with gdb in a QEMU guest: registers, the
// stack from rsp to the top of the thread stack, and gdb's backtrace.
type unwindSample struct {
	BuildID   string            `json:"build_id"`
	Regs      map[string]string `json:"regs"`
	StackAddr string            `json:"stack_addr"`
	StackHex  string            `json:"stack_hex"`
	GDBBt     []string          `json:"gdb_bt"`
	Frames    []struct {
		PC       string `json:"pc"`
		Function string `json:"function"`
		File     string `json:"file"`
		Line     int    `json:"line"`
	} `json:"frames"`
}

// The samples are x86-64 stops: DWARF register numbers by gdb name.
var dwarfRegs = amd64.Arch{}.DWARFRegisters()

func TestUnwindRecorded(t *testing.T) {
	files, _ := filepath.Glob("testdata/unwind/*.json")
	if len(files) == 0 {
		t.Fatal("no samples in testdata/unwind")
	}
	tb := openVmlinux(t)
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var s unwindSample
			if err := json.Unmarshal(raw, &s); err != nil {
				t.Fatal(err)
			}
			if tb.BuildID() != s.BuildID {
				t.Skipf("sample recorded on build %s, KSPEC_SYMBOLS is %s", s.BuildID, tb.BuildID())
			}
			regs := map[int]uint64{}
			for name, v := range s.Regs {
				n, err := strconv.ParseUint(v, 0, 64)
				if err != nil {
					t.Fatal(err)
				}
				regs[dwarfRegs[name]] = n
			}
			stack, _ := hex.DecodeString(s.StackHex)
			base, _ := strconv.ParseUint(s.StackAddr, 0, 64)
			readMem := func(addr uint64, n int) ([]byte, error) {
				if addr < base || addr+uint64(n) > base+uint64(len(stack)) {
					return nil, fmt.Errorf("address %#x outside the recorded stack", addr)
				}
				return stack[addr-base : addr-base+uint64(n)], nil
			}
			frames, err := tb.Unwind(regs[16], func(r int) (uint64, bool) { v, ok := regs[r]; return v, ok }, readMem)
			if err != nil {
				t.Fatal(err)
			}
			for i, f := range frames {
				t.Logf("#%d %v cfa=%#x %s", i, f, f.CFA, f.StopReason)
			}
			if len(frames) != len(s.Frames) {
				t.Errorf("got %d frames, gdb has %d:\n%s", len(frames), len(s.Frames), joinLines(s.GDBBt))
			}
			for i := 0; i < min(len(frames), len(s.Frames)); i++ {
				g, f := s.Frames[i], frames[i]
				if f.Function != g.Function || f.File != g.File || f.Line != g.Line {
					t.Errorf("frame %d = %s %s:%d, gdb: %s %s:%d", i, f.Function, f.File, f.Line, g.Function, g.File, g.Line)
				}
				if g.PC != "" {
					if pc, _ := strconv.ParseUint(g.PC, 0, 64); pc != f.PC {
						t.Errorf("frame %d pc = %#x, gdb: %s", i, f.PC, g.PC)
					}
				}
				if inl := i+1 < len(s.Frames) && s.Frames[i+1].PC == ""; f.Inlined != inl {
					t.Errorf("frame %d (%s) Inlined = %v, want %v", i, f.Function, f.Inlined, inl)
				}
			}
		})
	}
}

func joinLines(ls []string) string {
	s := ""
	for _, l := range ls {
		s += "  " + l + "\n"
	}
	return s
}
