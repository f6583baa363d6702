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
//
// The same names are the keys of slurm.json and of the site config's slurm: section
// (template and scv_hpc sit at the site config's top level).
type Options struct {
	Resources     `yaml:",inline"`
	MaxParallel   int      `json:"max_parallel,omitempty" yaml:"max_parallel"`
	SignalSeconds int      `json:"signal_seconds" yaml:"signal_seconds"`
	NoRequeue     bool     `json:"no_requeue,omitempty" yaml:"no_requeue"`
	SbatchArgs    []string `json:"sbatch_args,omitempty" yaml:"sbatch_args"`
	Template      string   `json:"template,omitempty" yaml:"-"`  // absolute path; "" is the embedded template
	Binary        string   `json:"scv_hpc" yaml:"-"`             // absolute path of scv-hpc on the nodes
	CacheDir      string   `json:"cache_dir,omitempty" yaml:"-"` // cache the nodes read
	LogLevel      string   `json:"log_level,omitempty" yaml:"-"` // run-shard's --log-level
}

// Resources are what each array task asks Slurm for: the #SBATCH options of the
// script. Options (slurm.json, the site config) and Params (the template) share them,
// so a template's .QOS is Options.QOS.
type Resources struct {
	Partition   string `json:"partition,omitempty" yaml:"partition"`         // --partition
	Account     string `json:"account,omitempty" yaml:"account"`             // --account
	QOS         string `json:"qos,omitempty" yaml:"qos"`                     // --qos
	Time        string `json:"time,omitempty" yaml:"time"`                   // --time
	CPUsPerTask int    `json:"cpus_per_task,omitempty" yaml:"cpus_per_task"` // --cpus-per-task
	Mem         string `json:"mem,omitempty" yaml:"mem"`                     // --mem
	GPUsPerTask int    `json:"gpus_per_task,omitempty" yaml:"gpus_per_task"` // --gpus-per-task
	Gres        string `json:"gres,omitempty" yaml:"gres"`                   // --gres
}

// DefaultOptions are the settings before the site config and flags: SignalSeconds
// DefaultSignalSeconds, requeue on, everything else unset.
func DefaultOptions() Options { return Options{SignalSeconds: DefaultSignalSeconds} }

// Validate checks counts and exclusive settings.
func (o *Options) Validate() error {
	if o.GPUsPerTask < 0 || o.CPUsPerTask < 0 || o.MaxParallel < 0 || o.SignalSeconds < 0 {
		return errors.New("slurm counts (gpus_per_task, cpus_per_task, max_parallel, signal_seconds) must not be negative")
	}
	if o.GPUsPerTask > 0 && o.Gres != "" {
		return ErrGPUsAndGres
	}
	return nil
}

// ErrGPUsAndGres: a job asks for GPUs either per task or as generic resources.
var ErrGPUsAndGres = errors.New("GPUs asked for both per task and as generic resources (gres)")

// WantGPU gives a task one GPU (GPUsPerTask 1) when the model wants a GPU and neither
// GPUsPerTask nor Gres asks for one already; it reports whether it did.
func (o *Options) WantGPU(modelWantsGPU bool) bool {
	if !modelWantsGPU || o.GPUsPerTask > 0 || o.Gres != "" {
		return false
	}
	o.GPUsPerTask = 1
	return true
}

// Params are the template parameters of the job's arrays; runArgs are extra
// run-shard flags (--retry-failed). Submit sets the array fields and checks the
// values (Params.Validate) as it renders each array, before any sbatch runs.
func (o *Options) Params(j *job.Job, jobDir string, runArgs []string) (Params, error) {
	if err := o.Validate(); err != nil {
		return Params{}, err
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
		Resources: o.Resources,
		Requeue:   !o.NoRequeue, SignalSeconds: o.SignalSeconds,
		Binary: o.Binary, JobDir: jobDir, GlobalArgs: global, RunArgs: runArgs,
	}, nil
}

// SaveOptions writes JOBDIR/slurm.json.
func SaveOptions(jobDir string, o *Options) error {
	if err := o.Validate(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(o, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(job.Dir(jobDir).SlurmFile(), append(b, '\n'), 0o644)
}

// ErrNotSubmitted: the job directory has no slurm.json (it was made by predict).
var ErrNotSubmitted = errors.New("the job was not submitted to Slurm")

// LoadOptions reads JOBDIR/slurm.json.
func LoadOptions(jobDir string) (*Options, error) {
	b, err := os.ReadFile(job.Dir(jobDir).SlurmFile())
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s has no %s: %w", jobDir, OptionsFile, ErrNotSubmitted)
	}
	if err != nil {
		return nil, err
	}
	var o Options
	if err := json.Unmarshal(b, &o); err != nil {
		return nil, fmt.Errorf("%s: %w", job.Dir(jobDir).SlurmFile(), err)
	}
	return &o, nil
}

// Prepare makes the binary and template paths absolute, takes this executable as the
// binary when none is set, and parses the template (nil: the embedded one). A template
// that cannot be read or parsed is an error wrapping ErrTemplate, before anything is
// submitted.
func (o *Options) Prepare() (*Template, error) {
	if o.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNoBinary, err)
		}
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		o.Binary = exe
	}
	for _, p := range []*string{&o.Binary, &o.Template} {
		if *p != "" {
			abs, err := filepath.Abs(*p)
			if err != nil {
				return nil, err
			}
			*p = abs
		}
	}
	if o.Template == "" {
		return nil, nil
	}
	t, err := LoadTemplate(o.Template)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTemplate, err)
	}
	return t, nil
}

// ErrTemplate marks a batch script template that cannot be read or parsed.
var ErrTemplate = errors.New("batch script template")
