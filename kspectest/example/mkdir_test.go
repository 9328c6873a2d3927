package example_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kspec/kspec/kspectest"
)

var _ = Describe("mkdir", func() {
	It("reaches do_mkdirat in fs/namei.c, in the mkdir process", func(ctx SpecContext) {
		// Break on the kernel function, run the command on the guest's
		// console and wait for the first hit; the guest stays stopped there
		// until the spec ends (or hit's command is finished).
		hit := suite.BreakAndRun(ctx, "do_mkdirat", "mkdir /tmp/kspec-example")
		Expect(hit).To(kspectest.StopIn("do_mkdirat", "fs/namei.c"))
		Expect(hit).To(kspectest.HaveComm("mkdir"))
	}, SpecTimeout(2*time.Minute))
})
