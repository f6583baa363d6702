package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

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
			ctx, set := cmd.Context(), cmd.Flags().Changed
			s, err := df.Spec("submit", set, a.stdin, a.log)
			if err != nil {
				return err
			}
			defer s.List.Close()
			o, tmpl, err := sf.Options(a.cfg.Site.SlurmDefaults(), set, a.givenLogLevel(cmd))
			if err != nil {
				return err
			}
			ov, err := rf.Override(set)
			if err != nil {
				return err
			}
			run := defaultRun.Apply(ov)
			if err := jobsetup.CheckForSlurm(s.Dir, run); err != nil {
				return err
			}
			if s.Job, err = a.newJob(ctx, args[0], run); err != nil {
				return fmt.Errorf("submit: %w", err)
			}
			if o.WantGPU(s.Job.GPU) {
				a.log.Info().Str("model", args[0]).Msg("the model wants a GPU: asking Slurm for one per task (--gpus-per-task 1); set --gres or --gpus-per-task to change")
			}
			o.LogLevel = a.cfg.LogLevel
			j, unlock, err := jobsetup.CreateForSlurm(ctx, s, o)
			if err != nil {
				return fmt.Errorf("submit: %w", err)
			}
			defer unlock()
			err = a.submitShards(ctx, slurm.JobRequest{JobDir: s.Dir, Job: j, Options: o, Template: tmpl, Shards: j.AllShards(), DryRun: dryRun}, asJSON)
			if err != nil && len(j.Slurm.Arrays) == 0 {
				return fmt.Errorf("%w\nthe job directory %s is kept: fix the cause, then run 'scv-hpc resubmit %s' (its flags override the saved settings)",
					err, df.Out, slurm.Quote(df.Out))
			}
			return err
		},
	}
	f := cmd.Flags()
	df.AddFlags(f, "directory of input images (on a file system the nodes see)", "job directory to create (on a shared file system)")
	// The runner's settings, stored in job.json for every task (as predict's).
	rf.AddFlags(f, defaultRun)
	f.BoolVar(&dryRun, "dry-run", false, "write the job directory, print the script and the sbatch command; submit nothing")
	f.BoolVar(&asJSON, "json", false, "print the submission as JSON")
	sf.AddFlags(f)
	return cmd
}

// submitShards submits shards of a job (slurm.Client.SubmitJob) and prints what was
// done: the dry run's script and commands, the JSON report, or the arrays submitted.
func (a *app) submitShards(ctx context.Context, r slurm.JobRequest, asJSON bool) error {
	res, err := (&slurm.Client{}).SubmitJob(ctx, r)
	if err != nil {
		return err
	}
	if res.MaxArrayErr != nil {
		a.log.Warn().Err(res.MaxArrayErr).Int("max_array_size", res.MaxArraySize).Msg("dry run: using Slurm's default MaxArraySize")
	}
	switch {
	case asJSON:
		return printJSON(a, res.Report(r.JobDir, r.DryRun))
	case r.DryRun:
		return res.WriteDryRun(a.stdout, len(r.Shards))
	}
	_, err = fmt.Fprintf(a.stdout, "submitted %d shard(s) of %s as job array(s) %s\nfollow with: scv-hpc status %s\n",
		len(r.Shards), r.JobDir, res.ArraysText(), slurm.Quote(r.JobDir))
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

func newCancelCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:  "cancel JOBDIR",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, j, err := loadJobDir(args[0])
			if err != nil {
				return err
			}
			ids, err := slurm.ArrayIDs(j)
			if err != nil {
				return fmt.Errorf("cancel %s: %w", args[0], err)
			}
			if err := (&slurm.Client{}).Cancel(cmd.Context(), ids); err != nil {
				return fmt.Errorf("cancel %s: %w", args[0], err)
			}
			fmt.Fprintf(a.stdout, "cancelled job array(s) %s; results so far are kept: 'scv-hpc resubmit %s' runs what is missing\n",
				strings.Join(ids, ", "), slurm.Quote(args[0]))
			return nil
		},
	}
}
