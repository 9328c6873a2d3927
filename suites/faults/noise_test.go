package faults_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kspec/kspec/guest"
	"github.com/kspec/kspec/harness"
	"github.com/kspec/kspec/kspectest"
)

// Console noise: kernel messages that land in the middle of the login
// exchange or of a command's output. A loop in the guest writes messages
// to /dev/kmsg at level 3 (KERN_ERR, printed on the serial console even
// with "quiet"); the kernel prints each one on ttyS0 wherever the tty's
// own output happens to be: between two pieces of a long line, or right
// after a prompt while getty, login or the shell waits for input (where
// the prompt patterns, anchored at the end of the text, look). A prompt
// goes out in one write and is seldom cut itself; the unit tests with a
// fake guest (guest/console_test.go) cover that case.

// noiseTag starts every noise message.
const noiseTag = "kspec-noise"

// noisePID is where the noise loop writes its pid.
const noisePID = "/tmp/kspec-noise.pid"

// startNoise starts the noise loop in a session of its own with no tty, so
// that it survives the logout of the shell that started it. usleep 3000
// would allow a few hundred messages a second; under TCG each message's
// console write is slow and the loop makes some 50-60 a second, which
// leaves the guest responsive and still puts several messages into every
// login exchange and long command.
const startNoise = `setsid sh -c 'echo $$ > ` + noisePID + `; i=0; while :; do echo "<3>` + noiseTag + ` $i lands anywhere" > /dev/kmsg; i=$((i+1)); usleep 3000; done' </dev/null >/dev/null 2>&1 &`

// loginRounds is how many times the spec logs out and in under noise.
const loginRounds = 3

// noiseLine matches one noise message as the console shows it.
var noiseLine = regexp.MustCompile(`\[ *\d+\.\d{6}\] ` + noiseTag + ` \d+[^\r\n]*\r\n`)

// stripNoise cuts the noise messages out of console text and returns the
// rest and where in it each message was.
func stripNoise(s string) (clean string, at []int) {
	var b strings.Builder
	last := 0
	for _, loc := range noiseLine.FindAllStringIndex(s, -1) {
		b.WriteString(s[last:loc[0]])
		at = append(at, b.Len())
		last = loc[1]
	}
	b.WriteString(s[last:])
	return b.String(), at
}

// promptRange is a piece of the cleaned console text: a prompt.
type promptRange struct {
	name       string
	start, end int
}

// promptSpan finds the first match of re in clean at or after from and
// returns where it is, widened to the start of its line.
func promptSpan(clean string, from int, name string, re *regexp.Regexp) (promptRange, bool) {
	loc := re.FindStringIndex(clean[from:])
	if loc == nil {
		return promptRange{}, false
	}
	start, end := from+loc[0], from+loc[1]
	start = strings.LastIndexByte(clean[:start], '\n') + 1
	return promptRange{name, start, end}, true
}

// loginNoiseCount says where noise messages landed in one logout and login.
type loginNoiseCount struct {
	// Between counts the messages between the start of the login prompt's
	// line and the end of the shell prompt.
	Between int
	// Inside counts the messages that cut a prompt in two.
	Inside int
	// After counts the messages right after a prompt, where the prompt
	// patterns (anchored at the end of the text) look.
	After int
	// Where describes the messages of Inside and After.
	Where []string
}

// loginNoise analyses the transcript of a logout and login.
func loginNoise(text string) loginNoiseCount {
	GinkgoHelper()
	clean, at := stripNoise(text)
	login, ok := promptSpan(clean, 0, "login prompt", regexp.MustCompile(`login: `))
	Expect(ok).To(BeTrue(), "no login prompt in the transcript:\n%s", clean)
	pass, ok := promptSpan(clean, login.end, "password prompt", regexp.MustCompile(`Password: `))
	Expect(ok).To(BeTrue(), "no password prompt after the login prompt in the transcript:\n%s", clean)
	shell, ok := promptSpan(clean, pass.end, "shell prompt", regexp.MustCompile(`[#$] `))
	Expect(ok).To(BeTrue(), "no shell prompt after the password prompt in the transcript:\n%s", clean)
	var c loginNoiseCount
	for _, p := range at {
		if p > login.start && p <= shell.end {
			c.Between++
		}
		for _, s := range []promptRange{login, pass, shell} {
			switch {
			case p > s.start && p < s.end:
				c.Inside++
				c.Where = append(c.Where, fmt.Sprintf("inside the %s: %q|%q", s.name, clean[s.start:p], clean[p:s.end]))
			case p == s.end:
				c.After++
				c.Where = append(c.Where, fmt.Sprintf("right after the %s: %q|", s.name, clean[s.start:p]))
			}
		}
	}
	return c
}

