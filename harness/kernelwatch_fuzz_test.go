package harness

import (
	"strings"
	"testing"

	"github.com/kspec/kspec/kernel/linux"
)

// FuzzKernelMatcher feeds the console's kernel-failure matcher a panic
// line split at any point (as the console reader splits long lines),
// after an arbitrary harmless kernel line, with or without a printk
// timestamp: the panic must be reported exactly once, with text that is a
// prefix of the panic line; nothing may crash the matcher.
func FuzzKernelMatcher(f *testing.F) {
	f.Add("sysrq triggered crash", 12, "[    4.412089] sysrq: Trigger a crash", uint8(1))
	f.Add("VFS: Unable to mount root fs on unknown-block(0,0)", 0, "", uint8(0))
	f.Add("Attempted to kill init! exitcode=0x00000009", 27, "[    1.0][    T1] Run /init as init process", uint8(3))
	f.Add("Fatal exception", 40, "<4>kspec-noise 17", uint8(2))
	f.Fuzz(func(t *testing.T, msg string, split int, noise string, stamp uint8) {
		if strings.ContainsAny(msg+noise, "\r\n") {
			t.Skip("lines come without line breaks")
		}
		m0 := kernelMatcher{msgs: linux.OS{}.Messages()}
		for _, p := range m0.msgs.Failures {
			if p.Pattern.MatchString(noise) || p.Pattern.MatchString(m0.stripStamp(noise)) {
				t.Skip("the noise line is itself a failure")
			}
		}
		full := "Kernel panic - not syncing: " + msg
		split = min(max(split, 0), len(full))
		first, second := full[:split], full[split:]
		if stamp%2 == 1 {
			first = "[    4.416522] " + first
		}
		m := kernelMatcher{msgs: linux.OS{}.Messages()}
		if kind, detail, ok := m.Feed(noise); ok {
			t.Fatalf("noise %q reported as %s: %q", noise, kind, detail)
		}
		reports := 0
		for _, line := range []string{first, second} {
			kind, detail, ok := m.Feed(line)
			if !ok {
				continue
			}
			reports++
			if kind != "panic" {
				t.Fatalf("split %q|%q reported as %s: %q", first, second, kind, detail)
			}
			if !strings.HasPrefix(full, detail) {
				t.Fatalf("split %q|%q: detail %q is not a prefix of the panic line", first, second, detail)
			}
		}
		if reports != 1 {
			t.Fatalf("split %q|%q after %q: reported %d times, want once", first, second, noise, reports)
		}
	})
}
