// Package fsutil holds the file-system primitives that keep data safe on shared
// file systems: atomic replacement (temp file in the same directory, fsync, rename,
// fsync of the directory), so a reader never sees a partial file.
package fsutil

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteFileAtomic writes data to path so that readers see either the old file or the
// whole new one, never a torn one, even if the process is killed half-way.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return WriteAtomic(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteAtomic is WriteFileAtomic with the content produced by fill.
func WriteAtomic(path string, perm os.FileMode, fill func(w io.Writer) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := fill(f); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: sync: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	ok = true
	return SyncDir(dir)
}

// CommitFile renames an already written and synced temp file into place and syncs
// the directory, the last step of an atomic commit for large files (SIFs).
func CommitFile(tmp, path string) error {
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("commit %s: %w", path, err)
	}
	return SyncDir(filepath.Dir(path))
}

// SyncDir fsyncs a directory so a rename in it survives a crash. File systems that
// refuse to sync directories (some network ones) are tolerated.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !os.IsPermission(err) {
		// EINVAL on file systems without directory fsync: nothing more can be done.
		return nil
	}
	return nil
}

// WriteOutput writes what fill produces to the output a user named: standard output
// (stdout) for "-", else path, replaced atomically (WriteAtomic, mode 0644). It returns
// where it wrote, "stdout" or path, for messages.
func WriteOutput(path string, stdout io.Writer, fill func(w io.Writer) error) (string, error) {
	if path == "-" {
		return "stdout", fill(stdout)
	}
	return path, WriteAtomic(path, 0o644, fill)
}
