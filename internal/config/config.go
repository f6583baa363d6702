// Package config resolves scv-hpc's settings once, for every command: command-line
// flags win over the environment, which wins over the site config file, which wins
// over the built-in defaults. Each resolved value remembers where it came from (doctor
// prints it).
//
// The site config is /etc/scv-hpc/config.yaml, or the file SCV_HPC_CONFIG names:
//
//	cache: /shared/scv-hpc/cache         # SIF cache of every command (compute nodes read it)
//	tmpdir: /local/scratch               # conversions' scratch directory
//	template: /etc/scv-hpc/job.sbatch.tmpl
//	scv_hpc: /opt/scv-hpc/bin/scv-hpc    # path of scv-hpc on the compute nodes
//	compression: zstd                    # squashfs compression of new SIFs (pull, stage)
//	layer_cache: false                   # keep no layer blobs in the cache (pull, stage)
//	blob_max_age: 72h                    # cache gc: drop layer blobs unused this long
//	slurm:                               # defaults of submit (see slurm.Options)
//	  partition: gpu
//	  account: vision
//	  qos: normal
//	  time: "04:00:00"
//	  gpus_per_task: 1                   # or gres: gpu:a100:1
//	  cpus_per_task: 8
//	  mem: 32G
//	  max_parallel: 16
//	  signal_seconds: 120
//	  sbatch_args: ["--constraint=a100"]
//
// Unknown keys are errors, so a misspelt key is not silently ignored.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/scivision-hpc/scv-hpc/internal/cache"
	"github.com/scivision-hpc/scv-hpc/internal/convert"
	"github.com/scivision-hpc/scv-hpc/internal/slurm"
)

// DefaultSiteFile is where a site administrator puts the site config; the environment
// variable SCV_HPC_CONFIG names another file.
const DefaultSiteFile = "/etc/scv-hpc/config.yaml"

// Environment variables read by Resolve.
const (
	EnvConfig  = "SCV_HPC_CONFIG"
	EnvCache   = "SCV_HPC_CACHE"
	EnvOffline = "SCV_HPC_OFFLINE"
	EnvCatalog = "SCV_HPC_CATALOG"
	EnvTmpDir  = "TMPDIR"

	EnvCompression = "SCV_HPC_COMPRESSION"  // ALGO[:LEVEL] of new SIFs
	EnvLayerCache  = "SCV_HPC_LAYER_CACHE"  // false: keep no layer blobs
	EnvBlobMaxAge  = "SCV_HPC_BLOB_MAX_AGE" // a Go duration
)

// ErrSiteConfig wraps every problem with the site config file.
var ErrSiteConfig = errors.New("site config")

// Site is the site config file.
type Site struct {
	Path     string        `yaml:"-"` // the file it was read from, "" when none
	Cache    string        `yaml:"cache"`
	TmpDir   string        `yaml:"tmpdir"`
	Template string        `yaml:"template"`
	Binary   string        `yaml:"scv_hpc"`
	Slurm    slurm.Options `yaml:"slurm"`
	// Compression is the squashfs compression of new SIFs, ALGO[:LEVEL] (pull and
	// stage; convert.ParseCompression).
	Compression string `yaml:"compression"`
	// LayerCache false stops keeping layer blobs in the cache (pull, stage).
	LayerCache *bool `yaml:"layer_cache"`
	// BlobMaxAge is how long cache gc keeps a layer blob no conversion used (a Go
	// duration; 168h when unset).
	BlobMaxAge string `yaml:"blob_max_age"`
}

// LoadSite reads the file named by SCV_HPC_CONFIG (getenv), else DefaultSiteFile. A
// missing default file gives an empty Site; a missing file that SCV_HPC_CONFIG names is
// an error.
func LoadSite(getenv func(string) (string, bool)) (*Site, error) {
	path, explicit := getenv(EnvConfig)
	if !explicit || path == "" {
		path, explicit = DefaultSiteFile, false
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		return &Site{Slurm: slurm.DefaultOptions()}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w (%s=%s): %w", ErrSiteConfig, EnvConfig, path, err)
	}
	return ParseSite(path, b)
}

