package report

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// WriteLogs writes a console log for every failed, errored or flaky spec and
// every failed set-up node of g into runDir/<guestDir>/logs/, and records
// each log's path (relative to runDir) in the spec's Log. A log holds, per
// attempt, the failure, the spec's report entries (the console transcript
// the suite attaches), its timeline (GinkgoWriter output) and its stdout.
func WriteLogs(runDir, guestDir string, g *GuestResult) error {
	write := func(s *Spec, prefix string) error {
		if len(s.cases) == 0 {
			return nil
		}
		rel := path.Join(guestDir, "logs", prefix+Slug(s.ID)+".log")
		full := filepath.Join(runDir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, []byte(specLog(g, s)), 0o644); err != nil {
			return err
		}
		s.Log = rel
		return nil
	}
	for i := range g.Setup {
		if err := write(&g.Setup[i], "setup-"); err != nil {
			return err
		}
	}
	for i := range g.Specs {
		s := &g.Specs[i]
		if s.Status == Failed || s.Status == Error || s.Flaky {
			if err := write(s, ""); err != nil {
				return err
			}
		}
	}
	return nil
}

// specLog renders one spec's log.
func specLog(g *GuestResult, s *Spec) string {
	var b strings.Builder
	fmt.Fprintf(&b, "spec:    %s\n", s.ID)
	if len(s.Labels) > 0 {
		fmt.Fprintf(&b, "labels:  %s\n", strings.Join(s.Labels, ", "))
	}
	fmt.Fprintf(&b, "guest:   %s (kernel %s)\n", g.Guest, valueOr(g.Kernel, "unknown"))
	status := string(s.Status)
	if s.Flaky {
		status += " (flaky: failed, then passed when re-run)"
	}
	fmt.Fprintf(&b, "status:  %s\n", status)
	if s.Reason != "" {
		fmt.Fprintf(&b, "reason:  %s\n", s.Reason)
	}
	for i, c := range s.cases {
		title := "run"
		if i > 0 {
			title = "re-run"
		}
		if c.State == StateNotRun {
			fmt.Fprintf(&b, "\n===== %s: not run =====\n", title)
		} else {
			st, _ := Classify(c)
			fmt.Fprintf(&b, "\n===== %s: %s (Ginkgo: %s, %.3fs) =====\n", title, st, c.State, c.Seconds)
		}
		section(&b, "failure", valueOr(c.Description, c.Message))
		for _, e := range c.Entries {
			section(&b, "report entry "+e.Name, e.Value)
		}
		section(&b, "spec timeline (GinkgoWriter output, report entries, failures)", c.SystemErr)
		section(&b, "stdout", c.SystemOut)
	}
	return b.String()
}

func section(b *strings.Builder, title, body string) {
	body = strings.TrimRight(strings.ReplaceAll(body, "\r\n", "\n"), "\n ")
	if body == "" {
		return
	}
	fmt.Fprintf(b, "\n--- %s ---\n%s\n", title, body)
}
