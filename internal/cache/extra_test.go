package cache

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/progress"
)

// recorder is a progress.Factory that remembers what each operation reported.
type recorder struct {
	mu   sync.Mutex
	ops  map[string]*recorded
	unit string
}

type recorded struct {
	mu          sync.Mutex
	total, done int64
	finished    bool
}

func (r *recorded) SetTotal(n int64) { r.mu.Lock(); r.total = max(r.total, n); r.mu.Unlock() }
func (r *recorded) Add(n int64)      { r.mu.Lock(); r.done += n; r.mu.Unlock() }
func (r *recorded) Done()            { r.mu.Lock(); r.finished = true; r.mu.Unlock() }

func (r *recorder) factory(name, unit string) progress.Reporter {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ops == nil {
		r.ops = map[string]*recorded{}
	}
	r.unit = unit
	r.ops[name] = &recorded{}
	return r.ops[name]
}

func TestProgressOfLongOperations(t *testing.T) {
	src, ds := populated(t)
	var sum int64
	for _, d := range ds {
		_, m, _ := src.Lookup(d)
		sum += m.Size
	}
	rec := &recorder{}
	src.Progress = rec.factory
	var buf bytes.Buffer
	if _, err := src.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := src.Export(context.Background(), &buf, nil); err != nil {
		t.Fatal(err)
	}
	dst := Open(t.TempDir())
	dst.Progress = rec.factory
	if _, err := dst.Import(context.Background(), &buf, ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"verify cache": sum, "export cache": 2 * sum, "import bundle": sum}
	for name, n := range want {
		r := rec.ops[name]
		if r == nil || r.total != n || r.done != n || !r.finished {
			t.Errorf("%s: reported %+v, want total and done %d and finished", name, r, n)
		}
	}
	if rec.unit != "bytes" {
		t.Errorf("unit %q", rec.unit)
	}
}

// TestCreateLockExcl covers the fallback for file systems without hard links.
func TestCreateLockExcl(t *testing.T) {
	c := Open(t.TempDir())
	path := filepath.Join(t.TempDir(), "sha256-x.lock")
	li := LockInfo{Host: thisHost(), PID: os.Getpid(), Token: newToken()}
	l, err := createLockExcl(path, li, lockJSON(li.Host, li.PID, li.Time))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := createLockExcl(path, li, nil); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second O_EXCL lock: %v", err)
	}
	if _, _, stale, err := c.lockState(path, c.staleAfter()); err != nil || stale {
		t.Fatalf("own fresh lock judged stale=%v (%v)", stale, err)
	}
	l.token = "t" // lockJSON writes token "t"
	l.release()
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("release left the lock: %v", err)
	}
}
