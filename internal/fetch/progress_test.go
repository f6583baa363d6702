package fetch

import (
	"fmt"
	"sync"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/progress"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// recorder is a progress bar that checks it never runs past its total.
type recorder struct {
	mu          sync.Mutex
	total, done int64
	over        string
	finished    bool
}

func (r *recorder) SetTotal(n int64) { r.mu.Lock(); r.total = n; r.mu.Unlock() }
func (r *recorder) Done()            { r.mu.Lock(); r.finished = true; r.mu.Unlock() }
func (r *recorder) Add(n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done += n
	if r.done > r.total && r.over == "" {
		r.over = fmt.Sprintf("%d of %d", r.done, r.total)
	}
}

// TestPullProgress: one bar for the whole pull, the layer bytes downloaded and
// then read by the conversion (the two overlap): it ends full, and never shows
// more than its total.
func TestPullProgress(t *testing.T) {
	host, _ := startRegistry(t)
	image := host + "/lab/progress:1"
	testenv.Push(t, testImage(t, "amd64", demoFiles, map[string]string{PredictLabel: "/usr/local/bin/demo"}), image)
	o := newOptions(t, "", nil)
	var bars []*recorder
	o.Registry.Progress = func(name, unit string) progress.Reporter {
		r := &recorder{}
		bars = append(bars, r)
		return r
	}
	if _, err := Ensure(ctx(t), image, o); err != nil {
		t.Fatal(err)
	}
	if len(bars) != 1 {
		t.Fatalf("%d progress bars, want one", len(bars))
	}
	r := bars[0]
	if r.over != "" || r.done != r.total || r.total == 0 || !r.finished {
		t.Errorf("bar: %d of %d at the end (over its total once: %q), finished %v", r.done, r.total, r.over, r.finished)
	}
}
