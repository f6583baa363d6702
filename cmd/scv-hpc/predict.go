package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/scivision-hpc/scv-hpc/internal/cli"
	"github.com/scivision-hpc/scv-hpc/internal/execute"
	"github.com/scivision-hpc/scv-hpc/internal/fetch"
	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/jobsetup"
)

func newPredictCmd(a *app) *cobra.Command {
	var (
		rf            job.RunFlags
		df            jobsetup.Flags
		rescan, force bool
	)
	cmd := &cobra.Command{
		Use:  "predict MODEL --data DIR --out DIR",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := execute.Predict(cmd.Context(), execute.PredictRequest{
				Model: args[0], Dataset: df, Run: rf, Changed: cmd.Flags().Changed, Stdin: a.stdin,
				Rescan: rescan, Force: force, Fetch: a.runFetchOptions, Log: a.log, Progress: a.progressFactory(),
			})
			var ie *execute.InterruptedError
			if errors.As(err, &ie) {
				return fmt.Errorf("%w; results so far are in %s; run the same command again to resume", err, job.Dir(res.Dir).ResultsDir())
			}
			if err != nil {
				return corruptHint(args[0], err)
			}
			t, run := res.Totals, res.Run
			fmt.Fprintf(a.stdout, "%s over %d inputs in %d shard(s): %d ok, %d failed, %d pending (this run: %d ok, %d failed, %d already done; %s)\n",
				args[0], t.Inputs, res.Job.Shards, t.OK, t.Failed, t.Pending, run.OK, run.Failed, run.Skipped, res.Elapsed.Round(time.Millisecond))
			fmt.Fprintf(a.stdout, "results in %s; merge with: scv-hpc collect %s -o results.csv\n", job.Dir(res.Dir).ResultsDir(), df.Out)
			if t.Failed > 0 {
				return cli.ErrInputsFailed
			}
			return nil
		},
	}
	fs := cmd.Flags()
	df.AddFlags(fs, "directory of input images", "job directory (created; an existing one for the same model and data is resumed)")
	rf.AddFlags(fs, job.DefaultRunOptions())
	fs.BoolVar(&rescan, "rescan", false, "re-shard a resumed job whose data or shard plan changed, keeping the results of the inputs still there")
	fs.BoolVar(&force, "force", false, "replace a job of another model or data in --out (the old one is moved to OUT/replaced-TIME/)")
	return cmd
}

// runFetchOptions are the fetch options of the commands that run models (predict,
// submit): the resolved configuration, no registry flags.
func (a *app) runFetchOptions() (fetch.Options, error) { return a.fetchOptions(nil) }

func newRunShardCmd(a *app) *cobra.Command {
	var (
		rf          job.RunFlags
		index       int
		offset      int
		retryFailed bool
	)
	cmd := &cobra.Command{
		Use:  "run-shard JOBDIR [--index I]",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var given *int
			if cmd.Flags().Changed("index") {
				given = &index
			}
			res, err := execute.RunTask(cmd.Context(), execute.TaskRequest{
				Dir: args[0], Index: given, Offset: offset, Lookup: os.LookupEnv, Run: rf, Changed: cmd.Flags().Changed,
				RetryFailed: retryFailed, Log: a.log, Progress: a.progressFactory(),
			})
			var ie *execute.InterruptedError
			switch {
			case errors.As(err, &ie):
				return fmt.Errorf("shard %d interrupted after %d new results; run the same command again to resume", ie.Shard, res.OK+res.Failed)
			case err != nil && res.Job != nil:
				return corruptHint(res.Job.Model, err)
			case err != nil:
				return err
			}
			fmt.Fprintf(a.stdout, "shard %d: %d inputs: %d ok and %d failed in this run, %d already done; %d failed in total (%s)\n",
				res.Shard, res.Inputs, res.OK, res.Failed, res.Skipped, res.FailedTotal, res.Elapsed.Round(time.Millisecond))
			if res.FailedTotal > 0 {
				return cli.ErrInputsFailed
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
