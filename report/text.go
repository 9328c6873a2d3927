package report

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// Verdict says in a few words what a run means for the team: its
// regressions, else its harness errors, else that nothing regressed.
func Verdict(s *Summary) string {
	ch := s.Changes
	n := 0
	if ch != nil {
		n = len(ch.Regressions)
	}
	errs := 0
	for _, g := range s.Guests {
		errs += g.Counts().Error
		if g.Error != "" {
			errs++
		}
		for _, st := range g.Setup {
			if st.Status == Error {
				errs++
			}
		}
	}
	var parts []string
	if n > 0 {
		parts = append(parts, plural(n, "regression", "regressions"))
	}
	if errs > 0 {
		parts = append(parts, plural(errs, "harness error", "harness errors"))
	}
	if len(parts) == 0 {
		if ch == nil || ch.Previous == "" {
			return "no previous run to compare with"
		}
		return "no regressions"
	}
	return strings.Join(parts, ", ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// WriteText writes the run as text for a terminal or a morning e-mail: the
// verdict, one line per guest, and what changed since the previous run, with
// reasons and console log paths (under runDir, if given).
func WriteText(w io.Writer, s *Summary, runDir string) error {
	var b strings.Builder
	title := "kspec nightly " + s.Run
	if s.Shard != "" {
		title += " (shard " + s.Shard + ")"
	}
	fmt.Fprintf(&b, "%s: %s\n", title, strings.ToUpper(Verdict(s)))
	if d := s.Finished.Sub(s.Started); d > 0 {
		fmt.Fprintf(&b, "ran %s from %s", d.Round(1e9), s.Started.UTC().Format("2006-01-02 15:04 MST"))
		if s.Host != "" {
			fmt.Fprintf(&b, " on %s", s.Host)
		}
		if s.QEMU != "" {
			fmt.Fprintf(&b, " with QEMU %s", s.QEMU)
		}
		b.WriteString("\n")
	}
	if len(s.MergedFrom) > 0 {
		fmt.Fprintf(&b, "merged from shards: %s\n", strings.Join(s.MergedFrom, "; "))
	}
	b.WriteString("\n")
	for _, g := range s.Guests {
		c := g.Counts()
		fmt.Fprintf(&b, "  %-25s %-26s %s", g.Guest, valueOr(g.Kernel, "?"), countsText(c))
		if g.BootSeconds > 0 {
			fmt.Fprintf(&b, "  (boot %.1fs, run %.0fs)", g.BootSeconds, g.Seconds)
		}
		if g.QEMU != "" && g.QEMU != s.QEMU {
			fmt.Fprintf(&b, "  [%s, QEMU %s]", g.Arch, g.QEMU)
		}
		b.WriteString("\n")
		if g.Fallback != "" {
			fmt.Fprintf(&b, "  %-25s note: %s\n", "", g.Fallback)
		}
		if g.Error != "" {
			fmt.Fprintf(&b, "  %-25s HARNESS ERROR: %s\n", "", g.Error)
		}
	}
	logPath := func(rel string) string {
		if rel == "" {
			return ""
		}
		if runDir != "" {
			return filepath.Join(runDir, filepath.FromSlash(rel))
		}
		return rel
	}
	ch := s.Changes
	if ch != nil {
		if ch.Previous == "" {
			b.WriteString("\nFirst run in this results directory: nothing to compare with.\n")
		} else {
			fmt.Fprintf(&b, "\nChanges since %s:\n", ch.Previous)
		}
		section := func(title string, l []Change, detail bool) {
			if len(l) == 0 {
				return
			}
			fmt.Fprintf(&b, "\n%s (%d):\n", title, len(l))
			for _, c := range l {
				fmt.Fprintf(&b, "  %-16s %s", c.Guest, valueOr(c.Spec, "(whole suite)"))
				switch {
				case c.From != "" && c.Since != "" && c.To != "":
					fmt.Fprintf(&b, "  [%s in %s → %s]", c.From, c.Since, c.To)
				case c.To != "" && c.To != Error:
					fmt.Fprintf(&b, "  [%s]", c.To)
				case c.From != "" && c.To == "":
					fmt.Fprintf(&b, "  [was %s]", c.From)
				}
				b.WriteString("\n")
				if detail && c.Reason != "" {
					fmt.Fprintf(&b, "  %-16s   %s\n", "", c.Reason)
				}
				if detail && c.Log != "" {
					fmt.Fprintf(&b, "  %-16s   console log: %s\n", "", logPath(c.Log))
				}
			}
		}
		section("REGRESSIONS — passed before, fail now", ch.Regressions, true)
		section("HARNESS ERRORS — the harness broke; says nothing about the kernel", ch.Errors, true)
		section("Flaky — failed, then passed when re-run", ch.Flaky, true)
		section("Fixed — failed before, pass now", ch.Fixes, false)
		if len(ch.Kernels) > 0 {
			fmt.Fprintf(&b, "\nKernel changes (%d):\n", len(ch.Kernels))
			for _, k := range ch.Kernels {
				fmt.Fprintf(&b, "  %-16s %s → %s\n", k.Guest, valueOr(k.From, "(new guest)"), valueOr(k.To, "(not run)"))
			}
		}
		section("New specs", ch.New, false)
		section("Removed specs", ch.Removed, false)
		section("Known failures — failed before too, or nothing to compare with", ch.Failing, true)
		if ch.Previous != "" && len(ch.Regressions)+len(ch.Errors)+len(ch.Flaky)+len(ch.Fixes)+len(ch.Kernels)+len(ch.New)+len(ch.Removed) == 0 {
			b.WriteString("  nothing changed.\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func countsText(c Counts) string {
	parts := []string{fmt.Sprintf("%d passed", c.Passed)}
	if c.Flaky > 0 {
		parts[0] += fmt.Sprintf(" (%d flaky)", c.Flaky)
	}
	if c.Failed > 0 {
		parts = append(parts, fmt.Sprintf("%d failed", c.Failed))
	}
	if c.Error > 0 {
		parts = append(parts, plural(c.Error, "error", "errors"))
	}
	if c.Skipped > 0 {
		parts = append(parts, fmt.Sprintf("%d skipped", c.Skipped))
	}
	return strings.Join(parts, ", ")
}
