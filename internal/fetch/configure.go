package fetch

import (
	"github.com/rs/zerolog"

	"github.com/scivision-hpc/scv-hpc/internal/cache"
	"github.com/scivision-hpc/scv-hpc/internal/catalog"
	"github.com/scivision-hpc/scv-hpc/internal/config"
	"github.com/scivision-hpc/scv-hpc/internal/progress"
	"github.com/scivision-hpc/scv-hpc/internal/registry"
)

// Configure returns the Options of the resolved configuration cfg (offline, tmpdir,
// compression, layer cache) for the cache c and the catalog cat, with reg's
// platform and insecure hosts when reg is not nil (the fetch flags of pull and
// stage, which also re-hash a cached entry: Verify). log and pf receive what is done
// and the progress of downloads.
func Configure(cfg *config.Config, c *cache.Cache, cat *catalog.Catalog, reg *registry.Options, log zerolog.Logger, pf progress.Factory) Options {
	o := Options{
		Cache: c, Catalog: cat, Offline: cfg.Offline, TmpDir: cfg.TmpDir, Log: log,
		Registry:    registry.Options{Progress: pf, Log: log, Offline: cfg.Offline},
		Compression: cfg.Compression, NoLayerCache: !cfg.LayerCache,
	}
	if reg != nil {
		o.Verify = true // "cached" then means sound
		o.Registry.Platform, o.Registry.Insecure = reg.Platform, reg.Insecure
	}
	return o
}
