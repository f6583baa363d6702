package jobsetup

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/slurm"
)

// TestCreateForSlurm: job.json with a Slurm record and slurm.json with the job's cache
// and the options given are written, and the job lock is held until released; a
// second creation in the same directory fails and holds nothing.
func TestCreateForSlurm(t *testing.T) {
	for _, gpus := range []int{0, 2} {
		data, out := t.TempDir(), filepath.Join(t.TempDir(), "run")
		files(t, data, "a.png", "b.png", "c.png")
		s := spec(t, data, out)
		s.Job.Run.CacheDir = "/shared/cache"
		o := slurm.DefaultOptions()
		o.GPUsPerTask = gpus
		j, unlock, err := CreateForSlurm(context.Background(), s, &o)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := job.Dir(out).LockJob(); !errors.Is(err, job.ErrBusy) {
			t.Errorf("job lock while created: %v, want it held", err)
		}
		unlock()
		saved, err := slurm.LoadOptions(out)
		if err != nil {
			t.Fatal(err)
		}
		loaded, err := job.Load(out)
		if err != nil || j.Shards != 2 || loaded.Slurm == nil || loaded.Shards != 2 {
			t.Errorf("job %+v, loaded %+v, %v; want 2 shards and a Slurm record", j, loaded, err)
		}
		if saved.CacheDir != "/shared/cache" || saved.GPUsPerTask != gpus {
			t.Errorf("slurm.json %+v, want the cache and %d GPUs per task", saved, gpus)
		}
		o = slurm.DefaultOptions()
		if _, _, err := CreateForSlurm(context.Background(), s, &o); !errors.Is(err, job.ErrExists) {
			t.Errorf("second creation: %v, want job.ErrExists", err)
		}
		u, err := job.Dir(out).LockJob()
		if err != nil {
			t.Fatalf("job lock after a failed creation: %v, want it free", err)
		}
		u()
	}
}
