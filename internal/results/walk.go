package results

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"

	"github.com/scivision-hpc/scv-hpc/internal/job"
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
				p.s, p.err = p.buf.read(jobDir, i)
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

// finalLine is the final result line of one path while a shard is merged.
type finalLine struct {
	lineInfo
	line    []byte
	emitted bool
}

// shardBuf holds what reading one shard needs; Walk reuses it for later shards, so
// that a million results cost a few buffers, not a million allocations.
type shardBuf struct {
	data, list []byte
	finals     []finalLine
	index      map[string]int
	shard      Shard
}

var bufPool = sync.Pool{New: func() any { return &shardBuf{index: map[string]int{}} }}

// readFile reads the file at path into buf (grown as needed): up to the size it has
// when opened, so lines appended meanwhile are left for the next read.
func readFile(path string, buf []byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return buf[:0], err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return buf[:0], err
	}
	n := int(fi.Size())
	if cap(buf) < n {
		buf = make([]byte, n, n+n/8)
	}
	buf = buf[:n]
	m, err := io.ReadFull(f, buf)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = nil // the file shrank (a torn tail cut by a writer): what was read stands
	}
	return buf[:m], err
}

// read merges shard i's result file into the final line per path and lists the
// shard's inputs with them.
func (b *shardBuf) read(jobDir string, i int) (*Shard, error) {
	resPath := job.ResultFile(jobDir, i)
	var err error
	b.data, err = readFile(resPath, b.data)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("shard %d: read results: %w", i, err)
	}
	data := b.data
	b.shard = Shard{Index: i, Entries: b.shard.Entries[:0], Out: b.shard.Out[:0]}
	s := &b.shard
	finals := b.finals[:0]
	index := b.index
	clear(index)
	rest := data
	for lineNo := 1; ; lineNo++ {
		nl := bytes.IndexByte(rest, '\n')
		if nl < 0 {
			break // nothing left, or a torn last line: ignored
		}
		line := bytes.TrimSpace(rest[:nl])
		rest = rest[nl+1:]
		if len(line) == 0 {
			continue
		}
		li, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w: %v; move the file aside and re-run the shard to redo its inputs", resPath, lineNo, ErrCorrupt, err)
		}
		if li.t > 0 {
			if s.First == 0 || li.t < s.First {
				s.First = li.t
			}
			s.Last = max(s.Last, li.t)
		}
		if k, ok := index[li.path]; ok {
			if finals[k].ok && !li.ok {
				continue
			}
			finals[k] = finalLine{lineInfo: li, line: line}
			continue
		}
		index[li.path] = len(finals)
		finals = append(finals, finalLine{lineInfo: li, line: line})
	}

	b.finals = finals
	b.list, err = readFile(job.ShardFile(jobDir, i), b.list)
	if err != nil {
		return nil, fmt.Errorf("read shard %d: %w", i, err)
	}
	list := b.list
	var pendingSeen map[string]bool
	st := &s.Status
	st.Index = i
	for len(list) > 0 {
		var line []byte
		if nl := bytes.IndexByte(list, '\n'); nl >= 0 {
			line, list = list[:nl], list[nl+1:]
		} else {
			line, list = list, nil
		}
		if len(line) == 0 {
			continue
		}
		rel := viewString(line)
		k, found := index[rel]
		if !found {
			if pendingSeen == nil {
				pendingSeen = map[string]bool{}
			}
			if pendingSeen[rel] {
				continue
			}
			pendingSeen[rel] = true
			st.Inputs++
			st.Pending++
			s.Entries = append(s.Entries, Entry{Path: rel})
			continue
		}
		f := &finals[k]
		if f.emitted {
			continue
		}
		f.emitted = true
		st.Inputs++
		if f.ok {
			st.OK++
		} else {
			st.Failed++
		}
		s.Entries = append(s.Entries, Entry{Path: rel, Found: true, OK: f.ok, Stage: f.stage, T: f.t, Line: f.line})
	}
	st.State = state(*st)
	return s, nil
}
