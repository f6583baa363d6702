package job

import "time"

// Defaults of the run options, in one place: what a new job records when no flag
// says otherwise, and what a zero field of an older job.json means.
const (
	DefaultWorkers     = 1               // CPU workers (model processes); with GPUs: one per GPU
	DefaultGPUs        = "auto"          // what Slurm, CUDA_VISIBLE_DEVICES or nvidia-smi give
	DefaultRuntime     = "auto"          // apptainer, then singularity, else builtin
	DefaultItemTimeout = 5 * time.Minute // one input unanswered this long: its process is killed
	DefaultRetries     = 2               // retries of an input whose process crashed or hung
	DefaultLoadTimeout = 10 * time.Minute
)

// DefaultRunOptions returns the run options of a job created without flags.
func DefaultRunOptions() RunOptions {
	return RunOptions{Workers: DefaultWorkers, GPUs: DefaultGPUs, Runtime: DefaultRuntime,
		ItemTimeout: Duration(DefaultItemTimeout), Retries: DefaultRetries, LoadTimeout: Duration(DefaultLoadTimeout)}
}

// Override holds explicit overrides of a job's recorded run options (the flags a
// user set on run-shard or predict): a nil field keeps the recorded value.
type Override struct {
	Workers     *int
	GPUs        *string
	Runtime     *string
	ItemTimeout *time.Duration
	Retries     *int
	LoadTimeout *time.Duration
	Scratch     *string
}

// With returns r with the fields o sets replaced, and nothing else changed.
func (r RunOptions) With(o Override) RunOptions {
	if o.Workers != nil {
		r.Workers = *o.Workers
	}
	if o.Retries != nil {
		r.Retries = *o.Retries
	}
	if o.GPUs != nil {
		r.GPUs = *o.GPUs
	}
	if o.Runtime != nil {
		r.Runtime = *o.Runtime
	}
	if o.ItemTimeout != nil {
		r.ItemTimeout = Duration(*o.ItemTimeout)
	}
	if o.LoadTimeout != nil {
		r.LoadTimeout = Duration(*o.LoadTimeout)
	}
	if o.Scratch != nil {
		r.Scratch = *o.Scratch
	}
	return r
}

// Apply returns r with the fields o sets replaced (With), and the zero fields that
// have a default filled in (Workers, GPUs, Runtime, ItemTimeout, LoadTimeout). Retries
// is taken as it is: 0 means no retry everywhere (a job records its retries), and a
// negative value counts as 0.
func (r RunOptions) Apply(o Override) RunOptions {
	r = r.With(o)
	d := DefaultRunOptions()
	if r.Workers <= 0 {
		r.Workers = d.Workers
	}
	if r.GPUs == "" {
		r.GPUs = d.GPUs
	}
	if r.Runtime == "" {
		r.Runtime = d.Runtime
	}
	if r.ItemTimeout <= 0 {
		r.ItemTimeout = d.ItemTimeout
	}
	if r.LoadTimeout <= 0 {
		r.LoadTimeout = d.LoadTimeout
	}
	r.Retries = max(r.Retries, 0)
	return r
}
