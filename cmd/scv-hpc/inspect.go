package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/scivision-hpc/scv-hpc/internal/fetch"
	"github.com/scivision-hpc/scv-hpc/internal/sif"
)

func newInspectCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect SIF|MODEL",
		Short: "Show what a SIF holds: provenance, run configuration, descriptors, runscript",
		Long: `Show what is inside a SIF file: where it came from (reference, manifest digest, tool),
the run configuration (Env, Entrypoint, Cmd, labels), the descriptors with the squashfs
partition's offset and size, and /.singularity.d/runscript. The argument is a .sif file,
or a MODEL looked up in the cache (it is not fetched: pull it first).`,
		Example: `  scv-hpc inspect faces
  scv-hpc inspect ./plankton.sif --json | jq .provenance
  unsquashfs -l -o "$(scv-hpc inspect faces --json | jq .primary_offset)" "$(scv-hpc cache path faces)"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := a.fetchOptions(nil)
			if err != nil {
				return err
			}
			// What is a SIF is fetch.Parse's rule (a path ending in .sif), as for
			// every other command; anything else is looked up in the cache.
			path, err := fetch.SIFPath(cmd.Context(), args[0], o)
			if err != nil {
				return a.notCached(args[0], err)
			}
			info, err := sif.Inspect(path)
			if err != nil {
				return fmt.Errorf("inspect %s: %w", args[0], err)
			}
			info.ReadRunscript(cmd.Context())
			return a.render(asJSON, info, info.WriteText)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
