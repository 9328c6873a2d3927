// Command benchvsgdb compares kspec's GDB client with gdb itself on one
// booted guest and one gdbstub: memory reads (gdb's `dump memory` against
// rsp.Client.ReadMemory, pipelined and not) and register round trips (gdb's
// `info registers rip` after flushing its register cache, against
// rsp.Client.ReadRegister). Only one debugger can attach to QEMU's stub at
// a time, so the two take turns, ROUNDS times, and the medians are
// compared. Both read the same bytes; the program checks that they agree.
//
//	go run ./scripts/benchvsgdb [-mib 8] [-regs 2000] [-rounds 3]
//
// scripts/bench-vs-gdb.sh runs it together with the symbol comparison.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kspec/kspec/harness"
	"github.com/kspec/kspec/rsp"
	"github.com/kspec/kspec/symbols"
)

func main() {
	mib := flag.Int("mib", 8, "MiB of kernel text to read")
	regs := flag.Int("regs", 2000, "register round trips per measurement")
	rounds := flag.Int("rounds", 3, "rounds (gdb, then kspec) per measurement; medians are compared")
	gdbBin := flag.String("gdb", "gdb", "gdb binary")
	flag.Parse()
	if err := run(*mib, *regs, *rounds, *gdbBin); err != nil {
		fmt.Fprintln(os.Stderr, "benchvsgdb:", err)
		os.Exit(1)
	}
}

func run(mib, nregs, rounds int, gdbBin string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	spec, err := harness.ResolveGuest(harness.Options{})
	if err != nil {
		return err
	}
	tab, err := symbols.Open(spec.Symbols)
	if err != nil {
		return err
	}
	text, err := tab.Lookup("_text")
	tab.Close()
	if err != nil {
		return err
	}
	start, size := text.Addr, mib<<20

	m, _, err := harness.StartMachine(ctx, harness.Options{Accel: "tcg"}, false)
	if err != nil {
		return err
	}
	defer func() {
		sctx, c := context.WithTimeout(context.Background(), 15*time.Second)
		defer c()
		m.Stop(sctx)
	}()
	go io.Copy(io.Discard, m.Console())
	if err := waitFor(ctx, m.ConsoleTail, "login:", 2*time.Minute); err != nil {
		return err
	}
	fmt.Printf("guest %s %s booted (QEMU %s, TCG); stub: %s\n", spec.Name, spec.Version, m.QMP().Version(), m.GDBTarget())
	fmt.Printf("reading %d MiB of kernel text at %#x; %d register reads; %d rounds, medians\n\n", mib, start, nregs, rounds)

	dir, err := os.MkdirTemp(shmDir(), "benchvsgdb")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	var gdbMem, gdbReg, kMem, kMem1, kReg, kRegG []float64
	var gdbPkts float64
	for r := range rounds {
		g, err := gdbRound(ctx, gdbBin, m.GDBTarget(), dir, start, size, nregs)
		if err != nil {
			return fmt.Errorf("gdb round %d: %w", r+1, err)
		}
		gdbMem, gdbReg, gdbPkts = append(gdbMem, g.memSeconds), append(gdbReg, g.regSeconds), g.packetsPerReg
		k, err := kspecRound(ctx, m.DialGDB, start, size, nregs, g.dump)
		if err != nil {
			return fmt.Errorf("kspec round %d: %w", r+1, err)
		}
		kMem, kMem1, kReg, kRegG = append(kMem, k.memSeconds), append(kMem1, k.mem1Seconds), append(kReg, k.regSeconds), append(kRegG, k.regGSeconds)
		fmt.Printf("round %d: gdb dump %.0f ms, reg %.1f µs | kspec read %.0f ms (1 in flight %.0f ms), reg %.1f µs (g %.1f µs)\n",
			r+1, 1e3*g.memSeconds, 1e6*g.regSeconds, 1e3*k.memSeconds, 1e3*k.mem1Seconds, 1e6*k.regSeconds, 1e6*k.regGSeconds)
	}
	mbps := func(s float64) float64 { return float64(size) / (1 << 20) / s }
	gm, km, km1 := median(gdbMem), median(kMem), median(kMem1)
	gr, kr, krg := median(gdbReg), median(kReg), median(kRegG)
	fmt.Printf("\nmemory reads (%d MiB of kernel text, same bytes):\n", mib)
	fmt.Printf("  gdb 13 dump binary memory            %6.1f MiB/s\n", mbps(gm))
	fmt.Printf("  kspec ReadMemory, 16 in flight       %6.1f MiB/s   = %.1f× gdb\n", mbps(km), gm/km)
	fmt.Printf("  kspec ReadMemory, 1 in flight        %6.1f MiB/s   = %.1f× gdb\n", mbps(km1), gm/km1)
	fmt.Printf("register round trips (rip):\n")
	fmt.Printf("  gdb 13 flush + info registers rip    %6.1f µs   (%.1f packets each)\n", 1e6*gr, gdbPkts)
	fmt.Printf("  kspec ReadRegister (p)               %6.1f µs   = %.1f× gdb\n", 1e6*kr, gr/kr)
	fmt.Printf("  kspec ReadAllRegisters (g)           %6.1f µs   = %.1f× gdb\n", 1e6*krg, gr/krg)
	fmt.Printf("RATIO memory %.2f\nRATIO registers-p %.2f\nRATIO registers-g %.2f\n", gm/km, gr/kr, gr/krg)
	return nil
}

