package report

import (
	"bufio"
	"fmt"
	"html/template"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// cell is one status square of a matrix.
type cell struct {
	Class, Text, Title, Href string
	Regression               bool
}

// column is a (run, guest) column of a matrix.
type column struct {
	Run, RunHref, Guest, Kernel string
	First                       bool // first column of its run (draws a divider)
}

// matrix is a spec × column table.
type matrix struct {
	Columns []column
	Runs    []runHead // one per run, spanning its guests (index only)
	Rows    []row
}

type runHead struct {
	Run, Href, Date, Verdict, Class string
	Span                            int
}

type row struct {
	Spec   string
	Labels string
	Cells  []cell
}

// statusCell renders a spec's status as a cell; s may be nil (not in run).
func statusCell(s *Spec, regression bool, logHref string) cell {
	if s == nil {
		return cell{Class: "none", Text: "", Title: "not in this run"}
	}
	c := cell{Class: string(s.Status), Title: string(s.Status), Regression: regression}
	switch s.Status {
	case Passed:
		c.Text = "✓"
	case Failed:
		c.Text = "✗"
	case Error:
		c.Text = "!"
	case Skipped:
		c.Text = "–"
	}
	if s.Flaky {
		c.Class, c.Text, c.Title = "flaky", "~", "flaky: failed, then passed when re-run"
	}
	if regression {
		c.Text += "▲"
		c.Title = "REGRESSION: passed before, " + c.Title + " now"
	}
	if s.Reason != "" {
		c.Title += " — " + s.Reason
	}
	if s.Log != "" {
		c.Href = logHref
	}
	return c
}

func isRegression(s *Summary, guest, spec string) bool {
	if s.Changes == nil {
		return false
	}
	for _, c := range s.Changes.Regressions {
		if c.Guest == guest && c.Spec == spec {
			return true
		}
	}
	return false
}

func verdictClass(s *Summary) string {
	switch {
	case s.Changes.Regressed():
		return "bad"
	case s.HarnessErrors():
		return "warn"
	}
	return "ok"
}

type changeItem struct {
	Guest, Spec, FromTo, Reason, Log string
}

type changeSection struct {
	Title, Class string
	Items        []changeItem
}

type failure struct {
	Guest, Spec, Status, Reason, Log, Excerpt string
	Truncated, Regression                     bool
	// Source is the kernel source around the stop (the "kspec source"
	// report entry), when the guest had a prepared source tree.
	Source string
	// Evidence links the failure's bundle (repro.json, vmcore, log
	// directory) relative to the run directory.
	Evidence []link
	rank     int
}

// link is a relative link of a page.
type link struct{ Text, Href string }

type guestRow struct {
	*GuestResult
	C        Counts
	Pkgs     []string
	FileRefs []string
}

type runPage struct {
	S          *Summary
	Verdict    string
	Class      string
	Date       string
	Duration   string
	PrevHref   string
	Guests     []guestRow
	Sections   []changeSection
	Matrix     matrix
	Failures   []failure
	Generated  string
	NothingNew bool
}

// RenderRun writes the run's static HTML page (report.html in its run
// directory): the verdict, the guests with kernel and package versions, what
// changed since the previous run, the spec × guest matrix and every failure
// with the start of its console log, read from runDir. Links are relative
// to the run directory; the page needs no other file.
func RenderRun(w io.Writer, s *Summary, runDir string) error {
	p := runPage{S: s, Verdict: Verdict(s), Class: verdictClass(s),
		Date: s.Started.UTC().Format("Mon 2 Jan 2006 15:04 MST"), Generated: time.Now().UTC().Format(time.RFC3339)}
	if d := s.Finished.Sub(s.Started); d > 0 {
		p.Duration = d.Round(time.Second).String()
	}
	if s.Changes != nil && s.Changes.Previous != "" {
		p.PrevHref = "../" + s.Changes.Previous + "/" + RunHTMLFile
	}
	for _, g := range s.Guests {
		gr := guestRow{GuestResult: g, C: g.Counts()}
		for _, pk := range g.Packages {
			gr.Pkgs = append(gr.Pkgs, pk.Name+" "+pk.Version)
		}
		gr.FileRefs = g.Files
		p.Guests = append(p.Guests, gr)
	}
	if ch := s.Changes; ch != nil {
		add := func(title, class string, l []Change) {
			if len(l) == 0 {
				return
			}
			sec := changeSection{Title: fmt.Sprintf("%s (%d)", title, len(l)), Class: class}
			for _, c := range l {
				it := changeItem{Guest: c.Guest, Spec: valueOr(c.Spec, "(whole suite)"), Reason: c.Reason, Log: c.Log}
				switch {
				case c.From != "" && c.To != "":
					it.FromTo = fmt.Sprintf("%s in %s → %s", c.From, c.Since, c.To)
				case c.To != "":
					it.FromTo = string(c.To)
				case c.From != "":
					it.FromTo = "was " + string(c.From)
				}
				sec.Items = append(sec.Items, it)
			}
			p.Sections = append(p.Sections, sec)
		}
		add("Regressions — passed before, fail now", "failed", ch.Regressions)
		add("Harness errors — the harness broke; nothing is known about the kernel", "error", ch.Errors)
		add("Flaky — failed, then passed when re-run", "flaky", ch.Flaky)
		add("Fixed — failed before, pass now", "passed", ch.Fixes)
		if len(ch.Kernels) > 0 {
			sec := changeSection{Title: fmt.Sprintf("Kernel changes (%d)", len(ch.Kernels)), Class: "kernel"}
			for _, k := range ch.Kernels {
				sec.Items = append(sec.Items, changeItem{Guest: k.Guest, FromTo: valueOr(k.From, "(new guest)") + " → " + valueOr(k.To, "(not run)")})
			}
			p.Sections = append(p.Sections, sec)
		}
		add("New specs", "new", ch.New)
		add("Removed specs", "skipped", ch.Removed)
		add("Known failures — failed before too, or nothing to compare with", "failed-old", ch.Failing)
		p.NothingNew = ch.Previous != "" && len(p.Sections) == 0
	}
	p.Matrix = runMatrix(s)
	for _, g := range s.Guests {
		for _, l := range [][]Spec{g.Setup, g.Specs} {
			for _, sp := range l {
				if sp.Status != Failed && sp.Status != Error && !sp.Flaky {
					continue
				}
				st := string(sp.Status)
				if sp.Flaky {
					st = "flaky"
				}
				f := failure{Guest: g.Guest, Spec: sp.ID, Status: st, Reason: sp.Reason, Log: sp.Log,
					Regression: isRegression(s, g.Guest, sp.ID)}
				switch {
				case f.Regression:
					f.rank = 0
				case st == string(Failed):
					f.rank = 1
				case st == string(Error):
					f.rank = 2
				default:
					f.rank = 3
				}
				if sp.Log != "" && runDir != "" {
					logFile := filepath.Join(runDir, filepath.FromSlash(sp.Log))
					f.Excerpt, f.Truncated = excerpt(logFile, 60)
					sections := logSections(logFile)
					f.Source = sections["report entry kspec source"]
					f.Evidence = evidenceLinks(sections["report entry kspec evidence"], runDir, g.Guest)
				}
				p.Failures = append(p.Failures, f)
			}
		}
	}
	// Regressions first, then the kernel's other failures, harness errors, flaky.
	sort.SliceStable(p.Failures, func(a, b int) bool { return p.Failures[a].rank < p.Failures[b].rank })
	return runTmpl.Execute(w, p)
}

func runMatrix(s *Summary) matrix {
	var m matrix
	ids := map[string][]string{}
	for _, g := range s.Guests {
		m.Columns = append(m.Columns, column{Guest: g.Guest, Kernel: g.Kernel})
		for _, sp := range g.Specs {
			ids[sp.ID] = sp.Labels
		}
	}
	for _, id := range sortedKeys(ids) {
		r := row{Spec: id, Labels: strings.Join(ids[id], ", ")}
		for _, g := range s.Guests {
			sp := g.Spec(id)
			href := ""
			if sp != nil {
				href = sp.Log
			}
			r.Cells = append(r.Cells, statusCell(sp, isRegression(s, g.Guest, id), href))
		}
		m.Rows = append(m.Rows, r)
	}
	return m
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// logSections reads the "--- title ---" sections of a spec's log (see
// specLog), the first of each title (the first run's).
func logSections(file string) map[string]string {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	out := map[string]string{}
	var title string
	var body []string
	flush := func() {
		if title != "" {
			if _, ok := out[title]; !ok {
				out[title] = strings.Join(body, "\n")
			}
		}
		title, body = "", nil
	}
	for _, l := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(l, "--- ") && strings.HasSuffix(l, " ---") && len(l) > 8:
			flush()
			title = l[4 : len(l)-4]
		case strings.HasPrefix(l, "===== "):
			flush()
		case title != "":
			body = append(body, l)
		}
	}
	flush()
	for k, v := range out {
		out[k] = strings.TrimRight(v, "\n")
	}
	return out
}

