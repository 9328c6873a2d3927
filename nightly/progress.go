package nightly

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progress prints timestamped progress lines to stderr, one writer at a
// time (guests run in parallel).
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
	width int // guest column
}

func (p *progress) printf(who, format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "[%6.1fs] %-*s %s\n", time.Since(p.start).Seconds(), p.width, who, fmt.Sprintf(format, args...))
}

// lineWriter turns written bytes into progress lines prefixed with who.
// Lines that only update a counter ("downloading: 12/930 MB") are shown at
// most every few seconds.
type lineWriter struct {
	p       *progress
	who     string
	pre     string
	rest    []byte
	lastKey string
	lastAt  time.Time
}

// counterEvery is how often a repeated counter line is shown.
const counterEvery = 5 * time.Second

// Write implements io.Writer.
func (w *lineWriter) Write(b []byte) (int, error) {
	w.rest = append(w.rest, b...)
	for {
		i := bytes.IndexByte(w.rest, '\n')
		if i < 0 {
			return len(b), nil
		}
		if line := strings.TrimSpace(string(w.rest[:i])); line != "" {
			key, _, counter := strings.Cut(line, ": ")
			if !counter || key != w.lastKey || time.Since(w.lastAt) >= counterEvery {
				w.p.printf(w.who, "%s%s", w.pre, line)
				w.lastKey, w.lastAt = key, time.Now()
			}
		}
		w.rest = w.rest[i+1:]
	}
}
