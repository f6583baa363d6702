package fsutil

import (
	"io/fs"
	"os"
	"path/filepath"
)

// RemoveAll removes p and everything below it like os.RemoveAll, but when that fails
// it makes the directories writable and tries again: a tree unpacked from an image by
// an unprivileged user can hold read-only directories that os.RemoveAll cannot empty.
func RemoveAll(p string) error {
	err := os.RemoveAll(p)
	if err == nil {
		return nil
	}
	_ = filepath.WalkDir(p, func(q string, d fs.DirEntry, werr error) error {
		if werr == nil && d.IsDir() {
			_ = os.Chmod(q, 0o700)
		}
		return nil
	})
	return os.RemoveAll(p)
}