// evidenceLinks turns the paths a "kspec evidence" report entry names
// (harness.FailureEvidence: "log directory DIR", "vmcore PATH (...)",
// "repro bundle PATH (...)") into links relative to the run directory, so
// that they work wherever the results directory is served from. A path is
// found under the run directory as written or, when the run was moved or
// merged from shards, by its <guest>/failures... tail; a file that is not
// there gets no link.
func evidenceLinks(entry, runDir, guest string) []link {
	var out []link
	for _, l := range strings.Split(entry, "\n") {
		var text, p string
		for _, k := range []struct{ prefix, text string }{
			{"repro bundle ", "repro.json"}, {"vmcore ", "vmcore"}, {"log directory ", "log directory"},
		} {
			if rest, ok := strings.CutPrefix(l, k.prefix); ok {
				text, p = k.text, rest
				if i := strings.Index(p, " ("); i >= 0 {
					p = p[:i]
				}
				break
			}
		}
		if p == "" {
			continue
		}
		if rel, ok := underRun(p, runDir, guest); ok {
			if text == "log directory" {
				rel += "/"
			}
			out = append(out, link{Text: text, Href: rel})
		}
	}
	rank := map[string]int{"repro.json": 0, "vmcore": 1, "log directory": 2}
	sort.SliceStable(out, func(a, b int) bool { return rank[out[a].Text] < rank[out[b].Text] })
	return out
}

