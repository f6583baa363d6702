package main

import (
	"context"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/scivision-hpc/scv-hpc/internal/cache"
	"github.com/scivision-hpc/scv-hpc/internal/catalog"
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
	c := cache.Open(a.cfg.Cache)
	c.Progress = a.progressFactory()
	return c
}

// fetchOptions builds fetch.Options from the resolved configuration and, when given,
// the registry flags of the command (pull, stage). Commands that run models (predict,
// submit) pass nil.
func (a *app) fetchOptions(reg *registry.Options) (fetch.Options, error) {
	cat, err := a.loadCatalog()
	if err != nil {
		return fetch.Options{}, err
	}
	return fetch.Configure(a.cfg, a.openCache(), cat, reg, a.log, a.progressFactory()), nil
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
	if run.CacheDir, err = filepath.Abs(a.cfg.Cache); err != nil {
		return job.Job{}, err
	}
	return job.Job{Model: model, Ref: m.Ref, Digest: m.Digest, SIF: m.SIF, Predict: m.Predict, GPU: m.GPU, Run: run}, nil
}

// givenLogLevel is the --log-level given to cmd, or "" when none was.
func (a *app) givenLogLevel(cmd *cobra.Command) string {
	if cmd.Flags().Changed("log-level") {
		return a.cfg.LogLevel
	}
	return ""
}
