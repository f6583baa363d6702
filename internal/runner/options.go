package runner

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/scivision-hpc/scv-hpc/internal/container"
	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/progress"
)

// Options tune RunShard and RunJob. The settings a job records (workers, item and
// load timeouts, retries, scratch) come from its job.json "run" options, with the
// explicit overrides in Override; their defaults are job.DefaultRunOptions. The zero
// value of each other field picks its default.
type Options struct {
	// Override replaces recorded run options (the flags a user set); nil fields keep
	// the job's value. Runtime and GPUs are read by the caller, who selects Runtime
	// and resolves GPUs below.
	Override job.Override
	// GPUs are device ids: one worker per GPU, pinned with CUDA_VISIBLE_DEVICES.
	GPUs []string
	// Runtime starts the model processes (required).
	Runtime container.Runtime
	// Grace is how long a cancelled run waits for in-flight answers, and a finished
	// model for its exit after stdin closes (default 10s). A SIGTERM or Ctrl-C ends a
	// run within Grace + killWait.
	Grace time.Duration
	// Env is added to the model's environment.
	Env      map[string]string
	Log      zerolog.Logger
	Progress progress.Factory // default progress.NopFactory
	// LockShard, when set, is called before a shard with inputs to run starts, and
	// the function it returns once the shard is done: a caller's lock that keeps two
	// runs off one shard (execute locks each shard across nodes). An error stops the
	// run before the shard, and is returned. The shard's results are read again under
	// the lock, so a run that finished meanwhile is not repeated.
	LockShard func(ctx context.Context, index int) (unlock func(), err error)
	// RetryFailed runs again the inputs whose last result is a failure (resubmit
	// --failed-only); by default every input with a result is skipped.
	RetryFailed bool
	// MaxAnswerBytes caps one line a model writes on stdout (default
	// DefaultMaxAnswerBytes, 16 MiB). The inputs a longer line answers fail at once;
	// the runner reads no more than the cap of it into memory.
	MaxAnswerBytes int
	// MaxLogBytes caps a worker log (default DefaultMaxLogBytes, 8 MiB): past it the
	// log is renamed to NAME.1 and a new one begun, so a worker keeps the last
	// 1–2×MaxLogBytes of its model's stderr.
	MaxLogBytes int64
	// LoadLogEvery is how often "waiting for the model to load (Ns)" is logged while
	// a model has not yet handshaken (default 30s).
	LoadLogEvery time.Duration
}

// Defaults of the caps of Options.
const (
	DefaultMaxAnswerBytes = 16 << 20
	DefaultMaxLogBytes    = 8 << 20
	defaultGrace          = 10 * time.Second
	defaultLoadLogEvery   = 30 * time.Second
)

// killWait bounds how long a killed model process may keep its pipes open (a child
// that left its process group), and how long a model that closed its stdout may
// live on before it is killed: the run never waits longer on a process.
const killWait = 5 * time.Second

// config is Options with the job's run options applied.
type config struct {
	Options
	workers     int
	itemTimeout time.Duration
	loadTimeout time.Duration
	retries     int
	scratch     string
}

func resolve(j *job.Job, o Options) config {
	if o.Grace <= 0 {
		o.Grace = defaultGrace
	}
	if o.Progress == nil {
		o.Progress = progress.NopFactory
	}
	if o.MaxAnswerBytes <= 0 {
		o.MaxAnswerBytes = DefaultMaxAnswerBytes
	}
	if o.MaxLogBytes <= 0 {
		o.MaxLogBytes = DefaultMaxLogBytes
	}
	if o.LoadLogEvery <= 0 {
		o.LoadLogEvery = defaultLoadLogEvery
	}
	r := j.Run.Apply(o.Override)
	c := config{Options: o, workers: r.Workers, itemTimeout: time.Duration(r.ItemTimeout),
		loadTimeout: time.Duration(r.LoadTimeout), retries: r.Retries, scratch: r.Scratch}
	if len(o.GPUs) > 0 {
		c.workers = len(o.GPUs)
	}
	return c
}
