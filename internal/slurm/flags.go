package slurm

import (
	"errors"

	"github.com/spf13/pflag"
)

// option is one Slurm setting: its flag, and how a given flag is copied onto the
// settings below it (site config, or slurm.json). This table is the one definition
// that submit's and resubmit's flags and Merge share; Options holds the values, and
// its json/yaml tags the keys of slurm.json and of the site config.
type option struct {
	flag     string
	register func(fs *pflag.FlagSet, o *Options)
	copy     func(dst, src *Options)
}

var options = []option{
	{"partition", func(fs *pflag.FlagSet, o *Options) {
		fs.StringVar(&o.Partition, "partition", "", "Slurm partition (sbatch --partition)")
	}, func(d, s *Options) { d.Partition = s.Partition }},
	{"account", func(fs *pflag.FlagSet, o *Options) {
		fs.StringVar(&o.Account, "account", "", "Slurm account to charge (sbatch --account)")
	}, func(d, s *Options) { d.Account = s.Account }},
	{"qos", func(fs *pflag.FlagSet, o *Options) {
		fs.StringVar(&o.QOS, "qos", "", "Slurm quality of service (sbatch --qos)")
	}, func(d, s *Options) { d.QOS = s.QOS }},
	{"time", func(fs *pflag.FlagSet, o *Options) {
		fs.StringVar(&o.Time, "time", "", "time limit of each task, e.g. 2:00:00 (sbatch --time)")
	}, func(d, s *Options) { d.Time = s.Time }},
	{"cpus-per-task", func(fs *pflag.FlagSet, o *Options) {
		fs.IntVar(&o.CPUsPerTask, "cpus-per-task", 0, "CPUs per task (sbatch --cpus-per-task)")
	}, func(d, s *Options) { d.CPUsPerTask = s.CPUsPerTask }},
	{"mem", func(fs *pflag.FlagSet, o *Options) {
		fs.StringVar(&o.Mem, "mem", "", "memory per task, e.g. 16G (sbatch --mem)")
	}, func(d, s *Options) { d.Mem = s.Mem }},
	{"gpus-per-task", func(fs *pflag.FlagSet, o *Options) {
		fs.IntVar(&o.GPUsPerTask, "gpus-per-task", 0, "GPUs per task (sbatch --gpus-per-task; default 1 for models that want a GPU); replaces a --gres below it")
	}, func(d, s *Options) { d.GPUsPerTask, d.Gres = s.GPUsPerTask, "" }},
	{"gres", func(fs *pflag.FlagSet, o *Options) {
		fs.StringVar(&o.Gres, "gres", "", "generic resources per task, e.g. gpu:a100:1 (sbatch --gres), instead of --gpus-per-task")
	}, func(d, s *Options) { d.Gres, d.GPUsPerTask = s.Gres, 0 }},
	{"max-parallel", func(fs *pflag.FlagSet, o *Options) {
		fs.IntVar(&o.MaxParallel, "max-parallel", 0, "at most this many tasks at once (--array=0-N%M); 0: no limit")
	}, func(d, s *Options) { d.MaxParallel = s.MaxParallel }},
	{"signal-seconds", func(fs *pflag.FlagSet, o *Options) {
		fs.IntVar(&o.SignalSeconds, "signal-seconds", DefaultSignalSeconds, "send SIGTERM this many seconds before the time limit so results flush (sbatch --signal=B:TERM@N)")
	}, func(d, s *Options) { d.SignalSeconds = s.SignalSeconds }},
	{"no-requeue", func(fs *pflag.FlagSet, o *Options) {
		fs.BoolVar(&o.NoRequeue, "no-requeue", false, "do not let Slurm requeue preempted tasks (default: --requeue)")
	}, func(d, s *Options) { d.NoRequeue = s.NoRequeue }},
	{"sbatch-arg", func(fs *pflag.FlagSet, o *Options) {
		fs.StringArrayVar(&o.SbatchArgs, "sbatch-arg", nil, "extra sbatch argument, passed as is after the site's and saved ones (repeatable), e.g. --sbatch-arg=--constraint=a100")
	}, func(d, s *Options) { d.SbatchArgs = append(append([]string{}, d.SbatchArgs...), s.SbatchArgs...) }},
	{"template", func(fs *pflag.FlagSet, o *Options) {
		fs.StringVar(&o.Template, "template", "", "batch script template (text/template) instead of the embedded one")
	}, func(d, s *Options) { d.Template = s.Template }},
	{"scv-hpc", func(fs *pflag.FlagSet, o *Options) {
		fs.StringVar(&o.Binary, "scv-hpc", "", "path of scv-hpc on the compute nodes (default: this executable)")
	}, func(d, s *Options) { d.Binary = s.Binary }},
}

// RegisterFlags defines the Slurm flags of submit and resubmit on fs, bound to o.
func RegisterFlags(fs *pflag.FlagSet, o *Options) {
	for _, op := range options {
		op.register(fs, o)
	}
}

// Merge copies onto o the settings of flags whose flag set reports as given: the one
// merge of submit (flags over the site config) and resubmit (flags over slurm.json).
// --gpus-per-task and --gres replace each other; --sbatch-arg adds after the
// arguments below it (sbatch takes the last of a repeated option). Giving both
// --gpus-per-task and --gres is ErrGPUsAndGres.
func (o *Options) Merge(flags *Options, set func(flag string) bool) error {
	if set("gpus-per-task") && set("gres") {
		return ErrGPUsAndGres
	}
	for _, op := range options {
		if set(op.flag) {
			op.copy(o, flags)
		}
	}
	return o.Validate()
}

// ErrBadOption marks Slurm flags that cannot be used together or at all (Merge): the
// command line shows it as a usage error.
var ErrBadOption = errors.New("bad Slurm option")

// Flags are the Slurm resource flags of submit and resubmit, as given.
type Flags struct{ given Options }

// AddFlags defines the Slurm flags on fs (RegisterFlags).
func (f *Flags) AddFlags(fs *pflag.FlagSet) { RegisterFlags(fs, &f.given) }

// Options merges the flags that changed reports as given over base (the site's
// defaults for submit, slurm.json for resubmit; Merge), sets LogLevel to logLevel
// when it is not empty (the --log-level given to this command), and fills the binary
// and parses the template (Prepare). Flags that do not go together are ErrBadOption; a
// template that cannot be read or parsed is ErrTemplate.
func (f *Flags) Options(base Options, changed func(flag string) bool, logLevel string) (*Options, *Template, error) {
	o := base
	if err := o.Merge(&f.given, changed); err != nil {
		return nil, nil, optionError{err}
	}
	if logLevel != "" {
		o.LogLevel = logLevel
	}
	tmpl, err := o.Prepare()
	if err != nil {
		return nil, nil, err
	}
	return &o, tmpl, nil
}

// optionError is err marked as ErrBadOption, its text unchanged.
type optionError struct{ error }

func (e optionError) Is(target error) bool { return target == ErrBadOption }
func (e optionError) Unwrap() error        { return e.error }

// ErrNoBinary is returned by Prepare when the path of this executable, which the
// compute nodes run, cannot be found.
var ErrNoBinary = errors.New("find this executable, to run it on the compute nodes")
