package runner

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/scivision-hpc/scv-hpc/internal/job"
)

// writeRequests writes the protocol requests the runner would send for paths, to
// feed the model directly through a shell pipe.
func writeRequests(t testing.TB, file string, paths []string) {
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	var b []byte
	for i, p := range paths {
		b = appendRequest(b[:0], uint64(i+1), p)
		b = append(b, '\n')
		w.Write(b)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// BenchmarkRunnerVsPipe runs a model over inputs with 2 workers through the runner,
// and the same model fed by `cat requests | model > /dev/null` (two pipes in parallel
// over halves), and reports both rates and their ratio: a no-op model (the runner's
// own cost per input) and one that works 200µs per input (a very fast real model).
func BenchmarkRunnerVsPipe(b *testing.B) {
	model := testModel(b)
	for _, bc := range []struct {
		n     int
		mb    int
		delay string
	}{{100_000, 1, "0s"}, {100_000, 16, "0s"}, {5_000, 16, "200us"}} {
		n, mb := bc.n, bc.mb
		paths := inputNames(n)
		b.Run(fmt.Sprintf("max_batch=%d/work=%s", mb, bc.delay), func(b *testing.B) {
			tmp := b.TempDir()
			halves := []string{filepath.Join(tmp, "req0"), filepath.Join(tmp, "req1")}
			writeRequests(b, halves[0], paths[:n/2])
			writeRequests(b, halves[1], paths[n/2:])
			var runnerTime, pipeTime time.Duration
			for i := 0; i < b.N; i++ {
				dir := makeJob(b, paths, model, "-max-batch", strconv.Itoa(mb), "-spin", bc.delay)
				start := time.Now()
				st, err := RunShard(context.Background(), dir, nil, 0, testOptions(2))
				runnerTime += time.Since(start)
				if err != nil || st.OK != int64(n) {
					b.Fatalf("%+v %v", st, err)
				}
				start = time.Now()
				var wg sync.WaitGroup
				for _, h := range halves {
					wg.Add(1)
					go func() {
						defer wg.Done()
						cmd := exec.Command("sh", "-c", `cat "$1" | "$2" -max-batch "$3" -spin "$4" > /dev/null 2>&1`, "sh", h, model, strconv.Itoa(mb), bc.delay)
						cmd.Env = append(os.Environ(), "SCV_WORKER=0")
						if out, err := cmd.CombinedOutput(); err != nil {
							b.Errorf("pipe: %v %s", err, out)
						}
					}()
				}
				wg.Wait()
				pipeTime += time.Since(start)
				os.RemoveAll(dir)
			}
			runnerRate := float64(n*b.N) / runnerTime.Seconds()
			pipeRate := float64(n*b.N) / pipeTime.Seconds()
			b.ReportMetric(runnerRate, "runner_inputs/s")
			b.ReportMetric(pipeRate, "pipe_inputs/s")
			b.ReportMetric(runnerRate/pipeRate, "runner/pipe")
		})
	}
}

// peakRSS returns VmHWM of this process in kB, after resetPeakRSS.
func peakRSS() int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

func resetPeakRSS() { os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// BenchmarkRunnerMemory runs 10k and 1M inputs (a generated shard file) through the
// runner and reports its peak heap and peak RSS: they must stay flat as the shard grows.
func BenchmarkRunnerMemory(b *testing.B) {
	model := testModel(b)
	for _, n := range []int{10_000, 1_000_000} {
		b.Run(fmt.Sprintf("inputs=%d", n), func(b *testing.B) {
			dir := makeJob(b, nil, model, "-max-batch", "16")
			f, _ := os.Create(job.ShardFile(dir, 0))
			w := bufio.NewWriter(f)
			for i := 0; i < n; i++ {
				fmt.Fprintf(w, "d%03d/img%07d.png\n", i%1000, i)
			}
			w.Flush()
			f.Close()
			for i := 0; i < b.N; i++ {
				os.Remove(job.ResultFile(dir, 0))
				runtime.GC()
				resetPeakRSS()
				var peakHeap uint64
				stop := make(chan struct{})
				done := make(chan struct{})
				go func() {
					defer close(done)
					var ms runtime.MemStats
					t := time.NewTicker(20 * time.Millisecond)
					defer t.Stop()
					for {
						runtime.ReadMemStats(&ms)
						peakHeap = max(peakHeap, ms.HeapInuse)
						select {
						case <-stop:
							return
						case <-t.C:
						}
					}
				}()
				start := time.Now()
				st, err := RunShard(context.Background(), dir, nil, 0, testOptions(2))
				el := time.Since(start)
				close(stop)
				<-done
				if err != nil || st.OK != int64(n) {
					b.Fatalf("%+v %v", st, err)
				}
				b.ReportMetric(float64(peakHeap)/(1<<20), "peak_heap_MiB")
				b.ReportMetric(float64(peakRSS())/1024, "peak_rss_MiB")
				b.ReportMetric(float64(n)/el.Seconds(), "inputs/s")
			}
		})
	}
}

// BenchmarkHugeAnswers: a model answers each of 5 inputs with a 50 MB line. With the
// default answer cap (16 MiB) the 5 inputs fail and the runner's memory stays
// bounded by the cap, not by the answers: it reports the peak heap in use (sampled)
// and the peak RSS of the whole test process.
func BenchmarkHugeAnswers(b *testing.B) {
	model := testModel(b)
	paths := inputNames(5)
	for i := 0; i < b.N; i++ {
		dir := makeJob(b, paths, model, "-answer-bytes", strconv.Itoa(50<<20))
		runtime.GC()
		var peak uint64
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			var ms runtime.MemStats
			for {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
				select {
				case <-stop:
					return
				case <-time.After(2 * time.Millisecond):
				}
			}
		}()
		st, err := RunShard(context.Background(), dir, nil, 0, testOptions(1))
		close(stop)
		<-sampled
		if err != nil || st.Failed != 5 {
			b.Fatalf("stats %+v, %v: want the 5 over-cap answers failed", st, err)
		}
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
		b.ReportMetric(float64(ru.Maxrss)/1024, "maxrss-MB")
	}
}