// ParseSite parses a site config; path names it in errors.
func ParseSite(path string, b []byte) (*Site, error) {
	s := Site{Slurm: slurm.DefaultOptions()}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil && !errors.Is(err, io.EOF) { // EOF: an empty file
		return nil, fmt.Errorf("%w %s: %w", ErrSiteConfig, path, err)
	}
	if s.Compression != "" {
		if _, err := convert.ParseCompression(s.Compression); err != nil {
			return nil, fmt.Errorf("%w %s: compression: %w", ErrSiteConfig, path, err)
		}
	}
	if s.BlobMaxAge != "" {
		if _, err := time.ParseDuration(s.BlobMaxAge); err != nil {
			return nil, fmt.Errorf("%w %s: blob_max_age: %w", ErrSiteConfig, path, err)
		}
	}
	if err := s.Slurm.Validate(); err != nil {
		return nil, fmt.Errorf("%w %s: slurm: %w", ErrSiteConfig, path, err)
	}
	s.Path = path
	return &s, nil
}

// SlurmDefaults are the Slurm settings of the site (template and scv_hpc included),
// below which submit's flags are merged.
func (s *Site) SlurmDefaults() slurm.Options {
	o := s.Slurm
	o.SbatchArgs = append([]string{}, s.Slurm.SbatchArgs...)
	o.Template, o.Binary = s.Template, s.Binary
	return o
}

// Flags are the global flags as the command line gave them: Set says which were given.
// Compression and NoLayerCache are flags of pull and stage (--compression,
// --no-layer-cache), BlobMaxAge one of cache gc (--blob-max-age); other commands
// leave them unset.
type Flags struct {
	Cache, TmpDir, LogLevel, LogFormat string
	Offline                            bool
	Catalogs                           []string
	Compression                        string
	NoLayerCache                       bool
	BlobMaxAge                         time.Duration
	Set                                func(flag string) bool
}

// Config is the resolved configuration.
type Config struct {
	Cache     string   // SIF cache directory
	Offline   bool     // never touch the network
	TmpDir    string   // conversions' scratch ("" = the system's)
	Catalogs  []string // extra catalog files: --catalog, then SCV_HPC_CATALOG
	LogLevel  string
	LogFormat string
	// Compression of new SIFs, ALGO[:LEVEL], validated (default convert.DefaultCompression).
	Compression string
	// LayerCache keeps layer blobs in the cache's blob store (default true).
	LayerCache bool
	// BlobMaxAge is how long cache gc keeps an unused layer blob (default
	// cache.DefaultBlobMaxAge; negative: none).
	BlobMaxAge time.Duration
	Site       *Site // the site config (empty when there is none)

	settings []Setting
}

// Setting is one resolved value and where it came from.
type Setting struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Source string `json:"source"` // "flag --cache", "env SCV_HPC_CACHE", "site config FILE", "default"
}

// Settings lists the resolved values with their sources, in a fixed order.
func (c *Config) Settings() []Setting { return c.settings }

