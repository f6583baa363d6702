package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/scivision-hpc/scv-hpc/internal/fetch"
	"github.com/scivision-hpc/scv-hpc/internal/registry"
)

func newStageCmd(a *app) *cobra.Command {
	var (
		ff     registry.Options
		file   string
		jobs   int
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "stage [MODEL...] [-f FILE]",
		Short: "Pre-build many models into a (shared) cache, for offline compute nodes",
		Long: `Fetch and convert every MODEL given as an argument or listed in FILE (one per line,
'#' starts a comment, '-' reads standard input) into the cache, several at a time. Run it
on a login node with network access, with --cache on the shared file system that compute
nodes read offline. A model that fails does not stop the others; the summary table lists
each model's status, and the exit status is 1 if any failed.`,
		Example: `  scv-hpc stage -f models.txt --cache /shared/scv --jobs 4
  scv-hpc stage faces plankton@2.1 --cache /shared/scv
  grep -v deprecated models.txt | scv-hpc stage -f - --cache /shared/scv --json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			models, err := fetch.Models(args, file, a.stdin)
			if errors.Is(err, fetch.ErrNoModels) {
				return usageError{fmt.Errorf("stage: %w (-f FILE)", err)}
			}
			if err != nil {
				return fmt.Errorf("stage: %w", err)
			}
			if jobs < 1 {
				return usageError{fmt.Errorf("stage: --jobs %d: want at least 1", jobs)}
			}
			o, err := a.fetchOptions(&ff)
			if err != nil {
				return err
			}
			rows, failed := fetch.Rows(models, fetch.PullAll(cmd.Context(), models, o, jobs, false, func(i int, r fetch.PullResult) {
				if r.Err != nil {
					a.log.Error().Str("model", models[i]).Msg(withHint(r.Err).Error())
				}
			}), explainPull)
			if err := a.render(asJSON, rows, func(w io.Writer) error { return fetch.WriteRows(w, rows) }); err != nil {
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
	cmd.Flags().IntVarP(&jobs, "jobs", "j", 2, "models fetched and converted at once (each conversion uses all cores in mksquashfs)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the summary as JSON")
	return cmd
}
