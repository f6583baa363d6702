package execute

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/rs/zerolog"

	"github.com/scivision-hpc/scv-hpc/internal/fetch"
	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/jobsetup"
	"github.com/scivision-hpc/scv-hpc/internal/slurm"
)

// SubmitRequest is what submit's command line gives: the model, the dataset, run-option
// and Slurm flags as parsed (Changed reports which were given), the site's Slurm
// defaults below them, and where the model comes from.
type SubmitRequest struct {
	Model   string
	Dataset jobsetup.Flags
	Run     job.RunFlags
	Slurm   slurm.Flags
	Changed func(flag string) bool
	// Site is what the Slurm flags are merged over (config.Site.SlurmDefaults).
	Site slurm.Options
	// LogLevel is the level the array tasks log at, recorded in slurm.json.
	LogLevel string
	// Stdin is read for --files-from - .
	Stdin io.Reader
	// DryRun writes the job directory and the scripts, and submits nothing.
	DryRun bool
	// Fetch returns where models come from; it is called only once every flag is
	// checked (PredictRequest.Fetch).
	Fetch func() (fetch.Options, error)
	// GPUDefault, when not nil, is called when the model wants a GPU and neither gres
	// nor GPUs per task were asked for: each task then asks for one GPU.
	GPUDefault func()
	Client     *slurm.Client // nil: &slurm.Client{}
	Log        zerolog.Logger
}

// SubmitResult is what a submission did: the job directory (absolute), the job, the
// shards submitted (for a dry run: planned) and Slurm's answer (nil when nothing was
// submitted; on an error, the arrays accepted before it).
type SubmitResult struct {
	Dir    string
	Job    *job.Job // nil until the job is created (Submit) or loaded (Resubmit)
	Shards []int
	Slurm  *slurm.JobSubmission
}

// Submit creates a job and submits every shard of it to Slurm, as submit does, in this
// order: every flag is checked first (the dataset flags, the Slurm flags merged over
// r.Site and the template parsed, the run-option flags laid over
// job.DefaultRunOptions (CheckRunOptions: a runtime or GPU list no node can use), and
// jobsetup.CheckForSlurm: no job in the directory yet, an
// absolute scratch), so a bad flag is an error before anything is pulled; then the
// model's SIF (fetch.NewJob), one GPU per task when the model wants a GPU and the
// flags ask for none (slurm.Options.WantGPU), the job and slurm.json created under the
// job lock (jobsetup.CreateForSlurm), held through the submission
// (slurm.Client.SubmitJob). The fetch's and the creation's errors are prefixed
// "submit: ". A result whose Job has no arrays recorded after an error left a job
// directory that nothing was submitted from.
func Submit(ctx context.Context, r SubmitRequest) (SubmitResult, error) {
	var res SubmitResult
	s, err := r.Dataset.Spec("submit", r.Changed, r.Stdin, r.Log)
	if err != nil {
		return res, err
	}
	defer s.List.Close()
	o, tmpl, err := r.Slurm.Options(r.Site, r.Changed, r.LogLevel)
	if err != nil {
		return res, err
	}
	ov, err := r.Run.Override(r.Changed)
	if err != nil {
		return res, err
	}
	run := job.DefaultRunOptions().Apply(ov)
	if err := CheckRunOptions(run, ov); err != nil {
		return res, err
	}
	if err := jobsetup.CheckForSlurm(s.Dir, run); err != nil {
		return res, err
	}
	res.Dir = s.Dir
	if s.Job, err = newJob(ctx, r.Model, run, r.Fetch); err != nil {
		return res, fmt.Errorf("submit: %w", err)
	}
	if o.WantGPU(s.Job.GPU) && r.GPUDefault != nil {
		r.GPUDefault()
	}
	o.LogLevel = r.LogLevel
	j, unlock, err := jobsetup.CreateForSlurm(ctx, s, o)
	if err != nil {
		return res, fmt.Errorf("submit: %w", err)
	}
	defer unlock()
	res.Job, res.Shards = j, j.AllShards()
	res.Slurm, err = submitShards(ctx, r.Client, slurm.JobRequest{
		JobDir: s.Dir, Job: j, Options: o, Template: tmpl, Shards: res.Shards, DryRun: r.DryRun,
	}, r.Log)
	return res, err
}