// bootWithTranscript boots a fresh guest for one spec, copying everything
// it prints to tr, and closes it when the spec ends.
func bootWithTranscript(ctx context.Context, tr *syncBuffer) *harness.Target {
	GinkgoHelper()
	t, err := harness.Boot(ctx, harness.Options{
		Transcript: tr,
		Logf:       kspectest.Logf,
	})
	harness.SkipOrFail(err, Skip)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { _ = t.Close() })
	return t
}

// noiseIn returns the noise messages among a command's kernel lines.
func noiseIn(kernel []string) int {
	n := 0
	for _, k := range kernel {
		if strings.Contains(k, noiseTag) {
			n++
		}
	}
	return n
}

// seqOutput is what `seq from to` prints, with the given prefix per line.
func seqOutput(prefix string, from, to int) string {
	var b strings.Builder
	for i := from; i <= to; i++ {
		b.WriteString(prefix + strconv.Itoa(i) + "\n")
	}
	return b.String()
}

// expectSameLines compares output line by line and names the first line
// that differs (a whole-output diff of thousands of lines says little).
func expectSameLines(cmd, got, want string) {
	GinkgoHelper()
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < min(len(g), len(w)); i++ {
		Expect(g[i]).To(Equal(w[i]), "%s: line %d of %d differs", cmd, i+1, len(w))
	}
	Expect(len(g)).To(Equal(len(w)), "%s: %d lines, want %d", cmd, len(g), len(w))
}

