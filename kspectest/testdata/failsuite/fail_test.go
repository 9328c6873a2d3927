// Package failsuite_test is not a test of kspec: it is a suite on the spec
// kit whose one spec fails on purpose after running a marked command and
// stopping at a breakpoint, so that kspectest's tests can check what a
// failed spec's report carries.
package failsuite_test

import (
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kspec/kspec/kspectest"
)

func TestFail(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "kspectest failing suite")
}

var suite = kspectest.Setup(kspectest.Config{})

var _ = It("fails while stopped at do_mkdirat", func(ctx SpecContext) {
	Expect(suite.Shell(ctx, "echo kspec-marker-$((6*7))")).To(Equal("kspec-marker-42\n"))
	hit := suite.BreakAndRun(ctx, "do_mkdirat", "mkdir /tmp/kspec-failsuite")
	Expect(hit.Function).To(Equal("not-do_mkdirat"), "this spec fails on purpose")
}, SpecTimeout(2*time.Minute))
