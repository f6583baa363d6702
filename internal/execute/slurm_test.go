package execute

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"github.com/scivision-hpc/scv-hpc/internal/container"
	"github.com/scivision-hpc/scv-hpc/internal/gpu"
	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/jobsetup"
	"github.com/scivision-hpc/scv-hpc/internal/slurm"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// realSlurm returns a client of the test process's single-node Slurm
// (testenv.StartSlurm: MaxArraySize testenv.SlurmTestMaxArraySize).
func realSlurm(t *testing.T) *slurm.Client {
	return &slurm.Client{Env: testenv.StartSlurm(t)}
}

// submitRequest returns the request of submit's command line args for model.
func submitRequest(t *testing.T, m *models, c *slurm.Client, model string, args ...string) *SubmitRequest {
	t.Helper()
	r := &SubmitRequest{Model: model, Fetch: m.fetch, Log: zerolog.Nop(), Site: slurm.DefaultOptions(), LogLevel: "info", Client: c}
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
// that Slurm's MaxArraySize allows (the real test cluster's); a model that wants a GPU gets one per task unless
// the flags or the site ask for GPUs already.
func TestSubmitDryRun(t *testing.T) {
	m := newModels(t)
	data := dataset(t, 10)
	c := realSlurm(t)
	maxArray := testenv.SlurmTestMaxArraySize
	var shards, first, second []int
	for i := range 10 {
		shards = append(shards, i)
	}
	first, second = shards[:maxArray], shards[maxArray:]
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
		{"a CPU model", "tm", nil, "", false, fmt.Sprintf("#SBATCH --array=0-%d\n", maxArray-1), "#SBATCH --g"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run")
			r := submitRequest(t, m, c, tc.model, append([]string{"--data", data, "--out", out, "--shard-size", "1", "--dry-run"}, tc.args...)...)
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
			if res.Dir != out || !reflect.DeepEqual(res.Shards, shards) || !reflect.DeepEqual(planned, [][]int{first, second}) || res.Slurm.MaxArraySize != maxArray {
				t.Errorf("Submit: dir %s, shards %v in arrays %v (MaxArraySize %d); want %s, %v in %v (%d)", res.Dir, res.Shards, planned, res.Slurm.MaxArraySize, out, shards, [][]int{first, second}, maxArray)
			}
			j, err := job.Load(out)
			if err != nil {
				t.Fatal(err)
			}
			if j.Shards != len(shards) || j.Slurm == nil || len(j.Slurm.Arrays) != 0 || j.Model != tc.model {
				t.Errorf("job.json: %d shards, slurm %+v, model %s; want %d shards, no array recorded", j.Shards, j.Slurm, j.Model, len(shards))
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
			r := submitRequest(t, m, nil, "tm", append([]string{"--data", data, "--out", out, "--dry-run"}, tc.args...)...)
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

// TestSubmitFails: when sbatch refuses the first array (the real Slurm: a partition it
// does not have), the job directory is kept with no array recorded, which the result
// shows (the command line then says how to resubmit it).
func TestSubmitFails(t *testing.T) {
	m := newModels(t)
	out := filepath.Join(t.TempDir(), "run")
	res, err := Submit(context.Background(), *submitRequest(t, m, realSlurm(t), "tm", "--data", dataset(t, 4), "--out", out, "--partition", "nosuchpartition"))
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "invalid partition") {
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
// without) and submits an array of the shards pending to the real Slurm, where they
// stay pending, held (sbatch --hold); with none pending it submits all three held and
// cancels them, so that Slurm knows the array and none of its tasks is active.
func submitted(t *testing.T, m *models, c *slurm.Client, pending ...int) string {
	t.Helper()
	ctx := context.Background()
	out := filepath.Join(t.TempDir(), "run")
	if _, err := Submit(ctx, *submitRequest(t, m, c, "tm", "--data", dataset(t, 7), "--out", out, "--shard-size", "3", "--dry-run", "--time", "0:30:00")); err != nil {
		t.Fatal(err)
	}
	j, err := job.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	o, err := slurm.LoadOptions(out)
	if err != nil {
		t.Fatal(err)
	}
	o.SbatchArgs = append(o.SbatchArgs, "--hold")
	shards := pending
	if len(pending) == 0 {
		shards = []int{0, 1, 2}
	}
	sub, err := c.SubmitJob(ctx, slurm.JobRequest{JobDir: out, Job: j, Options: o, Shards: shards})
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) == 0 {
		if err := c.Cancel(ctx, []string{sub.Arrays[0].Array.JobID}); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(job.Dir(out).ResultFile(0), []byte(`{"path":"img0.png","ok":true}`+"\n"+`{"path":"img1.png","ok":true}`+"\n"+`{"path":"img2.png","ok":true}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// resubmitRequest returns the request of resubmit's command line args.
func resubmitRequest(t *testing.T, c *slurm.Client, dir string, args ...string) ResubmitRequest {
	t.Helper()
	r := ResubmitRequest{Dir: dir, Log: zerolog.Nop(), Client: c}
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
	c := realSlurm(t)
	dir := submitted(t, m, c)
	pending := submitted(t, m, c, 2)
	predicted := t.TempDir()
	if err := job.Create(predicted, &job.Job{Model: "tm", Shards: 1}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		dir      string
		args     []string
		held     bool
		shards   []int // planned
		active   []int
		want     string // in the script
		err      error
		noSubmit bool
	}{
		{"shards without results", dir, []string{"--partition", "debug"}, false, []int{1, 2}, nil, "#SBATCH --partition=debug\n#SBATCH --time=0:30:00\n", nil, false},
		{"a shard still pending in Slurm", pending, nil, false, []int{1}, []int{2}, "#SBATCH --time=0:30:00\n", nil, false},
		{"failed only: none failed", dir, []string{"--failed-only"}, false, nil, nil, "", nil, true},
		{"bad flag, job held", dir, []string{"--gres", "gpu:1", "--gpus-per-task", "1"}, true, nil, nil, "", slurm.ErrBadOption, true},
		{"job of predict", predicted, nil, false, nil, nil, "", slurm.ErrNotSubmitted, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.held {
				unlock, err := job.Dir(tc.dir).LockJob()
				if err != nil {
					t.Fatal(err)
				}
				defer unlock()
			}
			os.Remove(job.Dir(tc.dir).Script(1)) // the script of a second array, which each case writes anew
			res, err := Resubmit(context.Background(), resubmitRequest(t, c, tc.dir, append(tc.args, "--dry-run")...))
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
	c := realSlurm(t)
	dir := submitted(t, m, c)
	// squeue is the real one, behind a script that notes each run.
	squeue, err := exec.LookPath("squeue")
	if err != nil {
		t.Fatal(err)
	}
	asked, bin := filepath.Join(t.TempDir(), "squeue-ran"), t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "squeue"), []byte("#!/bin/sh\n: > '"+asked+"'\nexec '"+squeue+"' \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	unlock, err := job.Dir(dir).LockJob()
	if err != nil {
		t.Fatal(err)
	}
	var be *job.BusyError
	if _, err := Resubmit(context.Background(), resubmitRequest(t, c, dir, "--dry-run")); !errors.As(err, &be) {
		t.Fatalf("Resubmit of a held job: %v, want a *job.BusyError", err)
	}
	for _, p := range []string{asked, job.Dir(dir).Script(1)} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s exists (%v): the held job was planned", p, err)
		}
	}
	unlock()
	res, err := Resubmit(context.Background(), resubmitRequest(t, c, dir, "--dry-run"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(asked); err != nil || !reflect.DeepEqual(res.Shards, []int{1, 2}) {
		t.Errorf("Resubmit of a free job: squeue asked: %v; shards %v, want [1 2]", err, res.Shards)
	}
}
