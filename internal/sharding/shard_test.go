package sharding

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/job"
)

// dataset writes n files whose sizes come from size(i), named so the scan order is i.
func dataset(t testing.TB, n int, size func(i int) int) (root string, order []string, sizes map[string]int64) {
	t.Helper()
	root = filepath.Join(t.TempDir(), "data")
	sizes = map[string]int64{}
	for i := 0; i < n; i++ {
		rel := fmt.Sprintf("d%02d/img%05d.png", i/100, i)
		p := filepath.Join(root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, make([]byte, size(i)), 0o644); err != nil {
			t.Fatal(err)
		}
		order = append(order, rel)
		sizes[rel] = int64(size(i))
	}
	return root, order, sizes
}

// readShards returns every shard's lines.
func readShards(t *testing.T, jobDir string) [][]string {
	t.Helper()
	n, err := CountShards(jobDir)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]string, n)
	for i := 0; i < n; i++ {
		if err := ReadShard(jobDir, i, func(rel string) error { out[i] = append(out[i], rel); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestWriteShardsBySize(t *testing.T) {
	root, order, sizes := dataset(t, 1234, func(i int) int { return i % 7 })
	var totalBytes int64
	for _, n := range sizes {
		totalBytes += n
	}
	tests := []struct {
		size int
		want []int // inputs per shard
	}{
		{0, []int{1000, 234}}, // the default
		{500, []int{500, 500, 234}},
		{1234, []int{1234}},
		{5000, []int{1234}},
		{1, nil}, // one per input
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.size), func(t *testing.T) {
			jobDir := t.TempDir()
			sum, err := WriteShards(context.Background(), jobDir, root, ScanOptions{}, Plan{ShardSize: tc.size})
			if err != nil {
				t.Fatal(err)
			}
			shards := readShards(t, jobDir)
			want := tc.want
			if want == nil {
				want = make([]int, len(order))
				for i := range want {
					want[i] = 1
				}
			}
			var got []int
			var all []string
			for _, s := range shards {
				got = append(got, len(s))
				all = append(all, s...)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("shard sizes %v, want %v", got, want)
			}
			if !reflect.DeepEqual(all, order) {
				t.Error("shards joined are not the scan order")
			}
			if sum.Shards != len(want) || sum.Inputs != int64(len(order)) || sum.Bytes != totalBytes {
				t.Errorf("summary %+v, want %d bytes", sum, totalBytes)
			}
			// NoStat writes the same shards, without sizes.
			fast := t.TempDir()
			fsum, err := WriteShards(context.Background(), fast, root, ScanOptions{NoStat: true}, Plan{ShardSize: tc.size})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(readShards(t, fast), shards) || fsum.Bytes != 0 || fsum.Inputs != sum.Inputs {
				t.Errorf("NoStat: summary %+v, shards differ", fsum)
			}
		})
	}
}

func TestWriteShardsBalanced(t *testing.T) {
	tests := []struct {
		name string
		n, k int
		size func(i int) int
	}{
		{"equal sizes", 1000, 7, func(int) int { return 100 }},
		{"growing sizes", 1000, 10, func(i int) int { return i * 10 }},
		{"empty files spread by count", 500, 8, func(int) int { return 0 }},
		{"one huge file", 300, 5, func(i int) int {
			if i == 150 {
				return 200_000
			}
			return 100
		}},
		{"huge file first", 50, 10, func(i int) int {
			if i == 0 {
				return 1 << 20
			}
			return 1
		}},
		{"more shards than inputs", 5, 9, func(i int) int { return i }},
		{"as many shards as inputs", 6, 6, func(i int) int { return 1000 - i }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root, order, sizes := dataset(t, tc.n, tc.size)
			jobDir := t.TempDir()
			sum, err := WriteShards(context.Background(), jobDir, root, ScanOptions{}, Plan{Shards: tc.k})
			if err != nil {
				t.Fatal(err)
			}
			shards := readShards(t, jobDir)
			wantK := min(tc.k, tc.n)
			if len(shards) != wantK || sum.Shards != wantK {
				t.Fatalf("%d shards (summary %d), want %d", len(shards), sum.Shards, wantK)
			}
			var all []string
			var total, maxW int64
			weights := make([]int64, len(shards))
			for i, s := range shards {
				if len(s) == 0 {
					t.Fatalf("shard %d is empty", i)
				}
				for _, rel := range s {
					w := sizes[rel] + 1
					weights[i] += w
					total += w
					maxW = max(maxW, w)
				}
				all = append(all, s...)
			}
			if !reflect.DeepEqual(all, order) {
				t.Fatal("shards joined are not the scan order")
			}
			// Cut at quantiles: every cut lies within one input of its ideal position,
			// so the bytes before cut i are within maxW of i*total/k.
			var cum int64
			for i := 0; i < len(shards)-1; i++ {
				cum += weights[i]
				ideal := total * int64(i+1) / int64(wantK)
				if cum < ideal && ideal-cum > maxW || cum > ideal+maxW {
					t.Errorf("cut %d at %d bytes, ideal %d (max input %d); weights %v", i, cum, ideal, maxW, weights)
				}
			}
		})
	}
}

