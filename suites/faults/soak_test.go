package faults_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
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
		if os.Getenv(SoakProfileEnv) != "" {
			runtime.MemProfileRate = 512 // fine enough to see KiBs grow
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
		kept0 := uint64(t.RetainedBytes() / 1024)
		start := time.Now()
		mid := warm + (n-warm)/2
		for i := warm; i < mid; i++ {
			cycle(i)
		}
		heapMid, keptMid := liveHeapKiB(), uint64(t.RetainedBytes()/1024)
		writeHeapProfile("half-way")
		for i := mid; i < n; i++ {
			cycle(i)
		}
		elapsed := time.Since(start)
		rss1, heap1, fds1, g1 := rssKiB(), liveHeapKiB(), openFDs(), runtime.NumGoroutine()
		kept1 := uint64(t.RetainedBytes() / 1024)
		writeHeapProfile("end")
		report := "soak: %d cycles after %d warm-up cycles in %s (%s per cycle): RSS %d → %d KiB, live heap %d → %d → %d KiB (start, half-way, end) of which console output kept on purpose %d → %d → %d KiB, fds %d → %d, goroutines %d → %d\n"
		args := []any{n - warm, warm, elapsed.Round(time.Millisecond), (elapsed / time.Duration(max(n-warm, 1))).Round(time.Millisecond),
			rss0, rss1, heap0, heapMid, heap1, kept0, keptMid, kept1, fds0, fds1, g0, g1}
		GinkgoWriter.Printf(report, args...)
		AddReportEntry("soak", strings.TrimSpace(fmt.Sprintf(report, args...)))
		Expect(fds1).To(BeNumerically("<=", fds0), "file descriptors grew")
		Expect(g1).To(BeNumerically("<=", g0+2), "goroutines grew")
		// The console's buffers and the report transcript keep the guest's
		// output up to fixed bounds (MiBs, far more than these cycles
		// print), so they grow here by design and are subtracted. The rest
		// must not grow from half-way to the end: a leak adds in every
		// cycle. RSS is reported but not judged (the Go runtime returns
		// freed pages to the OS lazily).
		rest := func(heap, kept uint64) int64 { return int64(heap) - int64(kept) }
		Expect(rest(heap1, kept1)).To(BeNumerically("<=", rest(heapMid, keptMid)+256),
			"the live heap beyond the bounded console buffers grew in the second half of the run")
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

// SoakProfileEnv names a directory where the soak writes heap profiles
// half-way and at the end, to find what grew:
// go tool pprof -base DIR/half-way.pprof -top DIR/end.pprof
const SoakProfileEnv = "KSPEC_SOAK_PROFILE"

func writeHeapProfile(name string) {
	GinkgoHelper()
	dir := os.Getenv(SoakProfileEnv)
	if dir == "" {
		return
	}
	f, err := os.Create(filepath.Join(dir, name+".pprof"))
	Expect(err).NotTo(HaveOccurred())
	defer f.Close()
	runtime.GC()
	Expect(pprof.WriteHeapProfile(f)).To(Succeed())
}
