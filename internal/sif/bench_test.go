package sif

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/rs/zerolog"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// benchImage generates an image of nFiles files, about totalBytes in all,
// over two layers: half the content compresses like text, half like
// weights (random bytes). The same arguments give the same image.
func benchImage(b *testing.B, nFiles, totalBytes int) (v1.Image, int64) {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	words := strings.Fields("import numpy torch model predict weights layer conv relu batch tensor image label score box")
	var layers [2][]ent
	var total int64
	per := totalBytes / nFiles
	for i := 0; i < nFiles; i++ {
		size := per/2 + rng.IntN(per+1)
		buf := make([]byte, 0, size)
		if i%2 == 0 {
			for len(buf) < size {
				buf = append(buf, words[rng.IntN(len(words))]...)
				buf = append(buf, ' ')
			}
			buf = buf[:size]
		} else {
			buf = buf[:size]
			for j := range buf {
				buf[j] = byte(rng.Uint32())
			}
		}
		name := fmt.Sprintf("opt/pkg%02d/mod%03d/file%05d.dat", i%37, i%101, i)
		layers[i%2] = append(layers[i%2], file(name, string(buf), 0o644))
		total += int64(size)
	}
	return imageOf(b, v1.Config{Entrypoint: []string{"/opt/run"}}, layers[0], layers[1]), total
}

// BenchmarkConvert converts a generated image of 4000 files (~50 MB) with
// all cores; "mksquashfs-floor" packs the same rootfs with mksquashfs alone,
// the lower bound of the conversion.
func BenchmarkConvert(b *testing.B) {
	testenv.Need(b, "mksquashfs", "unsquashfs")
	img, total := benchImage(b, 4000, 50<<20)
	out := b.TempDir()
	opts := Options{TmpDir: b.TempDir(), Log: zerolog.Nop()}

	b.Run("convert", func(b *testing.B) {
		b.SetBytes(total)
		for i := 0; i < b.N; i++ {
			if err := Convert(context.Background(), img, filepath.Join(out, "bench.sif"), Provenance{}, opts); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if st, err := os.Stat(filepath.Join(out, "bench.sif")); err == nil {
			b.ReportMetric(float64(st.Size())/float64(total), "sif/input")
		}
	})

	b.Run("mksquashfs-floor", func(b *testing.B) {
		root := filepath.Join(b.TempDir(), "rootfs")
		if err := ExtractRootfs(context.Background(), filepath.Join(out, "bench.sif"), root); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(total)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			cmd := exec.Command("mksquashfs", root, filepath.Join(out, "floor.sqfs"), "-noappend", "-comp", "gzip",
				"-processors", fmt.Sprint(runtime.NumCPU()), "-all-time", "0", "-mkfs-time", "0", "-no-xattrs", "-quiet", "-no-progress")
			if o, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("mksquashfs: %v %s", err, o)
			}
		}
	})

	b.Run("flatten", func(b *testing.B) {
		b.SetBytes(total)
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			root := filepath.Join(b.TempDir(), "rootfs")
			if err := os.Mkdir(root, 0o755); err != nil {
				b.Fatal(err)
			}
			r, _ := newRootFS(root)
			b.StartTimer()
			if _, err := flattenImage(context.Background(), img, r, zerolog.Nop()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
