package report

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// A failure's page links its bundle (repro.json, vmcore, log directory)
// with links relative to the run directory that a static file server
// answers, also when the run was recorded elsewhere (moved, or merged
// from a shard), and shows the source at the stop.
func TestFailureEvidenceLinks(t *testing.T) {
	out := t.TempDir()
	id, dir, err := NewRunDir(out, time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	spec := "system calls mkdir hits do_mkdirat"
	bundle := filepath.Join(dir, "debian-cloud", "failures", "20261201-020102-mkdir hits do_mkdirat")
	if err := os.MkdirAll(bundle, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"repro.json", "vmcore", "state.qcow2"} {
		if err := os.WriteFile(filepath.Join(bundle, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ name, recordedAt string }{
		{"recorded here", bundle},
		{"recorded in another directory", filepath.Join("/srv/shard-2/2026-12-01T020000Z", "debian-cloud", "failures", filepath.Base(bundle))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logRel := "debian-cloud/logs/mkdir.log"
			log := "spec:    " + spec + "\n\n===== run: failed =====\n" +
				"\n--- failure ---\nkernel failure (mismatch)\n" +
				"\n--- report entry kspec source ---\n      4168  int do_mkdirat(int dfd, struct filename *name, umode_t mode)\n  =>  4169  {\n" +
				"\n--- report entry kspec evidence ---\nlog directory " + tc.recordedAt + "\n" +
				"vmcore " + tc.recordedAt + "/vmcore (kdump-zlib, 1 bytes for 256 MiB of guest memory, written in 1s)\n  open with: crash x y\n" +
				"repro bundle " + tc.recordedAt + "/repro.json (state 1 bytes, saved in 1s)\n  re-run the spec: kspec repro x\n" +
				"\n--- report entry kspec evidence ---\nlog directory /elsewhere/entirely\n"
			if err := os.MkdirAll(filepath.Join(dir, "debian-cloud", "logs"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(logRel)), []byte(log), 0o644); err != nil {
				t.Fatal(err)
			}
			s := &Summary{Run: id, Guests: []*GuestResult{{Guest: "debian-cloud", Kernel: "6.1.0-57-cloud-amd64",
				Specs: []Spec{{ID: spec, Status: Failed, State: "failed", Reason: "kernel failure (mismatch)", Log: logRel}}}}}
			var page bytes.Buffer
			if err := RenderRun(&page, s, dir); err != nil {
				t.Fatal(err)
			}
			ev := regexp.MustCompile(`<div class="evidence">evidence:(.*)</div>`).FindStringSubmatch(page.String())
			if ev == nil {
				t.Fatalf("no evidence links on the page:\n%s", page.String())
			}
			hrefs := regexp.MustCompile(`<a href="([^"]+)">([^<]+)</a>`).FindAllStringSubmatch(ev[1], -1)
			want := []string{"repro.json", "vmcore", "log directory"}
			if len(hrefs) != len(want) {
				t.Fatalf("evidence links %q, want %q", hrefs, want)
			}
			srv := httptest.NewServer(http.FileServer(http.Dir(out)))
			defer srv.Close()
			base, _ := url.Parse(srv.URL + "/" + id + "/" + RunHTMLFile)
			for i, h := range hrefs {
				if h[2] != want[i] || strings.HasPrefix(h[1], "/") || strings.Contains(h[1], "://") {
					t.Errorf("link %d: %q -> %q, want a relative link to %s", i, h[2], h[1], want[i])
				}
				ref, err := url.Parse(strings.ReplaceAll(h[1], "&#43;", "+"))
				if err != nil {
					t.Fatal(err)
				}
				resp, err := http.Get(base.ResolveReference(ref).String())
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("GET %s (%s): %s", base.ResolveReference(ref), h[2], resp.Status)
				}
			}
			if !strings.Contains(page.String(), "=&gt;  4169  {") || !strings.Contains(page.String(), "int do_mkdirat(int dfd, struct filename *name, umode_t mode)") {
				t.Errorf("the page lacks the source at the stop")
			}
		})
	}
}

func TestLogSections(t *testing.T) {
	f := filepath.Join(t.TempDir(), "x.log")
	text := "spec: x\n\n===== run: failed =====\n\n--- failure ---\nboom\n\n--- report entry kspec source ---\n=> 1 {\n\n===== re-run: failed =====\n\n--- failure ---\nagain\n"
	if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	got := logSections(f)
	if got["failure"] != "boom" || got["report entry kspec source"] != "=> 1 {" || len(got) != 2 {
		t.Errorf("logSections = %q", got)
	}
}
