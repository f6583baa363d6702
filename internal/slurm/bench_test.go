package slurm

import (
	"context"
	"io"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/job"
)

// BenchmarkSubmitDryRun10000 renders and plans (dry-run submits) a job of
// 10,000 shards: ten arrays under the default MaxArraySize, ten scripts
// written atomically into the job directory.
func BenchmarkSubmitDryRun10000(b *testing.B) {
	dir := b.TempDir()
	shards := make([]int, 10000)
	for i := range shards {
		shards[i] = i
	}
	p := baseParams()
	p.JobDir = dir
	c := &Client{}
	b.ResetTimer()
	for b.Loop() {
		j := &job.Job{Model: "faces", Shards: len(shards)}
		subs, err := c.Submit(context.Background(), SubmitRequest{JobDir: dir, Job: j, Params: p, Shards: shards,
			MaxArraySize: DefaultMaxArraySize, MaxParallel: 50, DryRun: true})
		if err != nil || len(subs) != 10 {
			b.Fatalf("%d arrays, %v", len(subs), err)
		}
	}
}

// BenchmarkRender is one script with a listed shard array of 1,001 shards
// (the largest a resubmit writes).
func BenchmarkRender(b *testing.B) {
	p := baseParams()
	for i := range 1001 {
		p.ShardList = append(p.ShardList, 2*i)
	}
	t := DefaultTemplate()
	for b.Loop() {
		if err := t.Render(io.Discard, p); err != nil {
			b.Fatal(err)
		}
	}
}
