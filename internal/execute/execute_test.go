package execute

import (
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/scivision-hpc/scv-hpc/internal/job"
)

// TestRunnerOptions: the translation of a job's run options, case by case.
func TestRunnerOptions(t *testing.T) {
	base := job.RunOptions{Workers: 2, GPUs: "none", Runtime: "builtin", ItemTimeout: job.Duration(time.Minute), Retries: 3, Scratch: "/s"}
	for _, tc := range []struct {
		name    string
		edit    func(*job.RunOptions)
		retries int
		gpus    int
		bad     bool
	}{
		{"as recorded", func(*job.RunOptions) {}, 3, 0, false},
		{"no retries stays none", func(r *job.RunOptions) { r.Retries = 0 }, -1, 0, false},
		{"explicit GPU ids", func(r *job.RunOptions) { r.GPUs = "0,1" }, 3, 2, false},
		{"negative workers", func(r *job.RunOptions) { r.Workers = -1 }, 0, 0, true},
		{"unknown runtime", func(r *job.RunOptions) { r.Runtime = "docker" }, 0, 0, true},
		{"bad GPU list", func(r *job.RunOptions) { r.GPUs = "," }, 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := base
			tc.edit(&r)
			o, err := RunnerOptions(r, zerolog.Nop(), nil)
			if tc.bad {
				if !errors.Is(err, ErrBadOption) {
					t.Fatalf("err %v, want ErrBadOption", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.Retries != tc.retries || len(o.GPUs) != tc.gpus || o.Workers != r.Workers || o.ItemTimeout != time.Minute || o.Scratch != "/s" || o.Runtime == nil {
				t.Errorf("RunnerOptions = %+v", o)
			}
		})
	}
}
