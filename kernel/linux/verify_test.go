package linux

import (
	"strings"
	"testing"

	"github.com/kspec/kspec/kernel"
	"github.com/kspec/kspec/rsp"
)

// TestCompareKernel covers the comparison of a vmlinux's banner and
// build-id with what the running kernel's memory holds.
func TestCompareKernel(t *testing.T) {
	const (
		cloud   = "Linux version 6.1.0-56-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-11-16)\n\x00"
		generic = "Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-11-16)\n\x00"
	)
	file := fileIdentity{path: "/x/vmlinux", bannerAddr: 0xffffffff8211ffe0, banner: []byte(cloud),
		buildIDAddr: 0xffffffff82437e80, buildID: []byte{0x3b, 0x43, 0xfa, 0xd5}}
	noBuildID := file
	noBuildID.buildID = nil
	unmapped := &rsp.RemoteError{Code: 0x0e, Packet: "mffffffff8211ffe0,cc"}
	tests := []struct {
		name  string
		file  fileIdentity
		mem   memoryIdentity
		kaslr bool
		want  []string // substrings of the error; nil: no error
	}{
		{"same kernel", file, memoryIdentity{banner: []byte(cloud), buildID: []byte{0x3b, 0x43, 0xfa, 0xd5}}, false, nil},
		{"same kernel, build-id not loaded", noBuildID, memoryIdentity{banner: []byte(cloud)}, false, nil},
		{"same banner, build-id unreadable", file, memoryIdentity{banner: []byte(cloud), buildIDErr: unmapped}, false, nil},
		{"another kernel", file, memoryIdentity{banner: []byte(generic)}, true, []string{
			"do not match the running kernel",
			`the kernel's linux_banner says "Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-11-16)"`,
			`the symbols' "Linux version 6.1.0-56-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-11-16)"`,
			"give the vmlinux built with the running kernel",
		}},
		{"another build of the same version", file, memoryIdentity{banner: []byte(cloud), buildID: []byte{0xde, 0xad, 0xbe, 0xef}}, false, []string{
			"build-id (at 0xffffffff82437e80) is deadbeef and the symbols' is 3b43fad5", "another build of that version",
		}},
		{"banner address unmapped, KASLR possible", file, memoryIdentity{bannerErr: unmapped}, true, []string{
			"nothing mapped at linux_banner (0xffffffff8211ffe0)", "E0e", "nokaslr", `"Linux version 6.1.0-56-cloud-amd64`,
		}},
		{"banner address unmapped, nokaslr given", file, memoryIdentity{bannerErr: unmapped}, false, []string{
			"nothing mapped at linux_banner", "give the vmlinux built with the running kernel",
		}},
		{"something else at the address", file, memoryIdentity{banner: make([]byte, len(cloud))}, true, []string{
			`holds "", not a Linux banner`, "nokaslr",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := compareKernel(tt.file, tt.mem, tt.kaslr)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("compareKernel = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("compareKernel = nil, want a mismatch")
			}
			if !strings.Contains(err.Error(), "/x/vmlinux") {
				t.Errorf("error does not name the symbol file: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if !tt.kaslr && strings.Contains(err.Error(), "nokaslr") {
				t.Errorf("error suggests nokaslr, which the guest has: %v", err)
			}
		})
	}
}

// TestKASLRPossible: only a kernel booted with nokaslr is known to be at
// its link address.
func TestKASLRPossible(t *testing.T) {
	for _, tt := range []struct {
		boot kernel.Boot
		want bool
	}{
		{kernel.Boot{Direct: true, Append: "console=ttyS0 nokaslr panic=-1 quiet"}, false},
		{kernel.Boot{Direct: true, Append: "console=ttyS0 quiet"}, true},
		{kernel.Boot{Direct: true, Append: "console=ttyS0 nokaslrx"}, true},
		{kernel.Boot{}, true},
	} {
		if got := kaslrPossible(tt.boot); got != tt.want {
			t.Errorf("kaslrPossible(%+v) = %v, want %v", tt.boot, got, tt.want)
		}
	}
}
