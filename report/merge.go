package report

import (
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// MergeOptions tune MergeRuns.
type MergeOptions struct {
	// Partial accepts an incomplete set of shards (a CI job that died);
	// the merged run's MergedFrom then says which shards it has.
	Partial bool
}

// MergeSummaries combines the summaries of the shards of one run into the
// summary of a whole run. The shards must be "i/n" shards with one n, each i
// at most once, and all of them unless opts.Partial; a guest must have run
// the same kernel in every shard. Specs are united per guest; a spec found in
// two shards keeps the result that ran (not skipped). The result has no
// Shard, no Run and no Changes: MergeRuns or the caller sets them.
func MergeSummaries(shards []*Summary, opts MergeOptions) (*Summary, error) {
	if len(shards) == 0 {
		return nil, fmt.Errorf("merge: no shard runs given")
	}
	total := 0
	have := map[int]string{}
	for _, s := range shards {
		sh, err := ParseShard(s.Shard)
		if err != nil || sh.Total == 0 {
			return nil, fmt.Errorf("merge: run %s is not a shard run (shard %q); merge the runs of `kspec nightly --shard i/n`", s.Run, s.Shard)
		}
		if total == 0 {
			total = sh.Total
		}
		if sh.Total != total {
			return nil, fmt.Errorf("merge: run %s is shard %s but run %s is of %d shards", s.Run, s.Shard, shards[0].Run, total)
		}
		if prev, dup := have[sh.Index]; dup {
			return nil, fmt.Errorf("merge: shard %s given twice (runs %s and %s)", s.Shard, prev, s.Run)
		}
		have[sh.Index] = s.Run
	}
	var missing []string
	for i := 1; i <= total; i++ {
		if _, ok := have[i]; !ok {
			missing = append(missing, fmt.Sprintf("%d/%d", i, total))
		}
	}
	if len(missing) > 0 && !opts.Partial {
		return nil, fmt.Errorf("merge: shards %s are missing (give them, or accept a partial run with --partial)", strings.Join(missing, ", "))
	}

	sorted := append([]*Summary(nil), shards...)
	sort.Slice(sorted, func(a, b int) bool {
		x, _ := ParseShard(sorted[a].Shard)
		y, _ := ParseShard(sorted[b].Shard)
		return x.Index < y.Index
	})
	m := &Summary{Schema: SchemaVersion, Suite: sorted[0].Suite, LabelFilter: sorted[0].LabelFilter}
	var hosts []string
	for _, s := range sorted {
		if m.Started.IsZero() || s.Started.Before(m.Started) {
			m.Started = s.Started
		}
		if s.Finished.After(m.Finished) {
			m.Finished = s.Finished
		}
		if s.Host != "" && !contains(hosts, s.Host) {
			hosts = append(hosts, s.Host)
		}
		m.MergedFrom = append(m.MergedFrom, s.Shard+" "+s.Run)
		for _, g := range s.Guests {
			mg := m.Guest(g.Guest)
			if mg == nil {
				c := *g
				c.Specs, c.Setup, c.Files = nil, nil, nil
				mg = &c
				m.Guests = append(m.Guests, mg)
			} else if mg.Kernel != g.Kernel {
				return nil, fmt.Errorf("merge: guest %s ran kernel %s in shard %s but %s in another shard; merge only shards of one night", g.Guest, g.Kernel, s.Shard, mg.Kernel)
			}
			if g.Error != "" {
				mg.Error = strings.TrimPrefix(mg.Error+"; ", "; ") + "shard " + s.Shard + ": " + g.Error
			}
			mg.BootSeconds = max(mg.BootSeconds, g.BootSeconds)
			mg.Seconds = max(mg.Seconds, g.Seconds)
			for _, f := range g.Files {
				if !contains(mg.Files, f) {
					mg.Files = append(mg.Files, f)
				}
			}
			for _, st := range g.Setup {
				st.ID += " (shard " + s.Shard + ")"
				mg.Setup = append(mg.Setup, st)
			}
			for _, sp := range g.Specs {
				if old := mg.Spec(sp.ID); old != nil {
					if old.Status == Skipped && sp.Status != Skipped {
						*old = sp
					}
					continue
				}
				mg.Specs = append(mg.Specs, sp)
			}
		}
	}
	for _, g := range m.Guests {
		sort.Slice(g.Specs, func(a, b int) bool { return g.Specs[a].ID < g.Specs[b].ID })
	}
	if len(missing) > 0 {
		m.MergedFrom = append(m.MergedFrom, "missing "+strings.Join(missing, ", "))
	}
	m.Host = strings.Join(hosts, ", ")
	return m, nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// MergeRuns merges the shard run directories srcs into a new run directory
// in out, named after the earliest shard's start: summary.json from
// MergeSummaries, one JUnit file per guest and kind (junit.xml,
// junit-retry.xml) merged from the shards', and every other file of the
// shards' guest directories copied, renamed with a "-shard<i>" suffix where
// two shards have a file of the same name (output logs, set-up logs). It
// returns the merged summary, without Changes, and the run directory.
func MergeRuns(out string, srcs []string, opts MergeOptions) (*Summary, string, error) {
	var shards []*Summary
	srcs = append([]string(nil), srcs...)
	for i, src := range srcs {
		if real, err := filepath.EvalSymlinks(src); err == nil { // <out>/latest
			srcs[i], src = real, real
		}
		s, err := ReadSummary(src)
		if err != nil {
			return nil, "", fmt.Errorf("merge: %w", err)
		}
		s.Run = filepath.Base(filepath.Clean(src))
		shards = append(shards, s)
	}
	m, err := MergeSummaries(shards, opts) // validate before writing anything
	if err != nil {
		return nil, "", err
	}
	// Copy in shard order, so that shard 1 keeps the plain file names.
	idx := make([]int, len(shards))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool {
		x, _ := ParseShard(shards[idx[a]].Shard)
		y, _ := ParseShard(shards[idx[b]].Shard)
		return x.Index < y.Index
	})
	sortedShards, sortedSrcs := make([]*Summary, len(idx)), make([]string, len(idx))
	for i, k := range idx {
		sortedShards[i], sortedSrcs[i] = shards[k], srcs[k]
	}
	shards, srcs = sortedShards, sortedSrcs
	id, dir, err := NewRunDir(out, m.Started)
	if err != nil {
		return nil, "", err
	}
	fail := func(err error) (*Summary, string, error) {
		os.RemoveAll(dir)
		return nil, "", fmt.Errorf("merge: %w", err)
	}
	junits := map[string][]string{} // merged rel path → shard files
	var order []string
	for i, s := range shards {
		src := srcs[i]
		sh, _ := ParseShard(s.Shard)
		renamed := map[string]string{}
		for _, g := range s.Guests {
			gdir := filepath.Join(src, filepath.FromSlash(guestDir(g.Guest)))
			err := filepath.WalkDir(gdir, func(p string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				r, _ := filepath.Rel(src, p)
				rel := filepath.ToSlash(r)
				if isJUnit(rel) {
					if _, ok := junits[rel]; !ok {
						order = append(order, rel)
					}
					junits[rel] = append(junits[rel], p)
					return nil
				}
				dst := rel
				if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(dst))); err == nil {
					ext := path.Ext(rel)
					dst = fmt.Sprintf("%s-shard%d%s", strings.TrimSuffix(rel, ext), sh.Index, ext)
					renamed[rel] = dst
				}
				return copyFile(filepath.Join(dir, filepath.FromSlash(dst)), p)
			})
			if err != nil && !os.IsNotExist(err) {
				return fail(err)
			}
			for k, f := range g.Files {
				if n, ok := renamed[f]; ok {
					g.Files[k] = n
				}
			}
			for _, l := range [][]Spec{g.Setup, g.Specs} {
				for k := range l {
					if n, ok := renamed[l[k].Log]; ok {
						l[k].Log = n
					}
				}
			}
		}
	}
	for _, rel := range order {
		f, err := os.Create(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			return fail(err)
		}
		err = MergeJUnit(f, junits[rel]...)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fail(err)
		}
	}
	if m, err = MergeSummaries(shards, opts); err != nil {
		return fail(err)
	}
	m.Run = id
	return m, dir, nil
}

func isJUnit(rel string) bool {
	b := path.Base(rel)
	return strings.HasPrefix(b, "junit") && strings.HasSuffix(b, ".xml")
}

// GuestDir is the directory of a guest's files inside a run directory: the
// guest's name, or a config file's base name without its extension.
func GuestDir(guest string) string { return guestDir(guest) }

func guestDir(guest string) string {
	b := filepath.Base(guest)
	if ext := filepath.Ext(b); ext == ".json" {
		b = strings.TrimSuffix(b, ext)
	}
	return b
}

func copyFile(dst, src string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
