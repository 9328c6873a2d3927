//go:build unix

package symbols

import (
	"fmt"
	"os"
	"syscall"
)

// mapFile maps f read-only. The returned release function unmaps it.
func mapFile(f *os.File, size int64) ([]byte, func() error, error) {
	if size == 0 {
		return nil, func() error { return nil }, nil
	}
	if int64(int(size)) != size {
		return nil, nil, fmt.Errorf("file too large to map (%d bytes)", size)
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("mmap: %w", err)
	}
	// Lookups touch a few scattered pages; large read-ahead would only
	// inflate the resident set.
	_ = syscall.Madvise(data, syscall.MADV_RANDOM)
	return data, func() error { return syscall.Munmap(data) }, nil
}
