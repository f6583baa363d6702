package sharding

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/scivision-hpc/scv-hpc/internal/fsutil"
	"github.com/scivision-hpc/scv-hpc/internal/job"
)

// DefaultShardSize is the number of inputs per shard when a Plan sets neither field.
const DefaultShardSize = 1000

// ErrBadPlan is returned for a Plan that sets both fields or a negative one.
var ErrBadPlan = errors.New("bad shard plan")

// ErrNoInputs is returned by WriteShards when the scan found nothing to shard.
var ErrNoInputs = errors.New("no inputs found")

// Plan says how to cut the inputs into shards; set at most one field. The zero Plan
// means ShardSize DefaultShardSize.
type Plan struct {
	// ShardSize is the number of inputs per shard (the last one may hold fewer).
	ShardSize int
	// Shards asks for this many shards balanced by bytes: contiguous runs of the
	// sorted inputs cut at byte quantiles. Never more shards than inputs.
	Shards int
}

func (p Plan) check() (Plan, error) {
	switch {
	case p.ShardSize < 0 || p.Shards < 0:
		return p, fmt.Errorf("%w: shard size and shard count must be positive", ErrBadPlan)
	case p.ShardSize > 0 && p.Shards > 0:
		return p, fmt.Errorf("%w: give either a shard size or a shard count, not both", ErrBadPlan)
	case p.ShardSize == 0 && p.Shards == 0:
		p.ShardSize = DefaultShardSize
	}
	return p, nil
}

// Summary is what WriteShards wrote.
type Summary struct {
	Shards  int
	Inputs  int64
	Bytes   int64
	Skipped int64
}

// shardWriter collects the lines of the current shard and commits each shard with a
// rename, so a reader sees a whole shard file or none. The data reaches the disk with
// one syncfs at the end instead of one fsync per shard; the job is valid only once
// the caller saves job.json after WriteShards returns.
type shardWriter struct {
	dir   string
	buf   bytes.Buffer
	lines int
	n     int // shards committed
}

func (w *shardWriter) add(rel string) {
	w.buf.WriteString(rel)
	w.buf.WriteByte('\n')
	w.lines++
}

func (w *shardWriter) flush() error {
	if w.lines == 0 {
		return nil
	}
	path := job.ShardFile(w.dir, w.n)
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, w.buf.Bytes(), 0o644); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write shard %d: %w", w.n, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write shard %d: %w", w.n, err)
	}
	w.n++
	w.buf.Reset()
	w.lines = 0
	return nil
}

// finish removes shard files left from an earlier run with more shards and makes
// everything durable.
func (w *shardWriter) finish() error {
	dir := job.ShardsDir(w.dir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("shards %s: %w", dir, err)
	}
	for _, e := range ents {
		i, ok := shardIndex(e.Name())
		stale := (ok && i >= w.n) || strings.HasSuffix(e.Name(), ".txt.tmp")
		if stale {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("remove stale shard: %w", err)
			}
		}
	}
	if d, err := os.Open(dir); err == nil {
		// One syncfs flushes every shard written; fsync of the directory makes the
		// renames durable (tolerated where the file system refuses either).
		_ = unix.Syncfs(int(d.Fd()))
		d.Close()
	}
	return fsutil.SyncDir(dir)
}

// shardIndex parses "000123.txt".
func shardIndex(name string) (int, bool) {
	num, ok := strings.CutSuffix(name, ".txt")
	if !ok || len(num) < 6 {
		return 0, false
	}
	if strings.Trim(num, "0123456789") != "" {
		return 0, false
	}
	i, err := strconv.Atoi(num)
	if err != nil {
		return 0, false
	}
	return i, true
}

// WriteShards scans root and writes the job's shards/NNNNNN.txt files: paths relative
// to root, one per line, in scan order. With p.Shards set it scans twice: once to sum
// the bytes, once to cut. Shard files of an earlier run beyond the new count are
// removed, so a re-run with the same data and plan gives the same files. It fails
// with ErrNoInputs when nothing matched.
func WriteShards(ctx context.Context, jobDir, root string, o ScanOptions, p Plan) (Summary, error) {
	return writeShards(ctx, jobDir, root, o, p, func(fn func(string, int64) error) (ScanStats, error) {
		return Scan(ctx, root, o, fn)
	})
}

