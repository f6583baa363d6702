package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/scivision-hpc/scv-hpc/internal/fetch"
	"github.com/scivision-hpc/scv-hpc/internal/registry"
)

func newPullCmd(a *app) *cobra.Command {
	var (
		ff    registry.Options
		force bool
	)
	cmd := &cobra.Command{
		Use:   "pull MODEL...",
		Short: "Fetch model images and convert them to SIF in the cache",
		Long: `Fetch each MODEL and convert it to a SIF in the cache, unless the cache already
holds its image digest. MODEL is a catalog name[@version], an image reference
(registry/repo:tag or repo@sha256:...), oci-layout:DIR[:TAG], docker-archive:FILE, or a
.sif file (checked and used as is). Many processes or nodes pulling the same image at
once convert it once. With --offline a model resolves from the cache only.

Prints one line per model: MODEL, STATUS (converted, cached or failed), DIGEST, SIF.`,
		Example: `  scv-hpc pull faces
  scv-hpc pull registry.example.org/lab/plankton:2.1 --platform linux/arm64
  scv-hpc pull localhost:5000/lab/model:dev --insecure-registry localhost:5000
  scv-hpc pull oci-layout:/media/usb/images:plankton-2.1 --compression zstd
  scv-hpc --offline pull faces    # check that a compute node sees it in the cache`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := a.fetchOptions(&ff)
			if err != nil {
				return err
			}
			rows, failed := fetch.Rows(args, fetch.PullAll(cmd.Context(), args, o, 1, force, func(i int, r fetch.PullResult) {
				if r.Err != nil && len(args) > 1 { // a single failure is the command's error line
					a.log.Error().Str("model", args[i]).Msg(explainPull(args[i], r.Err).Error())
				}
			}), explainPull)
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

// explainPull adds what to do to the error of a model's pull: the text of its row in
// the summary, where the hint is added (withHint), not where it is shown.
func explainPull(model string, err error) error { return withHint(corruptHint(model, err)) }
