package symbols

import "testing"

func TestScratchRows(t *testing.T) {
	tb := openVmlinux(t)
	pc := uint64(0xffffffff815412b9)
	d, _ := tb.dwarf()
	u, _ := d.unitForAddr(pc)
	l, _ := tb.unitLines(d, u)
	for _, sf := range l.subfiles {
		for _, r := range sf.rows {
			if r.pc >= pc-0x20 && r.pc <= pc+0x20 {
				t.Logf("%-40s %#x line %d stmt %v", sf.name, r.pc, r.line, r.isStmt)
			}
		}
	}
}
