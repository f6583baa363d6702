package jobsetup

import (
	"context"
	"fmt"

	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/slurm"
)

// CreateForSlurm creates the job s asks for, to be submitted to Slurm with the options
// o: under the job lock of s.Dir (the directory made when missing), job.json with an
// empty Slurm record (Create), then slurm.json: o with the cache the job's SIF is in.
// The caller holds the returned lock through the submission and releases it; on an
// error nothing is held.
func CreateForSlurm(ctx context.Context, s Spec, o *slurm.Options) (*job.Job, job.Unlock, error) {
	unlock, err := job.Dir(s.Dir).LockNew()
	if err != nil {
		return nil, nil, err
	}
	s.Job.Slurm = &job.Slurm{}
	j, err := Create(ctx, s)
	if err != nil {
		unlock()
		return nil, nil, err
	}
	o.CacheDir = j.Run.CacheDir
	if err := slurm.SaveOptions(s.Dir, o); err != nil {
		unlock()
		return nil, nil, fmt.Errorf("save the Slurm options: %w", err)
	}
	return j, unlock, nil
}
