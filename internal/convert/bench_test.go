package convert

import (
	"context"
	"fmt"
	"github.com/scivision-hpc/scv-hpc/internal/sif"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/rs/zerolog"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// benchImage generates an image of nFiles files, about totalBytes in all, over two
// layers (testenv.BenchFiles: half text-like, half random). The same arguments give the
// same image.
func benchImage(b *testing.B, nFiles, totalBytes int) (v1.Image, int64) {
	b.Helper()
	var layers [2][]ent
	i := 0
	total, err := testenv.BenchFiles(nFiles, totalBytes, func(rel string, data []byte) error {
		layers[i%2] = append(layers[i%2], file(rel, string(data), 0o644))
		i++
		return nil
	})
	if err != nil {
		b.Fatal(err)
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
		if err := sif.ExtractRootfs(context.Background(), filepath.Join(out, "bench.sif"), root); err != nil {
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
