package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/scivision-hpc/scv-hpc/internal/execute"
	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/runner"
)

// defaultRun is what predict and submit record in a new job when no flag says
// otherwise (job.DefaultRunOptions, the one place of these defaults).
var defaultRun = job.DefaultRunOptions()

// runnerOptions turns a job's run options r and the overrides ov into runner.Options
// (execute.RunnerOptions).
func (a *app) runnerOptions(r job.RunOptions, ov job.Override) (runner.Options, error) {
	return execute.RunnerOptions(r, ov, a.log, a.progressFactory())
}

func newRunShardCmd(a *app) *cobra.Command {
	var (
		rf          job.RunFlags
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
			var given *int
			if cmd.Flags().Changed("index") {
				given = &index
			}
			j, shard, err := execute.LoadTask(dir, given, offset, os.LookupEnv)
			if err != nil {
				return err
			}
			ov, err := rf.Override(cmd.Flags().Changed)
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
	rf.AddFlags(fs, job.RunOptions{})
	return cmd
}
