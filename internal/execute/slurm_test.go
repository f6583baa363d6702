package execute

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"github.com/scivision-hpc/scv-hpc/internal/container"
	"github.com/scivision-hpc/scv-hpc/internal/gpu"
	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/jobsetup"
	"github.com/scivision-hpc/scv-hpc/internal/slurm"
)

// slurmPATH puts shell scripts named as Slurm's clients first on PATH for the rest of
// the test (the rest of PATH stays: the conversion and the runtime need it). A dry
// run asks only scontrol, for MaxArraySize.
func slurmPATH(t *testing.T, scripts map[string]string) {
	t.Helper()
	dir := t.TempDir()
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// submitRequest returns the request of submit's command line args for model.
func submitRequest(t *testing.T, m *models, model string, args ...string) *SubmitRequest {
	t.Helper()
	r := &SubmitRequest{Model: model, Fetch: m.fetch, Log: zerolog.Nop(), Site: slurm.DefaultOptions(), LogLevel: "info"}
	r.Changed = parse(t, append([]string{"--scv-hpc", "/opt/scv-hpc/bin/scv-hpc"}, args...), func(fs *pflag.FlagSet) {
		r.Dataset.AddFlags(fs, "", "")
		r.Run.AddFlags(fs, job.DefaultRunOptions())
		r.Slurm.AddFlags(fs)
		fs.BoolVar(&r.DryRun, "dry-run", false, "")
	})
	return r
}

// script reads the script of a submission's first array.
func script(t *testing.T, sub *slurm.JobSubmission) string {
	t.Helper()
	b, err := os.ReadFile(sub.Arrays[0].Script)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSubmitDryRun: a dry run creates the job and slurm.json and renders the arrays
// that Slurm's MaxArraySize allows; a model that wants a GPU gets one per task unless
// the flags or the site ask for GPUs already.
func TestSubmitDryRun(t *testing.T) {
	m := newModels(t)
	data := dataset(t, 7)
	slurmPATH(t, map[string]string{"scontrol": "echo 'MaxArraySize            = 2'\n"})
	for _, tc := range []struct {
		name       string
		model      string
		args       []string
		siteGres   string
		gpuDefault bool
		want, not  string // in the script, not in it
	}{
		{"model wants a GPU", "tm-gpu", nil, "", true, "#SBATCH --gpus-per-task=1\n", "#SBATCH --gres"},
		{"--gres given", "tm-gpu", []string{"--gres", "gpu:a100:1"}, "", false, "#SBATCH --gres=gpu:a100:1\n", "#SBATCH --gpus-per-task"},
		{"--gpus-per-task given", "tm-gpu", []string{"--gpus-per-task", "2"}, "", false, "#SBATCH --gpus-per-task=2\n", "#SBATCH --gres"},
		{"the site's gres", "tm-gpu", nil, "gpu:1", false, "#SBATCH --gres=gpu:1\n", "#SBATCH --gpus-per-task"},
		{"a CPU model", "tm", nil, "", false, "#SBATCH --array=0-1\n", "#SBATCH --g"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run")
			r := submitRequest(t, m, tc.model, append([]string{"--data", data, "--out", out, "--shard-size", "3", "--dry-run"}, tc.args...)...)
			r.Site.Gres, r.LogLevel = tc.siteGres, "debug"
			gpuDefault := false
			r.GPUDefault = func() { gpuDefault = true }
			res, err := Submit(context.Background(), *r)
			if err != nil {
				t.Fatal(err)
			}
			if gpuDefault != tc.gpuDefault {
				t.Errorf("GPU default called: %v, want %v", gpuDefault, tc.gpuDefault)
			}
			var planned [][]int
			for _, a := range res.Slurm.Arrays {
				planned = append(planned, a.Array.Shards)
			}
			if res.Dir != out || !reflect.DeepEqual(res.Shards, []int{0, 1, 2}) || !reflect.DeepEqual(planned, [][]int{{0, 1}, {2}}) || res.Slurm.MaxArraySize != 2 {
				t.Errorf("Submit: dir %s, shards %v in arrays %v (MaxArraySize %d); want %s, [0 1 2] in [[0 1] [2]] (2)", res.Dir, res.Shards, planned, res.Slurm.MaxArraySize, out)
			}
			j, err := job.Load(out)
			if err != nil {
				t.Fatal(err)
			}
			if j.Shards != 3 || j.Slurm == nil || len(j.Slurm.Arrays) != 0 || j.Model != tc.model {
				t.Errorf("job.json: %d shards, slurm %+v, model %s; want 3 shards, no array recorded", j.Shards, j.Slurm, j.Model)
			}
			o, err := slurm.LoadOptions(out)
			if err != nil {
				t.Fatal(err)
			}
			if o.LogLevel != "debug" || o.CacheDir != m.cacheDir || o.Binary != "/opt/scv-hpc/bin/scv-hpc" {
				t.Errorf("slurm.json: %+v; want log level debug, cache %s", o, m.cacheDir)
			}
			if s := script(t, res.Slurm); !strings.Contains(s, tc.want) || strings.Contains(s, tc.not) {
				t.Errorf("script: want %q, not %q:\n%s", tc.want, tc.not, s)
			}
		})
	}
}

// TestSubmitChecksFlagsFirst: a bad flag, whichever package checks it, is reported
// before the model is fetched and before anything is written into --out.
func TestSubmitChecksFlagsFirst(t *testing.T) {
	m := newModels(t)
	data := dataset(t, 2)
	taken := filepath.Join(t.TempDir(), "taken")
	if err := job.Create(taken, &job.Job{Model: "tm", Shards: 1}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		out  string
		args []string
		want error
	}{
		{"no --data", "", []string{"--data", ""}, jobsetup.ErrBadFlag},
		{"relative scratch", "", []string{"--scratch", "tmp"}, jobsetup.ErrBadFlag},
		{"a job in --out", taken, nil, job.ErrExists},
		{"zero workers", "", []string{"--workers", "0"}, job.ErrBadOption},
		{"unknown runtime", "", []string{"--runtime", "docker"}, container.ErrUnknownRuntime},
		{"malformed GPU list", "", []string{"--gpus", ","}, gpu.ErrBadList},
		{"negative retries", "", []string{"--retries", "-1"}, job.ErrBadOption},
		{"gres and GPUs per task", "", []string{"--gres", "gpu:1", "--gpus-per-task", "1"}, slurm.ErrBadOption},
		{"missing template", "", []string{"--template", "/nonexistent/job.tmpl"}, slurm.ErrTemplate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := tc.out
			if out == "" {
				out = filepath.Join(t.TempDir(), "run")
			}
			before, _ := os.ReadDir(out)
			r := submitRequest(t, m, "tm", append([]string{"--data", data, "--out", out, "--dry-run"}, tc.args...)...)
			res, err := Submit(context.Background(), *r)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Submit: %v, want %v", err, tc.want)
			}
			if res.Job != nil {
				t.Errorf("a job was created: %+v", res.Job)
			}
			m.untouched(t)
			if after, _ := os.ReadDir(out); len(after) != len(before) {
				t.Errorf("--out changed: %d entries, was %d", len(after), len(before))
			}
		})
	}
}

