// Kernel specs run with kspec: each Ginkgo process boots its own guest
// (the prepared default guest, or the one $KSPEC_GUEST names: a guest name
// or a guest config file), logs in, saves a baseline snapshot and restores
// it before every spec. A failed spec's report holds the console
// transcript, the last stop and the registers.
//
//	go test ./...                                  # or: ginkgo -p ./...
//	KSPEC_GUEST=debian-trixie-cloud go test ./...  # another guest (kspec guest prepare --guest ...)
package example_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kspec/kspec/guest"
	"github.com/kspec/kspec/kspectest"
)

func TestKernel(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "kernel specs")
}

// suite is the guest of this Ginkgo process and the helpers that use it.
var suite = kspectest.Setup(kspectest.Config{OS: guest.OSLinux})
