package symbols

import (
	"encoding/binary"
	"testing"
)

func TestRunCFA(t *testing.T) {
	c := &cie{codeAlign: 1, dataAlign: -8, raReg: 16, asize: 8,
		initial: []byte{0x0c, 7, 8, 0x90, 1}} // def_cfa rsp+8; offset r16 at cfa-8
	// The FDE of the sample in `readelf --debug-dump=frames`:
	//   advance 1; def_cfa_offset 16; offset rbp at cfa-16; advance 14;
	//   def_cfa_register rbp; advance1 99; remember_state; restore rbp;
	//   def_cfa rsp+8; advance 5; restore_state
	prog := []byte{0x41, 0x0e, 16, 0x86, 2, 0x4e, 0x0d, 6, 0x02, 99, 0x0a, 0xc6, 0x0c, 7, 8, 0x45, 0x0b}
	f := &fde{cie: c, lo: 0x1000, hi: 0x1100, instrs: prog}
	tests := []struct {
		pc      uint64
		cfaReg  uint64
		cfaOff  int64
		rbp     regRule
		raOff   int64
		comment string
	}{
		{0x1000, 7, 8, regRule{}, -8, "entry: CFA = rsp+8"},
		{0x1001, 7, 16, regRule{kind: ruleOffset, off: -16}, -8, "after push rbp"},
		{0x100e, 7, 16, regRule{kind: ruleOffset, off: -16}, -8, "before mov rsp, rbp"},
		{0x100f, 6, 16, regRule{kind: ruleOffset, off: -16}, -8, "frame pointer set up"},
		{0x1072, 7, 8, regRule{}, -8, "epilogue after remember_state"},
		{0x1077, 6, 16, regRule{kind: ruleOffset, off: -16}, -8, "after restore_state"},
	}
	for _, tc := range tests {
		row, err := f.rowFor(tc.pc, binary.LittleEndian)
		if err != nil {
			t.Fatalf("%s: %v", tc.comment, err)
		}
		if row.cfa.reg != tc.cfaReg || row.cfa.off != tc.cfaOff || row.regs[6].kind != tc.rbp.kind || row.regs[6].off != tc.rbp.off || row.regs[16].off != tc.raOff {
			t.Errorf("%s (%#x): CFA r%d%+d rbp %+v ra %+v", tc.comment, tc.pc, row.cfa.reg, row.cfa.off, row.regs[6], row.regs[16])
		}
	}
}

func TestEvalExpr(t *testing.T) {
	regs := map[uint64]uint64{6: 0x1000, 7: 0x2000}
	mem := map[uint64]uint64{0x0ff0: 0xabcd, 0x2008: 0x42}
	ctx := exprContext{
		reg: func(r uint64) (uint64, bool) { v, ok := regs[r]; return v, ok },
		mem: func(a uint64, n int) ([]byte, error) {
			return binary.LittleEndian.AppendUint64(nil, mem[a])[:n], nil
		},
		order: binary.LittleEndian,
		asize: 8,
	}
	tests := []struct {
		name    string
		expr    []byte
		initial []uint64
		want    uint64
		wantErr bool
	}{
		{"breg6 -16; deref (realigned stack CFA)", []byte{0x76, 0x70, 0x06}, nil, 0xabcd, false},
		{"lit5 lit7 plus", []byte{0x35, 0x37, 0x22}, nil, 12, false},
		{"const1s -1", []byte{0x09, 0xff}, nil, ^uint64(0), false},
		{"initial CFA plus_uconst 8 deref", []byte{0x23, 8, 0x06}, []uint64{0x2000}, 0x42, false},
		{"bregx 7 +8", []byte{0x92, 7, 8}, nil, 0x2008, false},
		{"minus", []byte{0x3a, 0x33, 0x1c}, nil, 7, false},
		{"unknown register", []byte{0x73, 0}, nil, 0, true},
		{"underflow", []byte{0x22}, nil, 0, true},
		{"unsupported op", []byte{0xe0}, nil, 0, true},
	}
	for _, tc := range tests {
		c := ctx
		c.initial = tc.initial
		got, err := evalExpr(tc.expr, c)
		if (err != nil) != tc.wantErr || !tc.wantErr && got != tc.want {
			t.Errorf("%s: got %#x, %v; want %#x (error %v)", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}