type gdbResult struct {
	memSeconds, regSeconds float64
	packetsPerReg          float64
	dump                   []byte
}

// gdbScript times gdb's own work inside gdb (its start-up is not counted):
// a dump of the range, then N register reads, each after flushing gdb's
// register cache so that it asks the stub again. A short run with remote
// debugging on counts the packets one such read sends.
const gdbScript = `
import gdb, time
gdb.execute("set pagination off")
gdb.execute("set code-cache off")
gdb.execute("set stack-cache off")
t = time.perf_counter()
gdb.execute("dump binary memory %[1]s %#[2]x %#[3]x")
print("KSPEC_GDB_MEM %%.9f" %% (time.perf_counter() - t))
gdb.execute("info registers rip", to_string=True)
t = time.perf_counter()
for i in range(%[4]d):
    gdb.execute("maintenance flush register-cache", to_string=True)
    gdb.execute("info registers rip", to_string=True)
print("KSPEC_GDB_REG %%.9f" %% ((time.perf_counter() - t) / %[4]d))
gdb.execute("set debug remote 1")
for i in range(10):
    gdb.execute("maintenance flush register-cache")
    gdb.execute("info registers rip")
gdb.execute("set debug remote 0")
`

func gdbRound(ctx context.Context, gdbBin, stub, dir string, start uint64, size, nregs int) (gdbResult, error) {
	dumpFile := filepath.Join(dir, "gdb.dump")
	script := filepath.Join(dir, "bench.py")
	if err := os.WriteFile(script, fmt.Appendf(nil, gdbScript, dumpFile, start, start+uint64(size), nregs), 0o644); err != nil {
		return gdbResult{}, err
	}
	cmd := exec.CommandContext(ctx, gdbBin, "-nx", "-batch",
		"-ex", stub, "-x", script, "-ex", "detach")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return gdbResult{}, fmt.Errorf("%w: %s", err, tail(out))
	}
	var r gdbResult
	if r.memSeconds, err = grabFloat(out, "KSPEC_GDB_MEM"); err != nil {
		return r, err
	}
	if r.regSeconds, err = grabFloat(out, "KSPEC_GDB_REG"); err != nil {
		return r, err
	}
	// gdb 13 logs each packet sent as `[remote] Sending packet: $...`.
	r.packetsPerReg = float64(bytes.Count(out, []byte("Sending packet:"))) / 10
	if r.dump, err = os.ReadFile(dumpFile); err != nil {
		return r, err
	}
	os.Remove(dumpFile)
	if len(r.dump) != size {
		return r, fmt.Errorf("gdb dumped %d bytes, want %d", len(r.dump), size)
	}
	return r, nil
}

type kspecResult struct {
	memSeconds, mem1Seconds, regSeconds, regGSeconds float64
}

func kspecRound(ctx context.Context, dial func(context.Context) (net.Conn, error), start uint64, size, nregs int, want []byte) (kspecResult, error) {
	var r kspecResult
	measure := func(inFlight int) (float64, error) {
		conn, err := dial(ctx)
		if err != nil {
			return 0, err
		}
		c, err := rsp.Connect(ctx, conn, rsp.Options{MaxInFlight: inFlight})
		if err != nil {
			return 0, err
		}
		defer func() {
			c.Detach(ctx)
			c.Close()
		}()
		t := time.Now()
		got, err := c.ReadMemory(ctx, start, size)
		secs := time.Since(t).Seconds()
		if err != nil {
			return 0, err
		}
		if !bytes.Equal(got, want) {
			return 0, fmt.Errorf("kspec read different bytes than gdb dumped (in flight %d)", inFlight)
		}
		if inFlight != 1 {
			if _, err := c.ReadRegister(ctx, "rip"); err != nil {
				return 0, err
			}
			t = time.Now()
			for range nregs {
				if _, err := c.ReadRegister(ctx, "rip"); err != nil {
					return 0, err
				}
			}
			r.regSeconds = time.Since(t).Seconds() / float64(nregs)
			t = time.Now()
			for range nregs {
				if _, err := c.ReadAllRegisters(ctx); err != nil {
					return 0, err
				}
			}
			r.regGSeconds = time.Since(t).Seconds() / float64(nregs)
		}
		return secs, nil
	}
	var err error
	if r.memSeconds, err = measure(16); err != nil {
		return r, err
	}
	if r.mem1Seconds, err = measure(1); err != nil {
		return r, err
	}
	return r, nil
}

func grabFloat(out []byte, key string) (float64, error) {
	m := regexp.MustCompile(key + ` ([0-9.e-]+)`).FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("gdb printed no %s: %s", key, tail(out))
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

func waitFor(ctx context.Context, tailFn func(int) string, s string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for !strings.Contains(tailFn(4096), s) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the guest did not print %q within %s: %s", s, d, tailFn(1024))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func shmDir() string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		return "/dev/shm"
	}
	return ""
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}
