package supervisor

import (
	"errors"
	"strings"
	"testing"
)

func TestRing(t *testing.T) {
	tests := []struct {
		name    string
		size    int
		writes  []string
		want    string
		dropped uint64
	}{
		{"fits", 8, []string{"abc", "de"}, "abcde", 0},
		{"exactly full", 5, []string{"abc", "de"}, "abcde", 0},
		{"drops oldest", 5, []string{"abc", "def"}, "bcdef", 1},
		{"one write larger than the ring", 4, []string{"ab", "0123456789"}, "6789", 8},
		{"many small", 3, []string{"a", "b", "c", "d", "e"}, "cde", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ring{size: tc.size}
			for _, w := range tc.writes {
				r.write([]byte(w))
			}
			if got := string(r.last(100)); got != tc.want || r.dropped != tc.dropped {
				t.Fatalf("got %q dropped %d, want %q dropped %d", got, r.dropped, tc.want, tc.dropped)
			}
			if got := string(r.last(2)); got != tc.want[len(tc.want)-2:] {
				t.Fatalf("last(2) = %q", got)
			}
			p := make([]byte, 2)
			n := r.take(p)
			if string(p[:n]) != tc.want[:2] || string(r.last(100)) != tc.want[2:] {
				t.Fatalf("take: %q, left %q", p[:n], r.last(100))
			}
		})
	}
}

func TestParseChardevTCP(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{"disconnected:tcp:127.0.0.1:42443,server=on", "127.0.0.1:42443", false},
		{"tcp:127.0.0.1:42443,server=on<->127.0.0.1:50000", "127.0.0.1:42443", false},
		{"tcp:127.0.0.1:42443<->127.0.0.1:50000,server=on", "127.0.0.1:42443", false},
		{"disconnected:tcp:127.0.0.1:0,server=on", "", true},
		{"unix:/tmp/gdb.sock,server=on", "", true},
		{"gdb", "", true},
	}
	for _, tc := range tests {
		got, err := parseChardevTCP(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("parseChardevTCP(%q) = %q, %v", tc.in, got, err)
		}
	}
}

func TestParseStat(t *testing.T) {
	fields := "S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 3 0 987654 1000 100"
	tests := []struct {
		in    string
		want  procInfo
		error bool
	}{
		{"4242 (qemu-system-x86) " + fields, procInfo{'S', 4242, 987654}, false},
		{"4242 (a) b (c)) " + fields, procInfo{'S', 4242, 987654}, false},
		{"4242 (zombie) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 55 0 0", procInfo{'Z', 7, 55}, false},
		{"4242 qemu S 1", procInfo{}, true},
		{"4242 (q) S 1 2", procInfo{}, true},
	}
	for _, tc := range tests {
		got, err := parseStat([]byte(tc.in))
		if (err != nil) != tc.error || got != tc.want {
			t.Errorf("parseStat(%q) = %+v, %v", tc.in, got, err)
		}
	}
}

func TestParsePIDFile(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]pidRecord
		err  bool
	}{
		{"harness 10 100\nqemu 11 101\n", map[string]pidRecord{"harness": {10, 100}, "qemu": {11, 101}}, false},
		{"harness 10 100\n", map[string]pidRecord{"harness": {10, 100}}, false},
		{"qemu 11 101\n", nil, true},
		{"harness ten 100\n", nil, true},
		{"harness 10\n", nil, true},
		{"", nil, true},
	}
	for _, tc := range tests {
		got, err := parsePIDFile([]byte(tc.in))
		if (err != nil) != tc.err || len(got) != len(tc.want) {
			t.Errorf("parsePIDFile(%q) = %v, %v", tc.in, got, err)
			continue
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("parsePIDFile(%q)[%s] = %v, want %v", tc.in, k, got[k], v)
			}
		}
	}
}

func TestExitErrorMessage(t *testing.T) {
	tests := []struct {
		e    ExitError
		want []string
	}{
		{ExitError{Code: 1, Args: []string{"qemu-system-x86_64", "-bogus", "-append", "console=ttyS0 quiet"}, StderrTail: "qemu-system-x86_64: -bogus: invalid option\n", DuringStart: true},
			[]string{"exited with status 1 during start", "-bogus: invalid option", "(command: qemu-system-x86_64 -bogus -append 'console=ttyS0 quiet')"}},
		{ExitError{Code: -1, Signal: "SIGSEGV", Args: []string{"q"}},
			[]string{"killed by SIGSEGV", "(command: q)"}},
	}
	for _, tc := range tests {
		msg := tc.e.Error()
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%q lacks %q", msg, w)
			}
		}
		if !errors.Is(&tc.e, ErrQEMUExited) {
			t.Error("ExitError does not wrap ErrQEMUExited")
		}
	}
}

func TestShellQuote(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{[]string{"a", "b=c,d"}, "a b=c,d"},
		{[]string{"-append", "console=ttyS0 quiet"}, "-append 'console=ttyS0 quiet'"},
		{[]string{"it's"}, `'it'\''s'`},
		{[]string{""}, "''"},
	}
	for _, tc := range tests {
		if got := shellQuote(tc.in); got != tc.want {
			t.Errorf("shellQuote(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
