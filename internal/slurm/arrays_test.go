package slurm

import (
	"errors"
	"slices"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/job"
)

func TestArrayIDs(t *testing.T) {
	for _, tc := range []struct {
		name string
		j    job.Job
		want []string
		err  error
	}{
		{"predict job", job.Job{}, nil, ErrNoArrays},
		{"dry run", job.Job{Slurm: &job.Slurm{}}, nil, ErrNoArrays},
		{"two arrays", job.Job{Slurm: &job.Slurm{Arrays: []job.Array{{JobID: "101"}, {JobID: "102"}}}}, []string{"101", "102"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ArrayIDs(&tc.j)
			if !slices.Equal(got, tc.want) || !errors.Is(err, tc.err) {
				t.Errorf("ArrayIDs = %v, %v; want %v, %v", got, err, tc.want, tc.err)
			}
		})
	}
}
