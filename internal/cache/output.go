package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/scivision-hpc/scv-hpc/internal/fsutil"
)

// ErrInsideCache reports an output path that would overwrite or sit among the cache's
// own files.
var ErrInsideCache = errors.New("inside the cache")

// CheckOutput refuses an output path (a bundle being exported, any file a command is
// about to write) that lies inside the cache or is one of its files: its directory, with
// symlinks resolved, is the cache directory or one under it (compared by inode, so bind
// mounts and symlinked parents are caught), or the file itself, following symlinks and
// hard links, is a file of the cache. The error matches ErrInsideCache and names the
// path. A cache that does not exist yet has nothing to protect.
func (c *Cache) CheckOutput(path string) error {
	own := map[fileID]string{}
	for _, d := range []string{c.Dir, filepath.Join(c.Dir, "sif"), c.sifDir(), c.refsDir(), c.locksDir(), c.tmpDir()} {
		if id, ok := idOf(d, true); ok {
			own[id] = d
		}
	}
	if len(own) == 0 {
		return nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("output %s: %w", path, err)
	}
	refuse := func(why string) error {
		return fmt.Errorf("output %s is %w %s (%s): write it outside the cache directory", path, ErrInsideCache, c.Dir, why)
	}
	candidates := []string{abs}
	if target, err := filepath.EvalSymlinks(abs); err == nil && target != abs {
		candidates = append(candidates, target) // a symlink: its target counts too
	}
	for _, p := range candidates {
		dir, err := filepath.EvalSymlinks(filepath.Dir(p))
		if err != nil {
			continue // the write will fail on its own
		}
		for d := dir; ; d = filepath.Dir(d) {
			if id, ok := idOf(d, true); ok {
				if name, hit := own[id]; hit {
					return refuse("it is under " + name)
				}
			}
			if d == filepath.Dir(d) {
				break
			}
		}
	}
	id, ok := idOf(abs, true)
	if !ok {
		return nil // a new file in a directory outside the cache
	}
	for _, d := range []string{c.sifDir(), c.refsDir(), c.locksDir(), c.tmpDir()} {
		names, _ := readDirNames(d)
		for _, n := range names {
			if fid, ok := idOf(filepath.Join(d, n), false); ok && fid == id {
				return refuse("it is the same file as " + filepath.Join(d, n))
			}
		}
	}
	return nil
}

// CheckOutputFile is CheckOutput for an open file, such as standard output redirected
// to a file ('cache export -'): a regular file is checked through /proc/self/fd, so a
// redirection into the cache is refused before anything is written. Pipes, terminals
// and other non-regular files are never cache files and pass.
func (c *Cache) CheckOutputFile(f *os.File) error {
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return nil
	}
	return c.CheckOutput(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
}

// fileID names a file by device and inode.
type fileID struct{ dev, ino uint64 }

func idOf(path string, follow bool) (fileID, bool) {
	var st fs.FileInfo
	var err error
	if follow {
		st, err = os.Stat(path)
	} else {
		st, err = os.Lstat(path)
	}
	if err != nil {
		return fileID{}, false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{uint64(sys.Dev), sys.Ino}, true
}

// ExportTo writes the bundle of digests (Export; nil: every entry) to the output path,
// atomically, or for "-" to stdout, and returns its size (0 for stdout). The output
// must not be one of the cache's files (CheckOutput; for stdout CheckOutputFile, when
// it is a file).
func (c *Cache) ExportTo(ctx context.Context, path string, stdout io.Writer, digests []string) (int64, error) {
	write := func(w io.Writer) error { return c.Export(ctx, w, digests) }
	if path == "-" {
		if f, ok := stdout.(*os.File); ok {
			if err := c.CheckOutputFile(f); err != nil {
				return 0, fmt.Errorf("standard output: %w", err)
			}
		}
		return 0, write(stdout)
	}
	if err := c.CheckOutput(path); err != nil {
		return 0, err
	}
	if err := fsutil.WriteAtomic(path, 0o644, write); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// ImportFrom imports the bundle in the file path (Import), or for "-" the one on
// stdin.
func (c *Cache) ImportFrom(ctx context.Context, path string, stdin io.Reader, opts ImportOptions) (ImportReport, error) {
	if path == "-" {
		return c.Import(ctx, stdin, opts)
	}
	f, err := os.Open(path)
	if err != nil {
		return ImportReport{}, err
	}
	defer f.Close()
	return c.Import(ctx, f, opts)
}
