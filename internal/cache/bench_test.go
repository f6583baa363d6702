package cache

import (
	"context"
	"fmt"
	"io"
	"testing"
)

// The offline cache hit (ResolveRef + Lookup) is on the path of every compute-node
// command and must stay far below the 50 ms budget of a whole `--offline` command.
func BenchmarkResolveRefAndLookup(b *testing.B) {
	c := Open(b.TempDir())
	d := testDigest("bench")
	if _, _, _, err := c.Commit(context.Background(), d, sifBuilder("bench")); err != nil {
		b.Fatal(err)
	}
	if err := c.SetRef("ghcr.io/scivision/faces:latest", d); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		got, err := c.ResolveRef("ghcr.io/scivision/faces:latest")
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.Lookup(got); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCommitHit is the fast path of a pull of a cached image.
func BenchmarkCommitHit(b *testing.B) {
	c := Open(b.TempDir())
	d := testDigest("bench")
	if _, _, _, err := c.Commit(context.Background(), d, sifBuilder("bench")); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, _, built, err := c.Commit(context.Background(), d, nil); err != nil || built {
			b.Fatal(built, err)
		}
	}
}

// BenchmarkCommitSmall is the whole commit protocol (lock, build, hash, fsync,
// rename, metadata, unlock) around a 64 KiB SIF: the cache's own overhead.
func BenchmarkCommitSmall(b *testing.B) {
	c := Open(b.TempDir())
	payload := make([]byte, 64<<10)
	i := 0
	for b.Loop() {
		i++
		d := testDigest(fmt.Sprint("bench", i))
		_, _, _, err := c.Commit(context.Background(), d, func(ctx context.Context, tmp string) (*Meta, error) {
			return &Meta{}, writeSIF(tmp, payload)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// bigCache returns a cache holding one 64 MiB SIF and sets b's bytes per op to its size.
func bigCache(b *testing.B) *Cache {
	b.Helper()
	c := Open(b.TempDir())
	_, m, _, err := c.Commit(context.Background(), testDigest("big"), func(ctx context.Context, tmp string) (*Meta, error) {
		return &Meta{}, writeSIF(tmp, make([]byte, 64<<20))
	})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(m.Size)
	return c
}

// BenchmarkVerify measures re-hashing throughput (MB/s) on a 64 MiB SIF.
func BenchmarkVerify(b *testing.B) {
	c := bigCache(b)
	b.ResetTimer()
	for b.Loop() {
		res, err := c.Verify(context.Background())
		if err != nil || len(res) != 1 || res[0].Status != StatusOK {
			b.Fatal(res, err)
		}
	}
}

// BenchmarkExport measures bundle writing (MB/s, hashing twice) on a 64 MiB SIF.
func BenchmarkExport(b *testing.B) {
	c := bigCache(b)
	b.ResetTimer()
	for b.Loop() {
		if err := c.Export(context.Background(), io.Discard, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkList lists a cache of 200 entries with refs (`cache ls`).
func BenchmarkList(b *testing.B) {
	c := Open(b.TempDir())
	for i := range 200 {
		d := testDigest(fmt.Sprint("entry", i))
		if _, _, _, err := c.Commit(context.Background(), d, sifBuilder(fmt.Sprint(i))); err != nil {
			b.Fatal(err)
		}
		if err := c.SetRef(fmt.Sprintf("model-%d:latest", i), d); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		ents, err := c.List()
		if err != nil || len(ents) != 200 {
			b.Fatal(len(ents), err)
		}
	}
}

// BenchmarkCheckEntry measures the check run once per job (predict, submit) and by pull
// on a cache hit (MB/s on a 64 MiB SIF): a 5 GB SIF takes size / this rate.
func BenchmarkCheckEntry(b *testing.B) {
	c := bigCache(b)
	d := testDigest("big")
	b.ResetTimer()
	for b.Loop() {
		if err := c.CheckEntry(context.Background(), d); err != nil {
			b.Fatal(err)
		}
	}
}
