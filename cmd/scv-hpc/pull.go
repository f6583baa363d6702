package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/scivision-hpc/scv-hpc/internal/cli"
	"github.com/scivision-hpc/scv-hpc/internal/fetch"
	"github.com/scivision-hpc/scv-hpc/internal/registry"
)

func newPullCmd(a *app) *cobra.Command {
	var (
		ff    registry.Options
		force bool
	)
	cmd := &cobra.Command{
		Use:  "pull MODEL...",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := a.fetchOptions(&ff)
			if err != nil {
				return err
			}
			// A single model's failure is the command's error line, not logged.
			rows, failed := a.pullAll(cmd.Context(), args, o, 1, force, len(args) > 1)
			if err := fetch.WriteRows(a.stdout, rows); err != nil {
				return err
			}
			if failed == 1 && len(args) == 1 {
				return errors.New(rows[0].Error)
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d models failed (see above)", failed, len(args))
			}
			return nil
		},
	}
	ff.AddFlags(cmd.Flags())
	a.flags.AddConversionFlags(cmd.Flags())
	cmd.Flags().BoolVar(&force, "force", false, "convert again even if the image digest is cached (replaces the entry)")
	return cmd
}

// pullAll pulls models, jobs at a time (fetch.PullAll), logging each failure as it
// happens when logEach, and returns the summary rows and how many failed. A failure's
// text has what to do added (withHint) here, not where it is shown.
func (a *app) pullAll(ctx context.Context, models []string, o fetch.Options, jobs int, force, logEach bool) ([]fetch.Row, int) {
	explain := func(model string, err error) error { return withHint(corruptHint(model, err)) }
	return fetch.Rows(models, fetch.PullAll(ctx, models, o, jobs, force, func(i int, r fetch.PullResult) {
		if r.Err != nil && logEach {
			a.log.Error().Str("model", models[i]).Msg(explain(models[i], r.Err).Error())
		}
	}), explain)
}

func newStageCmd(a *app) *cobra.Command {
	var (
		ff     registry.Options
		file   string
		jobs   int
		asJSON bool
	)
	cmd := &cobra.Command{
		Use: "stage [MODEL...] [-f FILE]",
		RunE: func(cmd *cobra.Command, args []string) error {
			models, err := fetch.Models(args, file, a.stdin)
			if errors.Is(err, fetch.ErrNoModels) {
				return cli.Usagef("stage: %w (-f FILE)", err)
			}
			if err != nil {
				return fmt.Errorf("stage: %w", err)
			}
			if jobs < 1 {
				return cli.Usagef("stage: --jobs %d: want at least 1", jobs)
			}
			o, err := a.fetchOptions(&ff)
			if err != nil {
				return err
			}
			rows, failed := a.pullAll(cmd.Context(), models, o, jobs, false, true)
			if err := cli.Render(a.stdout, asJSON, rows, func(w io.Writer) error { return fetch.WriteRows(w, rows) }); err != nil {
				return err
			}
			if failed > 0 {
				return fmt.Errorf("stage: %d of %d models failed; the others are staged in %s", failed, len(models), a.cfg.Cache)
			}
			return nil
		},
	}
	ff.AddFlags(cmd.Flags())
	a.flags.AddConversionFlags(cmd.Flags())
	cmd.Flags().StringVarP(&file, "file", "f", "", "file listing one MODEL per line ('-' for standard input)")
	cmd.Flags().IntVarP(&jobs, "jobs", "j", 2, "models fetched and converted at once (each conversion uses every core)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the summary as JSON")
	return cmd
}
