package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/scivision-hpc/scv-hpc/internal/execute"
	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/runner"
)

// defaultRun is what predict and submit record in a new job when no flag says
// otherwise (job.DefaultRunOptions, the one place of these defaults).
var defaultRun = job.DefaultRunOptions()

// runFlags are the runner settings of predict, submit and run-shard.
type runFlags struct {
	workers     int
	gpus        string
	runtime     string
	itemTimeout time.Duration
	retries     int
	loadTimeout time.Duration
	scratch     string
}

const runtimeHelp = `container runtime: auto (apptainer, then singularity, else builtin), apptainer,
singularity, or builtin — a fallback for hosts without Apptainer that runs the image
in its own namespaces with NO GPU binding`

func (f *runFlags) register(fs *pflag.FlagSet, defaults job.RunOptions) {
	fs.IntVar(&f.workers, "workers", defaults.Workers, "model processes for a CPU model, at least 1 (with GPUs: one per GPU)")
	fs.StringVar(&f.gpus, "gpus", defaults.GPUs, "GPUs to use, one worker each: auto or all (what SLURM_JOB_GPUS, CUDA_VISIBLE_DEVICES or nvidia-smi give), none, or ids such as 0,1")
	fs.StringVar(&f.runtime, "runtime", defaults.Runtime, runtimeHelp)
	fs.DurationVar(&f.itemTimeout, "item-timeout", time.Duration(defaults.ItemTimeout), "time one input may take before its model process is killed and restarted (more than 0)")
	fs.IntVar(&f.retries, "retries", defaults.Retries, "retries of an input whose model process crashed or hung, before it is recorded failed (0: none)")
	fs.DurationVar(&f.loadTimeout, "load-timeout", time.Duration(defaults.LoadTimeout), "time a model process may take to load (to print its ready handshake); 0 means the default, 10m")
	fs.StringVar(&f.scratch, "scratch", "", "directory for the workers' writable /scratch (default: a temporary directory under --tmpdir)")
}

// override returns the flags the user set, as overrides of a job's run options. A
// zero --workers or --item-timeout is a usage error: zero has no meaning there.
func (f *runFlags) override(cmd *cobra.Command) (job.Override, error) {
	var o job.Override
	set := cmd.Flags().Changed
	if set("workers") && f.workers < 1 {
		return o, usageError{fmt.Errorf("--workers %d: want at least 1", f.workers)}
	}
	if set("item-timeout") && f.itemTimeout <= 0 {
		return o, usageError{fmt.Errorf("--item-timeout %s: want more than 0", f.itemTimeout)}
	}
	if set("retries") && f.retries < 0 {
		return o, usageError{fmt.Errorf("--retries %d: want 0 or more", f.retries)}
	}
	if set("load-timeout") && f.loadTimeout < 0 {
		return o, usageError{fmt.Errorf("--load-timeout %s: want 0 (the default) or more", f.loadTimeout)}
	}
	for flag, apply := range map[string]func(){
		"workers":      func() { o.Workers = &f.workers },
		"gpus":         func() { o.GPUs = &f.gpus },
		"runtime":      func() { o.Runtime = &f.runtime },
		"item-timeout": func() { o.ItemTimeout = &f.itemTimeout },
		"retries":      func() { o.Retries = &f.retries },
		"load-timeout": func() { o.LoadTimeout = &f.loadTimeout },
		"scratch":      func() { o.Scratch = &f.scratch },
	} {
		if set(flag) {
			apply()
		}
	}
	return o, nil
}

// options returns r with the flags the user set laid over it and the defaults of its
// zero fields filled in (job.RunOptions.Apply): the run options a new job records.
func (f *runFlags) options(cmd *cobra.Command, r job.RunOptions) (job.RunOptions, error) {
	ov, err := f.override(cmd)
	if err != nil {
		return r, err
	}
	return r.Apply(ov), nil
}

// runnerOptions turns a job's run options r and the overrides ov into runner.Options
// (execute.RunnerOptions); a bad option is a usage error.
func (a *app) runnerOptions(r job.RunOptions, ov job.Override) (runner.Options, error) {
	o, err := execute.RunnerOptions(r, ov, a.log, a.progressFactory())
	if errors.Is(err, execute.ErrBadOption) {
		return o, usageError{err}
	}
	return o, err
}

