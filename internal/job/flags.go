package job

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"
)

// ErrBadOption marks a run option that cannot be used: a zero --workers or
// --item-timeout, a negative count or duration, an unknown runtime, a malformed GPU
// list. The command line shows it as a usage error.
var ErrBadOption = errors.New("bad run option")

// RuntimeHelp describes the --runtime choices.
const RuntimeHelp = `container runtime: auto (apptainer, then singularity, else builtin), apptainer,
singularity, or builtin — a fallback for hosts without Apptainer that runs the image
in its own namespaces with NO GPU binding`

// RunFlags are the run-option flags of predict, submit and run-shard (--workers,
// --gpus, --runtime, --item-timeout, --retries, --load-timeout, --scratch), kept next
// to the RunOptions they fill.
type RunFlags struct {
	Workers     int
	GPUs        string
	Runtime     string
	ItemTimeout time.Duration
	Retries     int
	LoadTimeout time.Duration
	Scratch     string
}

// AddFlags defines the run-option flags on fs, showing defaults as their defaults
// (predict and submit pass DefaultRunOptions; run-shard a zero RunOptions, as its
// flags only override what the job recorded).
func (f *RunFlags) AddFlags(fs *pflag.FlagSet, defaults RunOptions) {
	fs.IntVar(&f.Workers, "workers", defaults.Workers, "model processes for a CPU model, at least 1 (with GPUs: one per GPU)")
	fs.StringVar(&f.GPUs, "gpus", defaults.GPUs, "GPUs to use, one worker each: auto or all (what SLURM_JOB_GPUS, CUDA_VISIBLE_DEVICES or nvidia-smi give), none, or ids such as 0,1")
	fs.StringVar(&f.Runtime, "runtime", defaults.Runtime, RuntimeHelp)
	fs.DurationVar(&f.ItemTimeout, "item-timeout", time.Duration(defaults.ItemTimeout), "time one input may take before its model process is killed and restarted (more than 0)")
	fs.IntVar(&f.Retries, "retries", defaults.Retries, "retries of an input whose model process crashed or hung, before it is recorded failed (0: none)")
	fs.DurationVar(&f.LoadTimeout, "load-timeout", time.Duration(defaults.LoadTimeout), "time a model process may take to load (to print its ready handshake); 0 means the default, 10m")
	fs.StringVar(&f.Scratch, "scratch", "", "directory for the workers' writable /scratch (default: a temporary directory under --tmpdir)")
}

// Override returns the flags that changed reports as given, as overrides of a job's
// run options. A zero --workers or --item-timeout, or a negative --retries or
// --load-timeout, is ErrBadOption: the value has no meaning there.
func (f *RunFlags) Override(changed func(flag string) bool) (Override, error) {
	var o Override
	switch {
	case changed("workers") && f.Workers < 1:
		return o, fmt.Errorf("%w: --workers %d: want at least 1", ErrBadOption, f.Workers)
	case changed("item-timeout") && f.ItemTimeout <= 0:
		return o, fmt.Errorf("%w: --item-timeout %s: want more than 0", ErrBadOption, f.ItemTimeout)
	case changed("retries") && f.Retries < 0:
		return o, fmt.Errorf("%w: --retries %d: want 0 or more", ErrBadOption, f.Retries)
	case changed("load-timeout") && f.LoadTimeout < 0:
		return o, fmt.Errorf("%w: --load-timeout %s: want 0 (the default) or more", ErrBadOption, f.LoadTimeout)
	}
	for flag, apply := range map[string]func(){
		"workers":      func() { o.Workers = &f.Workers },
		"gpus":         func() { o.GPUs = &f.GPUs },
		"runtime":      func() { o.Runtime = &f.Runtime },
		"item-timeout": func() { o.ItemTimeout = &f.ItemTimeout },
		"retries":      func() { o.Retries = &f.Retries },
		"load-timeout": func() { o.LoadTimeout = &f.LoadTimeout },
		"scratch":      func() { o.Scratch = &f.Scratch },
	} {
		if changed(flag) {
			apply()
		}
	}
	return o, nil
}
