// Package example is a complete kspec suite for a repository of your own,
// written with the spec kit (package kspectest): kernel_suite_test.go is
// the whole set-up, mkdir_test.go one spec. It runs against the prepared
// default guest (or $KSPEC_GUEST):
//
//	go test ./kspectest/example
//
// `kspec init DIR` writes these two files (renamed to DIR's package) and,
// outside a Go module, a go.mod that requires github.com/kspec/kspec.
package example

import "embed"

// Files are the suite's source files, as `kspec init` writes them.
//
//go:embed kernel_suite_test.go mkdir_test.go
var Files embed.FS

// Package is the package clause of Files, which `kspec init` replaces.
const Package = "package example_test"