// envInt reads an integer environment variable; ok is false when it is unset.
func envInt(name string) (int, bool, error) {
	v := os.Getenv(name)
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, false, fmt.Errorf("$%s=%q is not a number", name, v)
	}
	return n, true, nil
}

func newRunShardCmd(a *app) *cobra.Command {
	var (
		rf          runFlags
		index       int
		offset      int
		retryFailed bool
	)
	cmd := &cobra.Command{
		Use:   "run-shard JOBDIR [--index I]",
		Short: "Run one shard of a job directory (what each Slurm array task runs)",
		Long: `Run-shard runs shard OFFSET+INDEX of the job in JOBDIR on this node: the model's SIF
(recorded in job.json, read from the cache without network), one long-lived model
process per GPU (or --workers for CPU models), results appended to
JOBDIR/results/NNNNNN.jsonl. Inputs that already have a result are skipped, so a
re-run after a preemption, time limit or crash resumes. SIGTERM and SIGINT stop it
cleanly: answers in flight are awaited briefly, results are flushed. A shard runs
once at a time: a second run-shard of it logs which run (host, pid) holds it, waits
for it to end, then resumes after it (a holder that died is taken over once its lock
is stale: at once on the same host, after 3 minutes from another node).

INDEX defaults to $SLURM_ARRAY_TASK_ID and OFFSET to 0; the batch script of 'scv-hpc
submit' passes --offset for each array. Runner flags override the job's settings.
The builtin runtime binds no GPU driver: GPU models need apptainer or singularity.

Exit status: 0 every input ok, 3 finished with failed inputs, 1 error or interrupted,
2 usage.`,
		Example: `  scv-hpc run-shard /scratch/run1 --index 0
  SLURM_ARRAY_TASK_ID=3 scv-hpc run-shard /scratch/run1
  scv-hpc run-shard /scratch/run1 --index 7 --gpus 0,1 --item-timeout 10m
  scv-hpc run-shard ./run1 --index 0 --runtime builtin --workers 4   # CPU model, no Apptainer`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := filepath.Abs(args[0])
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("index") {
				n, ok, err := envInt("SLURM_ARRAY_TASK_ID")
				if err != nil {
					return usageError{err}
				}
				if !ok {
					return usageError{errors.New("run-shard needs --index I (or $SLURM_ARRAY_TASK_ID inside a Slurm array)")}
				}
				index = n
			}
			if index < 0 || offset < 0 {
				return usageError{fmt.Errorf("--index %d and --offset %d must not be negative", index, offset)}
			}
			j, err := job.Load(dir)
			if err != nil {
				return err
			}
			shard := offset + index
			if shard >= j.Shards {
				return usageError{fmt.Errorf("shard %d (offset %d + index %d) does not exist: %s has %d shards", shard, offset, index, dir, j.Shards)}
			}
			ov, err := rf.override(cmd)
			if err != nil {
				return err
			}
			ro, err := a.runnerOptions(j.Run, ov)
			if err != nil {
				return err
			}
			ro.RetryFailed = retryFailed
			res, err := execute.Shard(cmd.Context(), dir, j, shard, ro, true)
			if err != nil {
				if cmd.Context().Err() != nil {
					return fmt.Errorf("shard %d interrupted after %d new results; run the same command again to resume", shard, res.OK+res.Failed)
				}
				return fmt.Errorf("shard %d: %w", shard, corruptHint(j.Model, err))
			}
			fmt.Fprintf(a.stdout, "shard %d: %d inputs: %d ok and %d failed in this run, %d already done; %d failed in total (%s)\n",
				shard, res.Inputs, res.OK, res.Failed, res.Skipped, res.FailedTotal, res.Elapsed.Round(time.Millisecond))
			if res.FailedTotal > 0 {
				return errInputsFailed
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&index, "index", 0, "array task index (default $SLURM_ARRAY_TASK_ID)")
	fs.IntVar(&offset, "offset", 0, "shard offset of this array: shard = offset + index")
	fs.BoolVar(&retryFailed, "retry-failed", false, "also run the inputs whose last result is a failure")
	rf.register(fs, job.RunOptions{})
	return cmd
}
