package nightly

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/kspec/kspec/report"
)

// suite is the compiled suite a run executes and the specs it holds.
type suite struct {
	bin      string        // the test binary
	name     string        // what the summary calls it (the package or the binary)
	workDir  string        // where it runs ("" for a given binary: the guest's directory)
	desc     string        // its Ginkgo description
	expected []report.Case // its specs under the label filter
}

// buildSuite returns the suite to run: o.SuiteBinary, or SuitePackage of
// the source tree compiled into tmp; its specs are listed by a dry run.
func buildSuite(ctx context.Context, o Options, tmp string, prog *progress) (*suite, error) {
	su := &suite{}
	if o.SuiteBinary != "" {
		bin, err := givenBinary(o.SuiteBinary)
		if err != nil {
			return nil, err
		}
		su.bin, su.name = bin, bin
	} else {
		root := o.Source
		if root == "" {
			root = findSourceTree()
		}
		if root == "" {
			return nil, badInput("kspec nightly: no suite to run: run it inside a kspec source tree, give --source DIR, or give --suite-binary FILE (build one with: go test -c -o linux.test %s)", SuitePackage)
		}
		goBin, err := exec.LookPath("go")
		if err != nil {
			return nil, badInput("kspec nightly: compiling the suite needs the go command (Go ≥ 1.26) on $PATH, or give --suite-binary FILE")
		}
		su.bin = filepath.Join(tmp, "linux.test")
		t0 := time.Now()
		cmd := exec.CommandContext(ctx, goBin, "test", "-c", "-o", su.bin, SuitePackage)
		cmd.Dir = root
		if outb, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("compiling the suite (%s in %s): %w\n%s", SuitePackage, root, err, outb)
		}
		prog.printf("nightly", "compiled %s of %s in %s", SuitePackage, root, time.Since(t0).Round(100*time.Millisecond))
		su.name, su.workDir = SuitePackage, filepath.Join(root, filepath.FromSlash(SuitePackage))
	}
	var err error
	su.desc, su.expected, err = dryRun(ctx, su.bin, o.LabelFilter, tmp, "")
	if err != nil {
		return nil, err
	}
	return su, nil
}

// givenBinary checks a --suite-binary and makes it absolute.
func givenBinary(path string) (string, error) {
	bin, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return "", badInput("kspec nightly: --suite-binary %s: not an executable file", path)
	}
	return bin, nil
}

// findSourceTree returns the kspec module root containing the current
// directory, or "".
func findSourceTree() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil {
			for _, l := range strings.Split(string(data), "\n") {
				if f := strings.Fields(l); len(f) == 2 && f[0] == "module" {
					if f[1] == "github.com/kspec/kspec" {
						return dir
					}
					return ""
				}
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// dryRun lists the specs the suite binary would run with the label filter
// against guestRef ("" for the default guest): its description and specs.
// Spec titles may name what the guest's kernel has (a function renamed in
// Linux 7.0 is named as that kernel calls it), so each guest's run is
// listed with that guest in KSPEC_GUEST.
func dryRun(ctx context.Context, bin, labelFilter, tmp, guestRef string) (string, []report.Case, error) {
	f, err := os.CreateTemp(tmp, "dry-run-*.xml")
	if err != nil {
		return "", nil, err
	}
	junit := f.Name()
	f.Close()
	defer os.Remove(junit)
	args := []string{"-ginkgo.dry-run", "-ginkgo.no-color", "-ginkgo.junit-report=" + junit}
	if labelFilter != "" {
		args = append(args, "-ginkgo.label-filter="+labelFilter)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = childEnv(guestRef)
	outb, err := cmd.CombinedOutput()
	j, jerr := report.ReadJUnit(junit)
	if jerr != nil {
		if err == nil {
			err = jerr
		}
		return "", nil, fmt.Errorf("listing the suite's specs (%s -ginkgo.dry-run): %w\n%s", bin, err, tail(outb, 2000))
	}
	return j.Suite, report.Expected(j), nil
}

// childEnv is the environment of a suite process for the guest: the real
// suites never skip in a nightly run (KSPEC_SKIP_MISSING would hide a
// missing guest as skipped specs).
func childEnv(guestRef string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "KSPEC_SKIP_MISSING=") || strings.HasPrefix(kv, "KSPEC_GUEST=") {
			continue
		}
		env = append(env, kv)
	}
	if guestRef != "" {
		env = append(env, "KSPEC_GUEST="+guestRef)
	}
	return env
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
