// Package runner runs the shards of a job: a pond pool of workers, each owning one
// long-lived model process spoken to in predict protocol v1 (JSON lines on
// stdin/stdout), pinned to a GPU or not, with per-input timeouts, restarts of crashed
// or hung processes, bounded retries, and results streamed to results/NNNNNN.jsonl so
// that a re-run resumes where a killed run stopped. RunShard runs one shard (a Slurm
// array task); RunJob runs several on this machine and keeps each worker's model
// loaded across them.
package runner

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alitto/pond/v2"

	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/progress"
	"github.com/scivision-hpc/scv-hpc/internal/results"
	"github.com/scivision-hpc/scv-hpc/internal/sharding"
)

// Stats count what one RunShard or RunJob did.
type Stats struct {
	Inputs   int64         // inputs in the shards
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

// run is the state shared by the workers while they run one shard.
type run struct {
	*session
	index    int
	in       chan []item
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

// RunShard runs shard index of the job in jobDir (j is its job.json, loaded when
// nil): inputs that already have a result are skipped, the rest go through the
// workers, and every input ends with exactly one result line. The job's recorded run
// options apply, with o.Override on top. It returns a *LoadError when the model
// cannot load, ctx.Err() when ctx was cancelled (in-flight answers are awaited for
// the grace period and recorded; inputs left unanswered stay pending for a re-run).
// Its errors begin "shard N: ", except a *job.BusyError, which names the shard.
func RunShard(ctx context.Context, jobDir string, j *job.Job, index int, o Options) (Stats, error) {
	return RunJob(ctx, jobDir, j, []int{index}, o)
}

// shardPrefix begins the errors of shard index.
func shardPrefix(index int) string { return fmt.Sprintf("shard %d: ", index) }

// RunJob runs the given shards of the job in jobDir one after the other, as RunShard
// runs one, with the same workers throughout: each worker's model process is loaded
// once and kept across the shards (a model that crashes is restarted as within a
// shard). Result files and resume are per shard, as with RunShard; with
// o.LockShard each shard runs under the caller's lock, taken when it starts. It stops
// at the first shard that returns an error, with the stats so far. An error of a shard
// begins "shard N: " (a *job.BusyError names its shard itself), as does one before any
// shard ran when only one is asked.
func RunJob(ctx context.Context, jobDir string, j *job.Job, shards []int, o Options) (st Stats, err error) {
	start := time.Now()
	if o.Runtime == nil {
		return st, errors.New("run shard: no container runtime given")
	}
	whole := func(err error) error { // an error before any shard ran
		if len(shards) == 1 {
			return fmt.Errorf("%s%w", shardPrefix(shards[0]), err)
		}
		return err
	}
	if j == nil {
		if j, err = job.Load(jobDir); err != nil {
			return st, whole(err)
		}
	}
	for _, index := range shards {
		if index < 0 || index >= j.Shards {
			return st, fmt.Errorf("shard %d does not exist: the job in %s has %d shards (0..%d)", index, jobDir, j.Shards, j.Shards-1)
		}
	}
	if len(j.Predict) == 0 {
		return st, whole(fmt.Errorf("job %s: no predict command recorded in job.json", jobDir))
	}
	c := resolve(j, o)
	// Workers are capped by the inputs there are to run: no process, log or scratch
	// directory is made for a worker that would have nothing to do.
	pending := make([]int64, len(shards))
	var total int64
	var only func(string) bool
	for k, index := range shards {
		in, n, skip, err := countPending(jobDir, index, c.RetryFailed)
		if err != nil {
			return st, fmt.Errorf("%s%w", shardPrefix(index), err)
		}
		if len(shards) == 1 && o.LockShard == nil {
			only = skip // one shard (RunShard): its results are read once
		}
		pending[k] = n
		total += n
		st.Inputs += in
		st.Skipped += in - n
	}
	defer func() { st.Elapsed = time.Since(start) }()
	if total == 0 {
		c.Log.Info().Int("shards", len(shards)).Int64("inputs", st.Inputs).Msg("nothing to run: every input has a result")
		return st, nil
	}
	if err := c.Runtime.Prepare(ctx, j.SIF); err != nil {
		return st, whole(&LoadError{Stage: "start", Worker: -1, Msg: err.Error()})
	}
	s, err := newSession(jobDir, j, c, total)
	if err != nil {
		return st, whole(err)
	}
	defer s.close()
	for k, index := range shards {
		if pending[k] == 0 {
			c.Log.Info().Int("shard", index).Msg("shard already complete")
			continue
		}
		one, err := s.runLocked(ctx, index, only, pending[k])
		st.OK += one.OK
		st.Failed += one.Failed
		st.Restarts += one.Restarts
		if err != nil && !errors.Is(err, job.ErrBusy) { // a BusyError names its shard
			err = fmt.Errorf("%s%w", shardPrefix(index), err)
		}
		if err != nil {
			return st, err
		}
	}
	return st, nil
}

// runLocked runs one shard under the caller's lock (Options.LockShard), when there
// is one; the shard's results are then read again under it.
func (s *session) runLocked(ctx context.Context, index int, skip func(string) bool, pending int64) (Stats, error) {
	if s.o.LockShard == nil {
		return s.runShard(ctx, index, skip, pending)
	}
	unlock, err := s.o.LockShard(ctx, index)
	if err != nil {
		return Stats{}, err
	}
	defer unlock()
	return s.runShard(ctx, index, nil, 0)
}

// countPending reads shard index and its results: the inputs, those still to run,
// and the skip rule (an input with a result is skipped, unless it failed and failed
// inputs are retried). The pending inputs are counted, not held: feed reads them
// again, so memory does not grow with the shard.
func countPending(jobDir string, index int, retryFailed bool) (inputs, pending int64, skip func(string) bool, err error) {
	outcomes, err := results.Outcomes(job.Dir(jobDir).ResultFile(index))
	if err != nil {
		return 0, 0, nil, err
	}
	skip = func(rel string) bool {
		ok, had := outcomes[rel]
		return had && (ok || !retryFailed)
	}
	err = sharding.ReadShard(jobDir, index, func(rel string) error {
		inputs++
		if !skip(rel) {
			pending++
		}
		return nil
	})
	return inputs, pending, skip, err
}

// runShard runs one shard through the session's workers.
// skip and pending are the shard's, when the caller has them (nil: read here).
func (s *session) runShard(ctx context.Context, index int, skip func(string) bool, pending int64) (Stats, error) {
	var st Stats
	log := s.o.Log.With().Int("shard", index).Logger()
	if skip == nil {
		var err error
		if _, pending, skip, err = countPending(s.dir, index, s.o.RetryFailed); err != nil {
			return st, err
		}
		if pending == 0 {
			log.Info().Msg("shard already complete")
			return st, nil
		}
	}
	w, err := results.OpenWriter(job.Dir(s.dir).ResultFile(index))
	if err != nil {
		return st, err
	}
	for _, wk := range s.workers {
		if err := wk.logf.switchTo(job.Dir(s.dir).WorkerLog(index, wk.id)); err != nil {
			w.Close()
			return st, err
		}
		wk.spec.Env["SCV_SHARD"] = strconv.Itoa(index) // the shard a process started in
	}
	r := &run{session: s, index: index, in: make(chan []item, 2), writer: w}
	r.rep = s.o.Progress(fmt.Sprintf("shard %d", index), "inputs")
	r.rep.SetTotal(pending)
	nw := len(s.workers)
	log.Info().Int64("pending", pending).Int("workers", nw).Strs("gpus", s.o.GPUs).
		Str("runtime", s.o.Runtime.Name()).Msg("running shard")

	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	var feedErr error
	feedDone := make(chan struct{})
	go func() {
		defer close(feedDone)
		defer close(r.in)
		// Small shards are spread over every worker; large ones travel in chunks.
		chunk := int(max(1, min(feedChunk, pending/int64(nw*4))))
		feedErr = feed(runCtx, s.dir, index, skip, r.in, chunk)
	}()

	pool := pond.NewPool(nw)
	errs := make([]error, nw)
	for i, wk := range s.workers {
		wk.r = r
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
	ev := log.Info()
	if n := r.unknown.Load(); n > 0 {
		ev = log.Warn().Int64("unknown_ids", n)
	}
	ev.Int64("ok", st.OK).Int64("failed", st.Failed).Int64("restarts", st.Restarts).Msg("shard finished")

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
