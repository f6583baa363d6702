// Package runner runs one shard of a job: a pond pool of workers, each owning one
// long-lived model process spoken to in predict protocol v1 (JSON lines on
// stdin/stdout), pinned to a GPU or not, with per-input timeouts, restarts of crashed
// or hung processes, bounded retries, and results streamed to results/NNNNNN.jsonl so
// that a re-run resumes where a killed run stopped.
package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alitto/pond/v2"
	"github.com/rs/zerolog"

	"github.com/scivision-hpc/scv-hpc/internal/container"
	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/progress"
	"github.com/scivision-hpc/scv-hpc/internal/results"
	"github.com/scivision-hpc/scv-hpc/internal/sharding"
)

// Options tune RunShard. The zero value of each field picks its default.
type Options struct {
	// Workers is the number of CPU workers (model processes) when GPUs is empty (default 1).
	Workers int
	// GPUs are device ids: one worker per GPU, pinned with CUDA_VISIBLE_DEVICES.
	GPUs []string
	// Runtime starts the model processes (required).
	Runtime container.Runtime
	// ItemTimeout is how long an input may go unanswered before its process is
	// killed and restarted (default 5m).
	ItemTimeout time.Duration
	// Retries is how often an input whose process crashed or hung is tried again
	// before it is recorded failed: 0 means the default 2, negative means none.
	Retries int
	// HandshakeTimeout is how long a model may take to load (default 10m).
	HandshakeTimeout time.Duration
	// Grace is how long a cancelled run waits for in-flight answers, and a finished
	// model for its exit after stdin closes (default 10s).
	Grace time.Duration
	// Env is added to the model's environment.
	Env      map[string]string
	Log      zerolog.Logger
	Progress progress.Factory // default progress.NopFactory
	// RetryFailed runs again the inputs whose last result is a failure (resubmit
	// --failed-only); by default every input with a result is skipped.
	RetryFailed bool
	// Scratch is the directory under which each worker gets its writable /scratch
	// (default: a temporary directory under TMPDIR, removed afterwards).
	Scratch string
}

// DefaultRetries is the retries of Options.Retries == 0.
const DefaultRetries = 2

func (o Options) withDefaults() Options {
	if o.ItemTimeout <= 0 {
		o.ItemTimeout = 5 * time.Minute
	}
	switch {
	case o.Retries == 0:
		o.Retries = DefaultRetries
	case o.Retries < 0:
		o.Retries = 0
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = 10 * time.Minute
	}
	if o.Grace <= 0 {
		o.Grace = 10 * time.Second
	}
	if o.Progress == nil {
		o.Progress = progress.NopFactory
	}
	if o.Workers <= 0 {
		o.Workers = 1
	}
	return o
}

// Stats count what one RunShard did.
type Stats struct {
	Inputs   int64         // inputs in the shard
	Skipped  int64         // already had a result (resume)
	OK       int64         // answered ok in this run
	Failed   int64         // recorded failed in this run
	Restarts int64         // model processes restarted after a crash or timeout
	Elapsed  time.Duration // wall time
}

// LoadError is a model that could not start or become ready: the run stops rather
// than failing every input. Stderr holds the tail of the model's stderr.
type LoadError struct {
	Stage  string // "start" (the process did not start) or "load" (no ready handshake)
	Worker int
	Msg    string
	Stderr string
}

func (e *LoadError) Error() string {
	s := fmt.Sprintf("stage %s: worker %d: %s", e.Stage, e.Worker, e.Msg)
	if e.Worker < 0 {
		s = fmt.Sprintf("stage %s: %s", e.Stage, e.Msg)
	}
	if e.Stderr != "" {
		s += "\nlast lines of the model's stderr:\n" + e.Stderr
	}
	return s
}

// run is the state shared by the workers of one RunShard.
type run struct {
	o        Options
	job      *job.Job
	in       chan []item
	tick     time.Duration
	writer   *results.Writer
	rep      progress.Reporter
	ok       atomic.Int64
	failed   atomic.Int64
	unknown  atomic.Int64
	restarts atomic.Int64
	writeMu  sync.Mutex
	writeErr error
}

// feedChunk is the most inputs that travel to a worker at once.
const feedChunk = 64

