#!/usr/bin/env bash
# Records the report package's JUnit fixtures from the fixture suite
# (testdata/fixturesuite, no guest needed). Rewrites testdata/fixture-*.
#
# linux-*.xml were recorded from the real Linux suite on debian-cloud:
#   go test -c -o linux.test ./suites/linux
#   ./linux.test -ginkgo.dry-run -ginkgo.junit-report=linux-dry-run.xml
#   KSPEC_GUEST=debian-cloud ./linux.test -ginkgo.junit-report=linux-debian-cloud.xml
#   KSPEC_GUEST=/nonexistent.json ./linux.test -ginkgo.junit-report=linux-bad-guest.xml
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/fixture.test" ./fixturesuite
run() { # run NAME ENV... -- ARGS...
	local name=$1; shift
	env "$@" "$tmp/fixture.test" -ginkgo.no-color -ginkgo.v -ginkgo.seed=1 \
		-ginkgo.junit-report="$PWD/$name.xml" >"$tmp/$name.out" 2>&1 || true
}
run fixture-a FIXTURE_FLIP=
run fixture-b FIXTURE_FLIP=1
run fixture-harness-boot FIXTURE_BOOT=harness
run fixture-panic-boot FIXTURE_BOOT=panic
"$tmp/fixture.test" -ginkgo.dry-run -ginkgo.no-color -ginkgo.seed=1 -ginkgo.junit-report="$PWD/fixture-dry-run.xml" >/dev/null
cp "$tmp/fixture-a.out" fixture-a-verbose.txt
