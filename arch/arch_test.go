package arch

import (
	"debug/elf"
	"strings"
	"testing"
)

func TestLookup(t *testing.T) {
	for _, tc := range []struct {
		name    string
		want    string
		wantErr string
	}{
		{"x86_64", "x86_64", ""},
		{"X86_64", "x86_64", ""},
		{"aarch64", "aarch64", ""},
		{"riscv64", "", `"riscv64" is not supported (known: aarch64, x86_64)`},
		{"", "", `"" is not supported`},
	} {
		a, err := Lookup(tc.name)
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Lookup(%q) = %v, %v; want error %q", tc.name, a, err, tc.wantErr)
			}
		case err != nil || a.Name() != tc.want:
			t.Errorf("Lookup(%q) = %v, %v; want %s", tc.name, a, err, tc.want)
		}
	}
}

func TestForELF(t *testing.T) {
	a, err := ForELF(elf.EM_X86_64)
	if err != nil || a.Name() != "x86_64" || a.QEMU() != "qemu-system-x86_64" {
		t.Errorf("ForELF(EM_X86_64) = %v, %v", a, err)
	}
	if a, err := ForELF(elf.EM_AARCH64); err != nil || a.Name() != "aarch64" || a.QEMU() != "qemu-system-aarch64" {
		t.Errorf("ForELF(EM_AARCH64) = %v, %v", a, err)
	}
	if _, err := ForELF(elf.EM_RISCV); err == nil || !strings.Contains(err.Error(), "EM_RISCV") {
		t.Errorf("ForELF(EM_RISCV) = %v", err)
	}
}

// TestKnown checks what every architecture must get right for the harness.
func TestKnown(t *testing.T) {
	seen := map[string]bool{}
	for _, a := range known {
		if seen[a.Name()] {
			t.Errorf("%s is listed twice", a.Name())
		}
		seen[a.Name()] = true
		if a.PC() == "" || a.SP() == "" || a.QEMU() == "" || a.QEMUPackage() == "" || a.GDBArchitecture() == "" {
			t.Errorf("%s: empty PC, SP, QEMU, QEMUPackage or GDBArchitecture", a.Name())
		}
		if a.CallWindow() <= 0 || a.KernelBase() == 0 {
			t.Errorf("%s: CallWindow %d, KernelBase %#x", a.Name(), a.CallWindow(), a.KernelBase())
		}
	}
	if Default() != known[0] {
		t.Error("Default is not the first architecture")
	}
}

func TestForDebian(t *testing.T) {
	for deb, want := range map[string]string{"amd64": "x86_64", "arm64": "aarch64"} {
		if a, err := ForDebian(deb); err != nil || a.Name() != want {
			t.Errorf("ForDebian(%q) = %v, %v; want %s", deb, a, err, want)
		}
	}
	if _, err := ForDebian("riscv64"); err == nil || !strings.Contains(err.Error(), `"riscv64" is not supported (known: amd64, arm64)`) {
		t.Errorf("ForDebian(riscv64) = %v", err)
	}
}
