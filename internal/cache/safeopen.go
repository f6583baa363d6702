package cache

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"

	"github.com/scivision-hpc/scv-hpc/internal/lockfile"
)

// A shared cache is writable by many users, so any file in it may have been replaced
// by someone hostile: a symlink to /etc/shadow, a FIFO that blocks whoever opens it, a
// device, a file of many gigabytes where a line was expected. Every file the cache reads
// is therefore opened with openRegular: O_NOFOLLOW (a symlink is refused, never
// followed), O_NONBLOCK (opening a FIFO does not wait for a writer), then fstat of the
// opened descriptor must say "regular file", and reads are capped by the caller.

// Caps on files the cache reads whole.
const (
	// maxRefFile bounds a refs/ file: a digest line is 72 bytes.
	maxRefFile = 4 << 10
)

// ErrNotRegular reports a cache file that is a symlink, FIFO, device, socket or
// directory where a regular file belongs; such a file is never followed or read. It is
// lockfile.ErrNotRegular, so a planted lock file matches it too.
var ErrNotRegular = lockfile.ErrNotRegular

// ErrTooLarge reports a cache file larger than what belongs there.
var ErrTooLarge = errors.New("file too large")

// openRegular opens path read-only without following a final symlink and without
// blocking on a FIFO, and checks on the open descriptor that it is a regular file.
// A symlink, FIFO, device or directory is ErrNotRegular (errors.Is); an absent file
// is fs.ErrNotExist.
func openRegular(path string) (*os.File, fs.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, nil, fmt.Errorf("%s: %w (a symlink)", path, ErrNotRegular)
	}
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, kindOf(st.Mode()))
	}
	// O_NONBLOCK has no meaning for regular files; clear it anyway so that nothing
	// downstream sees EAGAIN on odd file systems.
	if err := setBlocking(f); err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, st, nil
}

// readSmall reads a whole regular file of at most limit bytes (see openRegular).
// A larger file is ErrTooLarge and is not read.
func readSmall(path string, limit int64) ([]byte, error) {
	f, st, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st.Size() > limit {
		return nil, fmt.Errorf("%s: %w: %d bytes, at most %d expected", path, ErrTooLarge, st.Size(), limit)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit { // grew since fstat
		return nil, fmt.Errorf("%s: %w: more than %d bytes", path, ErrTooLarge, limit)
	}
	return b, nil
}

func setBlocking(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.SetNonblock(int(fd), false) }); err != nil {
		return err
	}
	return serr
}

// kindOf names a file type for messages.
func kindOf(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symlink"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m.IsDir():
		return "a directory"
	}
	return "not a regular file"
}

// ownDir checks that one of the cache's own directories (refs/, sif/sha256/, locks/,
// tmp/) is a real directory and not a symlink to somewhere else: GC removes files in
// them, and a refs/ that points at /etc must never be cleaned. An absent directory is
// fine (nothing in it).
func (c *Cache) ownDir(dir string) error {
	st, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("cache %s: %s is %s, not a directory: refusing to use it (move it away)", c.Dir, dir, kindOf(st.Mode()))
	}
	return nil
}
