package harness

import "testing"

func TestFileMatches(t *testing.T) {
	tests := []struct {
		got, want string
		match     bool
	}{
		{"fs/namei.c", "fs/namei.c", true},
		{"/build/linux/fs/namei.c", "fs/namei.c", true},
		{"fs/namei.c", "namei.c", true},
		{"fs/xnamei.c", "namei.c", false},
		{"fs/namei.c", "kernel/namei.c", false},
		{"", "fs/namei.c", false},
		{"./fs/namei.c", "fs/namei.c", true},
	}
	for _, tt := range tests {
		if got := fileMatches(tt.got, tt.want); got != tt.match {
			t.Errorf("fileMatches(%q, %q) = %v, want %v", tt.got, tt.want, got, tt.match)
		}
	}
}

func TestStopInMatcher(t *testing.T) {
	hit := &Hit{Function: "do_mkdirat", File: "fs/namei.c", Line: 4165, PC: 0xffffffff81370000}
	tests := []struct {
		name     string
		fn, file string
		actual   any
		match    bool
		wantErr  bool
	}{
		{"exact", "do_mkdirat", "fs/namei.c", hit, true, false},
		{"other function", "do_rmdir", "fs/namei.c", hit, false, false},
		{"other file", "do_mkdirat", "kernel/sys.c", hit, false, false},
		{"inside, not at entry", "do_mkdirat", "fs/namei.c", &Hit{Function: "do_mkdirat", File: "fs/namei.c", Offset: 4}, false, false},
		{"nil hit", "do_mkdirat", "fs/namei.c", (*Hit)(nil), false, false},
		{"wrong type", "do_mkdirat", "fs/namei.c", "do_mkdirat", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := StopIn(tt.fn, tt.file)
			ok, err := m.Match(tt.actual)
			if (err != nil) != tt.wantErr || ok != tt.match {
				t.Fatalf("Match = %v, %v; want %v, err %v", ok, err, tt.match, tt.wantErr)
			}
			if !ok && !tt.wantErr && tt.actual.(*Hit) != nil {
				if msg := m.FailureMessage(tt.actual); msg == "" {
					t.Fatal("empty failure message")
				}
			}
		})
	}
}
