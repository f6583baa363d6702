package results

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
)

// Entry is one input of a shard with its final result (see Final). Path, Stage and
// Line point into buffers that Walk reuses for the next shards: they are valid only
// during the callback, so copy what you keep (strings.Clone, bytes.Clone).
type Entry struct {
	Path  string // relative to the data root, as in the shard file
	Found bool   // false: no result yet (pending)
	OK    bool
	Stage string // of a failed result
	T     int64  // unix milliseconds when the final line was written (0: not recorded)
	// Line is the final result line as written, without its '\n'; nil when pending.
	Line []byte
	// off and n place Line and its '\n' in the result file (Shard.data) when Line is
	// those bytes untrimmed; n is 0 otherwise.
	off, n int
}

// Record decodes the whole final line; a pending entry gives a record with stage
// "pending" and error "no result yet".
func (e *Entry) Record() (Record, error) {
	if !e.Found {
		return Record{Path: e.Path, Stage: StagePending, Error: "no result yet"}, nil
	}
	var r Record
	if err := json.Unmarshal(e.Line, &r); err != nil {
		return r, fmt.Errorf("result of %s: %w", e.Path, err)
	}
	return r, nil
}

// Shard is one shard as Walk hands it out: its inputs in shard order, each once.
type Shard struct {
	Index   int
	Entries []Entry
	Status  ShardStatus
	// Out is scratch space for WalkOptions.Prepare (empty when it is called),
	// reused like the rest.
	Out []byte
	// First and Last are the earliest and latest write times (unix ms) among the
	// shard's result lines; 0 when none is recorded.
	First, Last int64

	data  []byte // the result file as read: what Entry.off and n point into
	spans []span // JSONL collect's output, in order (see Collect)
	asm   []byte // a second Out, reused: see Collect's gather
}

// WalkOptions tune Walk. The zero value reads GOMAXPROCS shards at once.
type WalkOptions struct {
	// Workers is how many shards are read at once (default GOMAXPROCS); at most
	// Workers shards are held in memory, each the size of its result file.
	Workers int
	// Prepare, when set, is called for each shard on the goroutine that read it,
	// shards in any order and in parallel, before fn gets it in shard order: work
	// that can be done per shard (such as rendering output into Shard.Out) goes
	// here, and only what must be in order stays in fn.
	Prepare func(*Shard) error

	// jsonl: Collect's JSONL output is wanted, not the entries. A shard read by
	// readInOrder then has its result lines as Shard.spans already, and Entries
	// holds only its pending inputs (the other shards have all their entries).
	jsonl bool
}

// Walk reads shards 0..shards-1 of the job directory and calls fn for each, in shard
// order, from one goroutine. Shards are read ahead in parallel, and a result line is
// parsed only for its path, ok, stage and time: the model's answer is kept as bytes.
// The merge is Final's: per path the last ok line wins, else the last line; a torn
// last line is ignored; a corrupt complete line fails with ErrCorrupt naming the
// file and line. An error from fn stops the walk and is returned. The Shard and
// everything it points to are reused once fn returns.
func Walk(ctx context.Context, jobDir string, shards int, o WalkOptions, fn func(*Shard) error) error {
	workers := o.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type pending struct {
		done chan struct{}
		buf  *shardBuf
		s    *Shard
		err  error
	}
	order := make(chan *pending, workers)
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	go func() {
		defer close(order)
		for i := 0; i < shards; i++ {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			p := &pending{done: make(chan struct{})}
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				defer close(p.done)
				p.buf = bufPool.Get().(*shardBuf)
				p.s, p.err = p.buf.read(jobDir, i, o.jsonl)
				if p.err == nil && o.Prepare != nil {
					p.err = o.Prepare(p.s)
				}
			}(i)
			select {
			case order <- p:
			case <-ctx.Done():
				<-p.done
				bufPool.Put(p.buf)
				<-sem
				return
			}
		}
	}()
	var err error
	for p := range order {
		<-p.done
		if err == nil {
			if err = ctx.Err(); err == nil {
				err = p.err
			}
			if err == nil {
				err = fn(p.s)
			}
			if err != nil {
				cancel()
			}
		}
		bufPool.Put(p.buf)
		<-sem
	}
	wg.Wait()
	if err == nil && parent.Err() != nil {
		err = fmt.Errorf("read results of %s: %w", jobDir, parent.Err())
	}
	return err
}