// Resolve loads the site config and resolves every setting: flags > environment >
// site config > defaults. getenv is os.LookupEnv in the program. Defaults: cache
// $XDG_CACHE_HOME/scv-hpc, else ~/.cache/scv-hpc; tmpdir the system's; log level info,
// format auto; offline false; compression gzip:3; layer cache on; blob max age 168h.
func Resolve(f Flags, getenv func(string) (string, bool)) (*Config, error) {
	if f.Set == nil {
		f.Set = func(string) bool { return false }
	}
	site, err := LoadSite(getenv)
	if err != nil {
		return nil, err
	}
	c := &Config{Site: site}
	siteSrc := "site config " + site.Path
	env := func(name string) (string, bool) {
		v, ok := getenv(name)
		return v, ok && v != ""
	}
	pick := func(name, flag, flagVal, envName, siteVal, def, defSrc string) string {
		var v, src string
		switch ev, ok := env(envName); {
		case f.Set(flag):
			v, src = flagVal, "flag --"+flag
		case envName != "" && ok:
			v, src = ev, "env "+envName
		case siteVal != "":
			v, src = siteVal, siteSrc
		default:
			v, src = def, defSrc
		}
		c.settings = append(c.settings, Setting{name, v, src})
		return v
	}
	defCache, defCacheSrc := defaultCache(getenv)
	c.Cache = pick("cache", "cache", f.Cache, EnvCache, site.Cache, defCache, defCacheSrc)
	c.TmpDir = pick("tmpdir", "tmpdir", f.TmpDir, EnvTmpDir, site.TmpDir, "", "default (the system's)")
	off := pick("offline", "offline", fmt.Sprint(f.Offline), EnvOffline, "", "false", "default")
	if c.Offline, err = parseBool(off); err != nil {
		return nil, fmt.Errorf("%s %q: %w", EnvOffline, off, err)
	}
	c.LogLevel = pick("log-level", "log-level", f.LogLevel, "", "", "info", "default")
	c.LogFormat = pick("log-format", "log-format", f.LogFormat, "", "", "auto", "default")
	c.Compression = pick("compression", "compression", f.Compression, EnvCompression, site.Compression,
		convert.DefaultCompression.String(), "default")
	if _, err := convert.ParseCompression(c.Compression); err != nil {
		return nil, fmt.Errorf("compression (from %s): %w", c.lastSource(), err)
	}
	siteLayer := ""
	if site.LayerCache != nil {
		siteLayer = fmt.Sprint(*site.LayerCache)
	}
	layer := pick("layer cache", "no-layer-cache", fmt.Sprint(!f.NoLayerCache), EnvLayerCache, siteLayer, "true", "default")
	if c.LayerCache, err = parseBool(layer); err != nil {
		return nil, fmt.Errorf("layer cache %q (from %s): %w", layer, c.lastSource(), err)
	}
	age := pick("blob max age", "blob-max-age", f.BlobMaxAge.String(), EnvBlobMaxAge, site.BlobMaxAge,
		cache.DefaultBlobMaxAge.String(), "default")
	if c.BlobMaxAge, err = time.ParseDuration(age); err != nil {
		return nil, fmt.Errorf("blob max age (from %s): %w", c.lastSource(), err)
	}
	c.Catalogs = append([]string{}, f.Catalogs...)
	var srcs []string
	if len(f.Catalogs) > 0 {
		srcs = append(srcs, "flag --catalog")
	}
	if ev, ok := env(EnvCatalog); ok {
		for _, p := range filepath.SplitList(ev) {
			if p != "" {
				c.Catalogs = append(c.Catalogs, p)
			}
		}
		srcs = append(srcs, "env "+EnvCatalog)
	}
	if len(srcs) == 0 {
		srcs = []string{"default (embedded and /etc/scv-hpc/catalog.yaml only)"}
	}
	c.settings = append(c.settings, Setting{"catalog", strings.Join(c.Catalogs, ":"), strings.Join(srcs, " + ")})
	siteFile, siteFrom := site.Path, "default"
	if siteFile == "" {
		siteFile = "none (" + DefaultSiteFile + " absent)"
	}
	if _, ok := env(EnvConfig); ok {
		siteFrom = "env " + EnvConfig
	}
	c.settings = append(c.settings, Setting{"site config", siteFile, siteFrom})
	return c, nil
}

// lastSource is the source of the setting resolved last.
func (c *Config) lastSource() string { return c.settings[len(c.settings)-1].Source }

func defaultCache(getenv func(string) (string, bool)) (dir, src string) {
	if d, ok := getenv("XDG_CACHE_HOME"); ok && d != "" {
		return filepath.Join(d, "scv-hpc"), "default ($XDG_CACHE_HOME/scv-hpc)"
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".cache", "scv-hpc"), "default (~/.cache/scv-hpc)"
	}
	return filepath.Join(os.TempDir(), "scv-hpc-cache"), "default (no home directory)"
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "1", "true", "yes", "on":
		return true, nil
	case "", "0", "false", "no", "off":
		return false, nil
	}
	return false, errors.New("want true or false (1/0, yes/no, on/off)")
}