// writeShards is WriteShards with the inputs of a shard-size plan from scan.
func writeShards(ctx context.Context, jobDir, root string, o ScanOptions, p Plan, scan func(fn func(string, int64) error) (ScanStats, error)) (Summary, error) {
	p, err := p.check()
	if err != nil {
		return Summary{}, err
	}
	if err := os.MkdirAll(job.ShardsDir(jobDir), 0o755); err != nil {
		return Summary{}, fmt.Errorf("create shards directory: %w", err)
	}
	w := &shardWriter{dir: jobDir}
	var st ScanStats
	if p.ShardSize > 0 {
		st, err = scan(func(rel string, _ int64) error {
			w.add(rel)
			if w.lines >= p.ShardSize {
				return w.flush()
			}
			return nil
		})
	} else {
		st, err = balanced(ctx, root, o, p.Shards, w)
	}
	if err != nil {
		return Summary{}, err
	}
	if err := w.flush(); err != nil {
		return Summary{}, err
	}
	if st.Inputs == 0 {
		return Summary{Skipped: st.Skipped}, fmt.Errorf("%w under %s (include %s, %d skipped)",
			ErrNoInputs, root, strings.Join(orDefault(o.Include), " "), st.Skipped)
	}
	if err := w.finish(); err != nil {
		return Summary{}, err
	}
	return Summary{Shards: w.n, Inputs: st.Inputs, Bytes: st.Bytes, Skipped: st.Skipped}, nil
}

func orDefault(include []string) []string {
	if len(include) == 0 {
		return DefaultInclude
	}
	return include
}

// balanced cuts the inputs into k contiguous shards of about equal weight, where an
// input weighs its size plus one byte (so that empty files still spread evenly). The
// first pass only sums; the second cuts at the quantiles, forcing a cut when the
// inputs left are just enough to give every remaining shard one.
func balanced(ctx context.Context, root string, o ScanOptions, k int, w *shardWriter) (ScanStats, error) {
	var n, total uint64
	o.NoStat = false
	quiet := o
	quiet.OnSkip = func(string, string) {} // skips are reported by the second pass
	if _, err := Scan(ctx, root, quiet, func(_ string, size int64) error {
		n++
		total += uint64(size) + 1
		return nil
	}); err != nil {
		return ScanStats{}, err
	}
	if uint64(k) > n {
		k = int(n)
	}
	var cum, seen uint64
	shard := 0
	return Scan(ctx, root, o, func(rel string, size int64) error {
		w.add(rel)
		cum += uint64(size) + 1
		seen++
		if shard >= k-1 {
			return nil
		}
		left := int64(n) - int64(seen) // inputs after this one, as counted by pass one
		if left <= int64(k-1-shard) || reached(cum, total, shard+1, k) {
			shard++
			return w.flush()
		}
		return nil
	})
}

// reached reports cum/total >= q/k without overflow: cum*k >= total*q in 128 bits.
func reached(cum, total uint64, q, k int) bool {
	ah, al := bits.Mul64(cum, uint64(k))
	bh, bl := bits.Mul64(total, uint64(q))
	return ah > bh || (ah == bh && al >= bl)
}

// ReadShard calls fn for each input path of shard i, in order.
func ReadShard(jobDir string, i int, fn func(rel string) error) error {
	path := job.ShardFile(jobDir, i)
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read shard %d: %w", i, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		if err := fn(sc.Text()); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read shard %s: %w", path, err)
	}
	return nil
}

// CountShards returns the number of shard files in the job directory; they must be
// numbered 0..n-1 without gaps.
func CountShards(jobDir string) (int, error) {
	dir := job.ShardsDir(jobDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("count shards: %w", err)
	}
	n, max := 0, -1
	for _, e := range ents {
		if i, ok := shardIndex(e.Name()); ok && !e.IsDir() {
			n++
			if i > max {
				max = i
			}
		}
	}
	if max+1 != n {
		return 0, fmt.Errorf("count shards in %s: %d shard files but the highest is %06d.txt; the job directory is damaged, re-create it", dir, n, max)
	}
	return n, nil
}
