package slurm

import (
	"errors"
	"fmt"
	"os"

	"gopkg.in/yaml.v3"
)

// DefaultSiteConfig is where a site administrator puts the site configuration;
// the environment variable SCV_HPC_CONFIG names another file.
const DefaultSiteConfig = "/etc/scv-hpc/config.yaml"

// SiteConfig is the site configuration, written by cluster administrators:
//
//	cache: /shared/scv-hpc/cache         # SIF cache the compute nodes read
//	template: /etc/scv-hpc/job.sbatch.tmpl
//	scv_hpc: /opt/scv-hpc/bin/scv-hpc    # path of scv-hpc on the compute nodes
//	slurm:
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
// Command-line flags override every value.
type SiteConfig struct {
	Path     string `yaml:"-"` // the file it was read from, "" when none
	Cache    string `yaml:"cache"`
	Template string `yaml:"template"`
	Binary   string `yaml:"scv_hpc"`
	// Compression is the squashfs compression of new SIFs, ALGO[:LEVEL]
	// (pull and stage; --compression wins).
	Compression string `yaml:"compression"`
	// LayerCache false stops keeping layer blobs in the cache (pull, stage).
	LayerCache *bool `yaml:"layer_cache"`
	// BlobMaxAge is how long cache gc keeps a layer blob no conversion used
	// (a Go duration, "168h" by default).
	BlobMaxAge string `yaml:"blob_max_age"`
	Slurm      struct {
		Partition     string   `yaml:"partition"`
		Account       string   `yaml:"account"`
		QOS           string   `yaml:"qos"`
		Time          string   `yaml:"time"`
		Gres          string   `yaml:"gres"`
		GPUsPerTask   int      `yaml:"gpus_per_task"`
		CPUsPerTask   int      `yaml:"cpus_per_task"`
		Mem           string   `yaml:"mem"`
		MaxParallel   int      `yaml:"max_parallel"`
		SignalSeconds int      `yaml:"signal_seconds"`
		SbatchArgs    []string `yaml:"sbatch_args"`
	} `yaml:"slurm"`
}

// LoadSiteConfig reads the file named by SCV_HPC_CONFIG, else
// /etc/scv-hpc/config.yaml. A missing default file gives an empty
// configuration; a missing file named by SCV_HPC_CONFIG is an error.
func LoadSiteConfig() (*SiteConfig, error) {
	path, explicit := os.LookupEnv("SCV_HPC_CONFIG")
	if !explicit || path == "" {
		path, explicit = DefaultSiteConfig, false
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		return &SiteConfig{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("site config (SCV_HPC_CONFIG): %w", err)
	}
	return ParseSiteConfig(path, b)
}

// ParseSiteConfig parses a site configuration; path is used in errors.
func ParseSiteConfig(path string, b []byte) (*SiteConfig, error) {
	var c SiteConfig
	if err := yaml.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("site config %s: %w", path, err)
	}
	if c.Slurm.GPUsPerTask < 0 || c.Slurm.CPUsPerTask < 0 || c.Slurm.MaxParallel < 0 || c.Slurm.SignalSeconds < 0 {
		return nil, fmt.Errorf("site config %s: counts under slurm: must not be negative", path)
	}
	c.Path = path
	return &c, nil
}
