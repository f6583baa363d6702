package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/scivision-hpc/scv-hpc/internal/results"
	"github.com/scivision-hpc/scv-hpc/internal/slurm"
)

func init() {
	register("resubmit", func(a *app) *cobra.Command {
		var (
			sf                         slurmFlags
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
job directory) are used again; flags given here override them.`,
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
				o, err := slurm.LoadOptions(dir)
				if err != nil {
					return fmt.Errorf("resubmit: %w", err)
				}
				if err := sf.overlay(cmd, a, o); err != nil {
					return err
				}
				view, err := (&slurm.Client{}).View(ctx, j)
				if err != nil {
					return fmt.Errorf("resubmit %s: %w", args[0], err)
				}
				sum, err := results.SummarizeContext(ctx, dir)
				if err != nil {
					return fmt.Errorf("resubmit %s: %w", args[0], err)
				}
				var shards, active []int
				for _, st := range sum.Shards {
					want := st.Pending > 0
					if failedOnly {
						want = st.Failed > 0
					}
					if !want {
						continue
					}
					if v, ok := view[st.Index]; ok && slurm.Active(v.State) {
						active = append(active, st.Index)
						continue
					}
					shards = append(shards, st.Index)
				}
				if len(active) > 0 {
					a.log.Info().Ints("shards", active).Msg("left alone: still pending or running in Slurm")
				}
				if len(shards) == 0 {
					what := "missing"
					if failedOnly {
						what = "failed"
					}
					fmt.Fprintf(a.stdout, "nothing to resubmit: no shard of %s has %s inputs outside Slurm's queue (%d still queued or running)\n", args[0], what, len(active))
					return nil
				}
				var runArgs []string
				if failedOnly {
					runArgs = []string{"--retry-failed"}
				}
				return a.submitShards(cmd, dir, j, o, sf.tmpl, shards, runArgs, dryRun, asJSON)
			},
		}
		f := cmd.Flags()
		f.BoolVar(&failedOnly, "failed-only", false, "resubmit the shards with failed inputs, and retry those inputs")
		f.BoolVar(&dryRun, "dry-run", false, "print the script and the sbatch command; submit nothing")
		f.BoolVar(&asJSON, "json", false, "print the submission as JSON")
		sf.register(cmd)
		return cmd
	})
}

// overlay copies the flags given on the command line over the saved options.
func (sf *slurmFlags) overlay(cmd *cobra.Command, a *app, dst *slurm.Options) error {
	f, o := cmd.Flags(), &sf.opts
	for name, copyFn := range map[string]func(){
		"partition":      func() { dst.Partition = o.Partition },
		"account":        func() { dst.Account = o.Account },
		"qos":            func() { dst.QOS = o.QOS },
		"time":           func() { dst.Time = o.Time },
		"cpus-per-task":  func() { dst.CPUsPerTask = o.CPUsPerTask },
		"mem":            func() { dst.Mem = o.Mem },
		"gpus-per-task":  func() { dst.GPUsPerTask, dst.Gres = o.GPUsPerTask, "" },
		"gres":           func() { dst.Gres, dst.GPUsPerTask = o.Gres, 0 },
		"max-parallel":   func() { dst.MaxParallel = o.MaxParallel },
		"signal-seconds": func() { dst.SignalSeconds = o.SignalSeconds },
		"no-requeue":     func() { dst.NoRequeue = o.NoRequeue },
		"sbatch-arg":     func() { dst.SbatchArgs = o.SbatchArgs },
		"template":       func() { dst.Template = o.Template },
		"scv-hpc":        func() { dst.Binary = o.Binary },
	} {
		if f.Changed(name) {
			copyFn()
		}
	}
	if f.Changed("gpus-per-task") && f.Changed("gres") {
		return usageError{fmt.Errorf("give either --gpus-per-task or --gres, not both")}
	}
	if f.Changed("log-level") {
		dst.LogLevel = a.logLevel
	}
	return sf.resolve(dst)
}
