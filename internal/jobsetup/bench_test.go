package jobsetup

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/sharding"
)

// BenchmarkResume10k is the cost a resume adds: job.json read, shard count, and one scan
// of 10,000 files hashed against inputs_sha256.
func BenchmarkResume10k(b *testing.B) {
	data, out := b.TempDir(), b.TempDir()
	for d := range 100 {
		dir := filepath.Join(data, fmt.Sprintf("d%03d", d))
		os.MkdirAll(dir, 0o755)
		for f := range 100 {
			os.WriteFile(filepath.Join(dir, fmt.Sprintf("%03d.png", f)), []byte("x"), 0o644)
		}
	}
	s := Spec{Dir: out, DataRoot: data, Plan: sharding.Plan{ShardSize: 1000}}
	s.Job.Digest, s.Job.Predict = "sha256:x", []string{"serve"}
	if _, _, err := Open(context.Background(), s); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, oc, err := Open(context.Background(), s); err != nil || oc != Resumed {
			b.Fatal(oc, err)
		}
	}
}
