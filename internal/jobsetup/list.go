package jobsetup

import (
	"fmt"
	"io"
	"os"
)

// List is an input list (--files-from): the job's inputs are the entries of the list
// (see sharding.ScanList) instead of a scan of the data root. A list is read more than
// once (a resume compares it with the job, a rescan cuts it again), so a list on stdin
// is first copied to a temporary file.
type List struct {
	Name string // the list in messages and job.json: its path, or "stdin"
	path string
	tmp  bool
}

// OpenList returns the list at path, or for "-" the list on stdin (copied to a
// temporary file that Close removes). A list that cannot be opened is an error naming
// the list.
func OpenList(path string, stdin io.Reader) (*List, error) {
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("input list: %w", err)
		}
		f.Close()
		return &List{Name: path, path: path}, nil
	}
	f, err := os.CreateTemp("", "scv-hpc-files-from-*")
	if err != nil {
		return nil, fmt.Errorf("input list on stdin: keep a copy: %w", err)
	}
	_, err = io.Copy(f, stdin)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	l := &List{Name: "stdin", path: f.Name(), tmp: true}
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("input list on stdin: read: %w", err)
	}
	return l, nil
}

// open opens the list for one read.
func (l *List) open() (*os.File, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, fmt.Errorf("input list %s: %w", l.Name, err)
	}
	return f, nil
}

// Close removes the copy of a list read from stdin; nil is a no-op.
func (l *List) Close() error {
	if l == nil || !l.tmp {
		return nil
	}
	return os.Remove(l.path)
}
