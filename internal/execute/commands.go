package execute

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/scivision-hpc/scv-hpc/internal/fetch"
	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/jobsetup"
	"github.com/scivision-hpc/scv-hpc/internal/progress"
)

// PredictRequest is what predict's command line gives: the model, the dataset and
// run-option flags as parsed (Changed reports which were given), and where the model
// comes from.
type PredictRequest struct {
	Model   string
	Dataset jobsetup.Flags
	Run     job.RunFlags
	Changed func(flag string) bool
	// Stdin is read for --files-from - .
	Stdin io.Reader
	// Rescan re-shards a resumed job whose data or plan changed; Force replaces a job
	// of another model or data (jobsetup.Spec).
	Rescan, Force bool
	// Fetch returns where models come from (cache, catalog, registry settings). It is
	// called only once every flag is checked, so that a bad flag is reported before a
	// catalog is read or the cache touched.
	Fetch    func() (fetch.Options, error)
	Log      zerolog.Logger
	Progress progress.Factory // nil: none
}

// PredictResult is what Predict did: Local's result, the job directory (absolute, set
// once the flags are checked: an interrupted run's results are there) and the time the
// run took, from the job lock to the totals (the fetch not included).
type PredictResult struct {
	LocalResult
	Dir     string
	Elapsed time.Duration
}

// Predict runs a job on this machine from predict's flags, in this order: the
// dataset flags (jobsetup.Flags.Spec), the run-option flags (job.RunFlags.Override)
// laid over job.DefaultRunOptions, and their translation to runner.Options
// (RunnerOptions) are checked first, so a bad flag is an error before anything is
// pulled; then the model's SIF (fetch.NewJob) and the run (Local: the job lock, the
// job created or resumed, every shard). Errors after the flags are checked are
// prefixed "predict: ", except an *InterruptedError, returned as it is (the results
// so far stay in Dir; the same request resumes).
func Predict(ctx context.Context, r PredictRequest) (PredictResult, error) {
	var res PredictResult
	s, err := r.Dataset.Spec("predict", r.Changed, r.Stdin, r.Log)
	if err != nil {
		return res, err
	}
	defer s.List.Close()
	ov, err := r.Run.Override(r.Changed)
	if err != nil {
		return res, err
	}
	run := job.DefaultRunOptions().Apply(ov)
	ro, err := RunnerOptions(run, ov, r.Log, r.Progress)
	if err != nil {
		return res, err
	}
	res.Dir = s.Dir
	if s.Job, err = newJob(ctx, r.Model, run, r.Fetch); err != nil {
		return res, fmt.Errorf("predict: %w", err)
	}
	s.Rescan, s.Force = r.Rescan, r.Force
	start := time.Now()
	res.LocalResult, err = Local(ctx, s, ov, ro)
	res.Elapsed = time.Since(start)
	var ie *InterruptedError
	if err != nil && !errors.As(err, &ie) {
		return res, fmt.Errorf("predict: %w", err)
	}
	return res, err
}

// newJob returns the job of model with the run options run, its SIF ensured with the
// options fetchOptions returns (fetch.NewJob).
func newJob(ctx context.Context, model string, run job.RunOptions, fetchOptions func() (fetch.Options, error)) (job.Job, error) {
	o, err := fetchOptions()
	if err != nil {
		return job.Job{}, err
	}
	return fetch.NewJob(ctx, model, run, o)
}

// TaskRequest is what run-shard's command line gives: the job directory, the array
// task's index and offset, and the run-option flags as parsed (Changed reports which
// were given), which override the job's recorded options.
type TaskRequest struct {
	Dir string // as given; made absolute
	// Index is the array task index given, nil when none was: it is then read from
	// $SLURM_ARRAY_TASK_ID through Lookup (os.LookupEnv in use).
	Index       *int
	Offset      int
	Lookup      func(string) (string, bool)
	Run         job.RunFlags
	Changed     func(flag string) bool
	RetryFailed bool // also run the inputs whose last result is a failure
	Log         zerolog.Logger
	Progress    progress.Factory // nil: none
}

// TaskResult is what RunTask did: the job, the shard it ran and the shard's counts.
type TaskResult struct {
	Job   *job.Job // nil when the job could not be loaded
	Shard int
	ShardResult
}

// RunTask runs the shard of one array task, as run-shard does: the job loaded and the
// task's shard checked against it (LoadTask), the flags laid over the job's recorded
// run options (RunnerOptions), then the shard run under its lock, waiting while
// another run holds it (Shard with wait). A failure of the run names the shard
// (runner.RunShard);
// a cancelled context gives an *InterruptedError of the shard (its results so far
// stay, and the same request resumes).
func RunTask(ctx context.Context, r TaskRequest) (TaskResult, error) {
	var res TaskResult
	dir, err := filepath.Abs(r.Dir)
	if err != nil {
		return res, err
	}
	if res.Job, res.Shard, err = LoadTask(dir, r.Index, r.Offset, r.Lookup); err != nil {
		return res, err
	}
	ov, err := r.Run.Override(r.Changed)
	if err != nil {
		return res, err
	}
	ro, err := RunnerOptions(res.Job.Run, ov, r.Log, r.Progress)
	if err != nil {
		return res, err
	}
	ro.RetryFailed = r.RetryFailed
	res.ShardResult, err = Shard(ctx, dir, res.Job, res.Shard, ro, true)
	switch {
	case err == nil:
		return res, nil
	case ctx.Err() != nil:
		return res, &InterruptedError{Shard: res.Shard, Shards: res.Job.Shards, Err: context.Cause(ctx)}
	}
	return res, err // the runner names the shard
}
