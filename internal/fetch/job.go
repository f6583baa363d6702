package fetch

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/scivision-hpc/scv-hpc/internal/job"
)

// NewJob returns the job of model with the run options run, for predict and submit:
// the model's SIF ensured (Ensure, with a cached SIF re-hashed: once per job created,
// never per array task), and the cache it is in, made absolute, recorded for the
// nodes. The job's data, output and shards are set by the caller.
func NewJob(ctx context.Context, model string, run job.RunOptions, o Options) (job.Job, error) {
	o.Verify = true
	m, err := Ensure(ctx, model, o)
	if err != nil {
		return job.Job{}, err
	}
	if run.CacheDir, err = filepath.Abs(o.Cache.Dir); err != nil {
		return job.Job{}, fmt.Errorf("cache %s: %w", o.Cache.Dir, err)
	}
	return job.Job{Model: model, Ref: m.Ref, Digest: m.Digest, SIF: m.SIF, Predict: m.Predict, GPU: m.GPU, Run: run}, nil
}
