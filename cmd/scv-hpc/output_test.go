package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/catalog"
	"github.com/scivision-hpc/scv-hpc/internal/fetch"
	"github.com/scivision-hpc/scv-hpc/internal/gpu"
	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/jobsetup"
	"github.com/scivision-hpc/scv-hpc/internal/sharding"
	"github.com/scivision-hpc/scv-hpc/internal/slurm"
)

// TestWithHint: internal errors say what failed; the command line adds what to type,
// and keeps the error matchable.
func TestWithHint(t *testing.T) {
	for _, tc := range []struct {
		err  error
		hint string
	}{
		{&job.MismatchError{Dir: "/o", Have: "a", Want: "b"}, "--force"},
		{&jobsetup.ChangedError{Dir: "/o", What: "data"}, "--rescan"},
		{&job.BusyError{Dir: "/o", What: "the job"}, "wait for that run"},
		{fmt.Errorf("x: %w", job.ErrNoJob), "scv-hpc predict"},
		{fmt.Errorf("x: %w", slurm.ErrUnsafeValue), "--sbatch-arg"},
		{slurm.ErrGPUsAndGres, "--gpus-per-task or --gres"},
		{fmt.Errorf("sbatch: %w", slurm.ErrNoSlurm), "login node"},
		{fmt.Errorf("shard: %w", sharding.ErrNoInputs), "--include"},
		{fmt.Errorf("x: %w", gpu.ErrBadList), "--gpus"},
		{usageError{fmt.Errorf("x: %w", slurm.ErrGPUsAndGres)}, "--gres"},
		{fmt.Errorf("model x is %w", catalog.ErrUnknown), "scv-hpc models"},
		{fmt.Errorf("x: %w", catalog.ErrUnreadable), "--catalog"},
		{fmt.Errorf("x: %w", fetch.ErrNoPredict), "predict:"},
	} {
		got := withHint(tc.err)
		if !strings.Contains(got.Error(), tc.hint) || !strings.HasPrefix(got.Error(), tc.err.Error()) || !errors.Is(got, tc.err) {
			t.Errorf("withHint(%v) = %v, want the error, then %q", tc.err, got, tc.hint)
		}
	}
	plain := errors.New("disk full")
	if withHint(plain) != plain {
		t.Error("an error without a hint was changed")
	}
}
