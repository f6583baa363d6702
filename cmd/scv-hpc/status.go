package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/scivision-hpc/scv-hpc/internal/cli"
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
		Use:  "status JOBDIR",
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
			return cli.Render(a.stdout, asJSON, out, func(w io.Writer) error { return out.WriteText(w, statusTableMax, all) })
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
		return cli.Usagef("status: --watch draws a live view; --json gives one snapshot (leave out --watch)")
	}
	o := watch.Options{Interval: interval, Terminal: logging.IsTerminal(a.stdout), Query: (&slurm.Client{}).QueryAll}
	o.Width, o.Height = watch.TerminalSize(a.stdout)
	if _, err := watch.Run(ctx, dir, a.stdout, o); err != nil && ctx.Err() == nil { // Ctrl-C: nothing to clean up
		return fmt.Errorf("status %s: %w", dir, err)
	}
	return nil
}
