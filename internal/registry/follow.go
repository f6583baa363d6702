package registry

import (
	"errors"
	"io"
	"os"
	"sync"
)

// A follow lets the conversion read a layer while it downloads: the
// download writes the blob into a file (the blob store's temporary file, or
// the scratch directory's), and a followReader reads that file behind it,
// waiting when it has caught up. Nothing is held in memory. A retried
// download starts a new file: the reader goes on in it once the new try has
// passed the reader's offset (a blob is the same bytes on every try, and the
// reader checks the digest over what it read, as it does for any layer).
type follow struct {
	mu      sync.Mutex
	cond    *sync.Cond
	try     int    // the current try, from 1
	path    string // its file
	written int64  // bytes in it
	done    bool
	err     error  // the download's failure, once done
	final   string // the complete blob, once done without error
}

func newFollow() *follow {
	f := &follow{}
	f.cond = sync.NewCond(&f.mu)
	return f
}

// start begins a try that writes into path.
func (f *follow) start(path string) {
	f.mu.Lock()
	f.try++
	f.path, f.written = path, 0
	f.mu.Unlock()
	f.cond.Broadcast()
}

// wrote records n more bytes in the current try's file.
func (f *follow) wrote(n int) {
	f.mu.Lock()
	f.written += int64(n)
	f.mu.Unlock()
	f.cond.Broadcast()
}

// finish ends the download: the blob is complete at final, or err.
func (f *follow) finish(final string, err error) {
	f.mu.Lock()
	if !f.done {
		f.done, f.final, f.err = true, final, err
	}
	f.mu.Unlock()
	f.cond.Broadcast()
}

// followWriter passes a try's bytes on to w and tells f.
type followWriter struct {
	w io.Writer
	f *follow
}

func (w *followWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if n > 0 {
		w.f.wrote(n)
	}
	return n, err
}

// errFollowClosed is a read after Close.
var errFollowClosed = errors.New("layer reader closed")

// followReader reads a layer from its start while f downloads it.
type followReader struct {
	f      *follow
	pos    int64
	file   *os.File
	try    int // the try whose file is open; -1 for the complete blob
	closed bool
}

func (r *followReader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, errFollowClosed
	}
	if len(p) == 0 {
		return 0, nil
	}
	f := r.f
	f.mu.Lock()
	for {
		switch {
		case f.done && f.err != nil:
			err := f.err
			f.mu.Unlock()
			return 0, err
		case f.done:
			final, sameFile := f.final, r.try == f.try && r.file != nil
			f.mu.Unlock()
			// The open file of the last try is the blob (renamed); else open it.
			if !sameFile && r.try != -1 {
				if err := r.reopen(final); err != nil {
					return 0, err
				}
				r.try = -1
			}
			n, err := r.file.ReadAt(p, r.pos)
			r.pos += int64(n)
			if n > 0 && errors.Is(err, io.EOF) {
				err = nil
			}
			return n, err
		case f.try > 0 && f.written > r.pos:
			if r.try != f.try {
				path := f.path
				try := f.try
				f.mu.Unlock()
				if err := r.reopen(path); err != nil {
					// The try's file went (a failed try is removed): wait for the next.
					f.mu.Lock()
					if f.try == try && !f.done {
						f.cond.Wait()
					}
					continue
				}
				r.try = try
				f.mu.Lock()
				continue
			}
			avail := f.written - r.pos
			f.mu.Unlock()
			if int64(len(p)) > avail {
				p = p[:avail]
			}
			n, err := r.file.ReadAt(p, r.pos)
			r.pos += int64(n)
			if n > 0 && errors.Is(err, io.EOF) {
				err = nil
			}
			return n, err
		default:
			f.cond.Wait()
		}
	}
}

func (r *followReader) reopen(path string) error {
	if r.file != nil {
		r.file.Close()
		r.file = nil
	}
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	r.file = file
	return nil
}

func (r *followReader) Close() error {
	r.closed = true
	if r.file != nil {
		return r.file.Close()
	}
	return nil
}
