package slurm

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

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
			testenv.ScriptPATH(t, scripts)
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

// TestSubmitRefusesUnsafeValuesBeforeSbatch: Options.Params does not check the
// values; Submit does, rendering the first array before it runs any sbatch, so a
// bad value is refused with nothing submitted or recorded.
func TestSubmitRefusesUnsafeValuesBeforeSbatch(t *testing.T) {
	bad := []struct {
		name string
		edit func(o *Options)
	}{
		{"partition with a space", func(o *Options) { o.Partition = "gpu debug" }},
		{"time with a newline", func(o *Options) { o.Time = "1:00:00\n#SBATCH --qos=high" }},
		{"relative binary", func(o *Options) { o.Binary = "bin/scv-hpc" }},
		{"negative cpus", func(o *Options) { o.CPUsPerTask = -1 }},
	}
	for _, tc := range append(bad, struct {
		name string
		edit func(o *Options)
	}{"valid", func(o *Options) {}}) {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			ran := filepath.Join(root, "sbatch-ran")
			testenv.ScriptPATH(t, map[string]string{"sbatch": "echo \"$@\" > '" + ran + "'\necho 4242\n"})
			dir := filepath.Join(root, "job")
			j := &job.Job{Model: "faces", Shards: 12}
			if err := job.Save(dir, j); err != nil {
				t.Fatal(err)
			}
			o := &Options{Binary: "/opt/scv-hpc/bin/scv-hpc", SignalSeconds: DefaultSignalSeconds}
			tc.edit(o)
			p, err := o.Params(j, dir, nil)
			if err != nil {
				if tc.name == "valid" {
					t.Fatal(err)
				}
				return // refused before any script or sbatch (Options.Validate)
			}
			shards := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
			// MaxArraySize 5: three arrays, so a check per array after the first sbatch would not do.
			subs, err := (&Client{}).Submit(context.Background(), SubmitRequest{JobDir: dir, Job: j, Params: p, Shards: shards, MaxArraySize: 5})
			_, statErr := os.Stat(ran)
			if tc.name == "valid" {
				if err != nil || len(subs) != 3 || statErr != nil || len(j.Slurm.Arrays) != 3 {
					t.Fatalf("valid options: %d arrays, %v; sbatch ran: %v", len(subs), err, statErr)
				}
				return
			}
			if err == nil || len(subs) != 0 {
				t.Fatalf("accepted: %d arrays submitted, err %v", len(subs), err)
			}
			if !os.IsNotExist(statErr) {
				t.Errorf("sbatch ran before the bad value was refused (%v)", err)
			}
			if saved, lerr := job.Load(dir); lerr != nil || saved.Slurm != nil && len(saved.Slurm.Arrays) > 0 {
				t.Errorf("job.json records arrays after a refused submit: %+v %v", saved.Slurm, lerr)
			}
		})
	}
}
