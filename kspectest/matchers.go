package kspectest

import (
	"github.com/onsi/gomega/types"

	"github.com/kspec/kspec/harness"
)

// The Gomega matchers of kspec, so that a suite needs only this package
// (and Ginkgo and Gomega).

// StopIn matches a *harness.Hit in function whose source file is file (a
// path suffix: "fs/namei.c" or "namei.c"): harness.StopIn.
func StopIn(function, file string) types.GomegaMatcher { return harness.StopIn(function, file) }

// HaveBacktraceContaining matches a *harness.Hit whose backtrace has a
// frame for each of funcs, inlined frames included, in any order:
// harness.HaveBacktraceContaining.
func HaveBacktraceContaining(funcs ...string) types.GomegaMatcher {
	return harness.HaveBacktraceContaining(funcs...)
}

// HaveComm matches a *harness.Hit whose current task has this comm:
// harness.HaveComm.
func HaveComm(comm string) types.GomegaMatcher { return harness.HaveComm(comm) }
