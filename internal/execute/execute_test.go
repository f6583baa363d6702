package execute

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/scivision-hpc/scv-hpc/internal/container"
	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/results"
	"github.com/scivision-hpc/scv-hpc/internal/runner"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// TestRunnerOptions: the translation of a job's run options and the flags' overrides,
// case by case. The runner lays the overrides over the job's options itself; here the
// runtime and the GPUs follow them too.
func TestRunnerOptions(t *testing.T) {
	base := job.RunOptions{Workers: 2, GPUs: "none", Runtime: "builtin", ItemTimeout: job.Duration(time.Minute), Retries: 3, Scratch: "/s"}
	neg, docker, builtin, twoGPUs := -1, "docker", "builtin", "0,1"
	for _, tc := range []struct {
		name    string
		edit    func(*job.RunOptions)
		ov      job.Override
		retries int
		gpus    int
		bad     bool
	}{
		{"as recorded", func(*job.RunOptions) {}, job.Override{}, 3, 0, false},
		{"no retries stays none", func(r *job.RunOptions) { r.Retries = 0 }, job.Override{}, 0, 0, false},
		{"explicit GPU ids", func(r *job.RunOptions) { r.GPUs = "0,1" }, job.Override{}, 3, 2, false},
		{"GPU ids from the override", func(*job.RunOptions) {}, job.Override{GPUs: &twoGPUs}, 3, 2, false},
		{"an override replaces a bad runtime", func(r *job.RunOptions) { r.Runtime = "docker" }, job.Override{Runtime: &builtin}, 3, 0, false},
		{"negative workers", func(r *job.RunOptions) { r.Workers = -1 }, job.Override{}, 0, 0, true},
		{"negative retries override", func(*job.RunOptions) {}, job.Override{Retries: &neg}, 0, 0, true},
		{"unknown runtime", func(r *job.RunOptions) { r.Runtime = "docker" }, job.Override{}, 0, 0, true},
		{"unknown runtime override", func(*job.RunOptions) {}, job.Override{Runtime: &docker}, 0, 0, true},
		{"bad GPU list", func(r *job.RunOptions) { r.GPUs = "," }, job.Override{}, 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := base
			tc.edit(&r)
			o, err := RunnerOptions(r, tc.ov, zerolog.Nop(), nil)
			if tc.bad {
				if !errors.Is(err, ErrBadOption) {
					t.Fatalf("err %v, want ErrBadOption", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// What the runner runs with: the job's options with o.Override applied.
			eff := r.Apply(o.Override)
			if o.Override != tc.ov || eff.Retries != tc.retries || len(o.GPUs) != tc.gpus || eff.Workers != r.Workers ||
				eff.ItemTimeout != job.Duration(time.Minute) || eff.Scratch != "/s" || o.Runtime == nil {
				t.Errorf("RunnerOptions = %+v (in effect %+v)", o, eff)
			}
		})
	}
}

// hostRuntime runs the model directly on the host: what is tested here is the shard
// locking around the runner, which has its own tests with the container runtimes.
type hostRuntime struct{}

func (hostRuntime) Name() string                          { return "host" }
func (hostRuntime) Prepare(context.Context, string) error { return nil }
func (hostRuntime) Command(ctx context.Context, s container.Spec) (*exec.Cmd, error) {
	cmd := exec.CommandContext(ctx, s.Command[0], s.Command[1:]...)
	cmd.Dir = s.Scratch
	cmd.Env = os.Environ()
	for k, v := range s.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	return cmd, nil
}

// TestJobLocksEachShard: Job runs the shards under their locks, taken without
// waiting: a shard another run holds stops it with a *job.BusyError naming that
// shard, after the shards before it ran and released their locks; once the holder is
// gone a second Job resumes and completes every shard.
func TestJobLocksEachShard(t *testing.T) {
	model := testenv.BuildProgram(t, "./internal/runner/testdata/testmodel")
	dir := t.TempDir()
	j := &job.Job{Model: "testmodel", SIF: filepath.Join(dir, "model.sif"), Predict: []string{model}, DataRoot: t.TempDir(),
		Shards: 3, Inputs: 15, Run: job.DefaultRunOptions()}
	if err := os.MkdirAll(job.ShardsDir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := job.Save(dir, j); err != nil {
		t.Fatal(err)
	}
	for i := range j.Shards {
		var b strings.Builder
		for k := range 5 {
			fmt.Fprintf(&b, "s%d/img%d.png\n", i, k)
		}
		if err := os.WriteFile(job.ShardFile(dir, i), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	unlock, err := job.Dir(dir).LockShard(1)
	if err != nil {
		t.Fatal(err)
	}
	o := runner.Options{Runtime: hostRuntime{}, Log: zerolog.Nop()}
	st, err := Job(context.Background(), dir, j, o)
	var be *job.BusyError
	if !errors.As(err, &be) || be.What != "shard 1" {
		t.Fatalf("Job with shard 1 held = %v, want a BusyError of shard 1", err)
	}
	if st.OK != 5 {
		t.Errorf("stats %+v, want shard 0 run (5 ok)", st)
	}
	if f, err := results.Final(job.ResultFile(dir, 0)); err != nil || len(f) != 5 {
		t.Errorf("shard 0: %d results (%v), want 5", len(f), err)
	}
	for _, i := range []int{1, 2} {
		if _, err := os.Stat(job.ResultFile(dir, i)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("shard %d ran past the held shard: %v", i, err)
		}
	}
	u0, err := job.Dir(dir).LockShard(0)
	if err != nil {
		t.Fatalf("shard 0 still locked after Job returned: %v", err)
	}
	u0()
	unlock()
	if st, err = Job(context.Background(), dir, j, o); err != nil || st.OK != 10 || st.Skipped != 5 {
		t.Errorf("Job after the holder left: %+v, %v; want 10 ok, 5 skipped", st, err)
	}
}
