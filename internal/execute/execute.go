// Package execute runs a job's shards on this machine or node: it turns the job's
// recorded run options (with explicit overrides) into runner.Options, takes each
// shard's lock so that no shard runs twice at once (across nodes), and runs the
// shards through the runner — one shard (a Slurm array task, run-shard) or all of them
// (predict, which Local runs whole: the job opened under its lock, then every shard).
// Beside it, a job goes to Slurm instead (Submit, Resubmit).
//
// Each command that runs or submits a job has one entry point here, which takes the
// command's flags as parsed and does its whole sequence in the order the policy asks
// (every flag checked before anything is fetched; resubmit's job lock before its
// plan): Predict, RunTask (run-shard), Submit and Resubmit. What to print and what
// to type next are the command line's.
package execute

import (
	"context"
	"errors"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/scivision-hpc/scv-hpc/internal/cache"
	"github.com/scivision-hpc/scv-hpc/internal/container"
	"github.com/scivision-hpc/scv-hpc/internal/gpu"
	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/lockfile"
	"github.com/scivision-hpc/scv-hpc/internal/progress"
	"github.com/scivision-hpc/scv-hpc/internal/results"
	"github.com/scivision-hpc/scv-hpc/internal/runner"
)

// ErrBadOption marks run options that cannot be used (a negative count, an unknown
// runtime, a malformed GPU list): job.ErrBadOption, which the flags give too.
var ErrBadOption = job.ErrBadOption

// RunnerOptions turns a job's recorded run options r, with the explicit overrides ov
// (the flags a user set), into runner.Options: the runtime selected (container.Select)
// and the GPUs resolved ("" or "auto": what Slurm or the host gives) from r.Apply(ov),
// and ov handed on, which the runner lays over the job's recorded options the same way
// (workers, timeouts, retries, scratch; defaults in job.DefaultRunOptions, Retries 0
// meaning none). Options CheckRunOptions refuses give ErrBadOption.
func RunnerOptions(r job.RunOptions, ov job.Override, log zerolog.Logger, pf progress.Factory) (runner.Options, error) {
	if err := CheckRunOptions(r, ov); err != nil {
		return runner.Options{}, err
	}
	eff := r.Apply(ov)
	rt, err := container.Select(eff.Runtime, log)
	if err != nil {
		return runner.Options{}, err
	}
	ids, src, err := gpu.Resolve(eff.GPUs)
	if err != nil {
		return runner.Options{}, err // CheckRunOptions has checked the list
	}
	if len(ids) > 0 {
		log.Info().Strs("gpus", ids).Str("from", src).Msg("one worker per GPU")
	}
	return runner.Options{Override: ov, GPUs: ids, Runtime: rt, Log: log, Progress: pf}, nil
}

// CheckRunOptions returns ErrBadOption for run options (r with the overrides ov) that
// no node can run with: negative counts or durations, an unknown runtime, a malformed
// GPU list. Whether the runtime is installed and which GPUs there are are for the
// node that runs the job to tell (RunnerOptions).
func CheckRunOptions(r job.RunOptions, ov job.Override) error {
	if w := r.With(ov); w.Workers < 0 || w.Retries < 0 || w.ItemTimeout < 0 || w.LoadTimeout < 0 {
		return fmt.Errorf("%w: workers, retries, item and load timeouts must not be negative", ErrBadOption)
	}
	eff := r.Apply(ov)
	if err := container.CheckName(eff.Runtime); err != nil {
		return fmt.Errorf("%w: %w", ErrBadOption, err)
	}
	if err := gpu.Check(eff.GPUs); err != nil {
		return fmt.Errorf("%w: %w", ErrBadOption, err)
	}
	return nil
}

// ShardResult is what a run of one shard did: the runner's counts, and the inputs
// whose final result is a failure (this run's and earlier ones').
type ShardResult struct {
	runner.Stats
	FailedTotal int
}

// Shard runs shard i of the job j in dir (loaded when nil) under the shard's lock. With wait it waits while
// another run holds the shard (logging the holder once), and then resumes after it: what
// a Slurm array task does, whose requeued predecessor may still hold the lock. Without,
// a held shard gives a *job.BusyError naming the holder (host, pid, since).
func Shard(ctx context.Context, dir string, j *job.Job, i int, o runner.Options, wait bool) (ShardResult, error) {
	var (
		unlock job.Unlock
		err    error
	)
	if wait {
		unlock, err = job.Dir(dir).WaitShard(ctx, i, func(owner lockfile.Info) {
			o.Log.Warn().Int("shard", i).Str("host", owner.Host).Int("pid", owner.PID).Time("since", owner.Time).
				Msg("waiting: another run holds this shard (a dead holder's lock is taken over once stale)")
		})
	} else {
		unlock, err = job.Dir(dir).LockShard(i)
	}
	if err != nil {
		return ShardResult{}, err
	}
	defer unlock()
	st, err := runner.RunShard(ctx, dir, j, i, o)
	res := ShardResult{Stats: st}
	if err != nil {
		return res, explainFailure(ctx, dir, err)
	}
	f, err := results.Failed(job.Dir(dir).ResultFile(i))
	res.FailedTotal = len(f)
	return res, err
}

// explainFailure checks the SIF of the job in dir after a run of it failed, against
// the sha256 its cache recorded: a corrupt SIF, not the raw error of whatever read it
// (unsquashfs, apptainer), is then the error (a *cache.CorruptError, errors.Is
// cache.ErrCorrupt, with the run's failure in its text). The SIF is hashed only after
// a failure, so a run that works is never slowed down by it; a SIF outside a cache
// (no recorded checksum), a sound one, or a cancelled run keeps err as it is.
func explainFailure(ctx context.Context, dir string, err error) error {
	if ctx.Err() != nil {
		return err
	}
	j, lerr := job.Load(dir)
	if lerr != nil || j.SIF == "" {
		return err
	}
	cerr := cache.CheckSIFFile(ctx, j.SIF)
	if !errors.Is(cerr, cache.ErrCorrupt) {
		return err
	}
	return fmt.Errorf("%w (the run failed with: %v)", cerr, err)
}

// InterruptedError says that a run was cancelled at shard Shard of Shards.
type InterruptedError struct {
	Shard, Shards int
	Err           error
}

func (e *InterruptedError) Error() string {
	return fmt.Sprintf("interrupted at shard %d of %d: %v", e.Shard, e.Shards, e.Err)
}
func (e *InterruptedError) Unwrap() error { return e.Err }

// Job runs every shard of j (in dir) in order through runner.RunJob, so that each
// worker loads the model once for all of them, with each shard under its lock, taken
// without waiting when the shard starts (a held shard gives a *job.BusyError). A
// cancelled context gives an *InterruptedError; the results so far stay, and a later
// run resumes.
func Job(ctx context.Context, dir string, j *job.Job, o runner.Options) (runner.Stats, error) {
	shards := j.AllShards()
	cur := -1 // the shard running, for the error
	o.LockShard = func(_ context.Context, i int) (func(), error) {
		cur = i
		unlock, err := job.Dir(dir).LockShard(i)
		return unlock, err
	}
	total, err := runner.RunJob(ctx, dir, j, shards, o)
	switch {
	case err == nil:
		return total, nil
	case ctx.Err() != nil:
		return total, &InterruptedError{Shard: max(cur, 0), Shards: j.Shards, Err: context.Cause(ctx)}
	}
	return total, err // the runner names the shard
}
