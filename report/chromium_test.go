package report

import (
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// screenshotDir is where TestHTMLInChromium keeps its screenshots: test
// output, ignored by git.
const screenshotDir = "testdata/screenshots"

// findChromium returns the Chromium binary, or "" if there is none.
func findChromium() string {
	if p := os.Getenv("KSPEC_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestHTMLInChromium renders the two-night results directory of TestTwoNights
// in headless Chromium and keeps screenshots of the index and the second
// run's page in testdata/screenshots (index.png, run.png). It skips without
// Chromium (Debian: apt-get install chromium) unless KSPEC_REQUIRE_CHROMIUM=1.
func TestHTMLInChromium(t *testing.T) {
	bin := findChromium()
	if bin == "" {
		if os.Getenv("KSPEC_REQUIRE_CHROMIUM") == "1" {
			t.Fatal("KSPEC_REQUIRE_CHROMIUM=1 but no chromium on $PATH (Debian: apt-get install chromium; or set KSPEC_CHROMIUM)")
		}
		t.Skip("chromium not installed: the HTML report is not rendered in a browser (Debian: apt-get install chromium; KSPEC_REQUIRE_CHROMIUM=1 makes this a failure)")
	}
	out := t.TempDir()
	_, dir := twoNights(t, out)
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, page := range []struct{ file, png string }{
		{filepath.Join(out, IndexFile), "index.png"},
		{filepath.Join(dir, RunHTMLFile), "run.png"},
	} {
		shot, _ := filepath.Abs(filepath.Join(screenshotDir, page.png))
		os.Remove(shot)
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
			"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--hide-scrollbars", "--user-data-dir="+t.TempDir(), "--screenshot="+shot, "--window-size=1400,900",
			"file://"+page.file)
		outb, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, outb)
		}
		f, err := os.Open(shot)
		if err != nil {
			t.Fatalf("no screenshot of %s: %v\n%s", page.file, err, outb)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", shot, err)
		}
		if b := img.Bounds(); b.Dx() != 1400 || b.Dy() != 900 {
			t.Errorf("%s is %v", shot, b)
		}
		// The page rendered: the verdict banner's red is on screen.
		red := 0
		for y := 0; y < 300; y++ {
			for x := 0; x < 1400; x++ {
				r, g, b, _ := img.At(x, y).RGBA()
				if r>>8 > 0xa0 && g>>8 < 0x50 && b>>8 < 0x50 {
					red++
				}
			}
		}
		if red < 200 {
			t.Errorf("%s: no red regression banner in the top of the page (%d red pixels)", shot, red)
		}
		t.Logf("screenshot of %s: %s", filepath.Base(page.file), shot)
	}
}
