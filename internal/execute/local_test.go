package execute

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/jobsetup"
	"github.com/scivision-hpc/scv-hpc/internal/runner"
	"github.com/scivision-hpc/scv-hpc/internal/sharding"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// TestLocal: a first Local creates the job and runs every input; a second one resumes
// it and runs nothing again; a job held by another run is refused with a BusyError.
func TestLocal(t *testing.T) {
	model := testenv.BuildProgram(t, "./internal/runner/testdata/testmodel")
	data, dir := t.TempDir(), filepath.Join(t.TempDir(), "run")
	for i := range 7 {
		if err := os.WriteFile(filepath.Join(data, fmt.Sprintf("img%d.png", i)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := jobsetup.Spec{Dir: dir, DataRoot: data, Plan: sharding.Plan{ShardSize: 3}, Log: zerolog.Nop(),
		Job: job.Job{Model: "testmodel", Digest: "sha256:0", Predict: []string{model}, Run: job.DefaultRunOptions()}}
	o := runner.Options{Runtime: hostRuntime{}, Log: zerolog.Nop()}
	for _, want := range []struct {
		outcome     jobsetup.Outcome
		ok, skipped int64
	}{{jobsetup.Created, 7, 0}, {jobsetup.Resumed, 0, 7}} {
		res, err := Local(context.Background(), s, job.Override{}, o)
		if err != nil {
			t.Fatal(err)
		}
		if res.Outcome != want.outcome || res.Job.Shards != 3 || res.Run.OK != want.ok || res.Run.Skipped != want.skipped ||
			res.Totals.Inputs != 7 || res.Totals.OK != 7 {
			t.Errorf("Local: %s, %d shards, run %+v, totals %+v; want %s, 3 shards, %d ok and %d skipped, 7 of 7 ok",
				res.Outcome, res.Job.Shards, res.Run, res.Totals, want.outcome, want.ok, want.skipped)
		}
	}
	unlock, err := job.Dir(dir).LockJob()
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if _, err := Local(context.Background(), s, job.Override{}, o); !errors.Is(err, job.ErrBusy) {
		t.Errorf("Local of a held job: %v, want ErrBusy", err)
	}
}

func TestNeedsOwnOptions(t *testing.T) {
	d := job.DefaultRunOptions()
	builtin, four := "builtin", 4
	recorded := d
	recorded.Runtime, recorded.CacheDir = "builtin", "/old/cache"
	asked := d
	asked.CacheDir = "/cache"
	askedBuiltin := asked
	askedBuiltin.Runtime = "builtin"
	askedFour := asked
	askedFour.Workers = 4
	tests := []struct {
		name     string
		recorded job.RunOptions
		asked    job.RunOptions
		ov       job.Override
		want     bool
	}{
		{"same options, other cache", job.RunOptions{Workers: 1, GPUs: "auto", Runtime: "auto", ItemTimeout: d.ItemTimeout, Retries: 2, LoadTimeout: d.LoadTimeout, CacheDir: "/x"}, asked, job.Override{}, false},
		{"recorded runtime differs", recorded, asked, job.Override{}, true},
		{"an override makes them equal", recorded, askedBuiltin, job.Override{Runtime: &builtin}, false},
		{"overridden workers, both", d, askedFour, job.Override{Workers: &four}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NeedsOwnOptions(tt.recorded, tt.asked, tt.ov); got != tt.want {
				t.Errorf("NeedsOwnOptions = %v, want %v", got, tt.want)
			}
		})
	}
}
