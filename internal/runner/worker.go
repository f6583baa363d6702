package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/scivision-hpc/scv-hpc/internal/container"
	"github.com/scivision-hpc/scv-hpc/internal/results"
)

// item is one input on its way through a worker.
type item struct {
	rel      string
	attempts int  // failures charged to it (crash or timeout while it was alone in flight)
	suspect  bool // was in flight with others when the process failed: retried alone
}

// slot is an in-flight request, at index seq % len(slots).
type slot struct {
	seq  uint64
	it   item
	sent time.Time
	used bool
}

// brokenLimit is how many inputs in a row may fail by crash or timeout, with no input
// answered yet in the run, before the model is declared unable to predict (a load
// failure that stops the run instead of failing every input slowly).
const brokenLimit = 5

// maxWindow caps the inputs in flight per worker: enough to keep a fast model busy,
// small enough that the requests always fit the pipe and a failure re-runs few inputs.
const maxWindow = 256

// worker owns one model process at a time and feeds it inputs.
type worker struct {
	r      *run
	id     int
	spec   container.Spec
	logf   *workerLog
	p      *process
	starts int // processes started
	idle   int // consecutive processes that ended with nothing asked and nothing answered
	broken int // consecutive inputs recorded failed by crash or timeout

	maxBatch  int
	slots     []slot
	inflight  int
	seq       uint64
	queue     []item // fresh inputs, queue[qpos:] pending
	qpos      int
	suspects  []item // inputs to retry one at a time
	isolating bool   // a suspect is in flight alone
	answered  bool   // the current process answered at least once
	last      time.Time
	buf       []byte
	recs      []results.Record
	lastTail  string // stderr tail of the last process that ended
}

// loop runs the worker until its input is exhausted (nil), ctx is done (ctx.Err())
// or its model cannot be loaded (*LoadError).
func (w *worker) loop(ctx context.Context) error {
	in := w.r.in
	tick := time.NewTicker(w.r.tick)
	defer tick.Stop()
	for {
		if ctx.Err() != nil {
			return w.stop(ctx, ctx.Err())
		}
		if err := w.fill(ctx); err != nil {
			return err
		}
		if in == nil && w.inflight == 0 && w.qpos == len(w.queue) && len(w.suspects) == 0 {
			return nil // the process stays for the next shard; the session ends it
		}
		var inCh <-chan []item
		if in != nil && w.qpos == len(w.queue) && len(w.suspects) == 0 {
			inCh = in
		}
		var resps <-chan []response
		if w.p != nil {
			resps = w.p.resps
		}
		select {
		case chunk, ok := <-resps:
			if !ok {
				if err := w.ended(ctx, results.StageCrash, ""); err != nil {
					return err
				}
				continue
			}
			if err := w.handle(chunk); err != nil {
				return w.stop(ctx, err)
			}
		case items, ok := <-inCh:
			if !ok {
				in = nil
				continue
			}
			w.queue, w.qpos = items, 0
		case now := <-tick.C:
			if w.inflight > 0 && now.Sub(w.last) > w.r.o.itemTimeout {
				w.p.kill()
				if err := w.ended(ctx, results.StageTimeout, fmt.Sprintf("no answer within the item timeout (%s); the model process was killed", w.r.o.itemTimeout)); err != nil {
					return err
				}
			}
		case <-ctx.Done():
		}
	}
}

// ensure starts the model process if none runs.
func (w *worker) ensure(ctx context.Context) error {
	if w.p != nil {
		return nil
	}
	if w.idle > w.r.o.retries+2 {
		return &LoadError{Stage: results.StageLoad, Worker: w.id, Msg: fmt.Sprintf("the model process ended on its own %d times in a row right after its handshake", w.idle), Stderr: w.lastTail}
	}
	if w.broken >= brokenLimit && w.r.ok.Load() == 0 {
		return &LoadError{Stage: results.StageLoad, Worker: w.id, Msg: fmt.Sprintf("the model process crashed or hung on each of the first %d inputs and answered none: it cannot predict at all", w.broken), Stderr: w.lastTail}
	}
	p, hs, err := w.r.startModel(ctx, w.id, w.spec, w.logf, w.starts)
	w.starts++
	if err != nil {
		return err
	}
	w.p, w.answered = p, false
	mb := hs.MaxBatch
	if jb := w.r.job.MaxBatch; jb > 0 && (mb <= 0 || jb < mb) {
		mb = jb
	}
	w.maxBatch = max(1, min(mb, maxWindow/2))
	if w.slots == nil {
		w.slots = make([]slot, min(maxWindow, max(32, 2*w.maxBatch)))
	}
	if w.starts > 1 {
		w.r.restarts.Add(1)
	}
	return nil
}

// fill sends what the window allows: fresh inputs batched up to max_batch, or one
// suspect alone with nothing else in flight.
func (w *worker) fill(ctx context.Context) error {
	if w.isolating || ctx.Err() != nil {
		return nil
	}
	if len(w.suspects) > 0 {
		if w.inflight > 0 {
			return nil
		}
		if err := w.ensure(ctx); err != nil {
			return err
		}
		it := w.suspects[0]
		w.suspects = w.suspects[1:]
		w.isolating = true
		w.buf = w.buf[:0]
		w.buf = w.add(w.buf, it, time.Now())
		w.buf = append(w.buf, '\n')
		return w.send(ctx)
	}
	if w.qpos == len(w.queue) || (w.slots != nil && w.inflight >= len(w.slots)) {
		return nil
	}
	if err := w.ensure(ctx); err != nil {
		return err
	}
	now := time.Now()
	w.buf = w.buf[:0]
	for w.qpos < len(w.queue) {
		n := w.free(min(w.maxBatch, len(w.queue)-w.qpos))
		if n == 0 {
			break
		}
		if n > 1 {
			w.buf = append(w.buf, `{"batch":[`...)
		}
		for i := 0; i < n; i++ {
			if i > 0 {
				w.buf = append(w.buf, ',')
			}
			w.buf = w.add(w.buf, w.queue[w.qpos], now)
			w.queue[w.qpos] = item{}
			w.qpos++
		}
		if n > 1 {
			w.buf = append(w.buf, "]}"...)
		}
		w.buf = append(w.buf, '\n')
	}
	if len(w.buf) == 0 {
		return nil
	}
	return w.send(ctx)
}

