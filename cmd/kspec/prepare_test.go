package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kspec/kspec/archive/archivetest"
	"github.com/kspec/kspec/guest"
)

// TestGuestPrepareBadInput: a guest name, mirror or keyring that is wrong,
// and a suite, flavour or mirror that does not exist, exit 2 naming the
// problem (the archive is a local signed one: no network).
func TestGuestPrepareBadInput(t *testing.T) {
	m := archivetest.NewMirror(t, archivetest.Suite{Name: "sid"})
	cache := t.TempDir()
	notKeyring := filepath.Join(cache, "notkeyring.gpg")
	if err := os.WriteFile(notKeyring, []byte("not a key"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		args []string
		want []string
	}{
		{"unknown flavour", []string{"--guest", "debian-sid-tiny"}, []string{`"debian-sid-tiny"`, "debian-<suite>-<flavour>"}},
		{"mirror not a URL", []string{"--guest", "debian-sid-cloud", "--mirror", "deb.debian.org"}, []string{"--mirror", "http"}},
		{"missing keyring", []string{"--guest", "debian-sid-cloud", "--keyring", filepath.Join(cache, "nope.gpg")}, []string{"--keyring", "nope.gpg"}},
		{"no such suite", []string{"--guest", "debian-nosuch-cloud", "--mirror", m.URL, "--keyring", m.KeyringFile}, []string{"nosuch", "404"}},
		{"no such flavour in the suite", []string{"--guest", "debian-sid-generic", "--mirror", m.URL, "--keyring", m.KeyringFile}, []string{"linux-image-amd64"}},
		{"keyring not a keyring", []string{"--guest", "debian-sid-cloud", "--mirror", m.URL, "--keyring", notKeyring}, []string{"not an OpenPGP keyring", "notkeyring.gpg"}},
		{"no such mirror", []string{"--guest", "debian-sid-cloud", "--mirror", "http://no-such-mirror.invalid/debian"}, []string{"no-such-mirror.invalid", "no such host"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runKspec(append([]string{"guest", "prepare", "--cache", cache}, tt.args...)...)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr: %s", code, exitUsage, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q does not say %q", stderr, w)
				}
			}
		})
	}
}

// TestDescribedGuestVersion: a guest described by flags is named in
// progress and reports by the kernel release its image says (it printed
// "booting custom  (tcg)").
func TestDescribedGuestVersion(t *testing.T) {
	kernel, vmlinux := kernelFiles(t)
	want, err := guest.KernelRelease(kernel)
	if err != nil {
		t.Fatal(err)
	}
	g := guestFlags{kernel: kernel, symbols: vmlinux}
	o, err := g.options()
	if err != nil {
		t.Fatal(err)
	}
	if o.Spec == nil || o.Spec.Name != "custom" || o.Spec.Version != want {
		t.Errorf("described guest = %+v, want custom %s", o.Spec, want)
	}
}
