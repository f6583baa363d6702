package slurm

import (
	"errors"
	"fmt"

	"github.com/scivision-hpc/scv-hpc/internal/job"
)

// ErrNoArrays is returned by ArrayIDs for a job that has no Slurm array recorded: made
// by predict, or by a submit that submitted nothing (--dry-run, or sbatch failed).
var ErrNoArrays = errors.New("no Slurm array recorded in job.json")

// ArrayIDs returns the Slurm job IDs of j's arrays, in the order they were submitted.
func ArrayIDs(j *job.Job) ([]string, error) {
	if j.Slurm == nil || len(j.Slurm.Arrays) == 0 {
		return nil, fmt.Errorf("job of model %s: %w", j.Model, ErrNoArrays)
	}
	ids := make([]string, len(j.Slurm.Arrays))
	for i, arr := range j.Slurm.Arrays {
		ids[i] = arr.JobID
	}
	return ids, nil
}
