package rsp

import (
	"errors"
	"reflect"
	"testing"
)

func TestParseStopReply(t *testing.T) {
	for _, tc := range []struct {
		payload string
		want    StopReply
		err     bool
	}{
		{"T05thread:01;", StopReply{Kind: 'T', Signal: 5, Thread: 1, Core: -1}, false},
		{"T02thread:02;", StopReply{Kind: 'T', Signal: 2, Thread: 2, Core: -1}, false},
		{"T05thread:02;watch:ffffffff81000000;", StopReply{Kind: 'T', Signal: 5, Thread: 2, Core: -1,
			Watch: &WatchHit{Kind: WriteWatch, Addr: 0xffffffff81000000}}, false},
		{"T05watch:ffffffffffff1000;thread:02;", StopReply{Kind: 'T', Signal: 5, Thread: 2, Core: -1,
			Watch: &WatchHit{Kind: WriteWatch, Addr: 0xffffffffffff1000}}, false},
		{"T05thread:01;rwatch:1000;", StopReply{Kind: 'T', Signal: 5, Thread: 1, Core: -1,
			Watch: &WatchHit{Kind: ReadWatch, Addr: 0x1000}}, false},
		{"T05thread:01;awatch:2000;", StopReply{Kind: 'T', Signal: 5, Thread: 1, Core: -1,
			Watch: &WatchHit{Kind: AccessWatch, Addr: 0x2000}}, false},
		{"T05swbreak:;thread:p01.03;core:1;", StopReply{Kind: 'T', Signal: 5, Thread: 3, Core: 1, SWBreak: true}, false},
		{"T05hwbreak:;", StopReply{Kind: 'T', Signal: 5, Core: -1, HWBreak: true}, false},
		{"T0510:f0ff000000000000;thread:01;", StopReply{Kind: 'T', Signal: 5, Thread: 1, Core: -1,
			Registers: map[int][]byte{0x10: {0xf0, 0xff, 0, 0, 0, 0, 0, 0}}}, false},
		{"T05thread:01;library:;frobnicate:42;", StopReply{Kind: 'T', Signal: 5, Thread: 1, Core: -1}, false},
		{"T05", StopReply{Kind: 'T', Signal: 5, Core: -1}, false},
		{"S05", StopReply{Kind: 'S', Signal: 5, Core: -1}, false},
		{"W00", StopReply{Kind: 'W', Core: -1}, false},
		{"W01;process:1", StopReply{Kind: 'W', ExitStatus: 1, Core: -1}, false},
		{"X09", StopReply{Kind: 'X', Signal: 9, Core: -1}, false},
		{"", StopReply{}, true},
		{"OK", StopReply{}, true},
		{"T5", StopReply{}, true},
		{"Txx", StopReply{}, true},
		{"S05junk", StopReply{}, true},
		{"T05thread", StopReply{}, true},
		{"T05thread:zz;", StopReply{}, true},
		{"T05watch:nothex;", StopReply{}, true},
		{"T0510:abc;", StopReply{}, true},
	} {
		got, err := ParseStopReply(tc.payload)
		if tc.err {
			if !errors.Is(err, ErrNotStopReply) {
				t.Errorf("ParseStopReply(%q) error = %v, want ErrNotStopReply", tc.payload, err)
			}
			continue
		}
		tc.want.Raw = tc.payload
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseStopReply(%q) = %+v, %v\nwant %+v", tc.payload, got, err, tc.want)
		}
	}
}

func TestStopReplyString(t *testing.T) {
	for _, tc := range []struct {
		payload, want string
	}{
		{"T05thread:01;", "stopped with signal 5 in thread 1"},
		{"T05thread:02;watch:1000;", "stopped with signal 5 in thread 2 (write-watch at 0x1000)"},
		{"T05swbreak:;", "stopped with signal 5 (software breakpoint)"},
		{"W03", "exited with status 3"},
		{"X09", "terminated by signal 9"},
	} {
		s, err := ParseStopReply(tc.payload)
		if err != nil || s.String() != tc.want {
			t.Errorf("ParseStopReply(%q).String() = %q, %v; want %q", tc.payload, s.String(), err, tc.want)
		}
	}
}
