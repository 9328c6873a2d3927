package report

import "sort"

// Changes is what a run changed compared with the runs before it.
type Changes struct {
	// Previous is the run compared with; empty for the first run.
	Previous string `json:"previous,omitempty"`
	// Regressions passed in their baseline run and fail now.
	Regressions []Change `json:"regressions,omitempty"`
	// Fixes failed in their baseline run and pass now.
	Fixes []Change `json:"fixes,omitempty"`
	// Flaky failed or errored, then passed when re-run.
	Flaky []Change `json:"flaky,omitempty"`
	// Failing fail now and are no regression: they failed in their
	// baseline run too, or have no baseline (new specs, first run).
	Failing []Change `json:"failing,omitempty"`
	// Errors are harness errors now: errored specs and guests whose suite
	// could not run.
	Errors []Change `json:"errors,omitempty"`
	// New specs are in this run and not in the previous one; Removed the
	// other way round.
	New     []Change `json:"new,omitempty"`
	Removed []Change `json:"removed,omitempty"`
	// Kernels lists guests whose kernel changed, appeared or went away.
	Kernels []KernelChange `json:"kernels,omitempty"`
}

// Change is one spec's change on one guest.
type Change struct {
	// Guest and Spec identify it (Spec is empty for guest-level errors).
	Guest string `json:"guest"`
	Spec  string `json:"spec,omitempty"`
	// From is its status in Since, the baseline run: the latest earlier run
	// in which it passed or failed (empty when there is none).
	From  Status `json:"from,omitempty"`
	Since string `json:"since,omitempty"`
	// To is its status now.
	To Status `json:"to,omitempty"`
	// Reason and Log are the current failure's reason and console log.
	Reason string `json:"reason,omitempty"`
	Log    string `json:"log,omitempty"`
}

// KernelChange is a guest whose kernel differs from the previous run's.
type KernelChange struct {
	// Guest is the guest; From and To its kernel releases before and now
	// (From is empty for a new guest, To for a guest no longer run).
	Guest string `json:"guest"`
	From  string `json:"from,omitempty"`
	To    string `json:"to,omitempty"`
}

// Regressed reports whether the run has regressions.
func (c *Changes) Regressed() bool { return c != nil && len(c.Regressions) > 0 }

// Compare compares cur with history, the earlier runs oldest first (only
// runs with the same Shard are considered). Each spec's baseline is its
// status in the latest earlier run where it passed or failed, so a night
// whose harness broke hides no regression: passed, error, failed is still a
// regression. New, removed and kernel changes are against the latest run.
func Compare(history []*Summary, cur *Summary) *Changes {
	var prev []*Summary
	for _, h := range history {
		if h.Shard == cur.Shard && h.Run < cur.Run {
			prev = append(prev, h)
		}
	}
	ch := &Changes{}
	var last *Summary
	if len(prev) > 0 {
		last = prev[len(prev)-1]
		ch.Previous = last.Run
	}
	baseline := func(guest, id string) (Status, string) {
		for i := len(prev) - 1; i >= 0; i-- {
			g := prev[i].Guest(guest)
			if g == nil {
				continue
			}
			if s := g.Spec(id); s != nil && s.Status.Definitive() {
				return s.Status, prev[i].Run
			}
		}
		return "", ""
	}
	for _, g := range cur.Guests {
		var lg *GuestResult
		if last != nil {
			lg = last.Guest(g.Guest)
			switch {
			case lg == nil:
				ch.Kernels = append(ch.Kernels, KernelChange{Guest: g.Guest, To: g.Kernel})
			case lg.Kernel != g.Kernel:
				ch.Kernels = append(ch.Kernels, KernelChange{Guest: g.Guest, From: lg.Kernel, To: g.Kernel})
			}
		}
		if g.Error != "" {
			ch.Errors = append(ch.Errors, Change{Guest: g.Guest, To: Error, Reason: g.Error})
		}
		for _, s := range g.Setup {
			if s.Status == Error {
				ch.Errors = append(ch.Errors, Change{Guest: g.Guest, Spec: s.ID, To: Error, Reason: s.Reason, Log: s.Log})
			}
		}
		for _, s := range g.Specs {
			from, since := baseline(g.Guest, s.ID)
			c := Change{Guest: g.Guest, Spec: s.ID, From: from, Since: since, To: s.Status, Reason: s.Reason, Log: s.Log}
			if lg != nil && lg.Spec(s.ID) == nil {
				ch.New = append(ch.New, c)
			}
			switch {
			case s.Flaky:
				ch.Flaky = append(ch.Flaky, c)
			case s.Status == Failed && from == Passed:
				ch.Regressions = append(ch.Regressions, c)
			case s.Status == Failed:
				ch.Failing = append(ch.Failing, c)
			case s.Status == Error:
				ch.Errors = append(ch.Errors, c)
			case s.Status == Passed && from == Failed:
				ch.Fixes = append(ch.Fixes, c)
			}
		}
		if lg != nil {
			for _, s := range lg.Specs {
				if g.Spec(s.ID) == nil {
					ch.Removed = append(ch.Removed, Change{Guest: g.Guest, Spec: s.ID, From: s.Status, Since: last.Run})
				}
			}
		}
	}
	if last != nil {
		for _, lg := range last.Guests {
			if cur.Guest(lg.Guest) == nil {
				ch.Kernels = append(ch.Kernels, KernelChange{Guest: lg.Guest, From: lg.Kernel})
			}
		}
	}
	for _, l := range [][]Change{ch.Regressions, ch.Fixes, ch.Flaky, ch.Failing, ch.Errors, ch.New, ch.Removed} {
		sort.SliceStable(l, func(a, b int) bool {
			if l[a].Guest != l[b].Guest {
				return l[a].Guest < l[b].Guest
			}
			return l[a].Spec < l[b].Spec
		})
	}
	return ch
}