// RunShard runs shard index of the job in jobDir: inputs that already have a result
// are skipped, the rest go through the workers, and every input ends with exactly one
// result line. It returns a *LoadError when the model cannot load, ctx.Err() when ctx
// was cancelled (in-flight answers are awaited for the grace period and recorded;
// inputs left unanswered stay pending for a re-run).
func RunShard(ctx context.Context, jobDir string, index int, o Options) (Stats, error) {
	start := time.Now()
	o = o.withDefaults()
	var st Stats
	if o.Runtime == nil {
		return st, errors.New("run shard: no container runtime given")
	}
	j, err := job.Load(jobDir)
	if err != nil {
		return st, err
	}
	if index < 0 || index >= j.Shards {
		return st, fmt.Errorf("shard %d does not exist: the job in %s has %d shards (0..%d)", index, jobDir, j.Shards, j.Shards-1)
	}
	if len(j.Predict) == 0 {
		return st, fmt.Errorf("job %s: no predict command recorded in job.json", jobDir)
	}
	resPath := job.ResultFile(jobDir, index)
	// One pass over the result file: an input with a result is skipped, unless it
	// failed and failed inputs are retried.
	outcomes, err := results.Outcomes(resPath)
	if err != nil {
		return st, fmt.Errorf("shard %d: %w", index, err)
	}
	skip := func(rel string) bool {
		ok, had := outcomes[rel]
		return had && (ok || !o.RetryFailed)
	}
	// The pending inputs are counted here and read again by feed: holding them all
	// would make memory grow with the shard.
	var pending int64
	if err := sharding.ReadShard(jobDir, index, func(rel string) error {
		st.Inputs++
		if !skip(rel) {
			pending++
		}
		return nil
	}); err != nil {
		return st, err
	}
	st.Skipped = st.Inputs - pending
	log := o.Log.With().Int("shard", index).Logger()
	o.Log = log
	if pending == 0 {
		log.Info().Int64("inputs", st.Inputs).Msg("shard already complete")
		st.Elapsed = time.Since(start)
		return st, nil
	}
	if err := o.Runtime.Prepare(ctx, j.SIF); err != nil {
		return st, &LoadError{Stage: "start", Worker: -1, Msg: err.Error()}
	}
	w, err := results.OpenWriter(resPath)
	if err != nil {
		return st, err
	}
	scratch, cleanup, err := scratchDir(o.Scratch, index)
	if err != nil {
		w.Close()
		return st, err
	}
	defer cleanup()
	if err := os.MkdirAll(job.LogsDir(jobDir), 0o755); err != nil {
		w.Close()
		return st, fmt.Errorf("shard %d: logs: %w", index, err)
	}
	// Large outputs go to OUT/outputs, bound at /out: /scratch is removed after the shard.
	outputs, err := filepath.Abs(job.OutputsDir(jobDir))
	if err == nil {
		err = os.MkdirAll(outputs, 0o755)
	}
	if err != nil {
		w.Close()
		return st, fmt.Errorf("shard %d: outputs: %w", index, err)
	}

	r := &run{o: o, job: j, in: make(chan []item, 2), writer: w,
		tick: max(5*time.Millisecond, min(time.Second, o.ItemTimeout/8))}
	r.rep = o.Progress(fmt.Sprintf("shard %d", index), "inputs")
	r.rep.SetTotal(pending)

	nw := o.Workers
	if len(o.GPUs) > 0 {
		nw = len(o.GPUs)
		if o.Runtime.Name() == container.Builtin {
			log.Warn().Msg("the builtin runtime binds no GPU driver: CUDA_VISIBLE_DEVICES is set, but the model sees no GPU unless the image carries its own driver libraries; use apptainer or singularity for GPU models")
		}
	}
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	workers := make([]*worker, nw)
	for i := range workers {
		wk := &worker{r: r, id: i}
		dir := filepath.Join(scratch, "worker-"+strconv.Itoa(i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			w.Close()
			return st, fmt.Errorf("shard %d: scratch: %w", index, err)
		}
		env := map[string]string{"SCV_WORKER": strconv.Itoa(i), "SCV_SHARD": strconv.Itoa(index),
			"SCV_OUTPUT_DIR": container.OutputMount, "SCV_OUTPUT_HOST": outputs}
		for k, v := range o.Env {
			env[k] = v
		}
		wk.spec = container.Spec{SIF: j.SIF, Command: j.Predict, DataRoot: j.DataRoot, Scratch: dir, Output: outputs, Env: env}
		if len(o.GPUs) > 0 {
			wk.spec.GPU = o.GPUs[i]
		}
		if wk.logf, err = openWorkerLog(filepath.Join(job.LogsDir(jobDir), fmt.Sprintf("worker-%06d-%d.log", index, i))); err != nil {
			w.Close()
			return st, err
		}
		workers[i] = wk
	}
	log.Info().Int64("pending", pending).Int64("skipped", st.Skipped).Int("workers", nw).Strs("gpus", o.GPUs).
		Str("runtime", o.Runtime.Name()).Msg("running shard")

	var feedErr error
	feedDone := make(chan struct{})
	go func() {
		defer close(feedDone)
		defer close(r.in)
		// Small shards are spread over every worker; large ones travel in chunks.
		chunk := int(max(1, min(feedChunk, pending/int64(nw*4))))
		feedErr = feed(runCtx, jobDir, index, skip, r.in, chunk)
	}()

	pool := pond.NewPool(nw)
	errs := make([]error, nw)
	for i, wk := range workers {
		pool.Submit(func() {
			errs[i] = wk.loop(runCtx)
			if errs[i] != nil {
				// A model that cannot load, or results that cannot be written: stop
				// the other workers too, every input would fail the same way.
				cancelRun()
			}
		})
	}
	pool.StopAndWait()
	cancelRun()
	<-feedDone
	r.rep.Done()
	cerr := w.Close()

	st.OK, st.Failed, st.Restarts = r.ok.Load(), r.failed.Load(), r.restarts.Load()
	st.Elapsed = time.Since(start)
	ev := log.Info()
	if n := r.unknown.Load(); n > 0 {
		ev = log.Warn().Int64("unknown_ids", n)
	}
	ev.Int64("ok", st.OK).Int64("failed", st.Failed).Int64("restarts", st.Restarts).Dur("elapsed", st.Elapsed).Msg("shard finished")

	for _, err := range errs {
		var le *LoadError
		if errors.As(err, &le) {
			return st, err
		}
	}
	if err := ctx.Err(); err != nil {
		return st, err
	}
	if r.writeErr != nil {
		return st, r.writeErr
	}
	if feedErr != nil && !errors.Is(feedErr, context.Canceled) {
		return st, feedErr
	}
	for _, err := range errs {
		if err != nil {
			return st, err
		}
	}
	return st, cerr
}

// feed streams the shard's pending inputs (those not skipped) to the workers in chunks.
func feed(ctx context.Context, jobDir string, index int, skip func(string) bool, out chan<- []item, size int) error {
	chunk := make([]item, 0, size)
	send := func() error {
		select {
		case out <- chunk:
			chunk = make([]item, 0, size)
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	err := sharding.ReadShard(jobDir, index, func(rel string) error {
		if skip(rel) {
			return nil
		}
		chunk = append(chunk, item{rel: rel})
		if len(chunk) == size {
			return send()
		}
		return nil
	})
	if err == nil && len(chunk) > 0 {
		err = send()
	}
	return err
}

// record writes result lines and counts them. A write error (disk full, file system
// gone) stops the run: answers that cannot be kept must not be asked for.
func (r *run) record(recs []results.Record) error {
	var ok, failed int64
	defer func() {
		r.ok.Add(ok)
		r.failed.Add(failed)
		r.rep.Add(ok + failed)
	}()
	if err := r.writer.WriteBatch(recs); err != nil {
		r.writeMu.Lock()
		if r.writeErr == nil {
			r.writeErr = err
			r.o.Log.Error().Err(err).Msg("cannot write results: stopping")
		}
		r.writeMu.Unlock()
		return err
	}
	for i := range recs {
		if recs[i].OK {
			ok++
		} else {
			failed++
		}
	}
	return nil
}

// scratchDir returns the base of the workers' scratch directories.
func scratchDir(base string, index int) (string, func(), error) {
	if base != "" {
		dir := filepath.Join(base, fmt.Sprintf("shard-%06d", index))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", nil, fmt.Errorf("scratch %s: %w", dir, err)
		}
		return dir, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "scv-hpc-scratch-")
	if err != nil {
		return "", nil, fmt.Errorf("scratch directory: %w (set --tmpdir)", err)
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}
