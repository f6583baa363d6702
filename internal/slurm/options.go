package slurm

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/scivision-hpc/scv-hpc/internal/fsutil"
	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/version"
)

// OptionsFile is where submit keeps a job's Slurm settings, so that resubmit
// asks for the same resources: JOBDIR/slurm.json.
const OptionsFile = "slurm.json"

// DefaultSignalSeconds is how long before the time limit a task gets SIGTERM
// to flush its results (sbatch --signal=B:TERM@120).
const DefaultSignalSeconds = 120

// Options are the Slurm settings of a job: flags of submit, else the site
// config.
type Options struct {
	Partition     string   `json:"partition,omitempty"`
	Account       string   `json:"account,omitempty"`
	QOS           string   `json:"qos,omitempty"`
	Time          string   `json:"time,omitempty"`
	CPUsPerTask   int      `json:"cpus_per_task,omitempty"`
	Mem           string   `json:"mem,omitempty"`
	GPUsPerTask   int      `json:"gpus_per_task,omitempty"`
	Gres          string   `json:"gres,omitempty"`
	MaxParallel   int      `json:"max_parallel,omitempty"`
	SignalSeconds int      `json:"signal_seconds"`
	NoRequeue     bool     `json:"no_requeue,omitempty"`
	SbatchArgs    []string `json:"sbatch_args,omitempty"`
	Template      string   `json:"template,omitempty"`  // absolute path; "" is the embedded template
	Binary        string   `json:"scv_hpc"`             // absolute path of scv-hpc on the nodes
	CacheDir      string   `json:"cache_dir,omitempty"` // cache the nodes read
	LogLevel      string   `json:"log_level,omitempty"` // run-shard's --log-level
}

// ApplySite fills the settings that set(name) reports as not given on the
// command line from the site config. Names are the flag names of submit.
func (o *Options) ApplySite(c *SiteConfig, set func(flag string) bool) {
	s := c.Slurm
	str := func(flag string, dst *string, v string) {
		if v != "" && !set(flag) {
			*dst = v
		}
	}
	num := func(flag string, dst *int, v int) {
		if v != 0 && !set(flag) {
			*dst = v
		}
	}
	str("partition", &o.Partition, s.Partition)
	str("account", &o.Account, s.Account)
	str("qos", &o.QOS, s.QOS)
	str("time", &o.Time, s.Time)
	str("mem", &o.Mem, s.Mem)
	str("gres", &o.Gres, s.Gres)
	num("cpus-per-task", &o.CPUsPerTask, s.CPUsPerTask)
	num("gpus-per-task", &o.GPUsPerTask, s.GPUsPerTask)
	num("max-parallel", &o.MaxParallel, s.MaxParallel)
	num("signal-seconds", &o.SignalSeconds, s.SignalSeconds)
	str("template", &o.Template, c.Template)
	str("scv-hpc", &o.Binary, c.Binary)
	if len(s.SbatchArgs) > 0 {
		// Site arguments come first so that the user's can override them.
		o.SbatchArgs = append(append([]string{}, s.SbatchArgs...), o.SbatchArgs...)
	}
}

// Params are the template parameters of the job's arrays; runArgs are extra
// run-shard flags (--retry-failed). Submit sets the array fields and checks the
// values (Params.Validate) as it renders each array, before any sbatch runs.
func (o *Options) Params(j *job.Job, jobDir string, runArgs []string) (Params, error) {
	if o.GPUsPerTask > 0 && o.Gres != "" {
		return Params{}, errors.New("give either --gpus-per-task or --gres, not both")
	}
	global := []string{"--offline"}
	if o.CacheDir != "" {
		global = append(global, "--cache", o.CacheDir)
	}
	if o.LogLevel != "" && o.LogLevel != "info" {
		global = append(global, "--log-level", o.LogLevel)
	}
	return Params{
		Version: version.String(), Model: j.Model, Digest: j.Digest,
		JobName:   JobName(j.Model),
		Partition: o.Partition, Account: o.Account, QOS: o.QOS, Time: o.Time,
		CPUsPerTask: o.CPUsPerTask, Mem: o.Mem, GPUsPerTask: o.GPUsPerTask, Gres: o.Gres,
		Requeue: !o.NoRequeue, SignalSeconds: o.SignalSeconds,
		Binary: o.Binary, JobDir: jobDir, GlobalArgs: global, RunArgs: runArgs,
	}, nil
}

// SaveOptions writes JOBDIR/slurm.json.
func SaveOptions(jobDir string, o *Options) error {
	b, err := json.MarshalIndent(o, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(filepath.Join(jobDir, OptionsFile), append(b, '\n'), 0o644)
}

// LoadOptions reads JOBDIR/slurm.json.
func LoadOptions(jobDir string) (*Options, error) {
	b, err := os.ReadFile(filepath.Join(jobDir, OptionsFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s has no %s: it was not created by 'scv-hpc submit'", jobDir, OptionsFile)
	}
	if err != nil {
		return nil, err
	}
	var o Options
	if err := json.Unmarshal(b, &o); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(jobDir, OptionsFile), err)
	}
	return &o, nil
}
