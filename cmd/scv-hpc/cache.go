package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/scivision-hpc/scv-hpc/internal/cache"
	"github.com/scivision-hpc/scv-hpc/internal/fetch"
	"github.com/scivision-hpc/scv-hpc/internal/sweep"
)

func newCacheCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cache",
		Short: "Look after the SIF cache: list, locate, verify, remove, collect garbage, export, import",
		Long: `The cache holds one SIF per image manifest digest, and refs (image tags and catalog
names) that map to digests so that offline nodes resolve models without a network. Its
directory is --cache (env SCV_HPC_CACHE); it may be shared by many nodes and mounted
read-only on compute nodes.`,
		Example: `  scv-hpc cache ls
  scv-hpc cache path faces
  scv-hpc cache verify --cache /shared/scv
  scv-hpc cache export bundle.tar faces && scv-hpc cache import bundle.tar --cache /shared/scv`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(cacheLsCmd(a), cachePathCmd(a), cacheVerifyCmd(a), cacheRmCmd(a), cacheGCCmd(a))
	cmd.AddCommand(cacheBundleCmds(a)...)
	return cmd
}

func cacheLsCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the cached SIFs and the refs that point at them",
		Example: `  scv-hpc cache ls
  scv-hpc cache ls --json | jq -r '.[].path'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			entries, err := a.openCache().List()
			if err != nil {
				return err
			}
			return a.render(asJSON, nonNil(entries), func(w io.Writer) error {
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
		Use:   "path MODEL",
		Short: "Print the path of a model's cached SIF (the only line on stdout)",
		Long: `Print the absolute path of MODEL's SIF in the cache, and nothing else on stdout, for
scripts. Reads the cache only: no network, no lock, no write (works on a read-only
cache). Fails if the model is not cached.`,
		Example: `  apptainer exec "$(scv-hpc cache path faces)" /usr/local/bin/faces --help
  scv-hpc cache path localhost:5055/scivision/faces:1.0`,
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
		Use:   "verify",
		Short: "Re-hash every cached SIF against its recorded checksum; report debris",
		Long: `Re-hash every SIF against the checksum recorded when it was committed and open it as
a SIF; report corrupt and incomplete entries, orphan SIFs, stale locks and temp files of
interrupted conversions, refs to missing entries, and files a shared cache should not
hold (bad-ref: a refs/ file that is a symlink, FIFO, oversized or not a digest; bad-file:
a symlink or FIFO among the locks), which are never followed. Writes nothing ('scv-hpc
cache gc' cleans up). Exit status 1 when anything needs attention.`,
		Example: `  scv-hpc cache verify --cache /shared/scv
  scv-hpc cache verify --json | jq '.[] | select(.status != "ok")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			results, err := a.openCache().Verify(cmd.Context())
			if err != nil {
				return err
			}
			err = a.render(asJSON, nonNil(results), func(w io.Writer) error { return cache.WriteVerify(w, results) })
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
		Use:   "rm MODEL|DIGEST...",
		Short: "Remove cached SIFs and the refs that point at them",
		Example: `  scv-hpc cache rm faces
  scv-hpc cache rm sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae`,
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
		Use:   "gc",
		Short: "Remove debris of interrupted conversions (and, on request, corrupt or unused entries)",
		Long: `Remove temp files and SIFs without metadata that no running conversion owns, stale
locks, incomplete entries, refs to missing entries, layer blobs no conversion used for
--blob-max-age, and scratch directories in --tmpdir of conversions that died on this host. With --corrupt also re-hash every
SIF and remove the corrupt ones; with --all-unreferenced also remove entries no tag or
catalog name points at. A conversion in progress elsewhere is never disturbed.`,
		Example: `  scv-hpc cache gc
  scv-hpc cache gc --corrupt --dry-run --cache /shared/scv`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep, err := sweep.Run(cmd.Context(), a.openCache(), opts, a.cfg.BlobMaxAge, a.cfg.TmpDir)
			if err != nil {
				return err
			}
			err = a.render(asJSON, rep, func(w io.Writer) error { return rep.WriteText(w, opts.DryRun) })
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
