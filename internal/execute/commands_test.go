package execute

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/jobsetup"
	"github.com/scivision-hpc/scv-hpc/internal/progress"
	"github.com/scivision-hpc/scv-hpc/internal/results"
)

// predictRequest returns the request of predict's command line args for model.
func predictRequest(t *testing.T, m *models, model string, args ...string) PredictRequest {
	t.Helper()
	r := PredictRequest{Model: model, Fetch: m.fetch, Log: zerolog.Nop()}
	r.Changed = parse(t, args, func(fs *pflag.FlagSet) {
		r.Dataset.AddFlags(fs, "", "")
		r.Run.AddFlags(fs, job.DefaultRunOptions())
		fs.BoolVar(&r.Rescan, "rescan", false, "")
		fs.BoolVar(&r.Force, "force", false, "")
	})
	return r
}

// TestPredict: from the flags to the totals with the builtin runtime: a first run
// creates the job (the model fetched into the cache, the flags' run options recorded)
// and answers every input, one of them failed by the model; a second resumes it and
// runs nothing again; a third while another run holds the job is refused.
func TestPredict(t *testing.T) {
	m := newModels(t)
	data, out := dataset(t, 7), filepath.Join(t.TempDir(), "run")
	args := []string{"--data", data, "--out", out, "--shard-size", "3", "--runtime", "builtin", "--gpus", "none", "--workers", "2"}
	for _, want := range []struct {
		outcome     jobsetup.Outcome
		ok, skipped int64
	}{{jobsetup.Created, 6, 0}, {jobsetup.Resumed, 0, 7}} {
		res, err := Predict(context.Background(), predictRequest(t, m, "tm", args...))
		if err != nil {
			t.Fatal(err)
		}
		if res.Dir != out || res.Outcome != want.outcome || res.Job.Shards != 3 || res.Run.OK != want.ok || res.Run.Skipped != want.skipped ||
			res.Totals.Inputs != 7 || res.Totals.OK != 6 || res.Totals.Failed != 1 || res.Elapsed <= 0 {
			t.Errorf("Predict: dir %s, %s, %d shards, run %+v, totals %+v, %s; want %s, 3 shards, %d ok and %d skipped, 6 of 7 ok and 1 failed",
				res.Dir, res.Outcome, res.Job.Shards, res.Run, res.Totals, res.Elapsed, want.outcome, want.ok, want.skipped)
		}
	}
	j, err := job.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if j.Run.Workers != 2 || j.Run.Runtime != "builtin" || j.Run.CacheDir != m.cacheDir || j.Model != "tm" || j.Digest == "" {
		t.Errorf("job.json: model %s digest %q run %+v; want tm, 2 builtin workers, cache %s", j.Model, j.Digest, j.Run, m.cacheDir)
	}
	unlock, err := job.Dir(out).LockJob()
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	var be *job.BusyError
	if _, err := Predict(context.Background(), predictRequest(t, m, "tm", args...)); !errors.As(err, &be) {
		t.Errorf("Predict of a held job: %v, want a *job.BusyError", err)
	}
}

// TestPredictInterrupted: a run cancelled once it started (Ctrl-C, SIGTERM) is an
// *InterruptedError returned as it is, not prefixed "predict: " (the command line adds
// where the results are, from Dir); the same request then resumes and finishes.
func TestPredictInterrupted(t *testing.T) {
	m := newModels(t)
	data, out := dataset(t, 7), filepath.Join(t.TempDir(), "run")
	args := []string{"--data", data, "--out", out, "--shard-size", "3", "--runtime", "builtin", "--gpus", "none"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := predictRequest(t, m, "tm", args...)
	r.Progress = func(string, string) progress.Reporter { cancel(); return progress.Nop{} } // as the run starts
	res, err := Predict(ctx, r)
	var ie *InterruptedError
	if !errors.As(err, &ie) || !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "interrupted at shard ") || res.Dir != out {
		t.Fatalf("Predict cancelled: %v (dir %q); want an *InterruptedError as it is, and the job directory %s", err, res.Dir, out)
	}
	res, err = Predict(context.Background(), predictRequest(t, m, "tm", args...))
	if err != nil || res.Totals.Inputs != 7 || res.Totals.Pending != 0 {
		t.Fatalf("Predict resumed: %v, totals %+v; want 7 inputs, none pending", err, res.Totals)
	}
}

// TestPredictChecksFlagsFirst: a bad flag, whichever package checks it, is reported
// before the model is fetched: the fetch options are never asked for, no cache is
// made, and no job directory is written.
func TestPredictChecksFlagsFirst(t *testing.T) {
	m := newModels(t)
	data := dataset(t, 2)
	for _, tc := range []struct {
		name string
		args []string
		want error
	}{
		{"no --out", []string{"--data", data}, jobsetup.ErrBadFlag},
		{"zero shard size", []string{"--shard-size", "0"}, jobsetup.ErrBadFlag},
		{"missing data", []string{"--data", filepath.Join(data, "nope")}, jobsetup.ErrBadFlag},
		{"zero workers", []string{"--workers", "0"}, job.ErrBadOption},
		{"unknown runtime", []string{"--runtime", "docker"}, ErrBadOption},
		{"bad GPU list", []string{"--gpus", ","}, ErrBadOption},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run")
			args := append([]string{"--data", data, "--out", out, "--runtime", "builtin"}, tc.args...)
			if tc.name == "no --out" {
				args = tc.args
			}
			res, err := Predict(context.Background(), predictRequest(t, m, "tm", args...))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Predict: %v, want %v", err, tc.want)
			}
			if res.Job != nil {
				t.Errorf("a job was run: %+v", res.Job)
			}
			m.untouched(t)
			if _, err := os.Stat(filepath.Join(out, "job.json")); !os.IsNotExist(err) {
				t.Errorf("job.json written: %v", err)
			}
		})
	}
}