var _ = Describe("kernel messages on the console", Label("noise"), func() {
	It("do not break login or output capture, and a wrong password is reported as Login incorrect", func(ctx SpecContext) {
		start := time.Now()
		tr := &syncBuffer{}
		t := bootWithTranscript(ctx, tr)
		con, spec := t.Console(), t.Spec()
		DeferCleanup(func() {
			if CurrentSpecReport().Failed() {
				text := tr.From(0)
				GinkgoWriter.Printf("end of the console transcript:\n%q\n", text[max(0, len(text)-6000):])
			}
		})
		// Every operation gets a bound far above its real duration: a hang
		// fails with the console's tail instead of eating the spec timeout.
		bounded := func() context.Context {
			opCtx, cancel := context.WithTimeout(ctx, generous)
			DeferCleanup(cancel)
			return opCtx
		}
		shell := func(cmd string) guest.Result {
			GinkgoHelper()
			res, err := t.Shell(bounded(), cmd)
			Expect(err).NotTo(HaveOccurred(), cmd)
			Expect(res.Status).To(Equal(0), "%s: %s", cmd, res.Output)
			return res
		}

		shell(startNoise)

		// Log out and in again, several times, with the noise running:
		// messages land between and right after getty's, login's and the
		// shell's prompts.
		var sum loginNoiseCount
		for round := 1; round <= loginRounds; round++ {
			opCtx := bounded()
			before := tr.Len()
			Expect(con.Logout(opCtx)).To(Succeed())
			Expect(con.Login(opCtx, spec.User, spec.Password)).To(Succeed())
			Expect(opCtx.Err()).NotTo(HaveOccurred())
			loginText := tr.From(before)
			c := loginNoise(loginText)
			GinkgoWriter.Printf("re-login %d under noise: %d noise messages between the login prompt and the shell prompt; %d inside a prompt, %d right after one\n",
				round, c.Between, c.Inside, c.After)
			for _, w := range c.Where {
				GinkgoWriter.Printf("  noise %s\n", w)
			}
			Expect(c.Between).To(BeNumerically(">", 0), "no noise arrived during login exchange %d, so it tested nothing:\n%s", round, loginText)
			sum.Between, sum.Inside, sum.After = sum.Between+c.Between, sum.Inside+c.Inside, sum.After+c.After
			want := fmt.Sprintf("round %d\n", round)
			Expect(shell(fmt.Sprintf("echo round %d", round)).Output).To(Equal(want))
		}
		GinkgoWriter.Printf("%d re-logins under noise: %d noise messages during the login exchanges, %d inside a prompt, %d right after one\n",
			loginRounds, sum.Between, sum.Inside, sum.After)

		// Commands whose output must come back exact while the noise goes on.
		commands := []struct{ cmd, want string }{
			{"seq 1 2000", seqOutput("", 1, 2000)},
			{"echo kspec-distinct-$((6*7))-end", "kspec-distinct-42-end\n"},
			{"seq 1 500 | sed 's/^/row /' > /tmp/kspec-rows && echo written", "written\n"},
			{"cat /tmp/kspec-rows", seqOutput("row ", 1, 500)},
			{`i=1; while [ $i -le 150 ]; do echo "slow $i"; i=$((i+1)); usleep 2000; done`, seqOutput("slow ", 1, 150)},
			{"seq 1 2000", seqOutput("", 1, 2000)},
		}
		total := 0
		before := tr.Len()
		for _, c := range commands {
			res := shell(c.cmd)
			Expect(res.Output).NotTo(ContainSubstring(noiseTag), c.cmd)
			expectSameLines(c.cmd, res.Output, c.want)
			n := noiseIn(res.Kernel)
			total += n
			GinkgoWriter.Printf("%q: output exact (%d bytes); %d noise messages separated out (%d kernel lines)\n", c.cmd, len(res.Output), n, len(res.Kernel))
		}
		midLine := 0
		cmdText := tr.From(before)
		for _, loc := range noiseLine.FindAllStringIndex(cmdText, -1) {
			if loc[0] > 0 && cmdText[loc[0]-1] != '\n' {
				midLine++
			}
		}
		GinkgoWriter.Printf("noise messages separated from command output: %d in all; %d of the messages on the console meanwhile cut a line in two\n", total, midLine)
		Expect(total).To(BeNumerically(">", 0), "no noise landed inside any command's output, so the capture was not tested")

		// A wrong password under noise is "Login incorrect" as soon as the
		// guest says so, not a timeout, and the password stays out of it.
		wrong := "wrong-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		wrongCtx := bounded()
		Expect(con.Logout(wrongCtx)).To(Succeed())
		before = tr.Len()
		err := con.Login(wrongCtx, spec.User, wrong)
		GinkgoWriter.Printf("kspec reported: %v\n", err)
		wrongText := tr.From(before)
		_, wrongAt := stripNoise(wrongText)
		GinkgoWriter.Printf("wrong-password login: %d noise messages on the console meanwhile\n", len(wrongAt))
		Expect(errors.Is(err, guest.ErrLoginIncorrect)).To(BeTrue(), "want ErrLoginIncorrect, got %T: %v", err, err)
		Expect(errors.Is(err, context.DeadlineExceeded)).To(BeFalse(), "the wrong password was found by a timeout")
		Expect(wrongCtx.Err()).NotTo(HaveOccurred(), "Login waited for its deadline")
		Expect(err.Error()).NotTo(ContainSubstring(wrong), "the error shows the password")
		Expect(wrongText).NotTo(ContainSubstring(wrong), "the transcript shows the password")

		// login(1) asks again; the right password works.
		Expect(con.Login(bounded(), spec.User, spec.Password)).To(Succeed())
		Expect(shell("echo ok").Output).To(Equal("ok\n"))

		shell("kill $(cat " + noisePID + ")")
		_, all := stripNoise(tr.From(0))
		GinkgoWriter.Printf("noise messages on the console in all: %d; spec took %s\n", len(all), time.Since(start).Round(time.Millisecond))
	}, SpecTimeout(10*time.Minute))

	It("makes a boot with a wrong password a HarnessError wrapping ErrLoginIncorrect, not a timeout", func(ctx SpecContext) {
		spec, err := harness.ResolveGuest(harness.Options{})
		harness.SkipOrFail(err, Skip)
		Expect(err).NotTo(HaveOccurred())
		wrongSpec := *spec
		wrongSpec.Password = "wrong-" + strconv.FormatInt(time.Now().UnixNano(), 36)

		bootCtx, cancel := context.WithTimeout(ctx, generous)
		defer cancel()
		t, err := harness.Boot(bootCtx, harness.Options{
			Spec:        &wrongSpec,
			NoDebugger:  true,
			BootTimeout: generous,
			Logf:        kspectest.Logf,
		})
		if t != nil {
			_ = t.Close()
		}
		GinkgoWriter.Printf("kspec reported: %v\n", err)
		var herr *harness.HarnessError
		Expect(errors.As(err, &herr)).To(BeTrue(), "want a *harness.HarnessError, got %T: %v", err, err)
		Expect(errors.Is(err, guest.ErrLoginIncorrect)).To(BeTrue(), "want ErrLoginIncorrect: %v", err)
		Expect(errors.Is(err, context.DeadlineExceeded)).To(BeFalse(), "the wrong password was found by a timeout")
		Expect(bootCtx.Err()).NotTo(HaveOccurred(), "Boot waited for its deadline")
		Expect(err.Error()).NotTo(ContainSubstring(wrongSpec.Password), "the error shows the password")
	}, SpecTimeout(5*time.Minute))
})