// ResubmitRequest is what resubmit's command line gives: the job directory and the
// Slurm flags as parsed (Changed reports which were given), merged over the job's
// slurm.json.
type ResubmitRequest struct {
	Dir     string // as given; made absolute
	Slurm   slurm.Flags
	Changed func(flag string) bool
	// LogLevel is the --log-level given to this command, "" when none was (the saved
	// one then stays).
	LogLevel string
	// FailedOnly submits the shards with failed inputs, and retries those inputs,
	// instead of the shards with inputs that have no result.
	FailedOnly bool
	DryRun     bool
	Client     *slurm.Client // nil: &slurm.Client{}
	Log        zerolog.Logger
}

// ResubmitResult is what Resubmit did: the plan, and the submission of its shards (no
// Slurm answer when the plan has none).
type ResubmitResult struct {
	SubmitResult
	Plan slurm.ResubmitPlan
}

// Resubmit submits again the shards of a submitted job that are missing results (or,
// FailedOnly, hold failures), as resubmit does, in this order: the job and its
// slurm.json loaded and the flags merged over it (the template parsed), so a bad flag
// is an error before anything is written; then the job lock (a held one is a
// *job.BusyError), and under it the plan (slurm.Client.PlanJob: the shards still
// pending or running in Slurm are left alone) and the submission of its shards.
func Resubmit(ctx context.Context, r ResubmitRequest) (ResubmitResult, error) {
	var res ResubmitResult
	dir, err := filepath.Abs(r.Dir)
	if err != nil {
		return res, err
	}
	j, err := job.Load(dir)
	if err != nil {
		return res, err
	}
	res.Dir, res.Job = dir, j
	saved, err := slurm.LoadOptions(dir)
	if err != nil {
		return res, fmt.Errorf("resubmit: %w", err)
	}
	o, tmpl, err := r.Slurm.Options(*saved, r.Changed, r.LogLevel)
	if err != nil {
		return res, err
	}
	unlock, err := job.Dir(dir).LockNew()
	if err != nil {
		return res, err
	}
	defer unlock()
	if res.Plan, err = client(r.Client).PlanJob(ctx, dir, j, r.FailedOnly); err != nil {
		return res, fmt.Errorf("resubmit %s: %w", r.Dir, err)
	}
	if len(res.Plan.Active) > 0 {
		r.Log.Info().Ints("shards", res.Plan.Active).Msg("left alone: still pending or running in Slurm")
	}
	if len(res.Plan.Shards) == 0 {
		return res, nil
	}
	res.Shards = res.Plan.Shards
	res.Slurm, err = submitShards(ctx, r.Client, slurm.JobRequest{
		JobDir: dir, Job: j, Options: o, Template: tmpl, Shards: res.Shards, RunArgs: res.Plan.RunArgs, DryRun: r.DryRun,
	}, r.Log)
	return res, err
}

// submitShards submits shards of a job (slurm.Client.SubmitJob) and logs when a dry
// run could not ask Slurm for its MaxArraySize.
func submitShards(ctx context.Context, c *slurm.Client, r slurm.JobRequest, log zerolog.Logger) (*slurm.JobSubmission, error) {
	res, err := client(c).SubmitJob(ctx, r)
	if err != nil {
		return res, err
	}
	if res.MaxArrayErr != nil {
		log.Warn().Err(res.MaxArrayErr).Int("max_array_size", res.MaxArraySize).Msg("dry run: using Slurm's default MaxArraySize")
	}
	return res, nil
}

// client returns c, or a client with the default environment when c is nil.
func client(c *slurm.Client) *slurm.Client {
	if c == nil {
		return &slurm.Client{}
	}
	return c
}
