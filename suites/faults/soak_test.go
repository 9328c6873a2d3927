package faults_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// SoakEnv sets the number of restore + break + run cycles of the soak spec
// (e.g. KSPEC_SOAK=200); unset, the spec is skipped.
const SoakEnv = "KSPEC_SOAK"

// rssKiB returns this process's resident set size (VmRSS) in KiB.
func rssKiB() int {
	GinkgoHelper()
	status, err := os.ReadFile("/proc/self/status")
	Expect(err).NotTo(HaveOccurred())
	for _, l := range strings.Split(string(status), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			n, err := strconv.Atoi(f[1])
			Expect(err).NotTo(HaveOccurred())
			return n
		}
	}
	Fail("no VmRSS in /proc/self/status")
	return 0
}

var _ = Describe("a long run on one guest", Label("soak"), func() {
	It("restores, breaks and runs many times without growing", func(ctx SpecContext) {
		n, _ := strconv.Atoi(os.Getenv(SoakEnv))
		if n <= 0 {
			Skip("set " + SoakEnv + "=N to run N restore + break + run cycles")
		}
		t := boot(ctx)
		Expect(t.SaveBaseline(ctx)).To(Succeed())
		cycle := func(i int) {
			GinkgoHelper()
			Expect(t.Reset(ctx)).To(Succeed(), "cycle %d: reset", i)
			bp, err := t.Break(ctx, "do_mkdirat")
			Expect(err).NotTo(HaveOccurred())
			pending, err := t.Start(ctx, "mkdir /tmp/soak")
			Expect(err).NotTo(HaveOccurred())
			waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
			hit, err := bp.Wait(waitCtx)
			cancel()
			Expect(err).NotTo(HaveOccurred(), "cycle %d", i)
			Expect(hit.Function).To(Equal("do_mkdirat"))
			Expect(t.ClearBreakpoints(ctx)).To(Succeed())
			res, err := t.Collect(ctx, pending)
			Expect(err).NotTo(HaveOccurred())
			// Every cycle starts from the baseline, where /tmp/soak does not exist.
			Expect(res.Status).To(Equal(0), "cycle %d: %s", i, res.Output)
		}
		// A few cycles first, so that caches and pools reach their size.
		warm := min(10, n)
		for i := range warm {
			cycle(i)
		}
		rss0, heap0, fds0, g0 := rssKiB(), liveHeapKiB(), openFDs(), runtime.NumGoroutine()
		start := time.Now()
		mid := warm + (n-warm)/2
		for i := warm; i < mid; i++ {
			cycle(i)
		}
		heapMid := liveHeapKiB()
		for i := mid; i < n; i++ {
			cycle(i)
		}
		elapsed := time.Since(start)
		rss1, heap1, fds1, g1 := rssKiB(), liveHeapKiB(), openFDs(), runtime.NumGoroutine()
		report := "soak: %d cycles after %d warm-up cycles in %s (%s per cycle): RSS %d → %d KiB, live heap %d → %d → %d KiB (start, half-way, end), fds %d → %d, goroutines %d → %d\n"
		args := []any{n - warm, warm, elapsed.Round(time.Millisecond), (elapsed / time.Duration(max(n-warm, 1))).Round(time.Millisecond),
			rss0, rss1, heap0, heapMid, heap1, fds0, fds1, g0, g1}
		GinkgoWriter.Printf(report, args...)
		AddReportEntry("soak", strings.TrimSpace(fmt.Sprintf(report, args...)))
		Expect(fds1).To(BeNumerically("<=", fds0), "file descriptors grew")
		Expect(g1).To(BeNumerically("<=", g0+2), "goroutines grew")
		// A leak grows with every cycle, so the second half would add as
		// much as the first; RSS is reported but not judged (the Go
		// runtime returns freed pages to the OS lazily).
		Expect(heap1).To(BeNumerically("<=", heapMid+max(heapMid/20, 256)), "the live heap grew in the second half of the run")
	}, SpecTimeout(2*time.Hour))
})

// liveHeapKiB is the Go heap in use after a full collection: what the
// process still references, unlike RSS.
func liveHeapKiB() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc / 1024
}
