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

	"github.com/scivision-hpc/scv-hpc/internal/container"
	"github.com/scivision-hpc/scv-hpc/internal/gpu"
	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/results"
	"github.com/scivision-hpc/scv-hpc/internal/runner"
)

// runFlags are the runner settings of predict and run-shard.
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
chrooted in a mount namespace with NO GPU binding`

func (f *runFlags) register(fs *pflag.FlagSet, defaults job.RunOptions) {
	fs.IntVar(&f.workers, "workers", defaults.Workers, "model processes for a CPU model (with GPUs: one per GPU)")
	fs.StringVar(&f.gpus, "gpus", defaults.GPUs, "GPUs to use, one worker each: auto or all (what SLURM_JOB_GPUS, CUDA_VISIBLE_DEVICES or nvidia-smi give), none, or ids such as 0,1")
	fs.StringVar(&f.runtime, "runtime", defaults.Runtime, runtimeHelp)
	fs.DurationVar(&f.itemTimeout, "item-timeout", time.Duration(defaults.ItemTimeout), "time one input may take before its model process is killed and restarted")
	fs.IntVar(&f.retries, "retries", defaults.Retries, "retries of an input whose model process crashed or hung, before it is recorded failed")
	fs.DurationVar(&f.loadTimeout, "load-timeout", time.Duration(defaults.LoadTimeout), "time a model process may take to load (to print its ready handshake); 0 means the default, 10m")
	fs.StringVar(&f.scratch, "scratch", "", "directory for the workers' writable /scratch (default: a temporary directory under --tmpdir)")
}

// override returns the flags the user set, as overrides of a job's run options.
func (f *runFlags) override(fs *pflag.FlagSet) job.Override {
	var o job.Override
	if fs.Changed("workers") {
		o.Workers = &f.workers
	}
	if fs.Changed("gpus") {
		o.GPUs = &f.gpus
	}
	if fs.Changed("runtime") {
		o.Runtime = &f.runtime
	}
	if fs.Changed("item-timeout") {
		o.ItemTimeout = &f.itemTimeout
	}
	if fs.Changed("retries") {
		o.Retries = &f.retries
	}
	if fs.Changed("load-timeout") {
		o.LoadTimeout = &f.loadTimeout
	}
	if fs.Changed("scratch") {
		o.Scratch = &f.scratch
	}
	return o
}

// options returns the run options the flags give (defaults included).
func (f *runFlags) options() job.RunOptions {
	return job.RunOptions{Workers: f.workers, GPUs: f.gpus, Runtime: f.runtime,
		ItemTimeout: job.Duration(f.itemTimeout), Retries: f.retries, LoadTimeout: job.Duration(f.loadTimeout), Scratch: f.scratch}
}

// runnerOptions turns the run options in effect (a job's, with the overrides ov
// applied) into runner.Options: the runtime selected, the GPUs resolved ("" means
// auto: what Slurm or the host gives), ov handed on for the runner to apply.
func (a *app) runnerOptions(r job.RunOptions, ov job.Override) (runner.Options, error) {
	if r.Workers < 0 || r.Retries < 0 || r.ItemTimeout < 0 || r.LoadTimeout < 0 {
		return runner.Options{}, usageError{errors.New("--workers, --retries, --item-timeout and --load-timeout must not be negative")}
	}
	rt, err := container.Select(r.Runtime, a.log)
	if errors.Is(err, container.ErrUnknownRuntime) {
		return runner.Options{}, usageError{err}
	}
	if err != nil {
		return runner.Options{}, err
	}
	gpus := r.GPUs
	if gpus == "" {
		gpus = "auto"
	}
	ids, src, err := gpu.Resolve(gpus)
	if err != nil {
		return runner.Options{}, usageError{err}
	}
	if len(ids) > 0 {
		a.log.Info().Strs("gpus", ids).Str("from", src).Msg("one worker per GPU")
	}
	return runner.Options{Override: ov, GPUs: ids, Runtime: rt, Log: a.log, Progress: a.progressFactory()}, nil
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

// shardFailed counts the inputs whose final result in shard i is a failure.
func shardFailed(jobDir string, i int) (int, error) {
	f, err := results.Failed(job.ResultFile(jobDir, i))
	return len(f), err
}

func init() {
	register("run-shard", func(a *app) *cobra.Command {
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
cleanly: answers in flight are awaited briefly, results are flushed.

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
				fs := cmd.Flags()
				if !fs.Changed("index") {
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
				ov := rf.override(fs)
				ro, err := a.runnerOptions(j.Run.Apply(ov), ov)
				if err != nil {
					return err
				}
				ro.RetryFailed = retryFailed
				st, err := runner.RunShard(cmd.Context(), dir, j, shard, ro)
				if err != nil {
					if cmd.Context().Err() != nil {
						return fmt.Errorf("shard %d interrupted after %d new results; run the same command again to resume", shard, st.OK+st.Failed)
					}
					return fmt.Errorf("shard %d: %w", shard, err)
				}
				failed, err := shardFailed(dir, shard)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "shard %d: %d inputs: %d ok and %d failed in this run, %d already done; %d failed in total (%s)\n",
					shard, st.Inputs, st.OK, st.Failed, st.Skipped, failed, st.Elapsed.Round(time.Millisecond))
				if failed > 0 {
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
	})
}
