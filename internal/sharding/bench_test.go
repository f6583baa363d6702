package sharding

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// cachedTree returns a directory of n empty .png files, 1000 per sub-directory. It is
// made once under the repository's git-ignored .cache/ and reused by later runs (a
// marker file next to it says it is complete), because creating a million files takes
// longer than scanning them.
func cachedTree(tb testing.TB, n int) string {
	tb.Helper()
	root := filepath.Join(testenv.RepoRoot(tb), ".cache", fmt.Sprintf("bench-tree-%d", n))
	marker := root + ".complete"
	if _, err := os.Stat(marker); err == nil {
		return root
	}
	os.RemoveAll(root)
	tb.Logf("creating %d files under %s (once; reused by later runs)", n, root)
	for d := 0; d*1000 < n; d++ {
		dir := fmt.Sprintf("%s/d%04d", root, d)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			tb.Fatal(err)
		}
		for f := d * 1000; f < n && f < (d+1)*1000; f++ {
			fd, err := unix.Open(fmt.Sprintf("%s/img%07d.png", dir, f), unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
			if err != nil {
				tb.Fatal(err)
			}
			unix.Close(fd)
		}
	}
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		tb.Fatal(err)
	}
	return root
}

// heapPeak runs f while sampling the in-use heap, with the GC kept tight so the
// samples follow the live data rather than the collector's pacing.
func heapPeak(f func()) (peak uint64) {
	old := debug.SetGCPercent(10)
	defer debug.SetGCPercent(old)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var max atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > max.Load() {
				max.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	f()
	close(stop)
	wg.Wait()
	if max.Load() < base {
		return 0
	}
	return max.Load() - base
}

// TestScanShardHeapFlat checks that sharding 200k files needs no more heap than
// sharding 10k: nothing per file is kept beyond the current shard.
func TestScanShardHeapFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 200k files on the first run")
	}
	small, large := cachedTree(t, 10_000), cachedTree(t, 200_000)
	measure := func(root string) uint64 {
		jobDir := t.TempDir()
		var err error
		peak := heapPeak(func() {
			_, err = WriteShards(context.Background(), jobDir, root, ScanOptions{}, Plan{ShardSize: 1000})
		})
		if err != nil {
			t.Fatal(err)
		}
		return peak
	}
	ps, pl := measure(small), measure(large)
	t.Logf("heap peak above base: 10k files %d KiB, 200k files %d KiB", ps>>10, pl>>10)
	// 200k paths of ~25 bytes would be 5 MB held at once; allow 2 MB of GC slack.
	if pl > ps+2<<20 {
		t.Fatalf("heap grows with the dataset: %d KiB for 10k files, %d KiB for 200k", ps>>10, pl>>10)
	}
}

func benchScanShard(b *testing.B, n int) {
	root := cachedTree(b, n)
	for _, tc := range []struct {
		name string
		o    ScanOptions
	}{{"stat", ScanOptions{}}, {"nostat", ScanOptions{NoStat: true}}} {
		b.Run(tc.name, func(b *testing.B) { benchScanShardOpts(b, root, n, tc.o) })
	}
}

func benchScanShardOpts(b *testing.B, root string, n int, o ScanOptions) {
	base := b.TempDir()
	var ours, find, findStat time.Duration
	baseline := func(script string) time.Duration {
		out := filepath.Join(base, "split")
		os.MkdirAll(out, 0o755)
		defer os.RemoveAll(out)
		start := time.Now()
		cmd := exec.Command("sh", "-c", script, "sh", root, out)
		if msg, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("baseline: %v\n%s", err, msg)
		}
		return time.Since(start)
	}
	for i := 0; b.Loop(); i++ {
		jobDir := filepath.Join(base, fmt.Sprint("job", i))
		start := time.Now()
		sum, err := WriteShards(context.Background(), jobDir, root, o, Plan{ShardSize: 1000})
		ours += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if sum.Inputs != int64(n) {
			b.Fatalf("sharded %d inputs, want %d", sum.Inputs, n)
		}
		b.StopTimer()
		find += baseline(`find "$1" -type f | split -l 1000 - "$2/x"`)
		// The same work as the default scan: a stat per file for its size.
		findStat += baseline(`find "$1" -type f -printf '%s %p\n' | split -l 1000 - "$2/x"`)
		os.RemoveAll(jobDir)
		b.StartTimer()
	}
	b.StopTimer()
	var err error
	peak := heapPeak(func() {
		_, err = WriteShards(context.Background(), filepath.Join(base, "peak"), root, o, Plan{ShardSize: 1000})
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(ours)/float64(find), "x-find-split")
	b.ReportMetric(float64(ours)/float64(findStat), "x-find-size-split")
	b.ReportMetric(float64(find.Nanoseconds())/float64(b.N), "find-split-ns/op")
	b.ReportMetric(float64(peak)/(1<<20), "heap-peak-MiB")
}

// BenchmarkScanShard1M scans and shards a million files and compares with
// `find DIR -type f | split -l 1000` (x-find-split: goal <= 1.5). The "stat" case is
// the default scan (a stat per file for sizes and readability, which find -type f
// does not do; x-find-size-split compares with find -printf '%s %p', which does);
// "nostat" is ScanOptions.NoStat.
func BenchmarkScanShard1M(b *testing.B) { benchScanShard(b, 1_000_000) }

// BenchmarkScanShard10k is the small end of the memory comparison.
func BenchmarkScanShard10k(b *testing.B) { benchScanShard(b, 10_000) }
