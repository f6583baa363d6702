package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/scivision-hpc/scv-hpc/internal/fetch"
)

// fetchResult is the outcome of fetching one model, for the summary table.
type fetchResult struct {
	Model  string `json:"model"`
	Status string `json:"status"` // converted, cached, failed
	Digest string `json:"digest,omitempty"`
	SIF    string `json:"sif,omitempty"`
	Error  string `json:"error,omitempty"`
}

func newPullCmd(a *app) *cobra.Command {
	var (
		ff    fetchFlags
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
			var results []fetchResult
			failed := 0
			for _, m := range args {
				r := pullOne(cmd.Context(), m, o, force)
				if r.Status == "failed" {
					failed++
					if len(args) > 1 { // a single failure is the command's error line
						a.log.Error().Str("model", m).Msg(r.Error)
					}
				}
				results = append(results, r)
			}
			if err := writeFetchTable(a.stdout, results); err != nil {
				return err
			}
			if failed == 1 && len(args) == 1 {
				return errors.New(results[0].Error)
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d models failed (see above)", failed, len(args))
			}
			return nil
		},
	}
	ff.register(cmd.Flags(), &a.flags)
	cmd.Flags().BoolVar(&force, "force", false, "convert again even if the image digest is cached (replaces the entry)")
	return cmd
}

// pullOne fetches one model (fetch.Pull) into a table row.
func pullOne(ctx context.Context, model string, o fetch.Options, force bool) fetchResult {
	m, err := fetch.Pull(ctx, model, o, force)
	return fetchRow(model, fetch.PullResult{Model: m, Err: err})
}

// fetchRow is the table row of a pull.
func fetchRow(model string, r fetch.PullResult) fetchResult {
	row := fetchResult{Model: model}
	if err := r.Err; err != nil {
		// The row keeps only the text: the hint is added here, not where it is shown.
		row.Status, row.Error = "failed", withHint(corruptHint(model, err)).Error()
		return row
	}
	row.Digest, row.SIF, row.Status = r.Model.Digest, r.Model.SIF, "cached"
	if r.Model.Built {
		row.Status = "converted"
	}
	return row
}

func writeFetchTable(w io.Writer, results []fetchResult) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODEL\tSTATUS\tDIGEST\tSIF")
	for _, r := range results {
		sif := r.SIF
		if r.Status == "failed" {
			sif = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Model, r.Status, dash(r.Digest), sif)
	}
	return tw.Flush()
}
