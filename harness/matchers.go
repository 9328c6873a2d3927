package harness

import (
	"fmt"
	"path"

	"github.com/onsi/gomega/types"
)

// StopIn matches a *Hit whose function is function and whose source file is
// file. file may be given as a path suffix ("fs/namei.c" or "namei.c"); the
// line is whatever the running kernel's DWARF says. The failure message
// shows the actual stop.
func StopIn(function, file string) types.GomegaMatcher {
	return &stopInMatcher{function: function, file: file}
}

type stopInMatcher struct{ function, file string }

func (m *stopInMatcher) Match(actual any) (bool, error) {
	h, ok := actual.(*Hit)
	if !ok {
		return false, fmt.Errorf("StopIn expects a *harness.Hit, got %T", actual)
	}
	if h == nil {
		return false, nil
	}
	return h.Function == m.function && h.Offset == 0 && fileMatches(h.File, m.file), nil
}

func (m *stopInMatcher) FailureMessage(actual any) string {
	return fmt.Sprintf("expected the kernel to stop at the entry of %s in %s\n     it stopped at %s", m.function, m.file, describeActual(actual))
}

func (m *stopInMatcher) NegatedFailureMessage(actual any) string {
	return fmt.Sprintf("expected the kernel not to stop in %s (%s)\n     it stopped at %s", m.function, m.file, describeActual(actual))
}

func describeActual(actual any) string {
	if h, ok := actual.(*Hit); ok && h != nil {
		return h.String()
	}
	return fmt.Sprintf("%v", actual)
}

// fileMatches reports whether got names the file want: equal, or want is a
// trailing path of got ("fs/namei.c" matches "/build/linux/fs/namei.c").
func fileMatches(got, want string) bool {
	if got == "" {
		return false
	}
	got, want = path.Clean(got), path.Clean(want)
	if got == want {
		return true
	}
	return len(got) > len(want) && got[len(got)-len(want)-1] == '/' && got[len(got)-len(want):] == want
}
