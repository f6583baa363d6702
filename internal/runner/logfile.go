package runner

import (
	"fmt"
	"os"
	"strings"
	"sync"
)

// workerLog is a worker's log file: its model's stderr and the runner's notes about
// its processes, kept as a rotating tail. Past max bytes the file is renamed to
// NAME.1 (replacing the older one) and a new one begun, so a model that floods its
// stderr costs at most 2×max bytes of disk per worker and the last lines are kept.
// The zero file is opened by switchTo; until then writes are dropped.
type workerLog struct {
	mu     sync.Mutex
	path   string
	f      *os.File
	size   int64
	max    int64
	failed bool // a write or rotation failed: the log is given up, the model goes on
}

// open (re)opens the log at path for appending.
func (l *workerLog) open(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("worker log: %w", err)
	}
	var size int64
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	l.path, l.f, l.size, l.failed = path, f, size, false
	return nil
}

// Write appends p, rotating first when it would pass the cap. It never fails: a
// model whose stderr cannot be logged must not block on a full pipe, so what cannot
// be written is dropped.
func (l *workerLog) Write(p []byte) (int, error) {
	n := len(p)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil || l.failed {
		return n, nil
	}
	if int64(len(p)) > l.max {
		p = p[int64(len(p))-l.max:]
	}
	if l.size+int64(len(p)) > l.max {
		l.f.Close()
		if err := os.Rename(l.path, l.path+".1"); err != nil {
			l.f, l.failed = nil, true
			return n, nil
		}
		f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_APPEND, 0o644)
		if err != nil {
			l.f, l.failed = nil, true
			return n, nil
		}
		l.f, l.size = f, 0
	}
	w, err := l.f.Write(p)
	l.size += int64(w)
	if err != nil {
		l.failed = true
	}
	return n, nil
}

// switchTo continues the log in path (the next shard of a RunJob).
func (l *workerLog) switchTo(path string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.path == path {
		return nil
	}
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
	return l.open(path)
}

// Close closes the log file.
func (l *workerLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// tailBuffer keeps the last bytes written to it: the model's stderr tail for errors.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(p) > t.max {
		p = p[len(p)-t.max:]
	}
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return n, nil
}

// String returns the last lines kept, trimmed to max bytes.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf
	if len(b) > t.max {
		b = b[len(b)-t.max:]
		if i := strings.IndexByte(string(b), '\n'); i >= 0 && i < len(b)-1 {
			b = b[i+1:]
		}
	}
	return strings.TrimRight(string(b), "\n")
}
