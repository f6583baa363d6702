package slurm

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/job"
)

// fakeSlurm makes PATH hold only shell scripts named after Slurm commands (they use
// shell built-ins alone, so nothing else is needed and a real sacct is out of reach). Slurm's
// accounting needs slurmdbd and a database, which the test cluster does not run, so
// the join of squeue and sacct is checked against scripts that answer as they do.
func fakeSlurm(t *testing.T, scripts map[string]string) {
	t.Helper()
	dir := t.TempDir()
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir)
}

func TestViewFallsBackToAccounting(t *testing.T) {
	j := &job.Job{Slurm: &job.Slurm{Arrays: []job.Array{
		{JobID: "77", Shards: []int{0, 1, 2}},
		{JobID: "90", Shards: []int{1}}, // a resubmit of shard 1, still in the queue
	}}}
	purged := `case "$*" in *" 77 "*) echo "slurm_load_jobs error: Invalid job id specified" >&2; exit 1;; esac
echo "90_0 RUNNING None"
`
	for _, tc := range []struct {
		name  string
		sacct string // "" = not installed
		want  map[int]string
	}{
		{"accounting", `echo "77_0|COMPLETED"; echo "77_1|CANCELLED by 0"; echo "77_2|TIMEOUT"`,
			map[int]string{0: StateCompleted, 1: StateRunning, 2: StateFailed}},
		{"accounting disabled", `echo "sacct: error: Slurm accounting storage is disabled" >&2; exit 1`,
			map[int]string{0: StateFinished, 1: StateRunning, 2: StateFinished}},
		{"no sacct", "", map[int]string{0: StateFinished, 1: StateRunning, 2: StateFinished}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			scripts := map[string]string{"squeue": purged}
			if tc.sacct != "" {
				scripts["sacct"] = tc.sacct
			}
			fakeSlurm(t, scripts)
			view, err := (&Client{}).View(context.Background(), j)
			if err != nil {
				t.Fatal(err)
			}
			for shard, state := range tc.want {
				if view[shard].State != state {
					t.Errorf("shard %d: %+v, want %s", shard, view[shard], state)
				}
			}
			if tc.name == "accounting" && view[2].SlurmState != "TIMEOUT" {
				t.Errorf("shard 2 slurm state %q, want TIMEOUT", view[2].SlurmState)
			}
		})
	}
}
