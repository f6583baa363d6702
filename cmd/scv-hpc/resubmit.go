package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/slurm"
)

func newResubmitCmd(a *app) *cobra.Command {
	var (
		sf                         slurm.Flags
		failedOnly, dryRun, asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "resubmit JOBDIR",
		Short: "Submit a new Slurm array over the shards that are not finished",
		Long: `Resubmit reads the results on disk and Slurm's queue, and submits a new job array over
only the shards that still have inputs without a result (a task that was cancelled,
timed out, or ran on a failed node). Each task resumes: inputs that already have a
result are skipped, so 'collect' never sees duplicates. Shards still pending or running
in Slurm are left alone.

With --failed-only it submits the shards with failed inputs instead, and run-shard retries
those inputs (--retry-failed). The resources of the first submission (slurm.json in the
job directory) are used again; flags given here override them (--sbatch-arg adds to the
saved arguments).`,
		Example: `  scv-hpc resubmit /scratch/run1
  scv-hpc resubmit /scratch/run1 --time 4:00:00      # the first try timed out
  scv-hpc resubmit /scratch/run1 --failed-only --dry-run`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			dir, j, err := loadJobDir(args[0])
			if err != nil {
				return err
			}
			saved, err := slurm.LoadOptions(dir)
			if err != nil {
				return fmt.Errorf("resubmit: %w", err)
			}
			o, tmpl, err := sf.Options(*saved, cmd.Flags().Changed, a.givenLogLevel(cmd))
			if err != nil {
				return err
			}
			unlock, err := job.Dir(dir).LockNew()
			if err != nil {
				return err
			}
			defer unlock()
			plan, err := (&slurm.Client{}).PlanJob(ctx, dir, j, failedOnly)
			if err != nil {
				return fmt.Errorf("resubmit %s: %w", args[0], err)
			}
			if len(plan.Active) > 0 {
				a.log.Info().Ints("shards", plan.Active).Msg("left alone: still pending or running in Slurm")
			}
			if len(plan.Shards) == 0 {
				what := "missing"
				if failedOnly {
					what = "failed"
				}
				fmt.Fprintf(a.stdout, "nothing to resubmit: no shard of %s has %s inputs outside Slurm's queue (%d still queued or running)\n", args[0], what, len(plan.Active))
				return nil
			}
			return a.submitShards(ctx, slurm.JobRequest{JobDir: dir, Job: j, Options: o, Template: tmpl, Shards: plan.Shards, RunArgs: plan.RunArgs, DryRun: dryRun}, asJSON)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&failedOnly, "failed-only", false, "resubmit the shards with failed inputs, and retry those inputs")
	f.BoolVar(&dryRun, "dry-run", false, "print the script and the sbatch command; submit nothing")
	f.BoolVar(&asJSON, "json", false, "print the submission as JSON")
	sf.AddFlags(f)
	return cmd
}
