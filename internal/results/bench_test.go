package results

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/scivision-hpc/scv-hpc/internal/job"
)

// BenchmarkWriterParallel appends result lines from parallel workers, as the
// runner does: the writer must not be what limits inputs/s.
func BenchmarkWriterParallel(b *testing.B) {
	w, err := OpenWriter(filepath.Join(b.TempDir(), "000000.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	res := json.RawMessage(`{"faces":[{"x":10,"y":20,"size":31,"score":0.97}]}`)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			if err := w.Write(Record{Path: fmt.Sprintf("d01/img%07d.png", i), OK: true, Result: res, MS: 12}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkFinal reads a 10k-line result file into final states (status, resume).
func BenchmarkFinal(b *testing.B) {
	path := filepath.Join(b.TempDir(), "000000.jsonl")
	w, _ := OpenWriter(path)
	for i := 0; i < 10_000; i++ {
		w.Write(Record{Path: fmt.Sprintf("d01/img%07d.png", i), OK: i%10 != 0, Result: json.RawMessage(`{"faces":2}`), MS: 12})
	}
	w.Close()
	b.ReportAllocs()
	for b.Loop() {
		if m, err := Final(path); err != nil || len(m) != 10_000 {
			b.Fatal(len(m), err)
		}
	}
	b.ReportMetric(10_000*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkCollect1M collects a job of 100 shards × 10k inputs with no-op results,
// each shard's in list order, as a job run with one worker (the default) writes
// them (checked: a 10k-input shard run so has no result out of order), and times `cat results/*.jsonl` over the same files in the same
// run: the ratio collect/cat is what to watch (goal ≤ 2). SCV_BENCH_COLLECT_SHARDS
// sets fewer shards for a quick run.
//
// Both are measured alike: each writes a new regular file (the same name in the
// test's temporary directory, removed before the timing starts, created inside
// it), never /dev/null or a pipe; both read files that were just written, so the page cache is warm for
// both, and cat runs first in each iteration, so collect never reads what cat
// warmed alone. GNU cat (coreutils 9) copies file to file with copy_file_range, in
// the kernel; collect reads every byte into memory to parse it and writes it back
// with write(2). collect's CPU time is this process's (its goroutines on all
// cores), cat's is the child's. The command adds what is not timed here: its
// output goes to a temporary file that is fsynced and renamed.
func BenchmarkCollect1M(b *testing.B) { benchCollect(b, 0) }

// BenchmarkCollect1MBatches is BenchmarkCollect1M with each shard's results out of
// order: batches of 16 inputs, every other pair swapped (a break in the order every
// 16 lines).
func BenchmarkCollect1MBatches(b *testing.B) { benchCollect(b, 16) }

// BenchmarkCollect1MRunnerOrder is BenchmarkCollect1M with each shard's results in
// about the order the runner writes a no-op model's answers with 2 workers: it hands
// out inputs 32 at a time, and the two workers' chunks interleave (a 10k shard run
// so had 194 breaks in the order, runs of 32 to 128; here every other pair of
// 32-input chunks is swapped: 312 breaks).
func BenchmarkCollect1MRunnerOrder(b *testing.B) { benchCollect(b, 32) }

// benchCollect times collect against cat; swap > 0 writes each shard's results with
// every other pair of swap-input batches swapped.
func benchCollect(b *testing.B, swap int) {
	shards, per := 100, 10_000
	if v, err := strconv.Atoi(os.Getenv("SCV_BENCH_COLLECT_SHARDS")); err == nil && v > 0 {
		shards = v
	}
	dir := b.TempDir()
	j := &job.Job{Model: "noop", DataRoot: "/data", Shards: shards, Inputs: int64(shards * per)}
	if err := job.Save(dir, j); err != nil {
		b.Fatal(err)
	}
	var list, res bytes.Buffer
	for s := 0; s < shards; s++ {
		list.Reset()
		res.Reset()
		for i := 0; i < per; i++ {
			list.WriteString(fmt.Sprintf("d%03d/img%07d.png", s, i) + "\n")
			k := i
			if swap > 0 && i^swap < per {
				k = i ^ swap // batch 1 before batch 0, 3 before 2, …
			}
			p := fmt.Sprintf("d%03d/img%07d.png", s, k)
			fmt.Fprintf(&res, `{"path":%q,"ok":true,"result":{},"ms":1,"attempts":1,"t":1795918957919}`+"\n", p)
		}
		if err := os.WriteFile(job.ShardFile(dir, s), list.Bytes(), 0o644); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(job.ResultFile(dir, s), res.Bytes(), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	files, _ := filepath.Glob(filepath.Join(job.ResultsDir(dir), "*.jsonl"))
	out := filepath.Join(b.TempDir(), "out.jsonl")
	// Wall time, and CPU time (user+system, of this process or of cat): on a shared,
	// loaded machine the CPU figures are the steadier comparison.
	cpu := func(who int) time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(who, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	var catCPU, colCPU time.Duration
	timeIt := func(who int, acc *time.Duration, fn func() error) time.Duration {
		// Each writes a new file, as the command does (into a temporary file):
		// freeing the last one's pages is not timed.
		if err := os.Remove(out); err != nil && !os.IsNotExist(err) {
			b.Fatal(err)
		}
		start, c0 := time.Now(), cpu(who)
		if err := fn(); err != nil {
			b.Fatal(err)
		}
		*acc += cpu(who) - c0
		return time.Since(start)
	}
	var catT, colT time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		catT += timeIt(syscall.RUSAGE_CHILDREN, &catCPU, func() error {
			f, err := os.Create(out)
			if err != nil {
				return err
			}
			defer f.Close()
			cmd := exec.Command("cat", files...)
			cmd.Stdout = f
			return cmd.Run()
		})
		colT += timeIt(syscall.RUSAGE_SELF, &colCPU, func() error {
			f, err := os.Create(out)
			if err != nil {
				return err
			}
			defer f.Close()
			tot, err := Collect(context.Background(), dir, f, FormatJSONL)
			if err == nil && tot.OK != int64(shards*per) {
				err = fmt.Errorf("collected %+v", tot)
			}
			return err
		})
	}
	n := float64(b.N)
	b.ReportMetric(catT.Seconds()/n, "cat-s")
	b.ReportMetric(colT.Seconds()/n, "collect-s")
	b.ReportMetric(float64(colT)/float64(catT), "collect/cat")
	b.ReportMetric(catCPU.Seconds()/n, "cat-cpu-s")
	b.ReportMetric(colCPU.Seconds()/n, "collect-cpu-s")
}
