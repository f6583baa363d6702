package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/scivision-hpc/scv-hpc/internal/cache"
	"github.com/scivision-hpc/scv-hpc/internal/fetch"
	"github.com/scivision-hpc/scv-hpc/internal/units"
)

// cacheBundleCmds returns 'cache export' and 'cache import', which carry cache entries
// to air-gapped sites as one tar with an index and checksums.
func cacheBundleCmds(a *app) []*cobra.Command {
	export := &cobra.Command{
		Use:   "export FILE [MODEL|DIGEST...]",
		Short: "Write cached SIFs (all, or the models named) and their refs to one tar bundle",
		Long: `Write the named models' cache entries (all entries when none is named), with their
metadata, the refs that point at them and an index of checksums, to FILE as one tar. Every
SIF is re-hashed first: a corrupt entry stops the export. FILE is written atomically and
must lie outside the cache directory; '-' writes to standard output.`,
		Example: `  scv-hpc cache export models.tar
  scv-hpc cache export faces.tar faces plankton@2.1
  scv-hpc cache export - faces | ssh airgap 'scv-hpc cache import - --cache /shared/scv'`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := a.fetchOptions(nil)
			if err != nil {
				return err
			}
			digests, err := fetch.CachedDigests(o, args[1:], a.notCached)
			if err != nil {
				return fmt.Errorf("cache export: %w", err)
			}
			n, err := o.Cache.ExportTo(cmd.Context(), args[0], a.stdout, digests)
			if err != nil {
				return fmt.Errorf("cache export: %w", err)
			}
			if args[0] == "-" {
				return nil
			}
			what := "all entries"
			if len(digests) > 0 {
				what = strings.Join(args[1:], ", ")
			}
			fmt.Fprintf(a.stdout, "exported %s to %s (%s)\n", what, args[0], units.Bytes(n))
			return nil
		},
	}
	var (
		asJSON bool
		force  bool
	)
	imp := &cobra.Command{
		Use:   "import FILE",
		Short: "Import a bundle made by 'cache export', verifying every SIF",
		Long: `Import the entries and refs of a bundle written by 'scv-hpc cache export'. Every SIF
is checked against the bundle's checksums and opened as a SIF before it is committed;
entries that fail are reported and nothing of them is kept, the others are imported.
Entries the cache already has are skipped. '-' reads standard input.

The bundle's refs (tags, catalog names) are claims, checked against what each SIF
records about itself: a ref the SIF's provenance or the local catalog disagrees with is
never set. A ref this cache maps to another digest is not moved unless --force is given
(each move is then reported with the old and new digest). Refused refs are listed and
make the command exit 1.`,
		Example: `  scv-hpc cache import models.tar --cache /shared/scv
  scv-hpc --offline cache path faces --cache /shared/scv   # then use it offline`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cat, err := a.loadCatalog()
			if err != nil {
				return err
			}
			rep, err := a.openCache().ImportFrom(cmd.Context(), args[0], a.stdin, cache.ImportOptions{Force: force, ImageOf: cat.ImageOf})
			for _, m := range rep.Moved {
				a.log.Warn().Str("ref", m.Ref).Str("from", m.From).Str("to", m.To).
					Msgf("--force: moved ref %s from %s to %s", m.Ref, m.From, m.To)
			}
			if rerr := a.render(asJSON, rep, rep.WriteText); rerr != nil {
				return rerr
			}
			if err != nil {
				if errors.Is(err, cache.ErrRefRefused) && !force {
					err = fmt.Errorf("%w (refs that only moved are set with --force; refs the SIF disagrees with never are)", err)
				}
				return fmt.Errorf("cache import %s: %w", args[0], err)
			}
			return nil
		},
	}
	imp.Flags().BoolVar(&asJSON, "json", false, "print the import report as JSON")
	imp.Flags().BoolVar(&force, "force", false, "move refs this cache maps to another digest (each move is reported)")
	return []*cobra.Command{export, imp}
}
