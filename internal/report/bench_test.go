package report

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/scivision-hpc/scv-hpc/internal/job"
)

// BenchmarkReport1M writes the report of a job of 100 shards × 10k answers of the
// demo model's shape (1M results; SCV_BENCH_REPORT_SHARDS for fewer) and reports
// the peak heap, which must not grow with the number of results.
func BenchmarkReport1M(b *testing.B) {
	shards, per := 100, 10_000
	if v, err := strconv.Atoi(os.Getenv("SCV_BENCH_REPORT_SHARDS")); err == nil && v > 0 {
		shards = v
	}
	dir := b.TempDir()
	if err := job.Save(dir, &job.Job{Model: "faces", DataRoot: b.TempDir(), Shards: shards, Inputs: int64(shards * per)}); err != nil {
		b.Fatal(err)
	}
	var list, res bytes.Buffer
	for s := 0; s < shards; s++ {
		list.Reset()
		res.Reset()
		for i := 0; i < per; i++ {
			p := fmt.Sprintf("d%03d/img%07d.png", s, i)
			list.WriteString(p + "\n")
			if i%100 == 7 {
				fmt.Fprintf(&res, `{"path":%q,"ok":false,"error":"decode: unknown format %d","stage":"predict","ms":1,"t":%d}`+"\n", p, i%3, 1795918957919+int64(s*per+i))
				continue
			}
			fmt.Fprintf(&res, `{"path":%q,"ok":true,"result":{"width":640,"height":480,"faces":[{"x":%d,"y":20,"size":%d,"score":9.5}],"count":1},"ms":3,"t":%d}`+"\n",
				p, i%600, 20+i%50, 1795918957919+int64(s*per+i))
		}
		os.WriteFile(job.ShardFile(dir, s), list.Bytes(), 0o644)
		os.WriteFile(job.ResultFile(dir, s), res.Bytes(), 0o644)
	}
	b.ResetTimer()
	for b.Loop() {
		runtime.GC()
		var peak uint64
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			var m runtime.MemStats
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				runtime.ReadMemStats(&m)
				peak = max(peak, m.HeapInuse)
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		}()
		st, err := Write(context.Background(), dir, io.Discard, Options{})
		close(stop)
		<-done
		if err != nil || st.Totals.Inputs != int64(shards*per) {
			b.Fatal(st, err)
		}
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	}
}
