package main

import (
	"context"
	"fmt"

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
		Use:   "submit MODEL --data DIR --out DIR",
		Short: "Run a model over a dataset as Slurm job arrays",
		Long: `Submit runs MODEL over every image under --data as Slurm job arrays, one array task
per shard, each running 'scv-hpc run-shard' on a compute node without network access.

Before submitting, the model's SIF must be in the cache that the nodes read (--cache, or
'cache:' in the site config): submit pulls and converts it, or fails under --offline.
The job directory (--out, on a shared file system) records the image digest and SIF
path, so every task runs the same bits. More shards than Slurm's MaxArraySize become
several arrays, each mapped to its shards by an offset.

Defaults come from the site config (/etc/scv-hpc/config.yaml or SCV_HPC_CONFIG); the
batch script comes from the embedded template, or --template / 'template:'. See
docs/slurm.md.`,
		Example: `  scv-hpc submit faces --data /scratch/imgs --out /scratch/run1 --partition gpu --time 2:00:00
  scv-hpc submit faces --data /scratch/imgs --out /scratch/run1 --shards 200 --max-parallel 16 --gpus-per-task 1
  scv-hpc submit faces --data ./imgs --out ./run1 --dry-run      # print the script and sbatch command
  scv-hpc submit faces --data ./imgs --out ./run1 --sbatch-arg=--constraint=a100 --template site.tmpl`,
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
