package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/scivision-hpc/scv-hpc/internal/execute"
	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/jobsetup"
	"github.com/scivision-hpc/scv-hpc/internal/runner"
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
			ctx, set := cmd.Context(), cmd.Flags().Changed
			s, err := df.Spec("predict", set, a.stdin, a.log)
			if err != nil {
				return err
			}
			defer s.List.Close()
			ov, err := rf.Override(set)
			if err != nil {
				return err
			}
			run := defaultRun.Apply(ov)
			ro, err := a.runnerOptions(run, ov) // usage errors before any pull
			if err != nil {
				return err
			}
			if s.Job, err = a.newJob(ctx, args[0], run); err != nil {
				return fmt.Errorf("predict: %w", err)
			}
			s.Rescan, s.Force = rescan, force
			start := time.Now()
			res, err := execute.Local(ctx, s, ov, ro)
			var ie *execute.InterruptedError
			if errors.As(err, &ie) {
				return fmt.Errorf("%w; results so far are in %s; run the same command again to resume", err, job.Dir(s.Dir).ResultsDir())
			}
			if err != nil {
				return fmt.Errorf("predict: %w", corruptHint(args[0], err))
			}
			t, run1 := res.Totals, res.Run
			fmt.Fprintf(a.stdout, "%s over %d inputs in %d shard(s): %d ok, %d failed, %d pending (this run: %d ok, %d failed, %d already done; %s)\n",
				args[0], t.Inputs, res.Job.Shards, t.OK, t.Failed, t.Pending, run1.OK, run1.Failed, run1.Skipped, time.Since(start).Round(time.Millisecond))
			fmt.Fprintf(a.stdout, "results in %s; merge with: scv-hpc collect %s -o results.csv\n", job.Dir(s.Dir).ResultsDir(), df.Out)
			if t.Failed > 0 {
				return errInputsFailed
			}
			return nil
		},
	}
	fs := cmd.Flags()
	df.AddFlags(fs, "directory of input images", "job directory (created; an existing one for the same model and data is resumed)")
	rf.AddFlags(fs, defaultRun)
	fs.BoolVar(&rescan, "rescan", false, "re-shard a resumed job whose data or shard plan changed, keeping the results of the inputs still there")
	fs.BoolVar(&force, "force", false, "replace a job of another model or data in --out (the old one is moved to OUT/replaced-TIME/)")
	return cmd
}

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
		Use:  "run-shard JOBDIR [--index I]",
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