// underRun returns p relative to runDir (slash-separated, each element
// escaped for a URL) if it is there.
func underRun(p, runDir, guest string) (string, bool) {
	var rel string
	if r, err := filepath.Rel(runDir, p); err == nil && !strings.HasPrefix(r, "..") && !filepath.IsAbs(r) {
		rel = filepath.ToSlash(r)
	} else if i := strings.Index(filepath.ToSlash(p), "/"+guest+"/failures"); guest != "" && i >= 0 {
		rel = filepath.ToSlash(p)[i+1:]
	} else {
		return "", false
	}
	if _, err := os.Stat(filepath.Join(runDir, filepath.FromSlash(rel))); err != nil {
		return "", false
	}
	parts := strings.Split(rel, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/"), true
}

// excerpt returns the first n lines of a file.
func excerpt(file string, n int) (string, bool) {
	f, err := os.Open(file)
	if err != nil {
		return "", false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	var lines []string
	for sc.Scan() {
		if len(lines) == n {
			return strings.Join(lines, "\n"), true
		}
		lines = append(lines, sc.Text())
	}
	return strings.Join(lines, "\n"), false
}

type indexPage struct {
	Runs      []*Summary
	Heads     []runHead
	Matrix    matrix
	Latest    *Summary
	Verdict   string
	Class     string
	Generated string
	Omitted   int
}

// RenderIndex writes the index over runs (index.html in the results
// directory): one column per run and guest, newest run first, with the
// guest's kernel release in the header, one row per spec, statuses colour
// coded, regressions marked, and links to each run's page and console logs.
// runs are oldest first, as Runs returns them; only the newest max are shown
// (max ≤ 0: all).
func RenderIndex(w io.Writer, runs []*Summary, max int) error {
	p := indexPage{Generated: time.Now().UTC().Format(time.RFC3339)}
	shown := append([]*Summary(nil), runs...)
	if max > 0 && len(shown) > max {
		p.Omitted = len(shown) - max
		shown = shown[len(shown)-max:]
	}
	for i, j := 0, len(shown)-1; i < j; i, j = i+1, j-1 {
		shown[i], shown[j] = shown[j], shown[i]
	}
	p.Runs = shown
	if len(shown) > 0 {
		p.Latest = shown[0]
		p.Verdict, p.Class = Verdict(shown[0]), verdictClass(shown[0])
	}
	ids := map[string][]string{}
	for _, s := range shown {
		h := runHead{Run: s.Run, Href: s.Run + "/" + RunHTMLFile, Date: s.Started.UTC().Format("Jan 2 15:04"),
			Verdict: Verdict(s), Class: verdictClass(s), Span: len(s.Guests)}
		if h.Span == 0 {
			h.Span = 1
		}
		p.Matrix.Runs = append(p.Matrix.Runs, h)
		for i, g := range s.Guests {
			p.Matrix.Columns = append(p.Matrix.Columns, column{Run: s.Run, RunHref: h.Href, Guest: g.Guest, Kernel: g.Kernel, First: i == 0})
			for _, sp := range g.Specs {
				ids[sp.ID] = sp.Labels
			}
		}
		if len(s.Guests) == 0 {
			p.Matrix.Columns = append(p.Matrix.Columns, column{Run: s.Run, RunHref: h.Href, First: true})
		}
	}
	// Rows that need a look first: regressed in the newest run, regressed in
	// an earlier one shown, not passing in the newest run; then the rest.
	rank := func(id string) int {
		best := 3
		for i, s := range shown {
			for _, g := range s.Guests {
				switch sp := g.Spec(id); {
				case isRegression(s, g.Guest, id) && i == 0:
					return 0
				case isRegression(s, g.Guest, id):
					best = min(best, 1)
				case i == 0 && sp != nil && (sp.Status == Failed || sp.Status == Error):
					best = min(best, 2)
				}
			}
		}
		return best
	}
	order := sortedKeys(ids)
	ranks := map[string]int{}
	for _, id := range order {
		ranks[id] = rank(id)
	}
	sort.SliceStable(order, func(a, b int) bool { return ranks[order[a]] < ranks[order[b]] })
	for _, id := range order {
		r := row{Spec: id, Labels: strings.Join(ids[id], ", ")}
		for _, col := range p.Matrix.Columns {
			var s *Summary
			for _, x := range shown {
				if x.Run == col.Run {
					s = x
				}
			}
			var sp *Spec
			if g := s.Guest(col.Guest); g != nil {
				sp = g.Spec(id)
			}
			href := ""
			if sp != nil && sp.Log != "" {
				href = path.Join(s.Run, sp.Log)
			}
			c := statusCell(sp, isRegression(s, col.Guest, id), href)
			r.Cells = append(r.Cells, c)
		}
		p.Matrix.Rows = append(p.Matrix.Rows, r)
	}
	return indexTmpl.Execute(w, p)
}

// WriteHTML renders the run's page into runDir and the index over every run
// into out (the results directory runDir is in).
func WriteHTML(out, runDir string, s *Summary) error {
	var b strings.Builder
	if err := RenderRun(&b, s, runDir); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(runDir, RunHTMLFile), []byte(b.String())); err != nil {
		return err
	}
	return WriteIndex(out, s.Shard)
}

// WriteIndex renders out/index.html over the runs in out with the given
// shard ("" for whole and merged runs: the nightly view).
func WriteIndex(out, shard string) error {
	all, err := Runs(out)
	if err != nil {
		return err
	}
	var runs []*Summary
	for _, r := range all {
		if r.Shard == shard {
			runs = append(runs, r)
		}
	}
	var b strings.Builder
	if err := RenderIndex(&b, runs, 60); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(out, IndexFile), []byte(b.String()))
}

