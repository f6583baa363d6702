package imagebuild_test

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/imagebuild"
)

// BenchmarkLayerFromDir packs a generated tree of 2,000 files (32 MiB, half of it
// compressible text), computes the layer digest and reads the compressed layer once, as
// WriteLayout or Push does.
func BenchmarkLayerFromDir(b *testing.B) {
	root := b.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	var total int64
	for i := 0; i < 2000; i++ {
		dir := filepath.Join(root, fmt.Sprintf("d%02d", i%40))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		data := make([]byte, 16<<10)
		if i%2 == 0 {
			for j := range data {
				data[j] = byte(rng.Uint32())
			}
		} else {
			for j := range data {
				data[j] = "abcdefgh \n"[j%10]
			}
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d", i)), data, 0o644); err != nil {
			b.Fatal(err)
		}
		total += int64(len(data))
	}
	b.SetBytes(total)
	for b.Loop() {
		l, err := imagebuild.LayerFromDir(root)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := l.Digest(); err != nil {
			b.Fatal(err)
		}
		rc, err := l.Compressed()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			b.Fatal(err)
		}
		if err := rc.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
