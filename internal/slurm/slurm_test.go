package slurm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// fakeRunShard records each run as a file ran/<offset+index> in the job
// directory; with SLEEP set in the script it sleeps first.
const fakeRunShard = `#!/bin/bash
# argv: [global flags...] run-shard JOBDIR --index I --offset O [flags...]
while [ "$1" != run-shard ]; do shift; done
dir=$2 index=$4 offset=$6
sleep "${FAKE_SLEEP:-0}"
mkdir -p "$dir/ran"
echo "$@" > "$dir/ran/$((offset + index))"
`

// realJob makes a job directory (with a hostile name) and a fake scv-hpc.
func realJob(t *testing.T, sleep int) (string, *job.Job, Params) {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "run $(touch pwned) 'x'")
	j := &job.Job{Model: "fake", Digest: "sha256:00"}
	if err := job.Save(dir, j); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, "scv-hpc")
	script := strings.Replace(fakeRunShard, "${FAKE_SLEEP:-0}", fmt.Sprint(sleep), 1)
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	p := Params{JobName: "scv-test", Binary: bin, JobDir: dir, Requeue: true, SignalSeconds: 30, GlobalArgs: []string{"--offline"}}
	return dir, j, p
}

// waitView polls View until done returns true for the view.
func waitView(t *testing.T, c *Client, j *job.Job, timeout time.Duration, done func(map[int]ShardState) bool) map[int]ShardState {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		v, err := c.View(context.Background(), j)
		if err != nil {
			t.Fatal(err)
		}
		if done(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out; last view: %+v", v)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func TestSubmitRealSlurm(t *testing.T) {
	c := &Client{Env: testenv.StartSlurm(t)}
	ctx := context.Background()
	max, err := c.MaxArraySize(ctx)
	if err != nil || max != testenv.SlurmTestMaxArraySize {
		t.Fatalf("MaxArraySize = %d, %v; want %d", max, err, testenv.SlurmTestMaxArraySize)
	}
	dir, j, p := realJob(t, 0)
	p.GPUsPerTask = 1         // the test cluster has two fake GPUs
	shards := make([]int, 11) // 11 shards > MaxArraySize 8: two arrays, the second by offset
	for i := range shards {
		shards[i] = i
	}
	subs, err := c.Submit(ctx, SubmitRequest{JobDir: dir, Job: j, Params: p, Shards: shards, MaxArraySize: max, MaxParallel: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != 2 || len(j.Slurm.Arrays) != 2 {
		t.Fatalf("want 2 arrays, got %d submissions, %d recorded", len(subs), len(j.Slurm.Arrays))
	}
	if !strings.Contains(strings.Join(subs[1].Command, " "), "--dependency=afterany:"+subs[0].Array.JobID) {
		t.Errorf("second array does not wait for the first: %q", subs[1].Command)
	}
	saved, err := job.Load(dir)
	if err != nil || len(saved.Slurm.Arrays) != 2 || saved.Slurm.Arrays[1].Shards[0] != 8 {
		t.Fatalf("job.json arrays not recorded: %+v %v", saved.Slurm, err)
	}
	view := waitView(t, c, j, 3*time.Minute, func(v map[int]ShardState) bool {
		for _, s := range v {
			if Active(s.State) {
				return false
			}
		}
		return len(v) == len(shards)
	})
	for _, sh := range shards {
		if view[sh].State != StateCompleted && view[sh].State != StateFinished {
			t.Errorf("shard %d: %+v", sh, view[sh])
		}
		b, err := os.ReadFile(filepath.Join(dir, "ran", fmt.Sprint(sh)))
		if err != nil {
			t.Errorf("shard %d never ran: %v", sh, err)
			continue
		}
		if !strings.Contains(string(b), dir) {
			t.Errorf("shard %d: job dir mangled: %q", sh, b)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "pwned")); err == nil {
		t.Error("injection ran")
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "logs", "*_*.out"))
	if len(logs) != len(shards) {
		t.Errorf("want %d task logs, got %v", len(shards), logs)
	}
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		if !strings.Contains(string(b), "exit status=0") || !strings.Contains(string(b), "node=") ||
			!(strings.Contains(string(b), "gpus=0 ") || strings.Contains(string(b), "gpus=1 ")) {
			t.Errorf("%s:\n%s", l, b)
		}
	}
}

func TestSubmitRefused(t *testing.T) {
	c := &Client{Env: testenv.StartSlurm(t)}
	dir, j, p := realJob(t, 0)
	p.Partition = "nosuchpartition"
	_, err := c.Submit(context.Background(), SubmitRequest{JobDir: dir, Job: j, Params: p, Shards: []int{0}})
	if err == nil || !strings.Contains(err.Error(), "sbatch refused") || !strings.Contains(strings.ToLower(err.Error()), "invalid partition") {
		t.Fatalf("want sbatch's own 'invalid partition' message, got %v", err)
	}
	if j.Slurm != nil && len(j.Slurm.Arrays) != 0 {
		t.Errorf("refused array recorded: %+v", j.Slurm.Arrays)
	}

	t.Setenv("PATH", t.TempDir())
	_, err = c.Submit(context.Background(), SubmitRequest{JobDir: dir, Job: j, Params: baseParamsFor(p), Shards: []int{0}})
	if !errors.Is(err, ErrNoSlurm) || !strings.Contains(err.Error(), "sbatch") {
		t.Fatalf("missing sbatch: got %v", err)
	}
}

func baseParamsFor(p Params) Params { p.Partition = ""; return p }

func TestCancelRealSlurm(t *testing.T) {
	c := &Client{Env: testenv.StartSlurm(t)}
	ctx := context.Background()
	dir, j, p := realJob(t, 300)
	if _, err := c.Submit(ctx, SubmitRequest{JobDir: dir, Job: j, Params: p, Shards: []int{0, 1, 2}, MaxParallel: 1}); err != nil {
		t.Fatal(err)
	}
	waitView(t, c, j, time.Minute, func(v map[int]ShardState) bool { return v[0].State == StateRunning })
	if ids, err := c.CancelJob(ctx, dir); err != nil || len(ids) != 1 || ids[0] != j.Slurm.Arrays[0].JobID {
		t.Fatalf("CancelJob = %v, %v; want the array %s", ids, err, j.Slurm.Arrays[0].JobID)
	}
	view := waitView(t, c, j, time.Minute, func(v map[int]ShardState) bool {
		for _, s := range v {
			if Active(s.State) {
				return false
			}
		}
		return true
	})
	for sh, s := range view {
		if s.State != StateCancelled {
			t.Errorf("shard %d after cancel: %+v", sh, s)
		}
	}
	// Cancelling again, or an array Slurm forgot, is not an error.
	if err := c.Cancel(ctx, []string{j.Slurm.Arrays[0].JobID}); err != nil {
		t.Errorf("second cancel: %v", err)
	}
	if _, err := c.CancelJob(ctx, t.TempDir()); !errors.Is(err, job.ErrNoJob) {
		t.Errorf("CancelJob of a directory with no job: %v", err)
	}
	if tasks, err := c.Query(ctx, "999999"); err != nil || len(tasks) != 0 {
		t.Errorf("unknown job: tasks %v, err %v", tasks, err)
	}
}

// TestSignalBeforeTimeLimit: with --time and --signal=B:TERM@N, Slurm signals
// the batch shell before the limit, the script forwards TERM to run-shard, which
// flushes and exits 0, and the task ends COMPLETED instead of TIMEOUT.
func TestSignalBeforeTimeLimit(t *testing.T) {
	c := &Client{Env: testenv.StartSlurm(t)}
	ctx := context.Background()
	dir, j, p := realJob(t, 0)
	flushing := `#!/bin/bash
while [ "$1" != run-shard ]; do shift; done
dir=$2
trap 'echo flushed > "$dir/flushed"; exit 0' TERM
while :; do sleep 0.2; done
`
	if err := os.WriteFile(p.Binary, []byte(flushing), 0o755); err != nil {
		t.Fatal(err)
	}
	p.Time, p.SignalSeconds = "1", 55 // 1 minute; TERM 55 s before the end
	if _, err := c.Submit(ctx, SubmitRequest{JobDir: dir, Job: j, Params: p, Shards: []int{0}}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	view := waitView(t, c, j, 2*time.Minute, func(v map[int]ShardState) bool { return len(v) == 1 && !Active(v[0].State) })
	if view[0].State != StateCompleted {
		t.Errorf("task state %+v, want completed (run-shard flushed and exited 0)", view[0])
	}
	if b, err := os.ReadFile(filepath.Join(dir, "flushed")); err != nil || !strings.Contains(string(b), "flushed") {
		t.Errorf("run-shard never got SIGTERM: %v", err)
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "logs", "*.out"))
	if len(logs) != 1 {
		t.Fatalf("logs: %v", logs)
	}
	b, _ := os.ReadFile(logs[0])
	if !strings.Contains(string(b), "received SIGTERM") || !strings.Contains(string(b), "exit status=0") {
		t.Errorf("log:\n%s", b)
	}
	t.Logf("signalled and flushed after %s", time.Since(start).Round(time.Second))
}

// TestCancelJobErrors: a directory with no job gives the job's load error, naming the
// directory once and absolute; a job with no array recorded is ErrNoArrays, prefixed
// with what was asked. Neither runs scancel.
func TestCancelJobErrors(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.Mkdir("nojob", 0o755); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs("nojob")
	c := &Client{}
	if _, err := c.CancelJob(context.Background(), "nojob"); !errors.Is(err, job.ErrNoJob) || !strings.HasPrefix(err.Error(), abs+": ") {
		t.Errorf("CancelJob of no job: %v; want ErrNoJob naming %s once", err, abs)
	}
	if err := job.Create("run", &job.Job{Model: "tm", Shards: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CancelJob(context.Background(), "run"); !errors.Is(err, ErrNoArrays) || !strings.HasPrefix(err.Error(), "cancel run: ") {
		t.Errorf("CancelJob of a job never submitted: %v; want ErrNoArrays, prefixed 'cancel run: '", err)
	}
}