var funcs = template.FuncMap{
	"secs": func(f float64) string {
		if f == 0 {
			return ""
		}
		return fmt.Sprintf("%.1f s", f)
	},
	"short": shortKernel,
}

// shortKernel shortens a kernel release for a narrow column header:
// "6.1.0-56-cloud-amd64" → "6.1.0-56-cloud".
func shortKernel(k string) string {
	return strings.TrimSuffix(k, "-amd64")
}

const css = `
:root{--pass:#1e7b34;--pass-bg:#dcf3e1;--fail:#b3261e;--fail-bg:#fbdcd9;--err:#6b2fa3;--err-bg:#ecdff8;
--skip:#666;--skip-bg:#eeeeee;--flaky:#8a5a00;--flaky-bg:#fff0c2;--line:#d7dbe0;--ink:#1d2430;--muted:#5d6778}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--ink);margin:0;background:#f6f7f9}
header{padding:18px 28px 14px;background:#fff;border-bottom:1px solid var(--line)}
h1{font-size:20px;margin:0 0 4px}
h2{font-size:16px;margin:26px 0 8px}
main{padding:4px 28px 40px}
a{color:#1a56b8}
.meta{color:var(--muted)}
.verdict{display:inline-block;padding:5px 14px;border-radius:16px;font-weight:700;font-size:15px;margin:8px 0 2px}
.verdict.ok{background:var(--pass-bg);color:var(--pass)}
.verdict.bad{background:var(--fail);color:#fff}
.verdict.warn{background:var(--err-bg);color:var(--err)}
table{border-collapse:collapse;background:#fff}
th,td{border:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f5;font-weight:600}
.num{text-align:right;font-variant-numeric:tabular-nums}
.pkgs{color:var(--muted);font-size:12px}
.counts span{margin-right:8px;font-weight:600}
.c-passed{color:var(--pass)}.c-failed{color:var(--fail)}.c-error{color:var(--err)}.c-skipped{color:var(--skip)}.c-flaky{color:var(--flaky)}
.sec{background:#fff;border:1px solid var(--line);border-left-width:6px;border-radius:4px;margin:10px 0;padding:8px 14px}
.sec h3{margin:0 0 6px;font-size:14px}
.sec ul{margin:0;padding-left:18px}
.sec li{margin:3px 0}
.sec.failed{border-left-color:var(--fail);background:#fff6f5}
.sec.failed h3{color:var(--fail)}
.sec.error{border-left-color:var(--err)}.sec.error h3{color:var(--err)}
.sec.flaky{border-left-color:#e0a800}.sec.flaky h3{color:var(--flaky)}
.sec.passed{border-left-color:var(--pass)}.sec.passed h3{color:var(--pass)}
.sec.kernel{border-left-color:#1a56b8}
.sec.new,.sec.skipped,.sec.failed-old{border-left-color:#9aa3ae}
.guest{font-weight:600}
.fromto{color:var(--muted);font-size:12px;margin-left:6px}
.reason{display:block;font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12px;color:#39404d;white-space:pre-wrap;word-break:break-word}
.evidence{font-size:13px;margin:.3em 0}.evidence a{margin-left:.4em}.source-title{font-size:12px;color:#39404d;margin-top:.3em}pre.source{background:#f4f6fa}
.matrix td.spec{max-width:520px;min-width:260px}
.matrix td.spec small{color:var(--muted)}
.matrix th.k{font-weight:500;font-size:12px;color:var(--muted);text-align:center}
.matrix th.g{text-align:center;font-size:12px;white-space:nowrap}
.matrix th.run{text-align:center;font-size:12px;white-space:nowrap}
.matrix th.run.bad{background:var(--fail);color:#fff}.matrix th.run.bad a{color:#fff}
.matrix th.run.warn{background:var(--err-bg)}
.matrix th.run.ok{background:var(--pass-bg)}
.matrix th.vert{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap;padding:6px 2px;height:100px;vertical-align:bottom;text-align:left}
td.st{text-align:center;font-weight:700;min-width:46px;font-size:15px;padding:3px 4px}
td.st a{color:inherit;text-decoration:none;display:block}
td.st.passed{background:var(--pass-bg);color:var(--pass)}
td.st.failed{background:var(--fail-bg);color:var(--fail)}
td.st.error{background:var(--err-bg);color:var(--err)}
td.st.skipped{background:var(--skip-bg);color:var(--skip)}
td.st.flaky{background:var(--flaky-bg);color:var(--flaky)}
td.st.none{background:repeating-linear-gradient(45deg,#fff,#fff 4px,#f0f0f0 4px,#f0f0f0 8px)}
td.st.reg{background:var(--fail);color:#fff;outline:3px solid #7a120c;outline-offset:-3px}
td.divider,th.divider{border-left:3px solid #9aa3ae}
.legend span{display:inline-block;margin-right:14px}
.legend b{display:inline-block;min-width:26px;text-align:center;border-radius:3px;margin-right:4px;padding:0 4px}
details{background:#fff;border:1px solid var(--line);border-radius:4px;margin:8px 0;padding:6px 12px}
details.failed{border-left:6px solid var(--fail)}details.error{border-left:6px solid var(--err)}details.flaky{border-left:6px solid #e0a800}
summary{cursor:pointer}
pre{background:#0f1419;color:#e6e6e6;padding:10px 12px;overflow:auto;font-size:12px;line-height:1.35;border-radius:4px;max-height:520px}
footer{color:var(--muted);font-size:12px;padding:0 28px 24px}
`

