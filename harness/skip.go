package harness

import (
	"errors"
	"os"
)

// SkipMissingEnv is the environment variable that lets real-guest suites
// skip, rather than fail, when QEMU or the prepared guest is missing.
const SkipMissingEnv = "KSPEC_SKIP_MISSING"

// SkipOrFail lets a suite skip on a missing prerequisite only when the user
// asked for it with KSPEC_SKIP_MISSING=1; otherwise it does nothing and the
// caller's assertion fails with err's message, which names the fix. skip is
// Ginkgo's Skip (kept as a parameter so this package does not need Ginkgo).
func SkipOrFail(err error, skip func(message string, callerSkip ...int)) {
	if err != nil && errors.Is(err, ErrMissing) && os.Getenv(SkipMissingEnv) == "1" {
		skip(SkipMissingEnv + "=1: " + err.Error())
	}
}