// TestRunTask: an array task's shard comes from --index or $SLURM_ARRAY_TASK_ID plus
// the offset, runs with the job's recorded options and the flags over them, and
// reports the failures of the shard in total; --retry-failed runs them again; a bad
// index or flag runs nothing; a cancelled task is an *InterruptedError of its shard.
func TestRunTask(t *testing.T) {
	m := newModels(t)
	data, out := dataset(t, 7), filepath.Join(t.TempDir(), "run")
	// The job, with no results yet: created while shard 0 is held, where its run stops.
	unlock, err := job.Dir(out).LockShard(0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Predict(context.Background(), predictRequest(t, m, "tm", "--data", data, "--out", out, "--shard-size", "3", "--runtime", "builtin", "--gpus", "none"))
	unlock()
	if !errors.Is(err, job.ErrBusy) {
		t.Fatalf("Predict with shard 0 held: %v, want ErrBusy", err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	env := func(v string) func(string) (string, bool) { return func(string) (string, bool) { return v, v != "" } }
	for _, tc := range []struct {
		name      string
		ctx       context.Context
		args      []string
		env       string
		shard     int
		ok, fails int // this run's, and the shard's in total
		skipped   int
		err       error
	}{
		{"index", context.Background(), []string{"--index", "2"}, "", 2, 1, 0, 0, nil},
		{"from Slurm with an offset", context.Background(), []string{"--offset", "1"}, "0", 1, 2, 1, 0, nil},
		{"again: all done", context.Background(), []string{"--index", "1"}, "", 1, 0, 1, 3, nil},
		{"retry failed", context.Background(), []string{"--index", "1", "--retry-failed"}, "", 1, 0, 1, 2, nil},
		{"no index", context.Background(), nil, "", 0, 0, 0, 0, ErrNoIndex},
		{"past the last shard", context.Background(), []string{"--index", "1", "--offset", "2"}, "", 3, 0, 0, 0, ErrNoShard},
		{"zero workers", context.Background(), []string{"--index", "0", "--workers", "0"}, "", 0, 0, 0, 0, job.ErrBadOption},
		{"unknown runtime", context.Background(), []string{"--index", "0", "--runtime", "docker"}, "", 0, 0, 0, 0, ErrBadOption},
		{"cancelled", cancelled, []string{"--index", "0"}, "", 0, 0, 0, 0, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := TaskRequest{Dir: out, Lookup: env(tc.env), Log: zerolog.Nop()}
			var index int
			r.Changed = parse(t, tc.args, func(fs *pflag.FlagSet) {
				fs.IntVar(&index, "index", 0, "")
				fs.IntVar(&r.Offset, "offset", 0, "")
				fs.BoolVar(&r.RetryFailed, "retry-failed", false, "")
				r.Run.AddFlags(fs, job.RunOptions{})
			})
			if r.Changed("index") {
				r.Index = &index
			}
			res, err := RunTask(tc.ctx, r)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("RunTask: %v, want %v", err, tc.err)
				}
				var ie *InterruptedError
				if tc.ctx.Err() != nil && (!errors.As(err, &ie) || ie.Shard != tc.shard) {
					t.Errorf("RunTask cancelled: %v, want an *InterruptedError of shard %d", err, tc.shard)
				}
				if res.OK+res.Failed != 0 {
					t.Errorf("RunTask answered %d inputs", res.OK+res.Failed)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Shard != tc.shard || res.OK != int64(tc.ok) || res.FailedTotal != tc.fails || res.Skipped != int64(tc.skipped) || res.Job.Shards != 3 {
				t.Errorf("RunTask: shard %d, %+v; want shard %d, %d ok, %d skipped, %d failed in total", res.Shard, res.ShardResult, tc.shard, tc.ok, tc.skipped, tc.fails)
			}
		})
	}

	// A shard whose results file is corrupt: the error names the shard once.
	if err := os.WriteFile(job.Dir(out).ResultFile(0), []byte("{not json}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	zero := 0
	_, err = RunTask(context.Background(), TaskRequest{Dir: out, Index: &zero, Lookup: env(""), Changed: func(string) bool { return false }, Log: zerolog.Nop()})
	if !errors.Is(err, results.ErrCorrupt) || strings.Count(err.Error(), "shard 0") != 1 {
		t.Errorf("RunTask of a shard with corrupt results: %v; want results.ErrCorrupt, naming shard 0 once", err)
	}
}