const legend = `<p class="legend">
<span><b style="background:var(--pass-bg);color:var(--pass)">✓</b>passed</span>
<span><b style="background:var(--fail-bg);color:var(--fail)">✗</b>failed — the kernel did not behave as specified</span>
<span><b style="background:var(--fail);color:#fff">✗▲</b>regression — passed before</span>
<span><b style="background:var(--err-bg);color:var(--err)">!</b>error — the harness broke</span>
<span><b style="background:var(--flaky-bg);color:var(--flaky)">~</b>flaky — passed when re-run</span>
<span><b style="background:var(--skip-bg);color:var(--skip)">–</b>skipped</span>
</p>`

var runTmpl = template.Must(template.New("run").Funcs(funcs).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>kspec nightly {{.S.Run}} — {{.Verdict}}</title>
<style>` + css + `</style></head><body>
<header>
<h1>kspec nightly {{.S.Run}}{{if .S.Shard}} · shard {{.S.Shard}}{{end}}</h1>
<div class="verdict {{.Class}}">{{.Verdict}}</div>
<div class="meta">{{.Date}}{{if .Duration}} · took {{.Duration}}{{end}}{{if .S.Host}} · {{.S.Host}}{{end}}{{if .S.QEMU}} · QEMU {{.S.QEMU}}{{end}}{{if .S.LabelFilter}} · labels {{.S.LabelFilter}}{{end}}
{{if .PrevHref}} · compared with <a href="{{.PrevHref}}">{{.S.Changes.Previous}}</a>{{else}} · first run here, nothing to compare with{{end}}
 · <a href="../index.html">all runs</a></div>
{{if .S.MergedFrom}}<div class="meta">merged from shards: {{range $i, $m := .S.MergedFrom}}{{if $i}}; {{end}}{{$m}}{{end}}</div>{{end}}
</header>
<main>
<h2>Guests</h2>
<table><tr><th>guest</th><th>kernel</th><th>results</th><th class="num">boot</th><th class="num">run</th><th>files</th></tr>
{{range .Guests}}<tr><td class="guest">{{.Guest}}</td>
<td>{{.Kernel}}{{if .Prepared}} <span class="pkgs">({{.Prepared}})</span>{{end}}{{if .Pkgs}}<div class="pkgs">{{range .Pkgs}}{{.}}<br>{{end}}</div>{{end}}{{if .Fallback}}<div class="pkgs">⚠ {{.Fallback}}</div>{{end}}</td>
<td class="counts"><span class="c-passed">{{.C.Passed}} passed</span>{{if .C.Flaky}}<span class="c-flaky">{{.C.Flaky}} flaky</span>{{end}}{{if .C.Failed}}<span class="c-failed">{{.C.Failed}} failed</span>{{end}}{{if .C.Error}}<span class="c-error">{{.C.Error}} errors</span>{{end}}{{if .C.Skipped}}<span class="c-skipped">{{.C.Skipped}} skipped</span>{{end}}
{{if .Error}}<div class="c-error">harness error: {{.Error}}</div>{{end}}</td>
<td class="num">{{secs .BootSeconds}}</td><td class="num">{{secs .Seconds}}</td>
<td>{{range .FileRefs}}<a href="{{.}}">{{.}}</a><br>{{end}}</td></tr>
{{end}}</table>

<h2>What changed</h2>
{{if .NothingNew}}<p>Nothing changed since the previous run.</p>{{end}}
{{if not .S.Changes}}<p class="meta">Not compared.</p>{{end}}
{{range .Sections}}<div class="sec {{.Class}}"><h3>{{.Title}}</h3><ul>
{{range .Items}}<li><span class="guest">{{.Guest}}</span>{{if .Spec}} · {{.Spec}}{{end}}{{if .FromTo}}<span class="fromto">{{.FromTo}}</span>{{end}}{{if .Log}} · <a href="{{.Log}}">console log</a>{{end}}{{if .Reason}}<span class="reason">{{.Reason}}</span>{{end}}</li>
{{end}}</ul></div>
{{end}}

<h2>Results</h2>
` + legend + `
<table class="matrix"><tr><th>spec</th>{{range .Matrix.Columns}}<th class="g">{{.Guest}}<br><span class="pkgs">{{.Kernel}}</span></th>{{end}}</tr>
{{range .Matrix.Rows}}<tr><td class="spec">{{.Spec}}{{if .Labels}} <small>[{{.Labels}}]</small>{{end}}</td>{{range .Cells}}<td class="st {{.Class}}{{if .Regression}} reg{{end}}" title="{{.Title}}">{{if .Href}}<a href="{{.Href}}">{{.Text}}</a>{{else}}{{.Text}}{{end}}</td>{{end}}</tr>
{{end}}</table>

{{if .Failures}}<h2>Failures and console logs</h2>
{{range .Failures}}<details class="{{.Status}}" open><summary><span class="guest">{{.Guest}}</span> · {{.Spec}} — <b class="c-{{.Status}}">{{if .Regression}}REGRESSION ({{.Status}}){{else}}{{.Status}}{{end}}</b>{{if .Log}} · <a href="{{.Log}}">full log</a>{{end}}</summary>
{{if .Reason}}<span class="reason">{{.Reason}}</span>{{end}}
{{if .Evidence}}<div class="evidence">evidence:{{range .Evidence}} <a href="{{.Href}}">{{.Text}}</a>{{end}}</div>{{end}}
{{if .Source}}<div class="source-title">source at the stop:</div><pre class="source">{{.Source}}</pre>{{end}}
{{if .Excerpt}}<pre>{{.Excerpt}}{{if .Truncated}}
… (see the full log){{end}}</pre>{{end}}
</details>
{{end}}{{end}}
</main>
<footer>kspec nightly · summary.json is the machine-readable record of this page · generated {{.Generated}}</footer>
</body></html>
`))

var indexTmpl = template.Must(template.New("index").Funcs(funcs).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>kspec nightly runs</title>
<style>` + css + `</style></head><body>
<header>
<h1>kspec nightly runs</h1>
{{if .Latest}}<div class="verdict {{.Class}}">latest: {{.Verdict}}</div>
<div class="meta">latest run <a href="{{.Latest.Run}}/report.html">{{.Latest.Run}}</a> · {{len .Runs}} runs shown{{if .Omitted}} ({{.Omitted}} older not shown){{end}} · newest on the left · specs that regressed or fail now come first</div>
{{else}}<p>No runs yet.</p>{{end}}
</header>
<main>
` + legend + `
<table class="matrix">
<tr><th rowspan="3">spec</th>{{range .Matrix.Runs}}<th class="run {{.Class}} divider" colspan="{{.Span}}"><a href="{{.Href}}">{{.Date}}</a><br><span style="font-weight:500">{{.Verdict}}</span></th>{{end}}</tr>
<tr>{{range .Matrix.Columns}}<th class="g{{if .First}} divider{{end}}">{{.Guest}}</th>{{end}}</tr>
<tr>{{range .Matrix.Columns}}<th class="k vert{{if .First}} divider{{end}}" title="{{.Kernel}}">{{short .Kernel}}</th>{{end}}</tr>
{{range .Matrix.Rows}}<tr><td class="spec">{{.Spec}}{{if .Labels}} <small>[{{.Labels}}]</small>{{end}}</td>{{range $i, $c := .Cells}}<td class="st {{$c.Class}}{{if $c.Regression}} reg{{end}}{{if (index $.Matrix.Columns $i).First}} divider{{end}}" title="{{$c.Title}}">{{if $c.Href}}<a href="{{$c.Href}}">{{$c.Text}}</a>{{else}}{{$c.Text}}{{end}}</td>{{end}}</tr>
{{end}}</table>
</main>
<footer>kspec nightly · generated {{.Generated}}</footer>
</body></html>
`))
