package fetch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/cache"
	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// TestNewJob: the job records what the nodes need (digest, SIF, predict command, GPU,
// the absolute cache), keeps the run options given, and a corrupt cached SIF is found
// when the job is created, not inside a run.
func TestNewJob(t *testing.T) {
	host, _ := startRegistry(t)
	image := host + "/lab/demo:1"
	digest := testenv.Push(t, testImage(t, "amd64", demoFiles, map[string]string{PredictLabel: "/usr/local/bin/demo --serve"}), image)
	o := newOptions(t, fmt.Sprintf("models:\n  - {name: demo, image: %q, gpu: true}\n", image), nil)
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(wd, o.Cache.Dir)
	if err != nil {
		t.Fatal(err)
	}
	o.Cache = cache.Open(rel) // a relative --cache is recorded absolute

	run := job.DefaultRunOptions()
	run.Workers = 3
	j, err := NewJob(ctx(t), "demo", run, o)
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(rel)
	if j.Model != "demo" || j.Digest != digest || !j.GPU || !filepath.IsAbs(j.SIF) ||
		!reflect.DeepEqual(j.Predict, []string{"/usr/local/bin/demo", "--serve"}) {
		t.Errorf("job = %+v", j)
	}
	if j.Run.CacheDir != abs || j.Run.Workers != 3 {
		t.Errorf("run options = %+v, want the cache %s and 3 workers", j.Run, abs)
	}

	// A cached SIF corrupted since it was committed: the new job is refused.
	f, err := os.OpenFile(j.SIF, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("garbage"), 4096); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := NewJob(ctx(t), "demo", run, o); !errors.Is(err, cache.ErrCorrupt) {
		t.Errorf("NewJob of a corrupt cached SIF: %v, want cache.ErrCorrupt", err)
	}
}
