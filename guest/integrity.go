package guest

import (
	"fmt"
	"path/filepath"
)

// checkContents is the cheap look inside a prepared guest's kernel files
// that loadPrepared adds to its size checks: a file of the right size can
// still be zeroed or overwritten (a crash mid-write, a bad copy). Only
// headers are read: the bzImage's setup header must name the manifest's
// kernel release and the vmlinux's GNU build-id must be the manifest's.
// Manifests that record no build-id (written by tests) skip the check; the
// full checksum comparison is Verify's.
func checkContents(dir string, m *Manifest) error {
	if m.BuildID == "" {
		return nil
	}
	kernel := filepath.Join(dir, FileKernel)
	rel, err := KernelRelease(kernel)
	if err != nil {
		return fmt.Errorf("%s is not a readable kernel image: %w", FileKernel, err)
	}
	if m.Version != "" && rel != m.Version {
		return fmt.Errorf("%s is kernel %s, the manifest says %s", FileKernel, rel, m.Version)
	}
	id, err := BuildID(filepath.Join(dir, FileSymbols))
	if err != nil {
		return fmt.Errorf("%s is not a readable vmlinux: %w", FileSymbols, err)
	}
	if id != m.BuildID {
		return fmt.Errorf("%s has build-id %s, the manifest says %s", FileSymbols, id, m.BuildID)
	}
	return nil
}
