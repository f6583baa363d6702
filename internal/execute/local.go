package execute

import (
	"context"

	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/jobsetup"
	"github.com/scivision-hpc/scv-hpc/internal/results"
	"github.com/scivision-hpc/scv-hpc/internal/runner"
)

// LocalResult is what Local did: the job it ran and how it was opened, this run's
// counts, and the totals of the job's results after it.
type LocalResult struct {
	Job     *job.Job
	Outcome jobsetup.Outcome
	Run     runner.Stats
	Totals  results.Totals
}

// Local runs the job s asks for on this machine, as predict does: it takes the job
// lock of s.Dir (created when missing), opens the job (jobsetup.Open: created,
// resumed, rescanned or replaced), runs every shard (Job) and sums up the results.
// o is the runner options for s.Job.Run and the overrides ov; a resumed job whose
// recorded options differ from those runs with its own (NeedsOwnOptions), the
// overrides laid over them.
func Local(ctx context.Context, s jobsetup.Spec, ov job.Override, o runner.Options) (LocalResult, error) {
	var res LocalResult
	unlock, err := job.Dir(s.Dir).LockNew()
	if err != nil {
		return res, err
	}
	defer unlock()
	if res.Job, res.Outcome, err = jobsetup.Open(ctx, s); err != nil {
		return res, err
	}
	j := res.Job
	if res.Outcome == jobsetup.Resumed {
		o.Log.Info().Str("out", s.Dir).Int("shards", j.Shards).Int64("inputs", j.Inputs).Msg("resuming the job")
	}
	if NeedsOwnOptions(j.Run, s.Job.Run, ov) {
		if o, err = RunnerOptions(j.Run, ov, o.Log, o.Progress); err != nil {
			return res, err
		}
	}
	if res.Run, err = Job(ctx, s.Dir, j, o); err != nil {
		return res, err
	}
	sum, err := results.Summarize(s.Dir)
	if err != nil {
		return res, err
	}
	res.Totals = sum.Totals
	return res, nil
}

// NeedsOwnOptions reports whether a job that recorded the run options recorded runs
// otherwise than the options asked for a new one (with the overrides ov laid over
// both): a resumed job keeps what it recorded, unless a flag overrides it. The cache
// directory is not compared: the one of this run is where the SIF was found.
func NeedsOwnOptions(recorded, asked job.RunOptions, ov job.Override) bool {
	eff := recorded.Apply(ov)
	eff.CacheDir = asked.CacheDir
	return eff != asked
}
