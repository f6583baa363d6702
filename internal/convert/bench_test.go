package convert

import (
	"bytes"
	stdgzip "compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	kpgzip "github.com/klauspost/compress/gzip"
	"github.com/rs/zerolog"
	"github.com/scivision-hpc/scv-hpc/internal/sif"
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
// all cores, with each packer (the streaming ones with and without the
// spool); "mksquashfs-floor" packs the same rootfs with mksquashfs alone.
func BenchmarkConvert(b *testing.B) {
	testenv.Need(b, "mksquashfs", "unsquashfs", "tar2sqfs")
	img, total := benchImage(b, 4000, 50<<20)
	out := b.TempDir()
	for _, o := range []struct {
		name string
		opts Options
	}{
		{"convert", Options{}},
		{"convert-nospool", Options{NoSpool: true}},
		{"convert-mksquashfs-tar", Options{Packer: PackerMksquashfs}},
		{"convert-tree", Options{Packer: PackerTree}},
	} {
		opts := o.opts
		opts.TmpDir, opts.Log = b.TempDir(), zerolog.Nop()
		b.Run(o.name, func(b *testing.B) {
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
	}

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

// BenchmarkLayerDecode inflates a gzip layer of the generated image with the
// standard library and with klauspost/compress (what openLayer uses).
func BenchmarkLayerDecode(b *testing.B) {
	img, _ := benchImage(b, 2000, 40<<20)
	layers, err := img.Layers()
	if err != nil {
		b.Fatal(err)
	}
	rc, err := layers[0].Compressed()
	if err != nil {
		b.Fatal(err)
	}
	blob, err := io.ReadAll(rc)
	if err != nil {
		b.Fatal(err)
	}
	for _, d := range []struct {
		name string
		open func(io.Reader) (io.Reader, error)
	}{
		{"stdlib", func(r io.Reader) (io.Reader, error) { return stdgzip.NewReader(r) }},
		{"klauspost", func(r io.Reader) (io.Reader, error) { return kpgzip.NewReader(r) }},
	} {
		b.Run(d.name, func(b *testing.B) {
			var n int64
			for i := 0; i < b.N; i++ {
				zr, err := d.open(bytes.NewReader(blob))
				if err != nil {
					b.Fatal(err)
				}
				if n, err = io.Copy(io.Discard, zr); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(n)
		})
	}
}
