package rsp

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

func TestParseTargetDescription(t *testing.T) {
	const head = `<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd">`
	type reg struct {
		name      string
		num, bits int
		off       int
	}
	for _, tc := range []struct {
		name  string
		files map[string]string
		arch  string
		regs  []reg
		err   bool
	}{
		{
			name: "QEMU x86_64 shape",
			files: map[string]string{
				"target.xml": head + `<target><architecture>i386:x86-64</architecture><xi:include href="i386-64bit.xml"/></target>`,
				"i386-64bit.xml": `<?xml version="1.0"?><!DOCTYPE feature SYSTEM "gdb-target.dtd"><feature name="org.gnu.gdb.i386.core">` +
					`<reg name="rax" bitsize="64" type="int64"/><reg name="rbx" bitsize="64" type="int64"/>` +
					`<reg name="rip" bitsize="64" type="code_ptr"/><reg name="eflags" bitsize="32" type="i386_eflags"/>` +
					`<reg name="st0" bitsize="80" type="i387_ext"/><reg name="xmm0" bitsize="128" type="vec128"/></feature>`,
			},
			arch: "i386:x86-64",
			regs: []reg{{"rax", 0, 64, 0}, {"rbx", 1, 64, 8}, {"rip", 2, 64, 16}, {"eflags", 3, 32, 24}, {"st0", 4, 80, 28}, {"xmm0", 5, 128, 38}},
		},
		{
			name: "include in the middle keeps document order; regnum jumps",
			files: map[string]string{
				"target.xml": head + `<target><feature name="a"><reg name="a0" bitsize="32"/></feature>` +
					`<xi:include href="b.xml"/><feature name="c"><reg name="c0" bitsize="8" regnum="20"/><reg name="c1" bitsize="8"/></feature></target>`,
				"b.xml": `<feature name="b"><reg name="b0" bitsize="16"/><xi:include href="d.xml"/></feature>`,
				"d.xml": `<feature name="d"><reg name="d0" bitsize="64"/></feature>`,
			},
			regs: []reg{{"a0", 0, 32, 0}, {"b0", 1, 16, 4}, {"d0", 2, 64, 6}, {"c0", 20, 8, 14}, {"c1", 21, 8, 15}},
		},
		{
			name: "regnum out of document order gets g offsets by number",
			files: map[string]string{
				"target.xml": `<target><feature name="x"><reg name="hi" bitsize="32" regnum="1"/><reg name="lo" bitsize="64" regnum="0"/></feature></target>`,
			},
			regs: []reg{{"hi", 1, 32, 8}, {"lo", 0, 64, 0}},
		},
		{
			name:  "include cycle",
			files: map[string]string{"target.xml": `<target><xi:include href="target.xml"/></target>`},
			err:   true,
		},
		{
			name:  "missing include",
			files: map[string]string{"target.xml": `<target><xi:include href="nope.xml"/></target>`},
			err:   true,
		},
		{
			name:  "bad bitsize",
			files: map[string]string{"target.xml": `<target><feature><reg name="r" bitsize="big"/></feature></target>`},
			err:   true,
		},
		{
			name:  "not xml",
			files: map[string]string{"target.xml": `<target><feature>`},
			err:   true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fetch := func(annex string) ([]byte, error) {
				if s, ok := tc.files[annex]; ok {
					return []byte(s), nil
				}
				return nil, fmt.Errorf("no %s: %w", annex, ErrUnsupported)
			}
			arch, regs, err := parseTargetDescription(fetch)
			if tc.err {
				if err == nil {
					t.Fatalf("no error; regs %+v", regs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if arch != tc.arch {
				t.Errorf("arch = %q, want %q", arch, tc.arch)
			}
			var got []reg
			for _, r := range regs {
				got = append(got, reg{r.Name, r.Num, r.BitSize, r.offset})
			}
			if !slices.Equal(got, tc.regs) {
				t.Errorf("regs = %+v\nwant   %+v", got, tc.regs)
			}
		})
	}
}

func TestParseFeatures(t *testing.T) {
	f := parseFeatures("PacketSize=1000;qXfer:features:read+;vContSupported+;multiprocess+;QStartNoAckMode-")
	want := map[string]string{"PacketSize": "1000", "qXfer:features:read": "+", "vContSupported": "+", "multiprocess": "+", "QStartNoAckMode": "-"}
	if len(f) != len(want) {
		t.Fatalf("parseFeatures = %v", f)
	}
	for k, v := range want {
		if f[k] != v {
			t.Errorf("feature %s = %q, want %q", k, f[k], v)
		}
	}
	if _, err := parseThreadID("zz"); err == nil || errors.Is(err, nil) {
		t.Error("parseThreadID(zz) succeeded")
	}
}