func TestWriteShardsRerun(t *testing.T) {
	root, _, _ := dataset(t, 250, func(i int) int { return i })
	jobDir := t.TempDir()
	snapshot := func() map[string][]byte {
		m := map[string][]byte{}
		ents, _ := os.ReadDir(job.ShardsDir(jobDir))
		for _, e := range ents {
			b, _ := os.ReadFile(filepath.Join(job.ShardsDir(jobDir), e.Name()))
			m[e.Name()] = b
		}
		return m
	}
	ctx := context.Background()
	if _, err := WriteShards(ctx, jobDir, root, ScanOptions{}, Plan{ShardSize: 10}); err != nil {
		t.Fatal(err)
	}
	first := snapshot()
	if _, err := WriteShards(ctx, jobDir, root, ScanOptions{}, Plan{ShardSize: 10}); err != nil {
		t.Fatal(err)
	}
	if second := snapshot(); !reflect.DeepEqual(first, second) || len(first) != 25 {
		t.Fatalf("re-run changed the shards: %d files then %d", len(first), len(second))
	}
	// A coarser plan must not leave the old shards 3..24 behind.
	sum, err := WriteShards(ctx, jobDir, root, ScanOptions{}, Plan{Shards: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got := snapshot(); len(got) != 3 || sum.Shards != 3 {
		t.Fatalf("after re-sharding into 3: %d files", len(got))
	}
	if n, err := CountShards(jobDir); n != 3 || err != nil {
		t.Fatalf("CountShards = %d, %v", n, err)
	}
}

func TestWriteShardsErrors(t *testing.T) {
	root, _, _ := dataset(t, 20, func(int) int { return 1 })
	ctx := context.Background()
	for _, p := range []Plan{{ShardSize: 10, Shards: 2}, {ShardSize: -1}, {Shards: -3}} {
		if _, err := WriteShards(ctx, t.TempDir(), root, ScanOptions{}, p); !errors.Is(err, ErrBadPlan) {
			t.Errorf("plan %+v: %v", p, err)
		}
	}
	if _, err := WriteShards(ctx, t.TempDir(), root, ScanOptions{Include: []string{"*.nothing"}}, Plan{}); !errors.Is(err, ErrNoInputs) {
		t.Errorf("no inputs: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	for _, p := range []Plan{{}, {Shards: 2}} {
		if _, err := WriteShards(cctx, t.TempDir(), root, ScanOptions{}, p); !errors.Is(err, context.Canceled) {
			t.Errorf("canceled %+v: %v", p, err)
		}
	}
	jobDir := t.TempDir()
	if _, err := WriteShards(ctx, jobDir, root, ScanOptions{}, Plan{ShardSize: 5}); err != nil {
		t.Fatal(err)
	}
	os.Remove(job.ShardFile(jobDir, 1))
	if _, err := CountShards(jobDir); err == nil {
		t.Error("CountShards accepted a gap")
	}
	if err := ReadShard(jobDir, 1, func(string) error { return nil }); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadShard of a missing shard: %v", err)
	}
	stop := errors.New("stop")
	if err := ReadShard(jobDir, 0, func(string) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("ReadShard callback error: %v", err)
	}
	b, _ := os.ReadFile(job.ShardFile(jobDir, 0))
	if !bytes.HasSuffix(b, []byte("\n")) || bytes.Count(b, []byte("\n")) != 5 {
		t.Errorf("shard 0 is %q", b)
	}
}
