package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/scivision-hpc/scv-hpc/internal/logging"
	"github.com/scivision-hpc/scv-hpc/internal/slurm"
	"github.com/scivision-hpc/scv-hpc/internal/watch"
)

// statusTableMax is how many shards status lists before it shows only those not done.
const statusTableMax = 50

func newStatusCmd(a *app) *cobra.Command {
	var asJSON, all, live bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "status JOBDIR",
		Short: "Show how far a job is: inputs done, failed and pending per shard",
		Long: `Status reads the job directory (shards/ and results/) and counts every input of every
shard as ok, failed or pending. A shard is "done" when all its inputs are ok, "failed" when
all have a result and some failed, "partial" when some have none yet, "pending" when none
has. For a job submitted to Slurm, the state of each shard's latest array task is shown too.
Jobs with more than 50 shards list only the shards that are not done (--all lists all).

--watch follows the job: per-shard progress bars, inputs per second, an ETA and the
failures so far, refreshed every --interval and redrawn in place on a terminal (one
line per interval when the output is not a terminal). Slurm is asked once per
interval for all the job's arrays. It returns when every input has a result or, on
Slurm, when no task of the job is pending or running.`,
		Example: `  scv-hpc status /scratch/run1
  scv-hpc status /scratch/run1 --watch --interval 30s
  scv-hpc status /scratch/run1 --json | jq .totals`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := filepath.Abs(args[0])
			if err != nil {
				return err
			}
			if live {
				return a.watchStatus(cmd.Context(), dir, interval, asJSON)
			}
			out, err := (&slurm.Client{}).Status(cmd.Context(), dir)
			if err != nil {
				return fmt.Errorf("status %s: %w", args[0], err)
			}
			if out.SlurmError != "" {
				a.log.Warn().Str("error", out.SlurmError).Msg("cannot ask Slurm; showing the results files only")
			}
			return a.render(asJSON, out, func(w io.Writer) error { return out.WriteText(w, statusTableMax, all) })
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	cmd.Flags().BoolVar(&all, "all", false, "list every shard, also when there are many")
	cmd.Flags().BoolVar(&live, "watch", false, "follow the job until it ends: redrawn in place on a terminal, one line per interval elsewhere")
	cmd.Flags().DurationVar(&interval, "interval", watch.DefaultInterval, "refresh interval of --watch (one squeue per interval)")
	return cmd
}

// watchStatus follows the job until it ends (status --watch).
func (a *app) watchStatus(ctx context.Context, dir string, interval time.Duration, asJSON bool) error {
	if asJSON {
		return usageError{errors.New("status: --watch draws a live view; --json gives one snapshot (leave out --watch)")}
	}
	o := watch.Options{Interval: interval, Terminal: logging.IsTerminal(a.stdout), Query: (&slurm.Client{}).QueryAll}
	o.Width, o.Height = watch.TerminalSize(a.stdout)
	if _, err := watch.Run(ctx, dir, a.stdout, o); err != nil && ctx.Err() == nil { // Ctrl-C: nothing to clean up
		return fmt.Errorf("status %s: %w", dir, err)
	}
	return nil
}
