// Command symtool exercises package symbols from the command line; the
// comparison and benchmark scripts under scripts/ drive it.
//
// Usage:
//
//	symtool [-index DIR] info-line VMLINUX NAME|*ADDR...   # like gdb -batch -ex 'info line X'
//	symtool [-index DIR] resolve VMLINUX EXPR...
//	symtool [-index DIR] expr VMLINUX 'init_uts_ns.name.nodename'...
//	symtool [-index DIR] inlined VMLINUX NAME+OFF|0xADDR...
//	symtool random-funcs VMLINUX N SEED                    # N random function names
//	symtool random-addrs VMLINUX N SEED                    # N random addresses inside functions
package main

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/kspec/kspec/symbols"
)

func main() {
	indexDir := flag.String("index", "", "use (and create) the on-disk index under `DIR`")
	flag.Parse()
	args := flag.Args()
	if len(args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: symtool [-index DIR] info-line|resolve|expr|inlined|random-funcs VMLINUX ARGS...")
		os.Exit(2)
	}
	var t *symbols.Table
	var err error
	if *indexDir != "" {
		t, err = symbols.OpenIndexed(args[1], *indexDir)
	} else {
		t, err = symbols.Open(args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer t.Close()
	switch args[0] {
	case "info-line":
		for _, a := range args[2:] {
			fmt.Println(infoLine(t, a))
		}
	case "resolve":
		for _, a := range args[2:] {
			r, err := t.Resolve(a)
			if err != nil {
				fmt.Println(err)
				continue
			}
			fmt.Println(r)
		}
	case "expr":
		for _, a := range args[2:] {
			v, err := t.Expr(a)
			if err != nil {
				fmt.Println(err)
				continue
			}
			fmt.Println(v)
		}
	case "inlined":
		for _, a := range args[2:] {
			r, err := t.Resolve(a)
			if err != nil {
				fmt.Println(err)
				continue
			}
			frames, err := t.InlinedAt(r.Addr)
			if err != nil {
				fmt.Println(err)
				continue
			}
			for _, f := range frames {
				fmt.Printf("%s at %s:%d inlined=%v\n", f.Function, f.File, f.Line, f.Inlined)
			}
		}
	case "random-funcs":
		n, _ := strconv.Atoi(args[2])
		seed, _ := strconv.ParseUint(args[3], 10, 64)
		randomFuncs(t, n, seed)
	case "random-addrs":
		n, _ := strconv.Atoi(args[2])
		seed, _ := strconv.ParseUint(args[3], 10, 64)
		randomAddrs(t, n, seed)
	default:
		fmt.Fprintln(os.Stderr, "unknown command", args[0])
		os.Exit(2)
	}
}

func infoLine(t *symbols.Table, arg string) string {
	var loc symbols.Location
	var err error
	if a, ok := strings.CutPrefix(arg, "*"); ok {
		addr, perr := strconv.ParseUint(strings.TrimPrefix(a, "0x"), 16, 64)
		if perr != nil {
			return perr.Error()
		}
		loc, err = t.LineAt(addr)
	} else {
		loc, err = t.FunctionLine(arg)
	}
	if errors.Is(err, symbols.ErrNoLine) {
		r, rerr := t.Resolve(arg)
		if rerr == nil {
			r.HasLine = false // gdb names the address only
			return fmt.Sprintf("No line number information available for address %s", r)
		}
	}
	if err != nil {
		return "error: " + err.Error()
	}
	return t.GDBInfoLine(loc)
}

// randomFuncs prints n distinct function names that occur once in the
// symbol table, chosen with a seeded generator.
func randomFuncs(t *symbols.Table, n int, seed uint64) {
	count := map[string]int{}
	var names []string
	_ = t.Symbols(func(s symbols.Symbol) bool {
		count[s.Name]++
		if s.Kind == symbols.Func && s.Size > 0 {
			names = append(names, s.Name)
		}
		return true
	})
	sort.Strings(names)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	r.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	for _, s := range names {
		if n == 0 {
			break
		}
		if count[s] == 1 {
			fmt.Println(s)
			n--
		}
	}
}

// randomAddrs prints n addresses at random offsets inside random sized
// functions.
func randomAddrs(t *symbols.Table, n int, seed uint64) {
	var funcs []symbols.Symbol
	_ = t.Symbols(func(s symbols.Symbol) bool {
		if s.Kind == symbols.Func && s.Size > 0 {
			funcs = append(funcs, s)
		}
		return true
	})
	sort.Slice(funcs, func(i, j int) bool { return funcs[i].Addr < funcs[j].Addr })
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for range n {
		f := funcs[r.IntN(len(funcs))]
		fmt.Printf("%#x\n", f.Addr+r.Uint64N(f.Size))
	}
}
