package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/scivision-hpc/scv-hpc/internal/cli"
	"github.com/scivision-hpc/scv-hpc/internal/execute"
	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/jobsetup"
	"github.com/scivision-hpc/scv-hpc/internal/slurm"
)

func newSubmitCmd(a *app) *cobra.Command {
	var (
		sf             slurm.Flags
		rf             job.RunFlags
		df             jobsetup.Flags
		dryRun, asJSON bool
	)
	cmd := &cobra.Command{
		Use:  "submit MODEL --data DIR --out DIR",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := execute.Submit(cmd.Context(), execute.SubmitRequest{
				Model: args[0], Dataset: df, Run: rf, Slurm: sf, Changed: cmd.Flags().Changed,
				Site: a.cfg.Site.SlurmDefaults(), LogLevel: a.cfg.LogLevel, Stdin: a.stdin, DryRun: dryRun,
				Fetch: a.runFetchOptions, Log: a.log,
				GPUDefault: func() {
					a.log.Info().Str("model", args[0]).Msg("the model wants a GPU: asking Slurm for one per task (--gpus-per-task 1); set --gres or --gpus-per-task to change")
				},
			})
			if err == nil {
				err = a.printSubmission(res, dryRun, asJSON)
			}
			if err != nil && res.Job != nil && len(res.Job.Slurm.Arrays) == 0 {
				return fmt.Errorf("%w\nthe job directory %s is kept: fix the cause, then run 'scv-hpc resubmit %s' (its flags override the saved settings)",
					err, df.Out, slurm.Quote(df.Out))
			}
			return corruptHint(args[0], err)
		},
	}
	f := cmd.Flags()
	df.AddFlags(f, "directory of input images (on a file system the nodes see)", "job directory to create (on a shared file system)")
	// The runner's settings, stored in job.json for every task (as predict's).
	rf.AddFlags(f, job.DefaultRunOptions())
	f.BoolVar(&dryRun, "dry-run", false, "write the job directory, print the script and the sbatch command; submit nothing")
	f.BoolVar(&asJSON, "json", false, "print the submission as JSON")
	sf.AddFlags(f)
	return cmd
}

// printSubmission prints what a submission did: the dry run's script and commands,
// the JSON report, or the arrays submitted.
func (a *app) printSubmission(res execute.SubmitResult, dryRun, asJSON bool) error {
	switch {
	case asJSON:
		return cli.JSON(a.stdout, res.Slurm.Report(res.Dir, dryRun))
	case dryRun:
		return res.Slurm.WriteDryRun(a.stdout, len(res.Shards))
	}
	_, err := fmt.Fprintf(a.stdout, "submitted %d shard(s) of %s as job array(s) %s\nfollow with: scv-hpc status %s\n",
		len(res.Shards), res.Dir, res.Slurm.ArraysText(), slurm.Quote(res.Dir))
	return err
}

func newResubmitCmd(a *app) *cobra.Command {
	var (
		sf                         slurm.Flags
		failedOnly, dryRun, asJSON bool
	)
	cmd := &cobra.Command{
		Use:  "resubmit JOBDIR",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := execute.Resubmit(cmd.Context(), execute.ResubmitRequest{
				Dir: args[0], Slurm: sf, Changed: cmd.Flags().Changed, LogLevel: a.givenLogLevel(cmd),
				FailedOnly: failedOnly, DryRun: dryRun, Log: a.log,
			})
			switch {
			case err != nil:
				return err
			case res.Slurm == nil:
				what := "missing"
				if failedOnly {
					what = "failed"
				}
				fmt.Fprintf(a.stdout, "nothing to resubmit: no shard of %s has %s inputs outside Slurm's queue (%d still queued or running)\n", args[0], what, len(res.Plan.Active))
				return nil
			}
			return a.printSubmission(res.SubmitResult, dryRun, asJSON)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&failedOnly, "failed-only", false, "resubmit the shards with failed inputs, and retry those inputs")
	f.BoolVar(&dryRun, "dry-run", false, "print the script and the sbatch command; submit nothing")
	f.BoolVar(&asJSON, "json", false, "print the submission as JSON")
	sf.AddFlags(f)
	return cmd
}

func newCancelCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:  "cancel JOBDIR",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ids, err := (&slurm.Client{}).CancelJob(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "cancelled job array(s) %s; results so far are kept: 'scv-hpc resubmit %s' runs what is missing\n",
				strings.Join(ids, ", "), slurm.Quote(args[0]))
			return nil
		},
	}
}