// TestSubmitFails: when sbatch refuses the first array, the job directory is kept
// with no array recorded, which the result shows (the command line then says how
// to resubmit it).
func TestSubmitFails(t *testing.T) {
	m := newModels(t)
	slurmPATH(t, map[string]string{
		"scontrol": "echo MaxArraySize=1001\n",
		"sbatch":   "echo 'sbatch: error: Batch job submission failed: Invalid account' >&2\nexit 1\n",
	})
	out := filepath.Join(t.TempDir(), "run")
	res, err := Submit(context.Background(), *submitRequest(t, m, "tm", "--data", dataset(t, 4), "--out", out))
	if err == nil || !strings.Contains(err.Error(), "Invalid account") {
		t.Fatalf("Submit: %v, want sbatch's refusal", err)
	}
	if res.Job == nil || len(res.Job.Slurm.Arrays) != 0 || res.Dir != out {
		t.Fatalf("Submit: %+v; want the job, with no array", res)
	}
	if _, err := job.Load(out); err != nil {
		t.Errorf("the job directory is not kept: %v", err)
	}
}

// submitted makes a job by a dry run of Submit (shard 0 with results, shards 1 and 2
// without) and records an array of all three in it, as a submission would.
func submitted(t *testing.T, m *models) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "run")
	slurmPATH(t, map[string]string{"scontrol": "echo MaxArraySize=1001\n"})
	if _, err := Submit(context.Background(), *submitRequest(t, m, "tm", "--data", dataset(t, 7), "--out", out, "--shard-size", "3", "--dry-run", "--time", "0:30:00")); err != nil {
		t.Fatal(err)
	}
	j, err := job.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := job.AddArray(out, j, 1001, job.Array{JobID: "77", Script: "job.sbatch", Shards: []int{0, 1, 2}, Submitted: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(job.Dir(out).ResultFile(0), []byte(`{"path":"img0.png","ok":true}`+"\n"+`{"path":"img1.png","ok":true}`+"\n"+`{"path":"img2.png","ok":true}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// resubmitRequest returns the request of resubmit's command line args.
func resubmitRequest(t *testing.T, dir string, args ...string) ResubmitRequest {
	t.Helper()
	r := ResubmitRequest{Dir: dir, Log: zerolog.Nop()}
	r.Changed = parse(t, args, func(fs *pflag.FlagSet) {
		r.Slurm.AddFlags(fs)
		fs.BoolVar(&r.FailedOnly, "failed-only", false, "")
		fs.BoolVar(&r.DryRun, "dry-run", false, "")
	})
	return r
}

// TestResubmit: the shards without results are planned again, the flags merged over
// the saved settings, those Slurm still runs left alone; --failed-only finds nothing
// to do in a job without failures; a bad flag is refused before the job lock, and a
// job of predict (no slurm.json) is not resubmitted.
func TestResubmit(t *testing.T) {
	m := newModels(t)
	dir := submitted(t, m)
	predicted := t.TempDir()
	if err := job.Create(predicted, &job.Job{Model: "tm", Shards: 1}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		dir      string
		squeue   string // squeue's answer for the array
		args     []string
		held     bool
		shards   []int // planned
		active   []int
		want     string // in the script
		err      error
		noSubmit bool
	}{
		{"shards without results", dir, "", []string{"--partition", "debug"}, false, []int{1, 2}, nil, "#SBATCH --partition=debug\n#SBATCH --time=0:30:00\n", nil, false},
		{"a shard still running", dir, "77_2 RUNNING None\n", nil, false, []int{1}, []int{2}, "#SBATCH --time=0:30:00\n", nil, false},
		{"failed only: none failed", dir, "", []string{"--failed-only"}, false, nil, nil, "", nil, true},
		{"bad flag, job held", dir, "", []string{"--gres", "gpu:1", "--gpus-per-task", "1"}, true, nil, nil, "", slurm.ErrBadOption, true},
		{"job of predict", predicted, "", nil, false, nil, nil, "", slurm.ErrNotSubmitted, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			slurmPATH(t, map[string]string{"squeue": "printf '" + tc.squeue + "'\n", "sacct": "exit 1\n", "scontrol": "echo MaxArraySize=1001\n"})
			if tc.held {
				unlock, err := job.Dir(tc.dir).LockJob()
				if err != nil {
					t.Fatal(err)
				}
				defer unlock()
			}
			os.Remove(job.Dir(tc.dir).Script(1)) // the script of a second array, which each case writes anew
			res, err := Resubmit(context.Background(), resubmitRequest(t, tc.dir, append(tc.args, "--dry-run")...))
			if !errors.Is(err, tc.err) || tc.err == nil && err != nil {
				t.Fatalf("Resubmit: %v, want %v", err, tc.err)
			}
			if tc.noSubmit {
				if res.Slurm != nil || len(res.Plan.Shards) != 0 {
					t.Errorf("Resubmit planned %v and submitted %+v", res.Plan.Shards, res.Slurm)
				}
				if _, err := os.Stat(job.Dir(tc.dir).Script(1)); !os.IsNotExist(err) {
					t.Errorf("a script was written: %v", err)
				}
				return
			}
			if !reflect.DeepEqual(res.Plan.Shards, tc.shards) || !reflect.DeepEqual(res.Plan.Active, tc.active) || !reflect.DeepEqual(res.Shards, tc.shards) ||
				len(res.Slurm.Arrays) != 1 || !reflect.DeepEqual(res.Slurm.Arrays[0].Array.Shards, tc.shards) {
				t.Errorf("Resubmit: plan %+v, submitted %v; want %v, %v still active", res.Plan, res.Shards, tc.shards, tc.active)
			}
			if s := script(t, res.Slurm); !strings.Contains(s, tc.want) {
				t.Errorf("script lacks %q:\n%s", tc.want, s)
			}
		})
	}
}

// TestResubmitLocksBeforePlan: resubmit takes the job lock before it asks Slurm about
// the job's arrays: while another predict, submit or resubmit holds it, squeue is not
// run and nothing is written; once it is free, the plan asks squeue.
func TestResubmitLocksBeforePlan(t *testing.T) {
	m := newModels(t)
	dir := submitted(t, m)
	asked := filepath.Join(t.TempDir(), "squeue-ran")
	slurmPATH(t, map[string]string{"squeue": ": > '" + asked + "'\n", "sacct": "exit 1\n", "scontrol": "echo MaxArraySize=1001\n"})
	unlock, err := job.Dir(dir).LockJob()
	if err != nil {
		t.Fatal(err)
	}
	var be *job.BusyError
	if _, err := Resubmit(context.Background(), resubmitRequest(t, dir, "--dry-run")); !errors.As(err, &be) {
		t.Fatalf("Resubmit of a held job: %v, want a *job.BusyError", err)
	}
	for _, p := range []string{asked, job.Dir(dir).Script(1)} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s exists (%v): the held job was planned", p, err)
		}
	}
	unlock()
	res, err := Resubmit(context.Background(), resubmitRequest(t, dir, "--dry-run"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(asked); err != nil || !reflect.DeepEqual(res.Shards, []int{1, 2}) {
		t.Errorf("Resubmit of a free job: squeue asked: %v; shards %v, want [1 2]", err, res.Shards)
	}
}
