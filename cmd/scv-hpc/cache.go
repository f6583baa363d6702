package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/scivision-hpc/scv-hpc/internal/cache"
	"github.com/scivision-hpc/scv-hpc/internal/cli"
	"github.com/scivision-hpc/scv-hpc/internal/fetch"
	"github.com/scivision-hpc/scv-hpc/internal/sweep"
	"github.com/scivision-hpc/scv-hpc/internal/units"
)

func newCacheCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:  "cache",
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(cacheLsCmd(a), cachePathCmd(a), cacheVerifyCmd(a), cacheRmCmd(a), cacheGCCmd(a), cacheExportCmd(a), cacheImportCmd(a))
	return cmd
}

func cacheLsCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			entries, err := a.openCache().List()
			if err != nil {
				return err
			}
			return cli.Render(a.stdout, asJSON, entries, func(w io.Writer) error {
				blobs, err := a.openCache().Blobs()
				if err != nil {
					return err
				}
				return cache.WriteList(w, entries, blobs)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (full digests and paths)")
	return cmd
}

func cachePathCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:  "path MODEL",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := a.fetchOptions(nil)
			if err != nil {
				return err
			}
			m, err := fetch.Resolve(cmd.Context(), args[0], o)
			if err != nil {
				return a.notCached(args[0], err)
			}
			_, err = fmt.Fprintln(a.stdout, m.SIF)
			return err
		},
	}
}

func cacheVerifyCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:  "verify",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			results, err := a.openCache().Verify(cmd.Context())
			if err != nil {
				return err
			}
			err = cli.Render(a.stdout, asJSON, results, func(w io.Writer) error { return cache.WriteVerify(w, results) })
			if n := cache.Problems(results); n > 0 && err == nil {
				return fmt.Errorf("cache %s: %d problem(s) found; 'scv-hpc cache gc --corrupt' removes them", a.cfg.Cache, n)
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func cacheRmCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:  "rm MODEL|DIGEST...",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := a.fetchOptions(nil)
			if err != nil {
				return err
			}
			explain := func(m string, err error) error { return fmt.Errorf("cache rm: %w", a.notCached(m, err)) }
			return fetch.Remove(o, args, explain, func(m, digest string) { fmt.Fprintf(a.stdout, "removed %s (%s)\n", m, digest) })
		},
	}
}

func cacheGCCmd(a *app) *cobra.Command {
	var opts cache.GCOptions
	var asJSON bool
	cmd := &cobra.Command{
		Use:  "gc",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep, err := sweep.Run(cmd.Context(), a.openCache(), opts, a.cfg.BlobMaxAge, a.cfg.TmpDir)
			if err != nil {
				return err
			}
			err = cli.Render(a.stdout, asJSON, rep, func(w io.Writer) error { return rep.WriteText(w, opts.DryRun) })
			if len(rep.Errors) > 0 && err == nil {
				return fmt.Errorf("cache gc: %d removal(s) failed: %s", len(rep.Errors), strings.Join(rep.Errors, "; "))
			}
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.Corrupt, "corrupt", false, "also re-hash every SIF and remove corrupt entries")
	f.BoolVar(&opts.AllUnreferenced, "all-unreferenced", false, "also remove entries that no ref points at")
	f.BoolVar(&opts.DryRun, "dry-run", false, "only report what would be removed")
	a.flags.AddGCFlags(f)
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// cacheExportCmd and cacheImportCmd carry cache entries to air-gapped sites as one tar
// with an index and checksums.
func cacheExportCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:  "export FILE [MODEL|DIGEST...]",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := a.fetchOptions(nil)
			if err != nil {
				return err
			}
			n, err := fetch.Export(cmd.Context(), o, args[0], a.stdout, args[1:], a.notCached)
			if err != nil {
				return fmt.Errorf("cache export: %w", err)
			}
			if args[0] == "-" {
				return nil
			}
			what := "all entries"
			if len(args) > 1 {
				what = strings.Join(args[1:], ", ")
			}
			fmt.Fprintf(a.stdout, "exported %s to %s (%s)\n", what, args[0], units.Bytes(n))
			return nil
		},
	}
}

func cacheImportCmd(a *app) *cobra.Command {
	var asJSON, force bool
	imp := &cobra.Command{
		Use:  "import FILE",
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
			if rerr := cli.Render(a.stdout, asJSON, rep, rep.WriteText); rerr != nil {
				return rerr
			}
			if err != nil {
				return fmt.Errorf("cache import %s: %w", args[0], err)
			}
			return nil
		},
	}
	imp.Flags().BoolVar(&asJSON, "json", false, "print the import report as JSON")
	imp.Flags().BoolVar(&force, "force", false, "move refs this cache maps to another digest (each move is reported)")
	return imp
}
