package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/scivision-hpc/scv-hpc/internal/imagebuild"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// BenchmarkPullConvert times the whole command 'scv-hpc pull oci-layout:DIR' on a
// generated image of 20,000 files and ~200 MB (gzip layers on disk, as a registry or a
// carried-in layout would give them) into an empty cache each time, and 'mksquashfs'
// alone over the same tree with the same options: the floor no conversion can beat.
// Reported: both wall times, their ratio, the peak RSS of the pull (wait4's: the larger of
// scv-hpc and the mksquashfs it runs; scv-hpc's own Go heap stays under 10 MB), and the
// SIF's size; once with --tmpdir on the disk and once on tmpfs (/dev/shm), as the
// unpacked tree is written there and file creation on a slow disk dominates the conversion.
func BenchmarkPullConvert(b *testing.B) {
	c := newCLI(b, "")
	work := b.TempDir()
	tree := filepath.Join(work, "tree")
	total, err := testenv.BenchFiles(20_000, 200<<20, func(rel string, data []byte) error {
		p := filepath.Join(tree, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, data, 0o644)
	})
	if err != nil {
		b.Fatal(err)
	}
	layer, err := imagebuild.LayerFromDir(tree)
	if err != nil {
		b.Fatal(err)
	}
	img, err := imagebuild.Image([]v1.Layer{layer}, imagebuild.Config{Entrypoint: []string{"/opt/run"}})
	if err != nil {
		b.Fatal(err)
	}
	lay := filepath.Join(work, "layout")
	if err := imagebuild.WriteLayout(lay, img, "bench"); err != nil {
		b.Fatal(err)
	}
	scratches := map[string]string{"disk": filepath.Join(work, "tmp")}
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		scratches["tmpfs"] = "/dev/shm"
	}
	for _, where := range []string{"disk", "tmpfs"} {
		tmp, ok := scratches[where]
		if !ok {
			continue
		}
		b.Run("tmpdir="+where, func(b *testing.B) {
			os.MkdirAll(tmp, 0o755)
			var pull, floor time.Duration
			var rssKiB, sifSize int64
			b.SetBytes(total)
			for i := 0; i < b.N; i++ {
				c.cache = filepath.Join(work, fmt.Sprintf("cache-%s-%d", where, i))
				start := time.Now()
				cmd := c.command(b.Context(), "--log-level", "warn", "--tmpdir", tmp, "pull", "oci-layout:"+lay+":bench")
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("pull: %v\n%s", err, out)
				}
				pull += time.Since(start)
				if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
					rssKiB = max(rssKiB, ru.Maxrss)
				}
				sifs, _ := filepath.Glob(filepath.Join(c.cache, "sif", "sha256", "*.sif"))
				if len(sifs) != 1 {
					b.Fatalf("want one SIF in the cache, found %v", sifs)
				}
				if st, err := os.Stat(sifs[0]); err == nil {
					sifSize = st.Size()
				}
				os.RemoveAll(c.cache)

				// The floor: mksquashfs alone over the same tree, its output where
				// the conversion keeps its scratch.
				sq, err := os.CreateTemp(tmp, "floor-*.sqfs")
				if err != nil {
					b.Fatal(err)
				}
				sq.Close()
				start = time.Now()
				mk := exec.Command("mksquashfs", tree, sq.Name(), "-noappend", "-comp", "gzip", "-processors", fmt.Sprint(runtime.NumCPU()),
					"-all-time", "0", "-mkfs-time", "0", "-no-xattrs", "-quiet", "-no-progress")
				if out, err := mk.CombinedOutput(); err != nil {
					b.Fatalf("mksquashfs: %v\n%s", err, out)
				}
				floor += time.Since(start)
				os.Remove(sq.Name())
			}
			n := float64(b.N)
			b.ReportMetric(pull.Seconds()/n, "pull-s")
			b.ReportMetric(floor.Seconds()/n, "mksquashfs-s")
			b.ReportMetric(pull.Seconds()/floor.Seconds(), "x-mksquashfs")
			b.ReportMetric(float64(rssKiB)/1024, "peak-rss-MiB")
			b.ReportMetric(float64(sifSize)/(1<<20), "sif-MiB")
		})
	}
}