// free returns how many of the next up-to-n sequence numbers have a free slot.
func (w *worker) free(n int) int {
	for i := 0; i < n; i++ {
		if w.inflight+i >= len(w.slots) || w.slots[(w.seq+1+uint64(i))%uint64(len(w.slots))].used {
			return i
		}
	}
	return n
}

// add records it in the next slot and appends its request.
func (w *worker) add(b []byte, it item, now time.Time) []byte {
	w.seq++
	s := &w.slots[w.seq%uint64(len(w.slots))]
	*s = slot{seq: w.seq, it: it, sent: now, used: true}
	if w.inflight == 0 {
		w.last = now
	}
	w.inflight++
	return appendRequest(b, w.seq, it.rel)
}

// send writes the buffered requests. A write that fails (the model died) or blocks
// past the item timeout is left to the crash and timeout handling; one that blocks
// when ctx ends (a model that reads no more) gives up at once.
func (w *worker) send(ctx context.Context) error {
	w.p.stdinFile.SetWriteDeadline(time.Now().Add(w.r.o.itemTimeout))
	f := w.p.stdinFile
	defer context.AfterFunc(ctx, func() { f.SetWriteDeadline(time.Now()) })()
	if _, err := w.p.stdinFile.Write(w.buf); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			w.last = time.Time{} // the next tick kills it
		}
	}
	return nil
}

// handle records a chunk of answers.
func (w *worker) handle(chunk []response) error {
	now := time.Now()
	w.recs = w.recs[:0]
	for i := range chunk {
		r := &chunk[i]
		s := &w.slots[r.seq%uint64(len(w.slots))]
		if !s.used || s.seq != r.seq {
			w.r.unknown.Add(1)
			continue
		}
		rec := results.Record{Path: s.it.rel, OK: r.ok, Result: r.result, MS: now.Sub(s.sent).Milliseconds(), Attempts: s.it.attempts + 1}
		if !r.ok {
			rec.Result, rec.Error, rec.Stage = nil, r.err, results.StagePredict
		}
		if s.it.suspect {
			w.isolating = false
		}
		*s = slot{}
		w.inflight--
		w.recs = append(w.recs, rec)
	}
	if len(w.recs) > 0 {
		w.answered, w.idle, w.broken, w.last = true, 0, 0, now
		return w.r.record(w.recs)
	}
	return nil
}

// ended handles a process that exited (stage crash) or was killed (stage timeout):
// answers it still wrote are recorded, then its in-flight inputs are retried, alone,
// or recorded failed once their retries are spent.
func (w *worker) ended(ctx context.Context, stage, why string) error {
	p := w.p
	var herr error
	for chunk := range p.resps {
		if err := w.handle(chunk); err != nil && herr == nil {
			herr = err
		}
	}
	<-p.waited
	w.p = nil
	if herr != nil {
		return herr
	}
	w.lastTail = p.tail.String()
	if !w.answered && w.inflight == 0 {
		w.idle++
	} else {
		w.idle = 0
	}
	if why == "" {
		why = "the model process ended (" + p.exitStatus() + ")"
	}
	fmt.Fprintf(w.logf, "scv-hpc: worker %d: %s with %d input(s) in flight\n", w.id, why, w.inflight)
	w.r.o.Log.Warn().Int("worker", w.id).Str("stage", stage).Int("in_flight", w.inflight).Msg(why)
	var flight []item
	for i := range w.slots {
		if w.slots[i].used {
			flight = append(flight, w.slots[i].it)
			w.slots[i] = slot{}
		}
	}
	w.inflight, w.isolating = 0, false
	if len(flight) > 1 {
		// Any of them may be the culprit: retry each alone, uncharged.
		for _, it := range flight {
			it.suspect = true
			w.suspects = append(w.suspects, it)
		}
		return nil
	}
	w.recs = w.recs[:0]
	for _, it := range flight {
		it.attempts++
		it.suspect = true
		if it.attempts <= w.r.o.retries {
			w.suspects = append(w.suspects, it)
			continue
		}
		msg := why
		if tail := lastLine(w.lastTail); tail != "" && stage == results.StageCrash {
			msg += "; model stderr: " + tail
		}
		w.recs = append(w.recs, results.Record{Path: it.rel, OK: false, Error: msg, Stage: stage, Attempts: it.attempts})
		w.broken++
	}
	if len(w.recs) > 0 {
		return w.r.record(w.recs)
	}
	return nil
}

// stop ends the worker when ctx is done: nothing more is sent, answers to inputs in
// flight are awaited for the grace period and recorded, then the process is stopped.
// Unanswered inputs keep no result, so a re-run does them.
func (w *worker) stop(ctx context.Context, cause error) error {
	if w.p != nil {
		deadline := time.NewTimer(w.r.o.Grace)
		defer deadline.Stop()
	wait:
		for w.inflight > 0 {
			select {
			case chunk, ok := <-w.p.resps:
				if !ok {
					break wait
				}
				if err := w.handle(chunk); err != nil {
					break wait
				}
			case <-deadline.C:
				break wait
			}
		}
		w.p.finish(0)
		w.p = nil
	}
	return cause
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
