package main

import (
	"context"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/spf13/pflag"

	"github.com/scivision-hpc/scv-hpc/internal/cache"
	"github.com/scivision-hpc/scv-hpc/internal/catalog"
	"github.com/scivision-hpc/scv-hpc/internal/config"
	"github.com/scivision-hpc/scv-hpc/internal/fetch"
	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/registry"
)

// loadCatalog reads the embedded catalog, the site catalog and the user's --catalog
// and SCV_HPC_CATALOG files.
func (a *app) loadCatalog() (*catalog.Catalog, error) {
	return catalog.Load(a.cfg.Catalogs...)
}

// openCache opens the --cache directory (creating nothing), with progress reports.
func (a *app) openCache() *cache.Cache {
	c := cache.Open(a.cacheDir)
	c.Progress = a.progressFactory()
	return c
}

// fetchFlags are the flags of commands that fetch images (pull, stage).
// --compression and --no-layer-cache go into the app's config.Flags, which
// config.Resolve weighs against the environment and the site config.
type fetchFlags struct {
	platform string
	insecure []string
}

func (f *fetchFlags) register(fs *pflag.FlagSet, g *config.Flags) {
	fs.StringVar(&f.platform, "platform", registry.DefaultPlatform, "image platform os/arch[/variant] to pick from a multi-platform image")
	fs.StringSliceVar(&f.insecure, "insecure-registry", nil, "registry HOST[:PORT] to reach over plain HTTP (loopback registries always are); repeatable")
	fs.BoolVar(&g.NoLayerCache, "no-layer-cache", false, "do not keep the image's layers in the cache's blob store (default: keep them, so models sharing layers download them once; env SCV_HPC_LAYER_CACHE=false, site config layer_cache: false)")
	fs.StringVar(&g.Compression, "compression", "", "squashfs compression of new SIFs, ALGO[:LEVEL]: gzip, zstd, xz, lz4, lzo (default gzip:1; env SCV_HPC_COMPRESSION, site config compression:; zstd packs faster and smaller where every node's kernel and squashfuse read it)")
}

// fetchOptions builds fetch.Options from the global flags and, when given, the fetch
// flags of the command. Commands that run models (predict, submit) pass nil.
func (a *app) fetchOptions(f *fetchFlags) (fetch.Options, error) {
	cat, err := a.loadCatalog()
	if err != nil {
		return fetch.Options{}, err
	}
	o := fetch.Options{
		Cache:   a.openCache(),
		Catalog: cat,
		Offline: a.offline,
		TmpDir:  a.tmpDir,
		Log:     a.log,
		Registry: registry.Options{
			Progress: a.progressFactory(),
			Log:      a.log,
			Offline:  a.offline,
		},
	}
	if f != nil {
		o.Verify = true // pull and stage re-hash a cached entry: "cached" means sound
		o.Registry.Platform = f.platform
		o.Registry.Insecure = f.insecure
	}
	// The resolved config (flags of pull/stage > env > site config > default); commands
	// that run models convert with it too when they must pull.
	o.Compression = a.cfg.Compression
	o.NoLayerCache = !a.cfg.LayerCache
	return o, nil
}

// newJob returns the job of MODEL with the run options run: the model's SIF ensured
// (pulled and converted when needed and allowed: with --offline only the cache is
// read), and the cache it is in, made absolute, recorded for the nodes.
func (a *app) newJob(ctx context.Context, model string, run job.RunOptions) (job.Job, error) {
	o, err := a.fetchOptions(nil)
	if err != nil {
		return job.Job{}, err
	}
	o.Verify = true // once per job created, never per array task
	m, err := fetch.Ensure(ctx, model, o)
	if err != nil {
		return job.Job{}, corruptHint(model, err)
	}
	if run.CacheDir, err = filepath.Abs(a.cacheDir); err != nil {
		return job.Job{}, err
	}
	return job.Job{Model: model, Ref: m.Ref, Digest: m.Digest, SIF: m.SIF, Predict: m.Predict, GPU: m.GPU, Run: run}, nil
}

// givenLogLevel is the --log-level given to cmd, or "" when none was.
func (a *app) givenLogLevel(cmd *cobra.Command) string {
	if cmd.Flags().Changed("log-level") {
		return a.logLevel
	}
	return ""
}
