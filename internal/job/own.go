package job

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// ErrOwnFile is returned by CheckOutput for a path that is one of the job's own files.
var ErrOwnFile = errors.New("is one of the job's own files")

// ownNames are the job's own files and directories, relative to the directory: an
// output written there would corrupt the job.
var ownNames = []string{"job.json", "slurm.json", "shards", "results", "logs", "locks", "outputs"}

// CheckOutput refuses a path a command is about to write (collect -o) when it is one of
// the job's own files: job.json, slurm.json, a batch script, anything under shards/,
// results/, logs/, locks/ or outputs/, or the directory itself, after symlinks are
// resolved; or, for a file that exists with several links, the same file (inode) as one
// of them. Other paths inside the job directory (OUT/results.csv) are fine.
func (d Dir) CheckOutput(path string) error {
	real, err := resolve(path)
	if err != nil {
		return err
	}
	root, err := resolve(string(d))
	if err != nil {
		return err
	}
	if real == root {
		return fmt.Errorf("%s: the job directory itself: %w", path, ErrOwnFile)
	}
	if rel, err := filepath.Rel(root, real); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		first := strings.Split(rel, string(filepath.Separator))[0]
		isScript := strings.HasPrefix(first, "job.") && strings.HasSuffix(first, ".sbatch")
		for _, n := range ownNames {
			if first == n || isScript {
				return fmt.Errorf("%s (%s in the job %s): %w", path, rel, d, ErrOwnFile)
			}
		}
	}
	st, err := os.Stat(real)
	if err != nil || !st.Mode().IsRegular() {
		return nil
	}
	if s, ok := st.Sys().(*syscall.Stat_t); !ok || s.Nlink < 2 {
		return nil
	}
	// A hard link elsewhere to one of the job's files.
	var same error
	for _, n := range ownNames {
		filepath.WalkDir(filepath.Join(root, n), func(p string, e fs.DirEntry, err error) error {
			if err != nil || same != nil || !e.Type().IsRegular() {
				return nil
			}
			if fi, err := os.Lstat(p); err == nil && os.SameFile(fi, st) {
				same = fmt.Errorf("%s is a link to %s: %w", path, p, ErrOwnFile)
				return filepath.SkipAll
			}
			return nil
		})
	}
	return same
}

// resolve makes path absolute with every symlink resolved, also when the last
// components do not exist yet.
func resolve(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	rest := ""
	for p := abs; ; p = filepath.Dir(p) {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(real, rest), nil
		}
		if p == filepath.Dir(p) {
			return abs, nil
		}
		rest = filepath.Join(filepath.Base(p), rest)
	}
}
