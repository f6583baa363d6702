package config

import "github.com/spf13/pflag"

// AddFlags defines the global flags on fs (the root command's persistent flags):
// --cache, --offline, --log-level, --log-format, --catalog, --tmpdir.
func (f *Flags) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.Cache, "cache", "", "SIF cache directory (env SCV_HPC_CACHE, site config cache:; default ~/.cache/scv-hpc)")
	fs.BoolVar(&f.Offline, "offline", false, "never touch the network; resolve models from the cache only (env SCV_HPC_OFFLINE=1)")
	fs.StringVar(&f.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&f.LogFormat, "log-format", "auto", "log format: auto (console on a terminal, JSON otherwise), console, json")
	fs.StringSliceVar(&f.Catalogs, "catalog", nil, "extra catalog YAML file(s) that add or override models (env SCV_HPC_CATALOG, ':'-separated)")
	fs.StringVar(&f.TmpDir, "tmpdir", "", "scratch directory for conversions (env TMPDIR, site config tmpdir:)")
}

// AddConversionFlags defines the flags of commands that convert images (pull,
// stage): --no-layer-cache and --compression.
func (f *Flags) AddConversionFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&f.NoLayerCache, "no-layer-cache", false, "do not keep the image's layers in the cache's blob store (default: keep them, so models sharing layers download them once; env SCV_HPC_LAYER_CACHE=false, site config layer_cache: false)")
	fs.StringVar(&f.Compression, "compression", "", "squashfs compression of new SIFs, ALGO[:LEVEL]: gzip, zstd, xz, lz4, lzo (default gzip:3; env SCV_HPC_COMPRESSION, site config compression:; zstd packs faster and smaller where every node's kernel and squashfuse read it)")
}

// AddGCFlags defines the flag of cache gc: --blob-max-age.
func (f *Flags) AddGCFlags(fs *pflag.FlagSet) {
	fs.DurationVar(&f.BlobMaxAge, "blob-max-age", 0, "remove layer blobs no conversion used for this long (default 168h; env SCV_HPC_BLOB_MAX_AGE, site config blob_max_age:; negative: all)")
}
