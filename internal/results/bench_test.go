package results

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
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
